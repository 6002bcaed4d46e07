// Google Vertex AI ("vertex") and the Gemini Developer API ("gemini") (protocols.md §5):
// generateContent and streamGenerateContent (alt=sse with \r\n\r\n between events, or a streamed
// JSON array), Google's error bodies (QuotaFailure, RetryInfo, ErrorInfo), Vertex's
// OpenAI-compatible chat route, and the service-account token endpoint (RFC 7523 JWT bearer,
// RS256 checked against a public key) whose tokens the Vertex routes then accept until they
// expire. Written from Google's documents, independently of collector/: see DESIGN.md §2.
//
// Vertex options (the endpoint's `options:`):
//   service_account_public_key  PEM public key (path relative to the scenario file) that
//                               assertions posted to <mount>/token must verify against
//   service_account_email       the assertion's required `iss`
//   token_audience              accepted `aud` besides this endpoint's own token URL
//                               (default https://oauth2.googleapis.com/token)
//   token_lifetime (3599s)      lifetime of the access tokens handed out
//   access_token                a fixed token accepted forever (a pre-made token for SDKs)
// The endpoint's `api_key` is Vertex express mode's x-goog-api-key (vertex) or the Gemini API key
// (gemini: x-goog-api-key or ?key=). With no credential configured, nothing is checked.

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/duration.h"
#include "simulator/internal/cloud_crypto.h"
#include "simulator/internal/protocol.h"
#include "simulator/internal/protocol_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kJsonType = "application/json; charset=UTF-8";
constexpr std::string_view kGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer";
constexpr std::string_view kShortLivedMessage =
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim.";

std::string Rfc3339Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1'000'000;
  return fmt::format("{}.{:06d}Z", buffer, micros);
}

Reply OAuthError(std::string_view error, std::string_view description) {
  Reply reply;
  reply.status = 400;
  reply.body = Json{{"error", error}, {"error_description", description}}.dump();
  reply.content_type = kJsonType;
  return reply;
}

std::optional<std::string> FormValue(std::string_view body, std::string_view name) {
  size_t start = 0;
  while (start <= body.size()) {
    const size_t end = std::min(body.find('&', start), body.size());
    const auto item = body.substr(start, end - start);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) {
      std::string value(item.substr(eq + 1));
      std::replace(value.begin(), value.end(), '+', ' ');
      return PercentDecode(value);
    }
    start = end + 1;
  }
  return std::nullopt;
}

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PublicKey = std::shared_ptr<EVP_PKEY>;

bool VerifyRs256(EVP_PKEY* key, std::string_view signed_part, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr)
    return false;
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                       signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

class GoogleProtocol final : public Protocol {
 public:
  explicit GoogleProtocol(bool vertex) : vertex_(vertex) {}

  std::string_view Name() const override { return vertex_ ? "vertex" : "gemini"; }

  std::vector<std::string> PostRoutes() const override {
    if (!vertex_)
      return {"/(v1|v1beta)/models/[^/:]+:(generateContent|streamGenerateContent)"};
    return {
        "/(v1|v1beta1)/projects/[^/]+/locations/[^/]+/publishers/google/models/[^/:]+:"
        "(generateContent|streamGenerateContent)",
        "/(v1|v1beta1)/projects/[^/]+/locations/[^/]+/endpoints/openapi/chat/completions",
        "/token"};
  }

