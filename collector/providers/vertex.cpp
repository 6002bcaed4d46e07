// Google's generative APIs: Vertex AI (Gemini generateContent on regional, multi-regional and
// global hosts, and Vertex's OpenAI-compatible endpoint for open models) and the Gemini
// Developer API. protocols.md §5 and §6.

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/internal/auth/google_oauth.h"
#include "collector/internal/auth/token_command.h"
#include "collector/internal/http_util.h"
#include "collector/internal/percent_encoding.h"
#include "collector/internal/providers/openai_wire.h"
#include "collector/internal/providers/provider.h"
#include "collector/internal/providers/provider_util.h"
#include "collector/internal/sse.h"
#include "common/regex.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

constexpr std::string_view kGeminiDefaultBase = "https://generativelanguage.googleapis.com";

// Path segments keep the unreserved set and '@' (Vertex's versioned ids, "claude-x@20240620").
std::string EncodeSegment(std::string_view text) { return PercentEncode(text, "@"); }

// The same, but a resource path's '/' separators stay.
std::string EncodePath(std::string_view text) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t slash = text.find('/', start);
    out += EncodeSegment(text.substr(start, slash - start));
    if (slash == std::string_view::npos) {
      return out;
    }
    out += '/';
    start = slash + 1;
  }
}

