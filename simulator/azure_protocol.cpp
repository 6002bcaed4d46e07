// Azure OpenAI chat completions (protocols.md §2): the deployment route with `api-version` and
// the v1 route, `api-key` or Entra bearer auth with Azure's own 401 texts, the content-filter
// chunk that precedes the role chunk, both 429 body shapes, `apim-request-id` and Azure's
// `x-ratelimit-*` habits. Written independently of collector/: see DESIGN.md §2.
//
// Options (scenario `options:`):
//   rate_limit_body: legacy | openai      429 body: `code:"429"` + "Please retry after N seconds"
//                                         (default) or the OpenAI-shaped `rate_limit_exceeded`
//   ratelimit_limit_headers: true | false x-ratelimit-limit-* present (2025-12 recordings; default
//                                         true) or absent (2024 recordings)
//   ratelimit_reset_headers: none | seconds | sentinel
//                                         x-ratelimit-reset-* absent (every recording; default),
//                                         integer seconds (user reports), or the Responses API's
//                                         `-1`/`-1`/`0` token sentinels
//   region: TEXT                          x-ms-region (default "East US")

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "simulator/internal/protocol.h"
#include "simulator/internal/protocol_util.h"

namespace modelpulse::simulator {
namespace {

// Azure serialises keys in alphabetical order (see the recordings quoted in protocols.md §2.2),
// which is what nlohmann::json's sorted map gives.
using Json = nlohmann::json;

constexpr std::string_view kSseContentType = "text/event-stream";
constexpr std::string_view kDeploymentsPrefix = "/openai/deployments/";
constexpr std::string_view kDefaultApiVersion = "2024-10-21";

std::string Sse(const Json& payload) { return "data: " + payload.dump() + "\n\n"; }

// A UUID-shaped id from the plan's random request id (32 hex digits after "req_").
std::string Uuid(std::string_view hex32) {
  std::string h(hex32.substr(std::min<size_t>(4, hex32.size())));
  h.resize(32, '0');
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4),
                     h.substr(16, 4), h.substr(20, 12));
}

Json SafeFilterResults() {
  const Json safe{{"filtered", false}, {"severity", "safe"}};
  return Json{{"hate", safe}, {"self_harm", safe}, {"sexual", safe}, {"violence", safe}};
}

Json PromptFilterResults() {
  Json results = SafeFilterResults();
  results["jailbreak"] = Json{{"filtered", false}, {"detected", false}};
  return Json::array({Json{{"prompt_index", 0}, {"content_filter_results", results}}});
}

// Azure's own error object: `code` is a string, there is no `type`.
Json AzureError(std::string_view code, std::string_view message) {
  return Json{{"error", {{"code", code}, {"message", message}}}};
}

Json OpenAiShapedError(std::string_view message, std::string_view type, const Json& code,
                       const Json& param = nullptr) {
  return Json{{"error", {{"message", message}, {"type", type}, {"param", param}, {"code", code}}}};
}

Reply ErrorReply(int status, const Json& body) {
  Reply reply;
  reply.status = status;
  reply.body = body.dump();
  return reply;
}

Json ServerError() {
  return OpenAiShapedError(
      "The server had an error while processing your request. Sorry about that!", "server_error",
      nullptr);
}

class AzureProtocol final : public Protocol {
 public:
  std::string_view Name() const override { return "azure"; }

  std::vector<std::string> PostRoutes() const override {
    // httplib matches routes as regular expressions.
    return {std::string(kDeploymentsPrefix) + "[^/]+/chat/completions",
            "/openai/v1/chat/completions"};
  }

  Status Configure(const EndpointSpec& endpoint) override {
    for (const auto& [key, value] : endpoint.options) {
      if (auto problem = CheckOption(key, value))
        return Fail(Error::Parse(*problem));
    }
    options_ = endpoint.options;
    return {};
  }

