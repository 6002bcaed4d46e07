// Azure OpenAI / Azure AI Foundry chat completions: the classic deployment path with api-version
// and the v1 path, api-key or Entra ID bearer auth (static or from a command), and Azure's own
// error bodies and headers. The body and stream are OpenAI's (openai_wire). protocols.md §2, §6.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "collector/internal/auth/token_command.h"
#include "collector/internal/http_util.h"
#include "collector/internal/percent_encoding.h"
#include "collector/internal/providers/openai_wire.h"
#include "collector/internal/providers/provider.h"
#include "collector/internal/providers/provider_util.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

// A 429 whose wait is at least this long is a spent quota (free tier, daily cap: "Please retry
// after 86400 seconds"), not a per-minute throttle.
constexpr double kQuotaRetrySeconds = 3600;

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The resource endpoint (https://{resource}.openai.azure.com). Users copy the base URL of the v1
// OpenAI client (".../openai/v1/") as often as the endpoint, so either is accepted.
std::string ResourceEndpoint(std::string base) {
  while (!base.empty() && base.back() == '/') {
    base.pop_back();
  }
  for (std::string_view suffix : {"/openai/v1", "/openai"}) {
    if (EndsWith(base, suffix)) {
      base.resize(base.size() - suffix.size());
      break;
    }
  }
  return base;
}

// api-version dates sort as strings ("2024-02-15-preview" < "2024-10-21"). max_completion_tokens
// and stream_options arrived with 2024-09-01-preview; older versions reject unknown fields with
// "Unrecognized request argument supplied".
bool SupportsNewFields(const std::string& api_version) {
  return api_version.empty() || api_version >= "2024-09-01";
}

// "Please retry after 6 seconds." (legacy 429 text) as seconds.
std::optional<double> RetryAfterFromText(std::string_view message) {
  static constexpr std::string_view kPhrase = "retry after ";
  for (size_t i = 0; i + kPhrase.size() <= message.size(); ++i) {
    if (!ContainsIgnoreCase(message.substr(i, kPhrase.size()), kPhrase)) {
      continue;
    }
    const std::string_view rest = message.substr(i + kPhrase.size());
    double value = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec == std::errc() && ptr != rest.data() && value >= 0) {
      return value;
    }
  }
  return std::nullopt;
}

// retry-after-ms or retry-after as seconds; Azure sends numbers, and an HTTP-date needs a clock
// that ClassifyHttpError does not have.
std::optional<double> NumericRetryAfter(const HttpHeaders& headers) {
  HttpHeaders numeric;
  for (std::string_view name : {"retry-after-ms", "retry-after"}) {
    if (auto value = headers.Find(name); value && !ParseHttpDate(*value)) {
      numeric.Add(std::string(name), std::string(*value));
    }
  }
  return ParseRetryAfter(numeric, 0);
}

// Passes decoder reports through, with any command-issued token removed from messages: the
// transport redacts the configured key but does not know tokens fetched at probe time.
class RedactingEvents final : public StreamEvents {
 public:
  RedactingEvents(StreamEvents& inner, const TokenCommandCache& tokens)
      : inner_(inner), tokens_(tokens) {}
  void OnChunk() override { inner_.OnChunk(); }
  void OnContent(std::string_view text) override { inner_.OnContent(text); }
  void OnReasoning(std::string_view text) override { inner_.OnReasoning(text); }
  void OnUsage(const Usage& usage) override { inner_.OnUsage(usage); }
  void OnError(const ProviderError& error) override {
    ProviderError redacted = error;
    redacted.message = tokens_.Redact(error.message);
    inner_.OnError(redacted);
  }
  void OnMalformed(std::string_view what) override {
    inner_.OnMalformed(tokens_.Redact(std::string(what)));
  }
  void OnTerminator() override { inner_.OnTerminator(); }

 private:
  StreamEvents& inner_;
  const TokenCommandCache& tokens_;
};

