// Anthropic Messages API (protocols.md §3): POST /v1/messages with `x-api-key` or a Bearer token
// (the 1.x JS SDK sends Bearer) and a required `anthropic-version`; named SSE events with usage
// in `message_start` and the cumulative `message_delta`; errors as
// {"type":"error","error":{...},"request_id":...}; `anthropic-ratelimit-*` headers with RFC 3339
// resets. Written independently of collector/: see DESIGN.md §2.
//
// Error kinds: rate_limit -> 429 rate_limit_error (retry-after, x-should-retry: true);
// overloaded_503 -> 529 overloaded_error; server_error_500 -> 500 api_error; unauthorized_401 ->
// 401 authentication_error; insufficient_quota -> 400 "credit balance is too low" (or 402
// billing_error); error_in_200 -> `event: error` api_error right after message_start;
// overloaded_midstream -> half the text, then `event: error` overloaded_error (529 without
// streaming); truncated_stream -> half the text and no message_stop; malformed_json -> the first
// content_block_delta cut short.
//
// Options (scenario `options:`):
//   quota_error: credit_balance | billing_error   insufficient_quota as the 400 most accounts see
//                                                 (default) or the SDK enum's 402 billing_error
//   retry_after_on_200: N                         a `retry-after: N` header on successful replies
//                                                 (seen on a real 200 stream; not an error)
//   ratelimit_families: all | tokens              all four header families (default), or only
//                                                 tokens/input-tokens/output-tokens as in the
//                                                 llm-anthropic recording

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "simulator/internal/protocol.h"
#include "simulator/internal/protocol_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kSseContentType = "text/event-stream";

int64_t TextTokens(const Json& content) {
  if (content.is_string())
    return EstimateTextTokens(content.get_ref<const std::string&>());
  int64_t total = 0;
  if (content.is_array()) {
    for (const auto& block : content) {
      if (block.is_object() && block.contains("text") && block["text"].is_string()) {
        total += EstimateTextTokens(block["text"].get_ref<const std::string&>());
      }
    }
  }
  return total;
}

// About what Anthropic counts: a few tokens of framing per message, ~4 characters per token.
int64_t EstimateInputTokens(const Json& body) {
  int64_t total = 5;
  if (body.contains("system"))
    total += TextTokens(body["system"]);
  for (const auto& message : body["messages"]) {
    total += 3;
    if (message.is_object() && message.contains("content"))
      total += TextTokens(message["content"]);
  }
  return total;
}

// Anthropic ids look like req_011CYK5n67SytMUxm8WMZUWY: a fixed prefix and 20 random characters.
std::string RequestId(const Plan& plan) {
  return "req_011C" + plan.request_id.substr(std::min<size_t>(4, plan.request_id.size()), 20);
}

std::string MessageId(const Plan& plan) {
  const std::string random = plan.completion_id.substr(plan.completion_id.find('-') + 1);
  return "msg_01" + random.substr(0, 22);
}

std::string Rfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// The event name and its JSON, as the API frames them. `pad` reproduces the trailing spaces the
// real API leaves after some payloads (protocols.md §0.1), which only a real JSON parser accepts.
std::string Event(std::string_view name, const Json& payload, size_t pad = 0) {
  return fmt::format("event: {}\ndata: {}{}\n\n", name, payload.dump(), std::string(pad, ' '));
}