  Status Configure(const EndpointSpec& endpoint) override {
    std::string key_path;
    for (const auto& [key, value] : endpoint.options) {
      if (!vertex_) {
        return Fail(Error::Parse(fmt::format(
            "unknown gemini option '{}' (the Gemini API key is the endpoint's api_key)", key)));
      }
      if (key == "service_account_public_key") {
        key_path = value;
      } else if (key == "service_account_email") {
        service_account_email_ = value;
      } else if (key == "token_audience") {
        token_audience_ = value;
      } else if (key == "access_token") {
        static_token_ = value;
      } else if (key == "token_lifetime") {
        const auto lifetime = ParsePromDuration(value);
        if (!lifetime || lifetime->count() <= 0) {
          return Fail(Error::Parse("token_lifetime must be a positive duration like 1h or 2s"));
        }
        token_lifetime_ = std::chrono::duration_cast<Micros>(*lifetime);
      } else {
        return Fail(Error::Parse(
            fmt::format("unknown vertex option '{}' (expected service_account_public_key, "
                        "service_account_email, token_audience, token_lifetime, access_token)",
                        key)));
      }
    }
    if (!key_path.empty()) {
      if (service_account_email_.empty()) {
        return Fail(Error::Parse("service_account_public_key needs service_account_email"));
      }
      std::string path = key_path;
      if (!endpoint.base_dir.empty() && path.front() != '/')
        path = endpoint.base_dir + "/" + path;
      FILE* file = std::fopen(path.c_str(), "rb");
      if (file == nullptr) {
        return Fail(Error::Parse(fmt::format("cannot read service_account_public_key {}", path)));
      }
      EVP_PKEY* key = PEM_read_PUBKEY(file, nullptr, nullptr, nullptr);
      std::fclose(file);
      if (key == nullptr) {
        return Fail(Error::Parse(fmt::format("{} is not a PEM public key", path)));
      }
      public_key_ = PublicKey(key, PkeyFree());
    }
    api_key_ = endpoint.api_key;
    model_ = endpoint.model;
    return {};
  }

  bool Supports(Behaviour behaviour) const override {
    return behaviour != Behaviour::kModelNotReady;
  }