std::string TrimSlashes(std::string text) {
  while (!text.empty() && text.back() == '/') {
    text.pop_back();
  }
  return text;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// A base_url that already names an API version ("…/v1beta1") is used as is; otherwise the
// surface's default version is appended. Lets tests and proxies use a bare scheme+host.
std::string VersionedBase(const std::string& base, std::string_view default_version) {
  for (std::string_view version : {"/v1", "/v1beta", "/v1beta1"}) {
    if (EndsWith(base, version)) {
      return base;
    }
  }
  return base + "/" + std::string(default_version);
}

// https://{region}-aiplatform.googleapis.com, aiplatform.googleapis.com for global, and the
// multi-regional rep hosts for "us"/"eu" (python-genai _MULTI_REGIONAL_LOCATIONS).
std::string VertexHost(const TargetSpec& target) {
  if (!target.base_url.empty()) {
    return TrimSlashes(target.base_url);
  }
  if (target.region == "global" || target.region.empty()) {
    return "https://aiplatform.googleapis.com";
  }
  if (target.region == "us" || target.region == "eu") {
    return "https://aiplatform." + target.region + ".rep.googleapis.com";
  }
  return "https://" + target.region + "-aiplatform.googleapis.com";
}

void ReplaceAll(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

// "37s", "24.180878813s", "3600s": a google.protobuf.Duration in its JSON form.
std::optional<double> ParseProtoDuration(std::string_view text) {
  if (text.empty() || text.back() != 's') {
    return std::nullopt;
  }
  text.remove_suffix(1);
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  return value;
}

// "... Please retry in 24.180878813s." as the Gemini API writes it into the message [3p].
std::optional<double> RetryDelayInMessage(std::string_view message) {
  constexpr std::string_view kMarker = "retry in ";
  size_t at = message.find(kMarker);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view rest = message.substr(at + kMarker.size());
  size_t end = 0;
  while (end < rest.size() &&
         (std::isdigit(static_cast<unsigned char>(rest[end])) || rest[end] == '.')) {
    ++end;
  }
  if (end == 0) {
    return std::nullopt;
  }
  std::string_view unit = rest.substr(end);
  double value = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + end, value);
  if (ec != std::errc() || ptr != rest.data() + end) {
    return std::nullopt;
  }
  if (unit.substr(0, 2) == "ms") {
    return value / 1000;
  }
  if (!unit.empty() && unit.front() == 's') {
    return value;
  }
  return std::nullopt;
}

// "... limit: 0 ..." in a quota message: the project has no quota at all for this model (free tier
// not offered, billing required), so waiting will not help. "limit: 0" must not match "limit: 05".
bool HasZeroLimit(std::string_view message) {
  constexpr std::string_view kMarker = "limit: 0";
  for (size_t at = message.find(kMarker); at != std::string_view::npos;
       at = message.find(kMarker, at + 1)) {
    const size_t next = at + kMarker.size();
    if (next == message.size() ||
        !(std::isdigit(static_cast<unsigned char>(message[next])) || message[next] == '.')) {
      return true;
    }
  }
  return false;
}

// The fields of a google.rpc.Status error body that classification needs.
struct GoogleError {
  int code = 0;
  std::string status;  // RESOURCE_EXHAUSTED, UNAVAILABLE, ...
  std::string message;
  std::string reason;          // google.rpc.ErrorInfo reason, e.g. API_KEY_INVALID
  bool quota_failure = false;  // a google.rpc.QuotaFailure detail is present
  bool per_day_quota = false;  // a daily quota, or a limit of 0: waiting minutes will not help
  std::optional<double> retry_delay_seconds;
};

// {"error":{"code","message","status","details":[...]}}, also wrapped in a one-element array as
// the streaming endpoints send it (python-genai errors.py unwraps it). Nullopt when the body is
// not in Google's shape.
std::optional<GoogleError> ReadGoogleError(const json& body) {
  const json* holder = &body;
  if (body.is_array() && body.size() == 1) {
    holder = &body[0];
  }
  if (!holder->is_object()) {
    return std::nullopt;
  }
  auto it = holder->find("error");
  if (it == holder->end() || !it->is_object()) {
    return std::nullopt;
  }
  const json& error = *it;
  GoogleError out;
  out.status = StringField(error, "status");
  out.message = StringField(error, "message");
  out.code = static_cast<int>(IntField(error, "code").value_or(0));
  if (out.status.empty() && out.code == 0) {
    return std::nullopt;  // an OpenAI-shaped {"error":{"message","type","code":"..."}}
  }
  if (auto details = error.find("details"); details != error.end() && details->is_array()) {
    for (const json& detail : *details) {
      const std::string type = StringField(detail, "@type");
      if (EndsWith(type, "google.rpc.QuotaFailure")) {
        out.quota_failure = true;
        if (auto violations = detail.find("violations");
            violations != detail.end() && violations->is_array()) {
          for (const json& violation : *violations) {
            const std::string id = StringField(violation, "quotaId");
            const std::string metric = StringField(violation, "quotaMetric");
            if (ContainsIgnoreCase(id, "PerDay") || ContainsIgnoreCase(metric, "per_day") ||
                StringField(violation, "quotaValue") == "0") {
              out.per_day_quota = true;
            }
          }
        }
      } else if (EndsWith(type, "google.rpc.RetryInfo")) {
        out.retry_delay_seconds = ParseProtoDuration(StringField(detail, "retryDelay"));
      } else if (EndsWith(type, "google.rpc.ErrorInfo")) {
        out.reason = StringField(detail, "reason");
      }
    }
  }
  if (ContainsIgnoreCase(out.message, "per_day") || ContainsIgnoreCase(out.message, "PerDay") ||
      HasZeroLimit(out.message)) {
    out.per_day_quota = true;
  }
  if (!out.retry_delay_seconds) {
    out.retry_delay_seconds = RetryDelayInMessage(out.message);
  }
  return out;
}

// protocols.md §0.5, the Vertex / Gemini column. The canonical status name decides where there
// is one; the HTTP status otherwise.
Outcome ClassifyGoogle(int http_status, const GoogleError& error) {
  const std::string& s = error.status;
  const int code = http_status != 0 ? http_status : error.code;
  if (s == "UNAUTHENTICATED" || s == "PERMISSION_DENIED" || code == 401 || code == 403 ||
      error.reason == "API_KEY_INVALID" || ContainsIgnoreCase(error.message, "API key not valid") ||
      ContainsIgnoreCase(error.message, "API key expired")) {
    // The Developer API answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    return Outcome::kAuth;
  }
  if (s == "RESOURCE_EXHAUSTED" || code == 429) {
    if (error.per_day_quota) {
      return Outcome::kQuotaExhausted;
    }
    // Vertex pay-as-you-go: "Resource exhausted, please try again later." means the shared
    // capacity is short, not that this project hit its quota (error-code-429 page); so does
    // "the service is temporarily out of capacity" (googleapis/google-cloud-java#11195).
    if (!error.quota_failure && ((ContainsIgnoreCase(error.message, "resource exhausted") &&
                                  ContainsIgnoreCase(error.message, "try again later")) ||
                                 ContainsIgnoreCase(error.message, "out of capacity"))) {
      return Outcome::kOverloaded;
    }
    return Outcome::kThrottled;
  }
  if (s == "UNAVAILABLE" || code == 503) {
    return Outcome::kOverloaded;
  }
  if (s == "DEADLINE_EXCEEDED" || code == 504) {
    return Outcome::kTimeout;
  }
  if (s == "INTERNAL" || s == "UNKNOWN" || s == "DATA_LOSS" || (code >= 500 && code < 600)) {
    return Outcome::kServerError;
  }
  if (code >= 400 && code < 500) {
    return Outcome::kClientError;
  }
  if (!s.empty()) {
    return Outcome::kClientError;  // INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND, ...
  }
  return Outcome::kInvalidResponse;
}

ProviderError DescribeGoogle(int http_status, const GoogleError& error) {
  std::string text =
      http_status != 0 ? "HTTP " + std::to_string(http_status) : "error in 200 response";
  if (!error.status.empty()) {
    text += " " + error.status;
  }
  if (!error.reason.empty()) {
    text += " (" + error.reason + ")";
  }
  if (!error.message.empty()) {
    text += ": " + error.message;
  }
  ProviderError out{ClassifyGoogle(http_status, error), std::move(text)};
  out.retry_after_seconds = error.retry_delay_seconds;
  return out;
}

// Reports one GenerateContentResponse (a stream chunk, or the whole non-streaming answer).
// Returns true when a candidate carried its finishReason.
bool ReportResponse(const json& response, StreamEvents& events) {
  if (std::optional<GoogleError> error = ReadGoogleError(response)) {
    events.OnError(DescribeGoogle(0, *error));
    return false;
  }
  if (!response.is_object()) {
    events.OnMalformed("response chunk is not a JSON object");
    return false;
  }
  bool finished = false;
  if (auto candidates = response.find("candidates");
      candidates != response.end() && candidates->is_array()) {
    for (const json& candidate : *candidates) {
      if (!candidate.is_object()) {
        continue;
      }
      if (auto content = candidate.find("content");
          content != candidate.end() && content->is_object()) {
        if (auto parts = content->find("parts"); parts != content->end() && parts->is_array()) {
          for (const json& part : *parts) {
            const std::string text = StringField(part, "text");
            if (text.empty()) {
              continue;  // functionCall, inline data, a bare thoughtSignature
            }
            auto thought = part.find("thought");
            if (thought != part.end() && thought->is_boolean() && thought->get<bool>()) {
              events.OnReasoning(text);
            } else {
              events.OnContent(text);
            }
          }
        }
      }
      const std::string reason = StringField(candidate, "finishReason");
      if (!reason.empty() && reason != "FINISH_REASON_UNSPECIFIED") {
        finished = true;
      }
    }
  }
  if (auto feedback = response.find("promptFeedback"); feedback != response.end()) {
    const std::string blocked = StringField(*feedback, "blockReason");
    if (!blocked.empty()) {
      events.OnError({Outcome::kClientError, "prompt blocked: " + blocked});
    }
  }
  if (auto usage = response.find("usageMetadata"); usage != response.end() && usage->is_object()) {
    // Output tokens include thinking tokens, as OpenAI's completion_tokens include reasoning
    // tokens: both are billed as output and both take generation time.
    Usage out;
    out.input_tokens = IntField(*usage, "promptTokenCount");
    const std::optional<int64_t> candidates_tokens = IntField(*usage, "candidatesTokenCount");
    const std::optional<int64_t> thoughts_tokens = IntField(*usage, "thoughtsTokenCount");
    int64_t output_tokens = 0;
    // Two counts near int64's limit would overflow the sum (undefined): no count then.
    if ((candidates_tokens || thoughts_tokens) &&
        !__builtin_add_overflow(candidates_tokens.value_or(0), thoughts_tokens.value_or(0),
                                &output_tokens)) {
      out.output_tokens = output_tokens;
    }
    if (out.input_tokens || out.output_tokens) {
      events.OnUsage(out);
    }
  }
  return finished;
}

// Replaces recently issued credentials in error text before it leaves the adapter.
class RedactingEvents final : public StreamEvents {
 public:
  RedactingEvents(StreamEvents& inner, const GoogleTokenCache& google,
                  const TokenCommandCache& commands)
      : inner_(inner), google_(google), commands_(commands) {}
  void OnChunk() override { inner_.OnChunk(); }
  void OnContent(std::string_view text) override { inner_.OnContent(text); }
  void OnReasoning(std::string_view text) override { inner_.OnReasoning(text); }
  void OnUsage(const Usage& usage) override { inner_.OnUsage(usage); }
  void OnError(const ProviderError& error) override {
    ProviderError clean = error;
    clean.message = Redact(std::move(clean.message));
    inner_.OnError(clean);
  }
  void OnMalformed(std::string_view what) override {
    inner_.OnMalformed(Redact(std::string(what)));
  }
  void OnTerminator() override { inner_.OnTerminator(); }

  std::string Redact(std::string text) const {
    return commands_.Redact(google_.Redact(std::move(text)));
  }

 private:
  StreamEvents& inner_;
  const GoogleTokenCache& google_;
  const TokenCommandCache& commands_;
};

// Reads `alt=sse` streams. Events are separated by "\r\n\r\n"; there is no terminator event: the
// server closes the connection after the chunk that carries finishReason, so the stream is
// complete only if such a chunk arrived.
//
// The same provider also serves Vertex's OpenAI-compatible endpoint, and the decoder is made
// without seeing the target: the first event tells which protocol this is (chat.completion.chunk
// objects or [DONE] vs GenerateContentResponse), and OpenAI-style events are handed, re-framed,
// to the shared OpenAI decoder.
class GoogleStreamDecoder final : public StreamDecoder {
 public:
  GoogleStreamDecoder(const DecoderLimits& limits, const GoogleTokenCache& google,
                      const TokenCommandCache& commands)
      : limits_(limits),
        sse_(limits.max_line_bytes, limits.max_event_bytes),
        google_(google),
        commands_(commands) {}

  void Feed(std::string_view bytes, StreamEvents& events) override {
    RedactingEvents redacting(events, google_, commands_);
    FeedSse(sse_, bytes, redacting, [&](const SseEvent& event) { OnEvent(event, redacting); });
  }

  void Finish(StreamEvents& events) override {
    RedactingEvents redacting(events, google_, commands_);
    sse_.Finish();
    if (openai_) {
      openai_->Finish(redacting);
      return;
    }
    if (sse_.status() != SseDecoder::Status::kOk || saw_error_) {
      return;
    }
    if (finished_) {
      redacting.OnTerminator();
    } else {
      redacting.OnMalformed("stream closed before a chunk with finishReason");
    }
  }

 private:
  void OnEvent(const SseEvent& event, StreamEvents& events) {
    if (openai_) {
      ForwardToOpenAI(event, events);
      return;
    }
    const bool first = !decided_;
    decided_ = true;
    if (first && event.data.compare(0, 6, "[DONE]") == 0) {
      openai_ = NewOpenAIStreamDecoder(limits_);
      ForwardToOpenAI(event, events);
      return;
    }
    json chunk = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (first && chunk.is_object() &&
        (chunk.contains("choices") ||
         StringField(chunk, "object").rfind("chat.completion", 0) == 0)) {
      openai_ = NewOpenAIStreamDecoder(limits_);
      ForwardToOpenAI(event, events);
      return;
    }
    events.OnChunk();
    if (chunk.is_discarded()) {
      events.OnMalformed("malformed JSON in stream chunk");
      return;
    }
    if (ReadGoogleError(chunk)) {
      saw_error_ = true;
    }
    if (ReportResponse(chunk, events)) {
      finished_ = true;
    }
  }

  void ForwardToOpenAI(const SseEvent& event, StreamEvents& events) {
    std::string framed;
    if (!event.type.empty()) {
      framed += "event: " + event.type + "\n";
    }
    size_t start = 0;
    while (true) {
      const size_t newline = event.data.find('\n', start);
      framed += "data: " + event.data.substr(start, newline - start) + "\n";
      if (newline == std::string::npos) {
        break;
      }
      start = newline + 1;
    }
    framed += "\n";
    openai_->Feed(framed, events);
  }

  const DecoderLimits limits_;
  SseDecoder sse_;
  const GoogleTokenCache& google_;
  const TokenCommandCache& commands_;
  std::unique_ptr<StreamDecoder> openai_;  // set once the stream proved OpenAI-shaped
  bool decided_ = false;
  bool finished_ = false;
  bool saw_error_ = false;
};

class GoogleAdapter final : public ProviderAdapter {
 public:
  explicit GoogleAdapter(Provider provider) : provider_(provider) {}

  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& context) const override {
    std::string model = target.provider_model.empty() ? target.model : target.provider_model;
    if (model.empty()) {
      return Fail(Error::InvalidArgument("target has no model (provider_model)"));
    }
    if (provider_ == Provider::kVertex && target.flavor == ApiFlavor::kOpenAICompatible) {
      return BuildOpenAICompatible(target, context);
    }
    HttpRequest request;
    const char* method = target.stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    if (provider_ == Provider::kGemini) {
      if (model.rfind("models/", 0) == 0) {
        model.erase(0, 7);  // the Developer API lists its models as "models/gemini-..."
      }
      const std::string base =
          TrimSlashes(target.base_url.empty() ? std::string(kGeminiDefaultBase) : target.base_url);
      request.url = VersionedBase(base, "v1beta") + "/models/" + EncodeSegment(model) + method;
    } else {
      Result<std::string> url = VertexModelUrl(target, model);
      if (!url) {
        return Fail(url.error());
      }
      request.url = *url + method;
    }
    request.headers.emplace_back("Content-Type", Secret("application/json"));
    Status auth = AddAuth(target, context, request);
    if (!auth) {
      return Fail(auth.error());
    }
    for (const auto& header : target.headers) {
      request.headers.push_back(header);
    }
    const json body = {
        {"contents",
         json::array({{{"role", "user"}, {"parts", json::array({{{"text", target.prompt}}})}}})},
        {"generationConfig", {{"maxOutputTokens", target.max_tokens}}},
    };
    request.body = body.dump();
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return std::make_unique<GoogleStreamDecoder>(limits, google_tokens_, command_tokens_);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
    RedactingEvents redacting(events, google_tokens_, command_tokens_);
    const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("choices")) {
      ParseOpenAIBody(body, redacting);  // Vertex's OpenAI-compatible endpoint
      return;
    }
    redacting.OnChunk();
    if (parsed.is_discarded()) {
      redacting.OnMalformed("malformed JSON body");
      return;
    }
    bool finished = false;
    bool error = false;
    // streamGenerateContent without alt=sse answers with a JSON array of chunks.
    if (parsed.is_array() && !ReadGoogleError(parsed)) {
      for (const json& chunk : parsed) {
        error = error || ReadGoogleError(chunk).has_value();
        finished = ReportResponse(chunk, redacting) || finished;
      }
    } else {
      error = ReadGoogleError(parsed).has_value();
      finished = ReportResponse(parsed, redacting);
    }
    if (error) {
      return;
    }
    if (finished) {
      redacting.OnTerminator();
    } else {
      redacting.OnMalformed("response without finishReason");
    }
  }

  ProviderError ClassifyHttpError(int status, const HttpHeaders& headers,
                                  std::string_view body) const override {
    const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    ProviderError error;
    if (std::optional<GoogleError> google =
            parsed.is_discarded() ? std::nullopt : ReadGoogleError(parsed)) {
      error = DescribeGoogle(status, *google);
    } else {
      // Not Google's shape: an OpenAI-shaped body from the OpenAI-compatible endpoint, or a
      // proxy's page. The compatible adapter knows those.
      error = AdapterFor(Provider::kOpenAICompatible)->ClassifyHttpError(status, headers, body);
    }
    error.message = command_tokens_.Redact(google_tokens_.Redact(std::move(error.message)));
    return error;
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    // Google sends no rate-limit headers and, in every recording, no request id header
    // (protocols.md §5.4); the id lives in the body's responseId. These are what Google front
    // ends and proxies do send when they send one.
    HeaderInfo info;
    info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    info.request_id = ReadRequestId(headers, {"x-goog-request-id", "x-request-id"});
    return info;
  }

 private:
  // .../v1/projects/{project}/locations/{region}/publishers/google/models/{model}, or
  // .../v1/publishers/google/models/{model} for express mode (an API key and no project).
  Result<std::string> VertexModelUrl(const TargetSpec& target, const std::string& model) const {
    const std::string base = VersionedBase(VertexHost(target), "v1");
    if (model.rfind("projects/", 0) == 0) {
      return base + "/" + EncodePath(model);  // a full resource name (tuned model endpoints)
    }
    const std::string publisher_model = model.rfind("publishers/", 0) == 0
                                            ? EncodePath(model)
                                            : "publishers/google/models/" + EncodeSegment(model);
    if (target.project.empty()) {
      const bool api_key = target.auth.mode == AuthMode::kApiKey ||
                           (target.auth.mode == AuthMode::kNone && !target.api_key.empty());
      if (api_key) {
        return base + "/" + publisher_model;  // express mode: URL shape [unverified]
      }
      return Fail(Error::InvalidArgument("vertex target has no project"));
    }
    if (target.region.empty()) {
      return Fail(
          Error::InvalidArgument("vertex target has no region (e.g. us-central1, or global)"));
    }
    return base + "/projects/" + EncodeSegment(target.project) + "/locations/" +
           EncodeSegment(target.region) + "/" + publisher_model;
  }

  // POST {host}{prefix}/chat/completions with a bearer token, in the OpenAI wire format.
  Result<HttpRequest> BuildOpenAICompatible(const TargetSpec& target,
                                            const RequestContext& context) const {
    if (target.project.empty() || target.region.empty()) {
      return Fail(
          Error::InvalidArgument("vertex openai_compatible target needs project and region"));
    }
    std::string prefix = target.openai_path_prefix.empty()
                             ? "/v1/projects/{project}/locations/{region}/endpoints/openapi"
                             : target.openai_path_prefix;
    ReplaceAll(prefix, "{project}", EncodeSegment(target.project));
    ReplaceAll(prefix, "{region}", EncodeSegment(target.region));
    ReplaceAll(prefix, "{location}", EncodeSegment(target.region));
    if (!prefix.empty() && prefix.front() != '/') {
      prefix.insert(0, "/");
    }
    Result<Secret> token = BearerToken(target, context);
    if (!token) {
      return Fail(token.error());
    }
    TargetSpec wire = target;
    wire.base_url = VertexHost(target) + TrimSlashes(prefix);
    wire.api_key = std::move(*token);
    return AdapterFor(Provider::kOpenAICompatible)->BuildRequest(wire, context);
  }

  // The bearer credential of a target: an exchanged or commanded token, or the configured one.
  Result<Secret> BearerToken(const TargetSpec& target, const RequestContext& context) const {
    switch (target.auth.mode) {
      case AuthMode::kGoogleServiceAccount: {
        Result<Secret> token = google_tokens_.Token(target.auth, context.now_unix_ms);
        if (!token) {
          return Fail(CredentialError(token.error().message));
        }
        return token;
      }
      case AuthMode::kTokenCommand:
        return command_tokens_.Token(target.auth.token_command, target.auth.token_command_ttl,
                                     context.now_unix_ms);
      case AuthMode::kAwsSigV4:
        return Fail(Error::InvalidArgument(
            "google targets support auth api_key, bearer_token, token_command or "
            "google_service_account"));
      case AuthMode::kBearerToken:
        if (target.api_key.empty()) {
          return Fail(CredentialError("google: bearer auth without a token"));
        }
        return target.api_key;
      case AuthMode::kApiKey:
      case AuthMode::kNone:
        return target.api_key;
    }
    return target.api_key;
  }

  Status AddAuth(const TargetSpec& target, const RequestContext& context,
                 HttpRequest& request) const {
    const AuthMode mode = target.auth.mode;
    if (mode == AuthMode::kApiKey || mode == AuthMode::kNone) {
      if (!target.api_key.empty()) {
        request.headers.emplace_back("x-goog-api-key", target.api_key);
      } else if (mode == AuthMode::kApiKey) {
        return Fail(CredentialError("google: api_key auth without a key"));
      }
      return {};
    }
    Result<Secret> token = BearerToken(target, context);
    if (!token) {
      return Fail(token.error());
    }
    request.headers.emplace_back("Authorization", Secret("Bearer " + token->Reveal()));
    return {};
  }

  const Provider provider_;
  // Credential caches, shared by every target of this provider; thread-safe.
  mutable GoogleTokenCache google_tokens_;
  mutable TokenCommandCache command_tokens_;
};

}  // namespace