Json ErrorBody(std::string_view type, std::string_view message, const Plan* plan) {
  Json body{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
  if (plan != nullptr)
    body["request_id"] = RequestId(*plan);
  return body;
}

Reply ErrorReply(int status, std::string_view type, std::string_view message,
                 const Plan* plan = nullptr) {
  Reply reply;
  reply.status = status;
  reply.body = ErrorBody(type, message, plan).dump();
  return reply;
}

class AnthropicProtocol final : public Protocol {
 public:
  std::string_view Name() const override { return "anthropic"; }

  std::vector<std::string> PostRoutes() const override { return {"/v1/messages"}; }

  Status Configure(const EndpointSpec& endpoint) override {
    for (const auto& [key, value] : endpoint.options) {
      if (auto problem = CheckOption(key, value))
        return Fail(Error::Parse(*problem));
    }
    options_ = endpoint.options;
    return {};
  }

  // The common kinds and overloaded_midstream.
  bool Supports(Behaviour behaviour) const override {
    return behaviour == Behaviour::kOverloadedMidstream || Protocol::Supports(behaviour);
  }

  static std::optional<std::string> CheckOption(std::string_view key, std::string_view value) {
    if (key == "quota_error") {
      if (value == "credit_balance" || value == "billing_error")
        return std::nullopt;
      return "option 'quota_error' must be one of: credit_balance, billing_error";
    }
    if (key == "ratelimit_families") {
      if (value == "all" || value == "tokens")
        return std::nullopt;
      return "option 'ratelimit_families' must be one of: all, tokens";
    }
    if (key == "retry_after_on_200") {
      if (!value.empty() && value.size() <= 6 &&
          std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
      }
      return fmt::format("option 'retry_after_on_200' must be whole seconds, got '{}'", value);
    }
    return fmt::format(
        "unknown option '{}' for protocol anthropic (expected one of: quota_error, "
        "retry_after_on_200, ratelimit_families)",
        key);
  }

  std::variant<Call, Reply> Parse(const HttpRequest& request,
                                  const EndpointSpec& endpoint) const override {
    Call call;
    call.extras.insert(options_.begin(), options_.end());
    if (!endpoint.api_key.empty()) {
      const auto key = request.Header("x-api-key");
      const auto authorization = request.Header("authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (!key.empty()) {
        call.auth = key == endpoint.api_key ? AuthState::kOk : AuthState::kWrong;
      } else if (!authorization.empty()) {
        call.auth = authorization.rfind(kBearer, 0) == 0 &&
                            authorization.substr(kBearer.size()) == endpoint.api_key
                        ? AuthState::kOk
                        : AuthState::kWrong;
      } else {
        call.auth = AuthState::kMissing;
      }
    }
    if (request.Header("anthropic-version").empty()) {
      return ErrorReply(400, "invalid_request_error", "anthropic-version: header is required");
    }
    const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return ErrorReply(400, "invalid_request_error",
                        "There was an issue with your request body: the JSON could not be parsed.");
    }
    for (const char* field : {"model", "max_tokens", "messages"}) {
      if (!body.contains(field)) {
        return ErrorReply(400, "invalid_request_error", fmt::format("{}: Field required", field));
      }
    }
    if (!body["model"].is_string()) {
      return ErrorReply(400, "invalid_request_error", "model: Input should be a valid string");
    }
    if (!body["max_tokens"].is_number_integer() || body["max_tokens"].get<int64_t>() < 1) {
      return ErrorReply(400, "invalid_request_error",
                        "max_tokens: Input should be a valid integer greater than or equal to 1");
    }
    if (!body["messages"].is_array() || body["messages"].empty()) {
      return ErrorReply(400, "invalid_request_error", "messages: at least one message is required");
    }
    call.model = body["model"].get<std::string>();
    call.max_tokens = body["max_tokens"].get<int64_t>();
    call.stream = body.value("stream", false);
    call.input_tokens = EstimateInputTokens(body);
    return call;
  }

  Reply Render(const Call& call, const Plan& plan) const override {
    const AnswerEncoding encoding{
        .body = [&] { return Message(plan, plan.output_tokens); },
        .stream = [&](int64_t tokens) { return Stream(plan, tokens, End::kDone); },
        .truncated_stream = [&](int64_t tokens) { return Stream(plan, tokens, End::kCut); },
        .malform_stream = &BreakFirstDelta,
        .stream_content_type = std::string(kSseContentType),
        .opening_chunks =
            [&] {
              return std::vector<TimedChunk>{
                  {Micros(0), Event("message_start", MessageStart(plan))}};
            },
    };
    Reply reply = RenderReply(call, plan, encoding,
                              [&](ErrorBehaviour error) { return RenderError(call, plan, error); });
    AddHeaders(call, plan, reply);
    return reply;
  }

 private:
  enum class End { kDone, kCut, kApiError, kOverloaded };

  Reply RenderError(const Call& call, const Plan& plan, ErrorBehaviour error) const {
    Reply reply;
    switch (error) {
      case ErrorBehaviour::kErrorIn200:
        if (call.stream) {
          reply = Stream(plan, 0, End::kApiError);
        } else {
          reply.body = ErrorBody("api_error", "Internal server error", &plan).dump();
          reply.body_at = plan.first_token;
        }
        break;
      case ErrorBehaviour::kOverloadedMidstream:
        reply = call.stream
                    ? Stream(plan, std::max<int64_t>(1, plan.output_tokens / 2), End::kOverloaded)
                    : ErrorReply(529, "overloaded_error", "Overloaded", &plan);
        break;
      case ErrorBehaviour::kRateLimit:
        reply = RateLimited(plan);
        break;
      case ErrorBehaviour::kInsufficientQuota:
        if (Extra(call, "quota_error") == "billing_error") {
          reply = ErrorReply(402, "billing_error",
                             "Your account has a billing issue. Please visit Plans & Billing to "
                             "resolve it.",
                             &plan);
        } else {
          reply = ErrorReply(400, "invalid_request_error",
                             "Your credit balance is too low to access the Anthropic API. Please "
                             "go to Plans & Billing to upgrade or purchase credits.",
                             &plan);
        }
        break;
      case ErrorBehaviour::kOverloaded503:
        reply = ErrorReply(529, "overloaded_error", "Overloaded", &plan);
        break;
      case ErrorBehaviour::kServerError500:
      // Refused by Supports() at load; a plain 500 should one ever get here.
      case ErrorBehaviour::kQuotaPerDay:
      case ErrorBehaviour::kExceptionMidstream:
      case ErrorBehaviour::kModelNotReady:
        reply = ErrorReply(500, "api_error", "Internal server error", &plan);
        break;
      case ErrorBehaviour::kUnauthorized401:
        reply = ErrorReply(
            401, "authentication_error",
            call.auth == AuthState::kMissing ? "x-api-key header is required" : "invalid x-api-key",
            &plan);
        break;
    }
    return reply;
  }

  static Reply RateLimited(const Plan& plan) {
    const bool tokens = plan.limited_resource == "tokens";
    const auto& budget = tokens ? plan.ratelimit.tokens : plan.ratelimit.requests;
    const int64_t limit = budget ? budget->limit : 0;
    Reply reply = ErrorReply(
        429, "rate_limit_error",
        fmt::format("This request would exceed the rate limit for your organization "
                    "(00000000-0000-4000-8000-000000000000) of {} {} per minute. For details, "
                    "refer to: https://docs.claude.com/en/api/rate-limits. You can see the "
                    "response headers for current usage. Please reduce the prompt length or the "
                    "maximum tokens requested, or try again later. You may also contact sales at "
                    "https://www.anthropic.com/contact-sales to discuss your options for a rate "
                    "limit increase.",
                    limit, tokens ? "input tokens" : "requests"),
        &plan);
    reply.headers.emplace_back("retry-after", std::to_string(CeilSeconds(plan.retry_after)));
    reply.headers.emplace_back("x-should-retry", "true");
    return reply;
  }

  static Json Usage(const Plan& plan, int64_t output_tokens) {
    return Json{
        {"input_tokens", plan.input_tokens},
        {"cache_creation_input_tokens", 0},
        {"cache_read_input_tokens", 0},
        {"cache_creation", {{"ephemeral_5m_input_tokens", 0}, {"ephemeral_1h_input_tokens", 0}}},
        {"output_tokens", output_tokens},
        {"service_tier", "standard"}};
  }

  static Json MessageStart(const Plan& plan) {
    return Json{{"type", "message_start"},
                {"message",
                 {{"model", plan.model},
                  {"id", MessageId(plan)},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"content", Json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  // output_tokens here is a placeholder; the real count comes in message_delta.
                  {"usage", Usage(plan, 1)}}}};
  }

  static std::string StopReason(const Plan& plan) {
    return plan.cut_by_max_tokens ? "max_tokens" : "end_turn";
  }

  // message_start, content_block_start and ping at once; a text_delta per token from
  // first_token on; then the ending.
  static Reply Stream(const Plan& plan, int64_t tokens, End end) {
    Reply reply;
    reply.mode = Reply::Mode::kStream;
    reply.content_type = kSseContentType;
    reply.chunks.push_back({Micros(0), Event("message_start", MessageStart(plan), 2)});
    const bool block = tokens > 0 || end == End::kDone;
    if (block && plan.output_tokens > 0) {
      reply.chunks.push_back(
          {Micros(0), Event("content_block_start",
                            Json{{"type", "content_block_start"},
                                 {"index", 0},
                                 {"content_block", {{"type", "text"}, {"text", ""}}}})});
    }
    reply.chunks.push_back({Micros(0), "event: ping\ndata: {\"type\": \"ping\"}\n\n"});
    Micros at = plan.first_token;
    for (int64_t i = 0; i < tokens; ++i) {
      at = plan.first_token + plan.inter_token * i;
      reply.chunks.push_back(
          {at, Event("content_block_delta",
                     Json{{"type", "content_block_delta"},
                          {"index", 0},
                          {"delta", {{"type", "text_delta"}, {"text", TokenText(i)}}}},
                     7)});
    }
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    switch (end) {
      case End::kCut:
        break;
      case End::kApiError:
        reply.chunks.push_back(
            {plan.first_token,
             Event("error", ErrorBody("api_error", "Internal server error", nullptr))});
        break;
      case End::kOverloaded:
        reply.chunks.push_back(
            {at + plan.inter_token,
             Event("error", ErrorBody("overloaded_error", "Overloaded", nullptr))});
        break;
      case End::kDone:
        if (plan.output_tokens > 0) {
          reply.chunks.push_back(
              {at, Event("content_block_stop", Json{{"type", "content_block_stop"}, {"index", 0}},
                         13)});
        }
        reply.chunks.push_back(
            {at,
             Event("message_delta",
                   Json{{"type", "message_delta"},
                        {"delta", {{"stop_reason", StopReason(plan)}, {"stop_sequence", nullptr}}},
                        // Cumulative, as the API sends it.
                        {"usage",
                         {{"input_tokens", plan.input_tokens},
                          {"cache_creation_input_tokens", 0},
                          {"cache_read_input_tokens", 0},
                          {"output_tokens", tokens}}}})});
        reply.chunks.push_back({at, Event("message_stop", Json{{"type", "message_stop"}}, 15)});
        break;
    }
    return reply;
  }

  static void BreakFirstDelta(Reply& reply) {
    for (auto& chunk : reply.chunks) {
      if (chunk.bytes.rfind("event: content_block_delta", 0) != 0)
        continue;
      const auto end = chunk.bytes.rfind('}');
      if (end != std::string::npos)
        chunk.bytes = chunk.bytes.substr(0, end - 1) + "\n\n";
      return;
    }
  }

  static Reply Message(const Plan& plan, int64_t tokens) {
    Json content = Json::array();
    if (tokens > 0)
      content.push_back(Json{{"type", "text"}, {"text", ContentText(tokens)}});
    Json body{{"model", plan.model},
              {"id", MessageId(plan)},
              {"type", "message"},
              {"role", "assistant"},
              {"content", std::move(content)},
              {"stop_reason", StopReason(plan)},
              {"stop_sequence", nullptr},
              {"usage", Usage(plan, tokens)}};
    Reply reply;
    reply.body = body.dump();
    reply.body_at = plan.first_token + plan.inter_token * std::max<int64_t>(0, tokens - 1);
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    return reply;
  }

  static void AddHeaders(const Call& call, const Plan& plan, Reply& reply) {
    auto& h = reply.headers;
    h.emplace_back("request-id", RequestId(plan));
    h.emplace_back("anthropic-organization-id", "00000000-0000-4000-8000-000000000000");
    if (reply.status == 200) {
      const Micros processing = reply.mode == Reply::Mode::kBody ? reply.body_at : plan.first_token;
      h.emplace_back("x-envoy-upstream-service-time", std::to_string(Millis(processing)));
      if (const auto seconds = Extra(call, "retry_after_on_200"); !seconds.empty()) {
        h.emplace_back("retry-after", seconds);
      }
    }
    auto add = [&](std::string_view family, int64_t limit, int64_t remaining, Micros reset) {
      h.emplace_back(fmt::format("anthropic-ratelimit-{}-limit", family), std::to_string(limit));
      h.emplace_back(fmt::format("anthropic-ratelimit-{}-remaining", family),
                     std::to_string(remaining));
      // An instant, not a duration: when the bucket is full again.
      const int64_t seconds = reset.count() <= 0 ? 0 : CeilSeconds(reset);
      h.emplace_back(fmt::format("anthropic-ratelimit-{}-reset", family),
                     Rfc3339(plan.created_unix + seconds));
    };
    if (const auto& r = plan.ratelimit.requests;
        r && Extra(call, "ratelimit_families", "all") == "all") {
      add("requests", r->limit, r->remaining, r->reset);
    }
    if (const auto& t = plan.ratelimit.tokens) {
      add("tokens", t->limit, t->remaining, t->reset);
      // One simulated bucket stands for both directions: 4/5 of it for input, 1/5 for output.
      add("input-tokens", t->limit * 4 / 5, t->remaining * 4 / 5, t->reset);
      add("output-tokens", t->limit / 5, t->remaining / 5, t->reset);
    }
  }

  std::map<std::string, std::string> options_;  // the endpoint's `options`, set by Configure
};

}  // namespace

std::unique_ptr<Protocol> MakeAnthropicProtocol() { return std::make_unique<AnthropicProtocol>(); }

}  // namespace modelpulse::simulator
