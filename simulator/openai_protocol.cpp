// OpenAI chat completions (protocols.md §1): bodies, SSE chunks, headers and error objects as the
// real API sends them. Written independently of collector/: see DESIGN.md §2.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "simulator/internal/protocol.h"
#include "simulator/internal/protocol_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kSseContentType = "text/event-stream";

Json ErrorObject(std::string_view message, std::string_view type, const Json& code) {
  return Json{
      {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}};
}

std::string Sse(const Json& payload) { return "data: " + payload.dump() + "\n\n"; }

Json Usage(const Plan& plan, int64_t completion_tokens) {
  return Json{{"prompt_tokens", plan.input_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", plan.input_tokens + completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", 0}, {"audio_tokens", 0}}},
              {"completion_tokens_details",
               {{"reasoning_tokens", 0},
                {"audio_tokens", 0},
                {"accepted_prediction_tokens", 0},
                {"rejected_prediction_tokens", 0}}}};
}

class OpenAiProtocol final : public Protocol {
 public:
  std::string_view Name() const override { return "openai"; }

  std::vector<std::string> PostRoutes() const override {
    return {"/v1/chat/completions", "/chat/completions"};
  }

  std::variant<Call, Reply> Parse(const HttpRequest& request,
                                  const EndpointSpec& endpoint) const override {
    Call call;
    if (!endpoint.api_key.empty()) {
      const auto auth = request.Header("authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (auth.empty()) {
        call.auth = AuthState::kMissing;
      } else if (auth.size() > kBearer.size() && auth.compare(0, kBearer.size(), kBearer) == 0 &&
                 auth.substr(kBearer.size()) == endpoint.api_key) {
        call.auth = AuthState::kOk;
      } else {
        call.auth = AuthState::kWrong;
      }
    }
    const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return BadRequest(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
          "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
          "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
          "contact us through our help center at help.openai.com.)",
          nullptr);
    }
    if (!body.contains("model") || !body["model"].is_string()) {
      return BadRequest("you must provide a model parameter", nullptr);
    }
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return BadRequest("Missing required parameter: 'messages'.", "missing_required_parameter");
    }
    call.model = body["model"].get<std::string>();
    return WithChatCompletionFields(body, std::move(call));
  }

  Reply Render(const Call& call, const Plan& plan) const override {
    const AnswerEncoding encoding{
        .body = [&] { return Completion(plan, plan.output_tokens); },
        .stream = [&](int64_t tokens) { return Stream(call, plan, tokens, End::kDone); },
        .truncated_stream = [&](int64_t tokens) { return Stream(call, plan, tokens, End::kCut); },
        .malform_stream = &BreakFirstContentChunk,
        .stream_content_type = std::string(kSseContentType),
        .opening_chunks =
            [&] {
              return std::vector<TimedChunk>{{Micros(0), Sse(RoleChunk(call, plan))}};
            },
    };
    Reply reply = RenderReply(call, plan, encoding,
                              [&](ErrorBehaviour error) { return RenderError(call, plan, error); });
    AddHeaders(plan, reply);
    return reply;
  }

 private:
  enum class End { kDone, kCut, kError };

  static Reply RenderError(const Call& call, const Plan& plan, ErrorBehaviour error) {
    Reply reply;
    switch (error) {
      case ErrorBehaviour::kErrorIn200:
        reply = call.stream ? Stream(call, plan, 0, End::kError) : ErrorIn200(plan);
        break;
      case ErrorBehaviour::kRateLimit:
        reply = RateLimited(plan);
        break;
      case ErrorBehaviour::kInsufficientQuota:
        reply = Error(429, ErrorObject("You exceeded your current quota, please check your plan "
                                       "and billing details. For more information on this error, "
                                       "read the docs: https://platform.openai.com/docs/guides/"
                                       "error-codes/api-errors.",
                                       "insufficient_quota", "insufficient_quota"));
        break;
      case ErrorBehaviour::kOverloaded503:
        reply = Error(503, ErrorObject("That model is currently overloaded with other requests. "
                                       "You can retry your request, or contact us through our "
                                       "help center at help.openai.com if the error persists.",
                                       "server_error", nullptr));
        break;
      case ErrorBehaviour::kServerError500:
        reply = Error(500, ServerError());
        break;
      case ErrorBehaviour::kUnauthorized401:
        reply = Unauthorized(call.auth == AuthState::kMissing);
        break;
      // Refused by Supports() at load; an empty 200 should one ever get here.
      case ErrorBehaviour::kOverloadedMidstream:
      case ErrorBehaviour::kQuotaPerDay:
      case ErrorBehaviour::kExceptionMidstream:
      case ErrorBehaviour::kModelNotReady:
        break;
    }
    return reply;
  }

  static Reply BadRequest(std::string_view message, const Json& code) {
    return Error(400, ErrorObject(message, "invalid_request_error", code));
  }

  static Reply Error(int status, const Json& body) {
    Reply reply;
    reply.status = status;
    reply.body = body.dump();
    return reply;
  }

  static Json ServerError() {
    return ErrorObject("The server had an error while processing your request. Sorry about that!",
                       "server_error", nullptr);
  }

  static Reply Unauthorized(bool missing) {
    if (missing) {
      return Error(401, ErrorObject("You didn't provide an API key. You need to provide your API "
                                    "key in an Authorization header using Bearer auth (i.e. "
                                    "Authorization: Bearer YOUR_KEY). You can obtain an API key "
                                    "from https://platform.openai.com/account/api-keys.",
                                    "invalid_request_error", nullptr));
    }
    // The real API echoes a masked key; we echo nothing of it (secrets never leave a process).
    return Error(401, ErrorObject("Incorrect API key provided: sk-****. You can find your API "
                                  "key at https://platform.openai.com/account/api-keys.",
                                  "invalid_request_error", "invalid_api_key"));
  }

  static Reply RateLimited(const Plan& plan) {
    const auto& budget =
        plan.limited_resource == "tokens" ? plan.ratelimit.tokens : plan.ratelimit.requests;
    const int64_t limit = budget ? budget->limit : 0;
    const std::string per =
        plan.limited_resource == "tokens" ? "tokens per min (TPM)" : "requests per min (RPM)";
    const std::string message = fmt::format(
        "Rate limit reached for {} in organization org-simulated on {}: Limit {}, Used {}, "
        "Requested 1. Please try again in {}. Visit https://platform.openai.com/account/"
        "rate-limits to learn more.",
        plan.model, per, limit, limit, FormatGoDuration(plan.retry_after));
    Reply reply = Error(429, ErrorObject(message, plan.limited_resource, "rate_limit_exceeded"));
    reply.headers.emplace_back("retry-after", std::to_string(CeilSeconds(plan.retry_after)));
    return reply;
  }

  static Reply ErrorIn200(const Plan& plan) {
    Reply reply;
    reply.body = ServerError().dump();
    reply.body_at = plan.first_token;
    return reply;
  }

  static Json ChunkBase(const Call& /*call*/, const Plan& plan) {
    return Json{{"id", plan.completion_id},     {"object", "chat.completion.chunk"},
                {"created", plan.created_unix}, {"model", plan.model},
                {"service_tier", "default"},    {"system_fingerprint", "fp_simulated"}};
  }

  static Json WithChoice(const Call& call, Json chunk, Json delta, const Json& finish_reason) {
    chunk["choices"] = Json::array({Json{{"index", 0},
                                         {"delta", std::move(delta)},
                                         {"logprobs", nullptr},
                                         {"finish_reason", finish_reason}}});
    if (call.include_usage)
      chunk["usage"] = nullptr;
    return chunk;
  }

  static Json RoleChunk(const Call& call, const Plan& plan) {
    return WithChoice(call, ChunkBase(call, plan),
                      Json{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr);
  }

  // Role chunk at once, `tokens` content chunks from first_token on, then the ending.
  static Reply Stream(const Call& call, const Plan& plan, int64_t tokens, End end) {
    Reply reply;
    reply.mode = Reply::Mode::kStream;
    reply.content_type = kSseContentType;
    reply.chunks.push_back({Micros(0), Sse(RoleChunk(call, plan))});
    Micros at = plan.first_token;
    for (int64_t i = 0; i < tokens; ++i) {
      at = plan.first_token + plan.inter_token * i;
      reply.chunks.push_back({at, Sse(WithChoice(call, ChunkBase(call, plan),
                                                 Json{{"content", TokenText(i)}}, nullptr))});
    }
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    switch (end) {
      case End::kCut:
        break;
      case End::kError:
        reply.chunks.push_back({plan.first_token, Sse(ServerError())});
        break;
      case End::kDone: {
        const Json finish = plan.cut_by_max_tokens ? "length" : "stop";
        reply.chunks.push_back(
            {at, Sse(WithChoice(call, ChunkBase(call, plan), Json::object(), finish))});
        if (call.include_usage) {
          Json usage = ChunkBase(call, plan);
          usage["choices"] = Json::array();
          usage["usage"] = Usage(plan, tokens);
          reply.chunks.push_back({at, Sse(usage)});
        }
        reply.chunks.push_back({at, "data: [DONE]\n\n"});
        break;
      }
    }
    return reply;
  }

  static void BreakFirstContentChunk(Reply& reply) {
    if (reply.chunks.size() < 2)
      return;
    auto& bytes = reply.chunks[1].bytes;  // chunks[0] is the role chunk
    // Drop the closing braces: "data: {...}\n\n" becomes "data: {...\n\n".
    const auto end = bytes.rfind('}');
    if (end != std::string::npos)
      bytes = bytes.substr(0, end - 1) + "\n\n";
  }

  static Reply Completion(const Plan& plan, int64_t tokens) {
    Json body{{"id", plan.completion_id},
              {"object", "chat.completion"},
              {"created", plan.created_unix},
              {"model", plan.model},
              {"choices",
               Json::array({Json{{"index", 0},
                                 {"message",
                                  {{"role", "assistant"},
                                   {"content", ContentText(tokens)},
                                   {"refusal", nullptr},
                                   {"annotations", Json::array()}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", plan.cut_by_max_tokens ? "length" : "stop"}}})},
              {"usage", Usage(plan, tokens)},
              {"service_tier", "default"},
              {"system_fingerprint", "fp_simulated"}};
    Reply reply;
    reply.body = body.dump();
    reply.body_at = plan.first_token + plan.inter_token * std::max<int64_t>(0, tokens - 1);
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    return reply;
  }

  static void AddHeaders(const Plan& plan, Reply& reply) {
    auto& h = reply.headers;
    h.emplace_back("x-request-id", plan.request_id);
    h.emplace_back("openai-version", "2020-10-01");
    h.emplace_back("openai-organization", "org-simulated");
    const Micros processing = reply.mode == Reply::Mode::kBody ? reply.body_at : plan.first_token;
    h.emplace_back("openai-processing-ms", std::to_string(Millis(processing)));
    auto add = [&](std::string_view resource, const std::optional<BudgetState>& budget) {
      if (!budget)
        return;
      h.emplace_back(fmt::format("x-ratelimit-limit-{}", resource), std::to_string(budget->limit));
      h.emplace_back(fmt::format("x-ratelimit-remaining-{}", resource),
                     std::to_string(budget->remaining));
      h.emplace_back(fmt::format("x-ratelimit-reset-{}", resource),
                     FormatGoDuration(budget->reset));
    };
    add("requests", plan.ratelimit.requests);
    add("tokens", plan.ratelimit.tokens);
  }
};

}  // namespace

std::unique_ptr<Protocol> MakeOpenAiProtocol() { return std::make_unique<OpenAiProtocol>(); }

}  // namespace modelpulse::simulator
