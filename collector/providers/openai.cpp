// OpenAI chat completions, as spoken by api.openai.com and by OpenAI-compatible hosts
// (OpenRouter, Groq, Together, Fireworks, vLLM, Ollama's /v1, Mistral, DeepSeek).
// protocols.md §1 and §7.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "collector/internal/http_util.h"
#include "collector/internal/providers/openai_wire.h"
#include "collector/internal/providers/provider.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

class OpenAIAdapter final : public ProviderAdapter {
 public:
  explicit OpenAIAdapter(Provider provider) : provider_(provider) {}

  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& /*context*/) const override {
    if (target.base_url.empty()) {
      return Fail(Error::InvalidArgument("target has no base_url"));
    }
    HttpRequest request;
    std::string base = target.base_url;
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    request.url = base + "/chat/completions";
    request.headers.emplace_back("Content-Type", Secret("application/json"));
    request.headers.emplace_back("Accept",
                                 Secret(target.stream ? "text/event-stream" : "application/json"));
    if (!target.api_key.empty()) {
      request.headers.emplace_back("Authorization", Secret("Bearer " + target.api_key.Reveal()));
    }
    for (const auto& header : target.headers) {
      request.headers.push_back(header);
    }
    json body = {
        {"model", target.provider_model.empty() ? target.model : target.provider_model},
        {"messages", json::array({{{"role", "user"}, {"content", target.prompt}}})},
    };
    // OpenAI's reasoning models reject max_tokens; most compatible hosts only know max_tokens.
    body[provider_ == Provider::kOpenAI ? "max_completion_tokens" : "max_tokens"] =
        target.max_tokens;
    if (target.stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }
    request.body = body.dump();
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return NewOpenAIStreamDecoder(limits);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
    ParseOpenAIBody(body, events);
  }

  ProviderError ClassifyHttpError(int status, const HttpHeaders& /*headers*/,
                                  std::string_view body) const override {
    const OpenAIErrorFields fields = ReadOpenAIError(body);
    return {Classify(status, fields.code, fields.type, fields.message),
            DescribeHttpError(status, fields)};
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    HeaderInfo info;
    ReadOpenAIRateLimits(headers, info.requests, info.tokens);
    info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    // OpenAI and Groq send x-request-id (req_<hex>, or bare hex in older recordings); the
    // others are what compatible hosts and gateways use.
    info.request_id =
        ReadRequestId(headers, {"x-request-id", "request-id", "mistral-correlation-id",
                                "x-ds-trace-id", "apim-request-id", "x-amzn-requestid"});
    return info;
  }

 private:
  static Outcome Classify(int status, const std::string& code, const std::string& type,
                          const std::string& message) {
    if (code == "insufficient_quota" || type == "insufficient_quota") {
      return Outcome::kQuotaExhausted;
    }
    if (ContainsIgnoreCase(message, "currently overloaded") ||
        ContainsIgnoreCase(message, "high demand") || code == "overloaded" ||
        type == "overloaded_error") {
      return Outcome::kOverloaded;
    }
    if (status == 429) {
      return Outcome::kThrottled;
    }
    if (status == 401 || status == 403) {
      return Outcome::kAuth;
    }
    if (status == 402) {
      return Outcome::kQuotaExhausted;  // OpenRouter: credits spent
    }
    if (status == 503) {
      return Outcome::kOverloaded;
    }
    if (status >= 400 && status < 500) {
      return Outcome::kClientError;
    }
    if (status >= 500 && status < 600) {
      return Outcome::kServerError;
    }
    return Outcome::kInvalidResponse;  // 1xx/3xx where a final answer was expected
  }

  Provider provider_;
};

}  // namespace

ProviderProfile OpenAIProfile(Provider provider) {
  ProviderProfile profile;
  if (provider == Provider::kOpenAI) {
    profile.cloud = "openai";
    profile.default_base_url = [](const std::string&) {
      return std::string("https://api.openai.com/v1");
    };
  } else {
    profile.default_base_url = [](const std::string&) { return std::string(); };
  }
  profile.auth_modes = {AuthMode::kApiKey, AuthMode::kBearerToken};
  return profile;
}

std::unique_ptr<ProviderAdapter> NewOpenAIAdapter(Provider provider) {
  return std::make_unique<OpenAIAdapter>(provider);
}

}  // namespace modelpulse::collector