  // The common kinds, overloaded_midstream, and quota_per_day (the same day-long legacy 429 as
  // insufficient_quota: Azure has no separate daily-quota body).
  bool Supports(Behaviour behaviour) const override {
    return behaviour == Behaviour::kOverloadedMidstream || behaviour == Behaviour::kQuotaPerDay ||
           Protocol::Supports(behaviour);
  }

  static std::optional<std::string> CheckOption(std::string_view key, std::string_view value) {
    auto one_of =
        [&](std::initializer_list<std::string_view> allowed) -> std::optional<std::string> {
      if (std::find(allowed.begin(), allowed.end(), value) != allowed.end())
        return std::nullopt;
      return fmt::format("option '{}' must be one of: {}", key, fmt::join(allowed, ", "));
    };
    if (key == "rate_limit_body")
      return one_of({"legacy", "openai"});
    if (key == "ratelimit_limit_headers")
      return one_of({"true", "false"});
    if (key == "ratelimit_reset_headers")
      return one_of({"none", "seconds", "sentinel"});
    if (key == "region")
      return std::nullopt;
    return fmt::format(
        "unknown option '{}' for protocol azure (expected one of: rate_limit_body, "
        "ratelimit_limit_headers, ratelimit_reset_headers, region)",
        key);
  }