namespace {

// us-central1, europe-west4, global, and the multi-region locations us and eu.
bool IsGoogleLocation(const std::string& text) {
  static const Regex kLocation = Regex::Compile("[a-z]+-[a-z]+[0-9]+").value();
  return text == "global" || text == "us" || text == "eu" || kLocation.FullMatch(text);
}

// Project ids (6-30 of a-z0-9-), and the legacy domain-scoped "example.com:project".
bool IsProjectId(const std::string& text) {
  static const Regex kProject =
      Regex::Compile("([a-z0-9.-]+:)?[a-z][a-z0-9-]{3,28}[a-z0-9]").value();
  return kProject.FullMatch(text);
}

// Every request path names the project it is billed to.
bool CheckVertexDetails(TargetDetails& details, TargetSpec& spec) {
  const std::string* project = details.Find("project");
  if (project == nullptr) {
    details.TargetProblem(
        "provider vertex needs \"project\" (the Google Cloud project id the requests are billed "
        "to)");
    return true;
  }
  if (!IsProjectId(*project)) {
    details.ProblemAt("project", fmt::format("\"project\": \"{}\" is not a Google Cloud project "
                                             "id (6 to 30 lower-case letters, digits and hyphens)",
                                             *project));
    return false;
  }
  spec.project = *project;
  return true;
}

}  // namespace