class AzureStreamDecoder final : public StreamDecoder {
 public:
  AzureStreamDecoder(const DecoderLimits& limits, const TokenCommandCache& tokens)
      : inner_(NewOpenAIStreamDecoder(limits)), tokens_(tokens) {}
  void Feed(std::string_view bytes, StreamEvents& events) override {
    RedactingEvents redacting(events, tokens_);
    inner_->Feed(bytes, redacting);
  }
  void Finish(StreamEvents& events) override {
    RedactingEvents redacting(events, tokens_);
    inner_->Finish(redacting);
  }

 private:
  std::unique_ptr<StreamDecoder> inner_;
  const TokenCommandCache& tokens_;
};

class AzureAdapter final : public ProviderAdapter {
 public:
  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& context) const override {
    if (target.base_url.empty()) {
      return Fail(Error::InvalidArgument("target has no base_url"));
    }
    const std::string& deployment =
        target.provider_model.empty() ? target.model : target.provider_model;
    if (deployment.empty()) {
      return Fail(Error::InvalidArgument("target has no deployment (provider_model)"));
    }
    HttpRequest request;
    const std::string endpoint = ResourceEndpoint(target.base_url);
    if (target.api_version.empty()) {
      request.url = endpoint + "/openai/v1/chat/completions";
    } else {
      request.url = endpoint + "/openai/deployments/" + PercentEncode(deployment) +
                    "/chat/completions?api-version=" + PercentEncode(target.api_version);
    }
    request.headers.emplace_back("Content-Type", Secret("application/json"));
    request.headers.emplace_back("Accept",
                                 Secret(target.stream ? "text/event-stream" : "application/json"));
    // kNone with a key is a key: the openai-python Azure client's default.
    auto auth = KeyOrBearerHeader(target, context, tokens_, "azure", "api-key");
    if (!auth) {
      return Fail(auth.error());
    }
    if (*auth) {
      request.headers.push_back(std::move(**auth));
    }
    for (const auto& header : target.headers) {
      request.headers.push_back(header);
    }
    // The v1 path selects the deployment by "model"; the classic path ignores it, and the
    // openai-python Azure client sends it there too.
    json body = {
        {"model", deployment},
        {"messages", json::array({{{"role", "user"}, {"content", target.prompt}}})},
    };
    const bool new_fields = SupportsNewFields(target.api_version);
    // Reasoning deployments (o-series, gpt-5) reject max_tokens.
    body[new_fields ? "max_completion_tokens" : "max_tokens"] = target.max_tokens;
    if (target.stream) {
      body["stream"] = true;
      if (new_fields) {
        body["stream_options"] = {{"include_usage", true}};
      }
    }
    request.body = body.dump();
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return std::make_unique<AzureStreamDecoder>(limits, tokens_);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
    RedactingEvents redacting(events, tokens_);
    ParseOpenAIBody(body, redacting);
  }

  ProviderError ClassifyHttpError(int status, const HttpHeaders& headers,
                                  std::string_view body) const override {
    OpenAIErrorFields fields = ReadOpenAIError(body);
    fields.message = tokens_.Redact(std::move(fields.message));
    // The Model Inference surface states its code in a header (inference spec, protocols.md §2.1).
    if (auto header_code = headers.Find("x-ms-error-code"); header_code && fields.code.empty()) {
      fields.code = SanitizeText(*header_code, {}, 64);
    }
    const std::optional<double> from_text = RetryAfterFromText(fields.message);
    std::optional<double> wait = NumericRetryAfter(headers);
    if (from_text) {
      wait = std::max(wait.value_or(0), *from_text);
    }
    ProviderError error{Classify(status, fields, wait), DescribeHttpError(status, fields)};
    // The legacy text says how long to wait; the transport uses it when no header did.
    error.retry_after_seconds = from_text;
    return error;
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    HeaderInfo info;
    ReadOpenAIRateLimits(headers, info.requests, info.tokens);
    // The Responses API sends limit -1, remaining -1, reset 0 when it does not know: a reset of 0
    // next to unknown counters is "unknown", not "replenished now".
    for (RateLimit* limit : {&info.requests, &info.tokens}) {
      if (!limit->limit && !limit->remaining && limit->reset_seconds == 0.0) {
        limit->reset_seconds.reset();
      }
    }
    info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    // apim-request-id is the spec's id (inference.json); x-request-id is the backend's.
    info.request_id =
        ReadRequestId(headers, {"apim-request-id", "x-request-id", "x-ms-request-id"});
    return info;
  }

 private:
  static Outcome Classify(int status, const OpenAIErrorFields& fields, std::optional<double> wait) {
    const std::string& message = fields.message;
    if (fields.code == "insufficient_quota" || fields.type == "insufficient_quota" ||
        ContainsIgnoreCase(message, "exceeded your current quota") ||
        ContainsIgnoreCase(message, "quota exceeded") ||
        ContainsIgnoreCase(message, "insufficient quota") ||
        ContainsIgnoreCase(message, "out of quota")) {
      return Outcome::kQuotaExhausted;
    }
    if (ContainsIgnoreCase(message, "high demand") ||
        ContainsIgnoreCase(message, "currently overloaded") || fields.code == "overloaded") {
      return Outcome::kOverloaded;
    }
    if (status == 429) {
      // Both shapes: legacy {"code":"429", "... Please retry after N seconds ..."} and the 2026
      // OpenAI-shaped {"code":"rate_limit_exceeded","type":"too_many_requests"}.
      return wait && *wait >= kQuotaRetrySeconds ? Outcome::kQuotaExhausted : Outcome::kThrottled;
    }
    if (status == 401 || status == 403) {
      return Outcome::kAuth;
    }
    if (status == 503) {
      return Outcome::kOverloaded;
    }
    if (status == 408 || status == 504) {
      return Outcome::kTimeout;
    }
    if (status >= 400 && status < 500) {
      return Outcome::kClientError;  // 400 content_filter / invalid_prompt, 404 DeploymentNotFound
    }
    if (status >= 500 && status < 600) {
      return Outcome::kServerError;
    }
    return Outcome::kInvalidResponse;
  }

  // Tokens printed by token commands, shared by every Azure target. The adapter is const and
  // shared across threads; the cache is internally synchronised.
  mutable TokenCommandCache tokens_;
};