  std::variant<Call, Reply> Parse(const HttpRequest& request,
                                  const EndpointSpec& endpoint) const override {
    Call call;
    call.extras.insert(options_.begin(), options_.end());
    const bool deployment_route = request.path.rfind(kDeploymentsPrefix, 0) == 0;
    const auto api_version = request.Query("api-version");
    if (deployment_route) {
      // The classic surface answers a missing api-version with a bare 404 (protocols.md §2.1;
      // MicrosoftDocs/azure-docs#114602).
      if (!api_version || api_version->empty()) {
        return ErrorReply(404, AzureError("404", "Resource not found"));
      }
      const auto rest = request.path.substr(kDeploymentsPrefix.size());
      const std::string deployment = rest.substr(0, rest.find('/'));
      call.extras["deployment"] = deployment;
    }
    call.extras["api_version"] = api_version.value_or(std::string(kDefaultApiVersion));

    if (!endpoint.api_key.empty()) {
      const auto key = request.Header("api-key");
      const auto authorization = request.Header("authorization");
      constexpr std::string_view kBearer = "Bearer ";
      if (!key.empty()) {
        call.extras["auth_scheme"] = "api-key";
        call.auth = key == endpoint.api_key ? AuthState::kOk : AuthState::kWrong;
      } else if (!authorization.empty()) {
        call.extras["auth_scheme"] = "bearer";
        const bool bearer = authorization.rfind(kBearer, 0) == 0;
        call.auth = bearer && authorization.substr(kBearer.size()) == endpoint.api_key
                        ? AuthState::kOk
                        : AuthState::kWrong;
      } else {
        call.extras["auth_scheme"] = "api-key";
        call.auth = AuthState::kMissing;
      }
    }

    const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return ErrorReply(400, OpenAiShapedError("We could not parse the JSON body of your request.",
                                               "invalid_request_error", nullptr));
    }
    if (!deployment_route && (!body.contains("model") || !body["model"].is_string())) {
      return ErrorReply(400, OpenAiShapedError("you must provide a model parameter",
                                               "invalid_request_error", nullptr));
    }
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return ErrorReply(
          400, OpenAiShapedError("Missing required parameter: 'messages'.", "invalid_request_error",
                                 "missing_required_parameter", "messages"));
    }
    if (body.contains("model") && body["model"].is_string()) {
      call.model = body["model"].get<std::string>();
    }
    if (deployment_route) {
      if (call.model.empty())
        call.model = call.extras["deployment"];
    } else {
      call.extras["deployment"] = call.model;  // v1: the body's model names the deployment
    }
    if (const auto id = request.Header("x-ms-client-request-id"); !id.empty()) {
      call.extras["client_request_id"] = id;
    }
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
              return std::vector<TimedChunk>{{Micros(0), Sse(FilterChunk())},
                                             {Micros(0), Sse(RoleChunk(call, plan))}};
            },
    };
    Reply reply = RenderReply(call, plan, encoding,
                              [&](ErrorBehaviour error) { return RenderError(call, plan, error); });
    AddHeaders(call, plan, reply);
    return reply;
  }

 private:
  enum class End { kDone, kCut, kError, kOverloaded };

  Reply RenderError(const Call& call, const Plan& plan, ErrorBehaviour error) const {
    Reply reply;
    switch (error) {
      case ErrorBehaviour::kErrorIn200:
        if (call.stream) {
          reply = Stream(call, plan, 0, End::kError);
        } else {
          reply.body = ServerError().dump();
          reply.body_at = plan.first_token;
        }
        break;
      case ErrorBehaviour::kOverloadedMidstream:
        reply = call.stream ? Stream(call, plan, std::max<int64_t>(1, plan.output_tokens / 2),
                                     End::kOverloaded)
                            : Overloaded();
        break;
      case ErrorBehaviour::kRateLimit:
        reply = RateLimited(call, plan);
        break;
      case ErrorBehaviour::kInsufficientQuota:
      case ErrorBehaviour::kQuotaPerDay:
        // Exhausted or free-tier quota: the legacy text with a day-long wait (protocols.md §0.5).
        reply = ErrorReply(
            429,
            AzureError("429", fmt::format("Requests to the ChatCompletions_Create Operation under "
                                          "Azure OpenAI API version {} have exceeded token rate "
                                          "limit of your current OpenAI S0 pricing tier. Please "
                                          "retry after 86400 seconds. Please go here: "
                                          "https://aka.ms/oai/quotaincrease if you would like to "
                                          "further increase the default rate limit.",
                                          Extra(call, "api_version"))));
        reply.headers.emplace_back("retry-after", "86400");
        reply.headers.emplace_back("retry-after-ms", "86400000");
        break;
      case ErrorBehaviour::kOverloaded503:
        reply = Overloaded();
        break;
      case ErrorBehaviour::kServerError500:
      // Refused by Supports() at load; a plain 500 should one ever get here.
      case ErrorBehaviour::kExceptionMidstream:
      case ErrorBehaviour::kModelNotReady:
        reply = ErrorReply(500, ServerError());
        break;
      case ErrorBehaviour::kUnauthorized401:
        reply = Unauthorized(call);
        break;
    }
    return reply;
  }

  static Reply Overloaded() {
    return ErrorReply(503, OpenAiShapedError("The service is temporarily unable to process your "
                                             "request. Please try again later.",
                                             "server_error", "service_unavailable"));
  }

  static Reply Unauthorized(const Call& call) {
    if (Extra(call, "auth_scheme") == "bearer") {
      return ErrorReply(401, AzureError("401",
                                        "Unauthorized. Access token is missing, invalid, "
                                        "audience is incorrect "
                                        "(https://cognitiveservices.azure.com), or have "
                                        "expired."));
    }
    return ErrorReply(401, AzureError("401",
                                      "Access denied due to invalid subscription key or "
                                      "wrong API endpoint. Make sure to provide a valid "
                                      "key for an active subscription and use a correct "
                                      "regional API endpoint for your resource."));
  }

  static Reply RateLimited(const Call& call, const Plan& plan) {
    const int64_t seconds = CeilSeconds(plan.retry_after);
    Reply reply;
    if (Extra(call, "rate_limit_body", "legacy") == "openai") {
      reply = ErrorReply(
          429, OpenAiShapedError(fmt::format("Your requests to {} for {} in {} have exceeded rate "
                                             "limit.",
                                             plan.model, Extra(call, "deployment"),
                                             RegionSlug(Extra(call, "region", "East US"))),
                                 "too_many_requests", "rate_limit_exceeded"));
    } else {
      const bool tokens = plan.limited_resource == "tokens";
      reply = ErrorReply(
          429, AzureError("429",
                          fmt::format("Requests to the ChatCompletions_Create Operation under "
                                      "Azure OpenAI API version {} have exceeded {} rate limit of "
                                      "your current OpenAI S0 pricing tier. Please retry after {} "
                                      "{}. Please go here: https://aka.ms/oai/quotaincrease if you "
                                      "would like to further increase the default rate limit.",
                                      Extra(call, "api_version"), tokens ? "token" : "call",
                                      seconds, seconds == 1 ? "second" : "seconds")));
    }
    reply.headers.emplace_back("retry-after", std::to_string(seconds));
    reply.headers.emplace_back("retry-after-ms",
                               std::to_string(std::max<int64_t>(1, Millis(plan.retry_after))));
    return reply;
  }

  // "East US" -> "eastus", as Azure names regions in messages.
  static std::string RegionSlug(std::string region) {
    std::string out;
    for (char c : region) {
      if (c != ' ')
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  }

  // The first event of every Azure stream: prompt filtering, with empty ids and no choices.
  // It is not a token (protocols.md §0.2).
  static Json FilterChunk() {
    return Json{{"choices", Json::array()},
                {"created", 0},
                {"id", ""},
                {"model", ""},
                {"object", ""},
                {"prompt_filter_results", PromptFilterResults()}};
  }

  static Json ChunkBase(const Plan& plan) {
    return Json{{"id", plan.completion_id},
                {"object", "chat.completion.chunk"},
                {"created", plan.created_unix},
                {"model", plan.model},
                {"system_fingerprint", "fp_simulated"}};
  }

  static Json WithChoice(const Call& call, Json chunk, Json delta, const Json& finish_reason,
                         Json filter_results) {
    chunk["choices"] = Json::array({Json{{"content_filter_results", std::move(filter_results)},
                                         {"delta", std::move(delta)},
                                         {"finish_reason", finish_reason},
                                         {"index", 0},
                                         {"logprobs", nullptr}}});
    if (call.include_usage)
      chunk["usage"] = nullptr;
    return chunk;
  }

  static Json RoleChunk(const Call& call, const Plan& plan) {
    return WithChoice(call, ChunkBase(plan),
                      Json{{"content", ""}, {"refusal", nullptr}, {"role", "assistant"}}, nullptr,
                      Json::object());
  }

  static Json Usage(const Plan& plan, int64_t completion_tokens) {
    return Json{{"completion_tokens", completion_tokens},
                {"completion_tokens_details",
                 {{"accepted_prediction_tokens", 0},
                  {"audio_tokens", 0},
                  {"reasoning_tokens", 0},
                  {"rejected_prediction_tokens", 0}}},
                {"prompt_tokens", plan.input_tokens},
                {"prompt_tokens_details", {{"audio_tokens", 0}, {"cached_tokens", 0}}},
                {"total_tokens", plan.input_tokens + completion_tokens}};
  }

  // Filter chunk and role chunk at once, `tokens` content chunks from first_token on, then the
  // ending.
  static Reply Stream(const Call& call, const Plan& plan, int64_t tokens, End end) {
    Reply reply;
    reply.mode = Reply::Mode::kStream;
    reply.content_type = kSseContentType;
    reply.chunks.push_back({Micros(0), Sse(FilterChunk())});
    reply.chunks.push_back({Micros(0), Sse(RoleChunk(call, plan))});
    Micros at = plan.first_token;
    for (int64_t i = 0; i < tokens; ++i) {
      at = plan.first_token + plan.inter_token * i;
      reply.chunks.push_back(
          {at, Sse(WithChoice(call, ChunkBase(plan), Json{{"content", TokenText(i)}}, nullptr,
                              SafeFilterResults()))});
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
      case End::kOverloaded:
        reply.chunks.push_back(
            {at + plan.inter_token,
             Sse(OpenAiShapedError("The server is currently overloaded with other requests. "
                                   "Sorry about that! You can retry your request.",
                                   "server_error", nullptr))});
        break;
      case End::kDone: {
        const Json finish = plan.cut_by_max_tokens ? "length" : "stop";
        reply.chunks.push_back(
            {at, Sse(WithChoice(call, ChunkBase(plan), Json::object(), finish, Json::object()))});
        if (call.include_usage) {
          Json usage = ChunkBase(plan);
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
    if (reply.chunks.size() < 3)
      return;
    auto& bytes = reply.chunks[2].bytes;  // after the filter chunk and the role chunk
    const auto end = bytes.rfind('}');
    if (end != std::string::npos)
      bytes = bytes.substr(0, end - 1) + "\n\n";
  }

  static Reply Completion(const Plan& plan, int64_t tokens) {
    Json body{
        {"choices", Json::array({Json{{"content_filter_results", SafeFilterResults()},
                                      {"finish_reason", plan.cut_by_max_tokens ? "length" : "stop"},
                                      {"index", 0},
                                      {"logprobs", nullptr},
                                      {"message",
                                       {{"annotations", Json::array()},
                                        {"content", ContentText(tokens)},
                                        {"refusal", nullptr},
                                        {"role", "assistant"}}}}})},
        {"created", plan.created_unix},
        {"id", plan.completion_id},
        {"model", plan.model},
        {"object", "chat.completion"},
        {"prompt_filter_results", PromptFilterResults()},
        {"system_fingerprint", "fp_simulated"},
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
    const std::string id = Uuid(plan.request_id);
    h.emplace_back("apim-request-id", id);
    h.emplace_back("x-request-id", id);
    if (const auto client_id = Extra(call, "client_request_id"); !client_id.empty()) {
      h.emplace_back("x-ms-client-request-id", client_id);
    }
    h.emplace_back("x-ms-region", Extra(call, "region", "East US"));
    if (const auto deployment = Extra(call, "deployment"); !deployment.empty()) {
      h.emplace_back("x-ms-deployment-name", deployment);
    }
    h.emplace_back("x-content-type-options", "nosniff");
    if (reply.status == 200) {
      h.emplace_back("x-ms-rai-invoked", "true");
      h.emplace_back("azureml-model-session", "d001-20250101000000");
      const Micros processing = reply.mode == Reply::Mode::kBody ? reply.body_at : plan.first_token;
      h.emplace_back("x-envoy-upstream-service-time", std::to_string(Millis(processing)));
      if (reply.mode == Reply::Mode::kStream)
        h.emplace_back("x-accel-buffering", "no");
    }
    const bool limits = Extra(call, "ratelimit_limit_headers", "true") == "true";
    const auto reset = Extra(call, "ratelimit_reset_headers", "none");
    auto add = [&](std::string_view resource, const std::optional<BudgetState>& budget) {
      if (!budget)
        return;
      if (reset == "sentinel" && resource == "tokens") {
        h.emplace_back("x-ratelimit-limit-tokens", "-1");
        h.emplace_back("x-ratelimit-remaining-tokens", "-1");
        h.emplace_back("x-ratelimit-reset-tokens", "0");
        return;
      }
      h.emplace_back(fmt::format("x-ratelimit-remaining-{}", resource),
                     std::to_string(budget->remaining));
      if (limits) {
        h.emplace_back(fmt::format("x-ratelimit-limit-{}", resource),
                       std::to_string(budget->limit));
      }
      if (reset == "seconds") {
        h.emplace_back(fmt::format("x-ratelimit-reset-{}", resource),
                       std::to_string(budget->reset.count() <= 0 ? 0 : CeilSeconds(budget->reset)));
      }
    };
    add("requests", plan.ratelimit.requests);
    add("tokens", plan.ratelimit.tokens);
  }

  std::map<std::string, std::string> options_;  // the endpoint's `options`, set by Configure
};

}  // namespace

std::unique_ptr<Protocol> MakeAzureProtocol() { return std::make_unique<AzureProtocol>(); }

}  // namespace modelpulse::simulator