  std::variant<Call, Reply> Parse(const HttpRequest& request,
                                  const EndpointSpec& endpoint) const override {
    if (vertex_ && request.path == "/token")
      return IssueToken(request);
    Call call;
    Authenticate(request, call);
    if (vertex_ && request.path.find("/endpoints/openapi/") != std::string::npos) {
      EndpointSpec open = endpoint;
      open.api_key.clear();
      auto parsed = openai_->Parse(request, open);
      if (auto* c = std::get_if<Call>(&parsed)) {
        c->auth = call.auth;
        c->extras = call.extras;
        c->extras["operation"] = "openai_chat";
      }
      return parsed;
    }
    // .../models/<model>:generateContent or :streamGenerateContent, the model free of '/' and
    // ':'. Parsed by hand: std::regex recurses once per character of the path.
    const std::string_view path = request.path;
    const size_t models = path.rfind("/models/");
    const std::string_view route =
        models == std::string_view::npos ? std::string_view() : path.substr(models + 8);
    const size_t colon = route.find(':');
    const std::string_view model = route.substr(0, colon);
    const std::string_view method =
        colon == std::string_view::npos ? std::string_view() : route.substr(colon + 1);
    if (model.empty() || model.find('/') != std::string_view::npos ||
        (method != "generateContent" && method != "streamGenerateContent")) {
      return Error(404, "NOT_FOUND", "Requested entity was not found.");
    }
    call.model = std::string(model);
    call.stream = method == "streamGenerateContent";
    call.extras["sse"] = request.Query("alt").value_or("") == "sse" ? "1" : "";
    call.extras["path"] = request.path;
    if (!model_.empty() && call.model != model_) {
      if (vertex_) {
        return Error(404, "NOT_FOUND",
                     fmt::format("Publisher Model `{}` was not found or your project does not "
                                 "have access to it. Please ensure you are using a valid model "
                                 "version. For more information, see: https://cloud.google.com/"
                                 "vertex-ai/generative-ai/docs/learn/model-versions",
                                 request.path.substr(1, request.path.find(':') - 1)));
      }
      return Error(404, "NOT_FOUND",
                   fmt::format("models/{} is not found for API version v1beta, or is not "
                               "supported for generateContent. Call ListModels to see the list "
                               "of available models and their supported methods.",
                               call.model));
    }
    const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return Error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.");
    }
    const auto contents = body.find("contents");
    if (contents == body.end() || !contents->is_array() || contents->empty()) {
      return Error(400, "INVALID_ARGUMENT",
                   "* GenerateContentRequest.contents: contents is not specified\n");
    }
    int64_t chars = 0;
    for (const auto& content : *contents) {
      if (!content.is_object() || !content.contains("parts") || !content["parts"].is_array()) {
        continue;
      }
      for (const auto& part : content["parts"]) {
        if (part.is_object() && part.contains("text") && part["text"].is_string()) {
          chars += static_cast<int64_t>(part["text"].get_ref<const std::string&>().size());
        }
      }
    }
    call.input_tokens = 1 + (chars + 3) / 4;
    if (const auto config = body.find("generationConfig");
        config != body.end() && config->is_object()) {
      if (const auto max = config->find("maxOutputTokens");
          max != config->end() && max->is_number_integer()) {
        call.max_tokens = max->get<int64_t>();
      }
    }
    return call;
  }

  Reply Render(const Call& call, const Plan& plan) const override {
    if (Extra(call, "operation") == "openai_chat")
      return RenderOpenAi(call, plan);
    Reply reply = RenderGenerate(call, plan);
    if (reply.mode != Reply::Mode::kHang) {
      const Micros processing = reply.mode == Reply::Mode::kBody ? reply.body_at : plan.first_token;
      reply.headers.emplace_back("server-timing",
                                 fmt::format("gfet4t7; dur={}", Millis(processing)));
      if (!vertex_)
        reply.headers.emplace_back("x-gemini-service-tier", "standard");
    }
    return reply;
  }

 private:
  // ---- auth ----

  void Authenticate(const HttpRequest& request, Call& call) const {
    const bool tokens = public_key_ != nullptr || !static_token_.empty();
    if (api_key_.empty() && !tokens)
      return;
    std::string key = request.Header("x-goog-api-key");
    if (key.empty() && !vertex_)
      key = request.Query("key").value_or("");
    if (!key.empty() && !api_key_.empty()) {
      call.auth = ConstantTimeEqual(key, api_key_) ? AuthState::kOk : AuthState::kWrong;
      call.extras["auth_failure"] = "api_key_invalid";
      return;
    }
    const std::string authorization = request.Header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (!vertex_ || !tokens) {
      call.auth = key.empty() ? AuthState::kMissing : AuthState::kWrong;
      call.extras["auth_failure"] = key.empty() ? "unregistered" : "api_key_invalid";
      return;
    }
    if (authorization.empty()) {
      call.auth = AuthState::kMissing;
      call.extras["auth_failure"] = "credentials_missing";
      return;
    }
    if (authorization.compare(0, kBearer.size(), kBearer) != 0) {
      call.auth = AuthState::kWrong;
      call.extras["auth_failure"] = "invalid_credentials";
      return;
    }
    const std::string token = authorization.substr(kBearer.size());
    if (!static_token_.empty() && ConstantTimeEqual(token, static_token_)) {
      call.auth = AuthState::kOk;
      return;
    }
    std::lock_guard lock(tokens_mu_);
    const auto it = tokens_.find(token);
    if (it == tokens_.end()) {
      call.auth = AuthState::kWrong;
      call.extras["auth_failure"] = "invalid_credentials";
    } else if (request.arrival >= it->second) {
      call.auth = AuthState::kWrong;
      call.extras["auth_failure"] = "access_token_expired";
    } else {
      call.auth = AuthState::kOk;
    }
  }

  // POST <mount>/token: grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
  Reply IssueToken(const HttpRequest& request) const {
    if (public_key_ == nullptr) {
      return OAuthError("invalid_client", "The OAuth client was not found.");
    }
    const auto grant = FormValue(request.body, "grant_type");
    if (!grant || *grant != kGrantType) {
      return OAuthError("unsupported_grant_type",
                        fmt::format("Invalid grant_type: {}", grant.value_or("")));
    }
    const auto assertion = FormValue(request.body, "assertion");
    if (!assertion || assertion->empty()) {
      return OAuthError("invalid_request", "Missing required parameter: assertion");
    }
    const auto dot1 = assertion->find('.');
    const auto dot2 = dot1 == std::string::npos ? dot1 : assertion->find('.', dot1 + 1);
    if (dot2 == std::string::npos || assertion->find('.', dot2 + 1) != std::string::npos) {
      return OAuthError("invalid_grant", "Invalid JWT: not a JWS compact serialization.");
    }
    const auto header_bytes = Base64UrlDecode(std::string_view(*assertion).substr(0, dot1));
    const auto claims_bytes =
        Base64UrlDecode(std::string_view(*assertion).substr(dot1 + 1, dot2 - dot1 - 1));
    const auto signature = Base64UrlDecode(std::string_view(*assertion).substr(dot2 + 1));
    if (!header_bytes || !claims_bytes || !signature) {
      return OAuthError("invalid_grant", "Invalid JWT: not base64url.");
    }
    // The signature first: nothing in an unsigned claim set is worth reading.
    const Json header = Json::parse(*header_bytes, nullptr, false);
    if (!header.is_object() || header.value("alg", "") != "RS256" ||
        !VerifyRs256(public_key_.get(), std::string_view(*assertion).substr(0, dot2), *signature)) {
      return OAuthError("invalid_grant", "Invalid JWT Signature.");
    }
    const Json claims = Json::parse(*claims_bytes, nullptr, false);
    if (!claims.is_object()) {
      return OAuthError("invalid_grant", "Invalid JWT: the claim set is not a JSON object.");
    }
    if (claims.value("iss", "") != service_account_email_) {
      return OAuthError("invalid_grant", "Invalid grant: account not found");
    }
    const std::string aud = claims.value("aud", "");
    const std::string own_url =
        "http://" + request.Header("host") + request.target.substr(0, request.target.find('?'));
    if (aud != token_audience_ && aud != own_url) {
      return OAuthError("invalid_grant",
                        fmt::format("Invalid JWT: Failed audience check. The right audience is {}",
                                    token_audience_));
    }
    if (!claims.contains("scope") || !claims["scope"].is_string() ||
        claims["scope"].get<std::string>().empty()) {
      return OAuthError("invalid_scope", "Invalid oauth scope or ID token audience provided.");
    }
    if (!claims.contains("iat") || !claims["iat"].is_number() || !claims.contains("exp") ||
        !claims["exp"].is_number()) {
      return OAuthError("invalid_grant", kShortLivedMessage);
    }
    const double iat = claims["iat"].get<double>();
    const double exp = claims["exp"].get<double>();
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Google allows a little clock skew; a token must live at most an hour.
    if (exp <= now || iat > now + 300 || exp - iat > 3600 || exp <= iat) {
      return OAuthError("invalid_grant", kShortLivedMessage);
    }

    std::string token = "ya29.sim-";
    {
      std::lock_guard lock(tokens_mu_);
      static constexpr char kAlnum[] =
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      for (int i = 0; i < 48; ++i)
        token += kAlnum[token_rng_() % (sizeof(kAlnum) - 1)];
      const Clock::MonotonicTime arrival = request.arrival;
      if (tokens_.size() >= kMaxTokens) {
        for (auto it = tokens_.begin(); it != tokens_.end();) {
          it = it->second <= arrival ? tokens_.erase(it) : std::next(it);
        }
        if (tokens_.size() >= kMaxTokens)
          tokens_.erase(tokens_.begin());
      }
      tokens_[token] = arrival + token_lifetime_;
    }
    Reply reply;
    reply.content_type = kJsonType;
    reply.body = Json{
        {"access_token", token},
        {"expires_in", CeilSeconds(token_lifetime_)},
        {"token_type",
         "Bearer"}}.dump();
    return reply;
  }

  // ---- errors ----

  static Reply Error(int status, std::string_view code, std::string_view message,
                     const Json& details = nullptr) {
    Json error{{"code", status}, {"message", message}, {"status", code}};
    if (!details.is_null())
      error["details"] = details;
    Reply reply;
    reply.status = status;
    reply.content_type = kJsonType;
    reply.body = Json{{"error", error}}.dump();
    return reply;
  }

  static Json ErrorInfo(std::string_view reason, std::string_view service) {
    return Json{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                {"reason", reason},
                {"domain", "googleapis.com"},
                {"metadata", {{"service", service}}}};
  }

  std::string Service() const {
    return vertex_ ? "aiplatform.googleapis.com" : "generativelanguage.googleapis.com";
  }

  Reply AuthError(const Call& call) const {
    const std::string failure = Extra(call, "auth_failure");
    if (failure == "api_key_invalid") {
      const std::string message = "API key not valid. Please pass a valid API key.";
      return Error(400, "INVALID_ARGUMENT", message,
                   Json::array({ErrorInfo("API_KEY_INVALID", Service()),
                                Json{{"@type", "type.googleapis.com/google.rpc.LocalizedMessage"},
                                     {"locale", "en-US"},
                                     {"message", message}}}));
    }
    if (failure == "unregistered") {
      return Error(403, "PERMISSION_DENIED",
                   "Method doesn't allow unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API consumer identity to call "
                   "this API.",
                   Json::array({ErrorInfo("CONSUMER_INVALID", Service())}));
    }
    Reply reply;
    if (failure == "credentials_missing") {
      reply = Error(401, "UNAUTHENTICATED",
                    "Request is missing required authentication credential. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    Json::array({ErrorInfo("CREDENTIALS_MISSING", Service())}));
      reply.headers.emplace_back("www-authenticate",
                                 R"(Bearer realm="https://accounts.google.com/")");
    } else {
      reply = Error(401, "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    Json::array({ErrorInfo(failure == "access_token_expired"
                                               ? "ACCESS_TOKEN_EXPIRED"
                                               : "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                                           Service())}));
      reply.headers.emplace_back(
          "www-authenticate",
          R"(Bearer realm="https://accounts.google.com/", error="invalid_token")");
    }
    return reply;
  }

  Reply PerMinute(const Plan& plan) const {
    const Micros delay = plan.retry_after.count() > 0 ? plan.retry_after : std::chrono::seconds(1);
    const int64_t limit = plan.ratelimit.requests ? plan.ratelimit.requests->limit : 10;
    const std::string quota_metric =
        vertex_ ? "aiplatform.googleapis.com/"
                  "generate_content_requests_per_minute_per_project_per_base_model"
                : "generativelanguage.googleapis.com/generate_content_free_tier_requests";
    const std::string quota_id = vertex_ ? "GenerateContentRequestsPerMinutePerProjectPerBaseModel"
                                         : "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
    const std::string message =
        vertex_ ? "Resource exhausted. Please try again later. Please refer to "
                  "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more "
                  "details."
                : fmt::format(
                      "You exceeded your current quota, please check your plan and "
                      "billing details. For more information on this error, head to: "
                      "https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota "
                      "exceeded for metric: {}, limit: {}, model: {}\nPlease retry in "
                      "{:.6f}s.",
                      quota_metric, limit, plan.model, static_cast<double>(delay.count()) / 1e6);
    return QuotaError(message, quota_metric, quota_id, limit, plan.model,
                      fmt::format("{}s", CeilSeconds(delay)));
  }

  Reply PerDay(const Plan& plan, int64_t limit) const {
    const std::string quota_metric =
        vertex_ ? "aiplatform.googleapis.com/"
                  "generate_content_requests_per_day_per_project_per_base_model"
                : "generativelanguage.googleapis.com/generate_requests_per_model_per_day";
    const std::string quota_id = vertex_ ? "GenerateContentRequestsPerDayPerProjectPerBaseModel"
                                         : "GenerateRequestsPerDayPerProjectPerModel-FreeTier";
    // Daily quotas refill at midnight Pacific time; the delay says "hours", not "seconds".
    const auto now = std::chrono::system_clock::now();
    const int64_t unix_now =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const int64_t until_midnight = 86400 - ((unix_now - 8 * 3600) % 86400);
    const std::string message = fmt::format(
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
        "\n* Quota exceeded for metric: {}, limit: {}, model: {}\nPlease retry in {}s.",
        quota_metric, limit, plan.model, until_midnight);
    return QuotaError(message, quota_metric, quota_id, limit, plan.model,
                      fmt::format("{}s", until_midnight));
  }

  static Reply QuotaError(const std::string& message, const std::string& quota_metric,
                          const std::string& quota_id, int64_t limit, const std::string& model,
                          const std::string& retry_delay) {
    return Error(
        429, "RESOURCE_EXHAUSTED", message,
        Json::array(
            {Json{{"@type", "type.googleapis.com/google.rpc.QuotaFailure"},
                  {"violations", Json::array({Json{{"quotaMetric", quota_metric},
                                                   {"quotaId", quota_id},
                                                   {"quotaDimensions",
                                                    {{"location", "global"}, {"model", model}}},
                                                   {"quotaValue", std::to_string(limit)}}})}},
             Json{{"@type", "type.googleapis.com/google.rpc.Help"},
                  {"links", Json::array({Json{
                                {"description", "Learn more about Gemini API quotas"},
                                {"url", "https://ai.google.dev/gemini-api/docs/rate-limits"}}})}},
             Json{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                  {"retryDelay", retry_delay}}}));
  }

  std::string_view InternalMessage() const {
    return vertex_ ? "Internal error encountered."
                   : "An internal error has occurred. Please retry or report in "
                     "https://developers.generativeai.google/guide/troubleshooting";
  }

  std::optional<Reply> KindError(const Call& call, const Plan& plan) const {
    switch (plan.behaviour) {
      case Behaviour::kUnauthorized401:
        if (call.auth == AuthState::kMissing || call.auth == AuthState::kWrong) {
          return AuthError(call);
        }
        {
          // An injected auth failure: the provider's own answer to a credential gone bad.
          Call bad = call;
          bad.extras["auth_failure"] = vertex_ ? "access_token_expired" : "api_key_invalid";
          return AuthError(bad);
        }
      case Behaviour::kRateLimit:
        return PerMinute(plan);
      case Behaviour::kQuotaPerDay:
        return PerDay(plan, 250);
      case Behaviour::kInsufficientQuota:
        return PerDay(plan, 0);  // "limit: 0": no quota at all on this tier
      case Behaviour::kOverloaded503:
        return Error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
      case Behaviour::kServerError500:
        return Error(500, "INTERNAL", InternalMessage());
      default:
        return std::nullopt;
    }
  }

  Reply RenderOpenAi(const Call& call, const Plan& plan) const {
    if (call.auth == AuthState::kMissing || call.auth == AuthState::kWrong ||
        plan.behaviour == Behaviour::kUnauthorized401 || plan.behaviour == Behaviour::kRateLimit ||
        plan.behaviour == Behaviour::kQuotaPerDay) {
      // Vertex answers auth and quota failures on this route with Google's own error bodies
      // [unverified: no recording of this route's errors].
      return *KindError(call, plan);
    }
    if (plan.behaviour == Behaviour::kExceptionMidstream ||
        plan.behaviour == Behaviour::kOverloadedMidstream) {
      Plan error_plan = plan;
      error_plan.behaviour = Behaviour::kErrorIn200;
      return openai_->Render(call, error_plan);
    }
    return openai_->Render(call, plan);
  }

  // ---- generateContent ----

  Json UsageMetadata(const Plan& plan, std::optional<int64_t> candidates) const {
    Json usage{{"promptTokenCount", plan.input_tokens}};
    if (candidates)
      usage["candidatesTokenCount"] = *candidates;
    usage["totalTokenCount"] = plan.input_tokens + candidates.value_or(0);
    if (vertex_)
      usage["trafficType"] = "ON_DEMAND";
    usage["promptTokensDetails"] =
        Json::array({Json{{"modality", "TEXT"}, {"tokenCount", plan.input_tokens}}});
    if (candidates) {
      usage["candidatesTokensDetails"] =
          Json::array({Json{{"modality", "TEXT"}, {"tokenCount", *candidates}}});
    }
    return usage;
  }

  Json Response(const Plan& plan, std::string text, const Json& finish_reason,
                std::optional<int64_t> candidates) const {
    Json candidate{
        {"content",
         {{"role", "model"}, {"parts", Json::array({Json{{"text", std::move(text)}}})}}}};
    if (!finish_reason.is_null())
      candidate["finishReason"] = finish_reason;
    Json response{{"candidates", Json::array({candidate})},
                  {"usageMetadata", UsageMetadata(plan, candidates)},
                  {"modelVersion", plan.model}};
    if (vertex_)
      response["createTime"] = Rfc3339Now();
    response["responseId"] = plan.completion_id.substr(plan.completion_id.find('-') + 1);
    return response;
  }

  std::string_view FinishReason(const Plan& plan) const {
    return plan.cut_by_max_tokens ? "MAX_TOKENS" : "STOP";
  }

  Reply Generate(const Plan& plan) const {
    const int64_t tokens = plan.output_tokens;
    std::string text;
    for (int64_t i = 0; i < tokens; ++i)
      text += TokenText(i);
    Reply reply;
    reply.content_type = kJsonType;
    reply.body_at = plan.first_token + plan.inter_token * std::max<int64_t>(0, tokens - 1);
    reply.body = Response(plan, text, FinishReason(plan), tokens).dump();
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    return reply;
  }

  enum class StreamEnd { kFinish, kCut };

  // One chunk per token; the last carries finishReason and the full usage. alt=sse: "data: "
  // events separated by \r\n\r\n and no terminator; otherwise one JSON array, streamed.
  Reply Stream(const Call& call, const Plan& plan, int64_t tokens, StreamEnd end) const {
    const bool sse = !Extra(call, "sse").empty();
    Reply reply;
    reply.mode = Reply::Mode::kStream;
    reply.content_type = sse ? "text/event-stream" : std::string(kJsonType);
    if (sse)
      reply.headers.emplace_back("content-disposition", "attachment");
    size_t count = 0;
    auto frame = [&](const Json& payload) {
      std::string bytes;
      if (sse) {
        bytes = "data: " + payload.dump() + "\r\n\r\n";
      } else {
        bytes = (count == 0 ? "[" : "\n,\r\n") + payload.dump();
      }
      ++count;
      return bytes;
    };
    Micros at = plan.first_token;
    const int64_t chunks = end == StreamEnd::kFinish ? std::max<int64_t>(1, tokens) : tokens;
    for (int64_t i = 0; i < chunks; ++i) {
      at = plan.first_token + plan.inter_token * i;
      const bool last = end == StreamEnd::kFinish && i + 1 == chunks;
      const std::string text = i < tokens ? TokenText(i) : std::string();
      reply.chunks.push_back(
          {at, frame(Response(plan, text, last ? Json(FinishReason(plan)) : Json(nullptr),
                              last ? std::optional<int64_t>(tokens) : std::nullopt))});
    }
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    if (end == StreamEnd::kFinish && !sse)
      reply.chunks.push_back({at, "\n]"});
    return reply;
  }

  // A stream that fails after `tokens` content chunks with Google's error object in the stream
  // [unverified: the exact in-stream error framing was not recorded].
  Reply StreamError(const Call& call, const Plan& plan, int64_t tokens, int code,
                    std::string_view status, std::string_view message) const {
    const bool sse = !Extra(call, "sse").empty();
    Reply reply = Stream(call, plan, tokens, StreamEnd::kCut);
    const Json error{{"error", {{"code", code}, {"message", message}, {"status", status}}}};
    const Micros at = plan.first_token + plan.inter_token * std::max<int64_t>(0, tokens - 1);
    reply.chunks.push_back({at, sse ? "data: " + error.dump() + "\r\n\r\n"
                                    : (tokens == 0 ? "[" : "\n,\r\n") + error.dump() + "\n]"});
    return reply;
  }

  Reply RenderGenerate(const Call& call, const Plan& plan) const {
    if (auto error = KindError(call, plan))
      return *error;
    const AnswerEncoding encoding{
        .body = [&] { return Generate(plan); },
        .stream = [&](int64_t tokens) { return Stream(call, plan, tokens, StreamEnd::kFinish); },
        // Content, then the connection closes before the chunk with finishReason.
        .truncated_stream =
            [&](int64_t tokens) { return Stream(call, plan, tokens, StreamEnd::kCut); },
        .malform_stream =
            [](Reply& stream) {
              auto& bytes = stream.chunks.front().bytes;
              const auto brace = bytes.rfind('}');
              if (brace != std::string::npos)
                bytes.erase(brace, 1);
            },
        .stream_content_type =
            Extra(call, "sse").empty() ? std::string(kJsonType) : "text/event-stream",
        .opening_chunks = nullptr,
    };
    if (auto answer = RenderAnswer(call, plan, encoding))
      return *answer;
    const int64_t tokens = plan.output_tokens;
    Reply reply;
    switch (plan.behaviour) {
      case Behaviour::kErrorIn200:
        if (!call.stream) {
          reply = Error(500, "INTERNAL", InternalMessage());
          reply.status = 200;
          reply.body_at = plan.first_token;
          return reply;
        }
        return StreamError(call, plan, 0, 500, "INTERNAL", InternalMessage());
      case Behaviour::kExceptionMidstream:
        if (!call.stream)
          return PerMinute(plan);
        return StreamError(call, plan, std::max<int64_t>(1, tokens / 2), 429, "RESOURCE_EXHAUSTED",
                           "Resource exhausted. Please try again later.");
      case Behaviour::kOverloadedMidstream:
        if (!call.stream) {
          return Error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
        }
        return StreamError(call, plan, std::max<int64_t>(1, tokens / 2), 503, "UNAVAILABLE",
                           "The model is overloaded. Please try again later.");
      default:
        // Refused by Supports() at load (kModelNotReady); the plain answer should one get here.
        return call.stream ? Stream(call, plan, tokens, StreamEnd::kFinish) : Generate(plan);
    }
  }

  static constexpr size_t kMaxTokens = 100000;

  const bool vertex_;
  std::string api_key_;
  std::string model_;
  std::string service_account_email_;
  std::string token_audience_ = "https://oauth2.googleapis.com/token";
  std::string static_token_;
  Micros token_lifetime_{std::chrono::seconds(3599)};
  PublicKey public_key_;
  std::unique_ptr<Protocol> openai_ = MakeOpenAiProtocol();

  mutable std::mutex tokens_mu_;
  // Guarded by tokens_mu_: issued access token -> when it stops being accepted.
  mutable std::unordered_map<std::string, Clock::MonotonicTime> tokens_;
  mutable std::mt19937_64 token_rng_{std::random_device{}()};  // Guarded by tokens_mu_.
};

}  // namespace

std::unique_ptr<Protocol> MakeVertexProtocol() { return std::make_unique<GoogleProtocol>(true); }
std::unique_ptr<Protocol> MakeGeminiProtocol() { return std::make_unique<GoogleProtocol>(false); }

}  // namespace modelpulse::simulator