ProviderProfile GoogleProfile(Provider provider) {
  ProviderProfile profile;
  profile.cloud = "gcp";
  if (provider == Provider::kGemini) {
    profile.auth_modes = {AuthMode::kApiKey};
    profile.missing_credential_help =
        "provider gemini needs an API key: set auth.api_key_env (e.g. GEMINI_API_KEY) or "
        "auth.api_key_file";
    profile.default_base_url = [](const std::string&) {
      return std::string("https://generativelanguage.googleapis.com");
    };
    return profile;
  }
  profile.auth_modes = {AuthMode::kGoogleServiceAccount, AuthMode::kTokenCommand,
                        AuthMode::kBearerToken};
  profile.missing_credential_help =
      "provider vertex needs a Google access token: set auth.google_service_account_file "
      "(a service-account JSON key), auth.token_command (e.g. [gcloud, auth, "
      "print-access-token]) or auth.bearer_token_env";
  profile.default_base_url = [](const std::string& region) {
    if (region == "global") {
      return std::string("https://aiplatform.googleapis.com");
    }
    if (region == "us" || region == "eu") {
      return "https://aiplatform." + region + ".rep.googleapis.com";
    }
    return "https://" + region + "-aiplatform.googleapis.com";
  };
  profile.detail_keys = {"region", "project", "api", "openai_path_prefix"};
  profile.is_region = IsGoogleLocation;
  profile.check_details = CheckVertexDetails;
  profile.region_kind = "a Google Cloud location (e.g. us-central1, europe-west4 or global)";
  profile.region_needed_because =
      "(e.g. us-central1 or global): it is the location in every request path";
  profile.region_from_host = [](const std::string& host) {
    if (host.starts_with("aiplatform.") && host.ends_with(".rep.googleapis.com")) {
      return host.substr(11, host.find('.', 11) - 11);  // aiplatform.us.rep.googleapis.com
    }
    std::string region = RegionFromHost(host);
    return region == "global" && host != "aiplatform.googleapis.com" ? std::string() : region;
  };
  return profile;
}

std::unique_ptr<ProviderAdapter> NewGoogleAdapter(Provider provider) {
  return std::make_unique<GoogleAdapter>(provider);
}

}  // namespace modelpulse::collector