// The deployment path carries api-version; the v1 path has none. One decides the other.
bool CheckAzureDetails(TargetDetails& details, TargetSpec& spec) {
  const bool versioned = details.Find("api_version") != nullptr;
  const std::string* api = details.Find("api");
  if (api != nullptr && *api == "native" && !versioned) {
    details.ProblemAt("api",
                      "\"api\": azure's native deployment path needs \"api_version\" (e.g. "
                      "2024-10-21); without it the v1 path (api: openai) is used");
  } else if (api != nullptr && *api == "openai" && versioned) {
    details.ProblemAt("api_version",
                      "\"api_version\": applies to azure's deployment path (api: "
                      "native), not to the v1 path (api: openai)");
  }
  spec.flavor = versioned ? ApiFlavor::kNative : ApiFlavor::kOpenAICompatible;
  return true;
}

}  // namespace

ProviderProfile AzureProfile() {
  ProviderProfile profile;
  profile.cloud = "azure";
  profile.auth_modes = {AuthMode::kApiKey, AuthMode::kBearerToken, AuthMode::kTokenCommand};
  profile.missing_credential_help =
      "provider azure needs a credential: set auth.api_key_env (e.g. AZURE_OPENAI_API_KEY) "
      "or auth.api_key_file for the api-key header, auth.bearer_token_env or "
      "auth.bearer_token_file for a Microsoft Entra ID token, or auth.token_command (e.g. "
      "[az, account, get-access-token, --resource, https://cognitiveservices.azure.com, "
      "--query, accessToken, -o, tsv])";
  // Every resource has its own host: base_url is required.
  profile.default_base_url = [](const std::string&) { return std::string(); };
  profile.detail_keys = {"api_version", "api"};
  profile.version_example = "2024-10-21";
  profile.check_details = CheckAzureDetails;
  return profile;
}

std::unique_ptr<ProviderAdapter> NewAzureAdapter() { return std::make_unique<AzureAdapter>(); }

}  // namespace modelpulse::collector
