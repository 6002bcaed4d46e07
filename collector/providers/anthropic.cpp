// Anthropic Messages API: POST {base_url}/v1/messages with x-api-key and anthropic-version, the
// named SSE events of a message stream, Anthropic's error bodies and its anthropic-ratelimit-*
// headers. protocols.md §3 and §0.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "collector/internal/auth/token_command.h"
#include "collector/internal/http_util.h"
#include "collector/internal/providers/provider.h"
#include "collector/internal/providers/provider_util.h"
#include "collector/internal/sse.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

const json* Member(const json& object, const char* key) {
  if (!object.is_object()) {
    return nullptr;
  }
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// The outcome an error.type names, whatever the status it came with (an `event: error` mid-stream
// arrives under a 200). nullopt for types that only the status can place.
std::optional<Outcome> OutcomeForType(std::string_view type) {
  if (type == "overloaded_error") {
    return Outcome::kOverloaded;
  }
  if (type == "rate_limit_error") {
    return Outcome::kThrottled;
  }
  if (type == "billing_error") {
    return Outcome::kQuotaExhausted;
  }
  if (type == "authentication_error" || type == "permission_error") {
    return Outcome::kAuth;
  }
  if (type == "timeout_error") {
    return Outcome::kTimeout;
  }
  if (type == "api_error") {
    return Outcome::kServerError;
  }
  if (type == "invalid_request_error" || type == "not_found_error" || type == "request_too_large") {
    return Outcome::kClientError;
  }
  return std::nullopt;
}

// "credit balance is too low" comes as a 400 invalid_request_error.
bool IsCreditMessage(std::string_view message) {
  return ContainsIgnoreCase(message, "credit balance is too low");
}

// "overloaded_error: Overloaded" from {"type":"error","error":{"type","message"}}.
std::string DescribeError(const json& error) {
  std::string type = StringField(error, "type");
  std::string message = StringField(error, "message");
  if (type.empty()) {
    return message;
  }
  return message.empty() ? type : type + ": " + message;
}

void ReportUsage(const json* usage, bool with_output, StreamEvents& events) {
  if (usage != nullptr) {
    ReportUsageFields(*usage, "input_tokens", with_output ? "output_tokens" : nullptr, events);
  }
}

// A text or thinking content block (non-stream body, or content_block_start).
void ReportBlock(const json& block, StreamEvents& events) {
  const std::string type = StringField(block, "type");
  if (type == "text") {
    const std::string text = StringField(block, "text");
    if (!text.empty()) {
      events.OnContent(text);
    }
  } else if (type == "thinking") {
    const std::string thinking = StringField(block, "thinking");
    if (!thinking.empty()) {
      events.OnReasoning(thinking);
    }
  }
}

class AnthropicStreamDecoder final : public StreamDecoder {
 public:
  explicit AnthropicStreamDecoder(const DecoderLimits& limits)
      : sse_(limits.max_line_bytes, limits.max_event_bytes) {}

  void Feed(std::string_view bytes, StreamEvents& events) override {
    FeedSse(sse_, bytes, events, [&](const SseEvent& event) { OnEvent(event, events); });
  }

  // No message_stop means no terminator: the transport classifies that as truncated.
  void Finish(StreamEvents& /*events*/) override { sse_.Finish(); }

 private:
  void OnEvent(const SseEvent& event, StreamEvents& events) {
    if (stopped_) {
      return;  // nothing after message_stop belongs to the message
    }
    json payload = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (payload.is_discarded() || !payload.is_object()) {
      events.OnChunk();
      events.OnMalformed("malformed JSON in stream event");
      return;
    }
    // The data's "type" is authoritative (the SDK dispatches on it); the event: line repeats it.
    std::string type = StringField(payload, "type");
    if (type.empty()) {
      type = event.type;
    }
    if (type == "ping") {
      return;  // keep-alive, any number of times: not a chunk of the answer
    }
    events.OnChunk();
    if (type == "message_start") {
      // Its output_tokens is a placeholder (1); the cumulative count comes in message_delta.
      if (const json* message = Member(payload, "message")) {
        ReportUsage(Member(*message, "usage"), /*with_output=*/false, events);
      }
    } else if (type == "content_block_start") {
      if (const json* block = Member(payload, "content_block")) {
        ReportBlock(*block, events);
      }
    } else if (type == "content_block_delta") {
      const json* delta = Member(payload, "delta");
      if (delta == nullptr) {
        return;
      }
      const std::string delta_type = StringField(*delta, "type");
      if (delta_type == "text_delta") {
        const std::string text = StringField(*delta, "text");
        if (!text.empty()) {
          events.OnContent(text);
        }
      } else if (delta_type == "thinking_delta") {
        const std::string thinking = StringField(*delta, "thinking");
        if (!thinking.empty()) {
          events.OnReasoning(thinking);
        }
      }
      // signature_delta, input_json_delta, citations_delta: not answer text.
    } else if (type == "message_delta") {
      ReportUsage(Member(payload, "usage"), /*with_output=*/true, events);
    } else if (type == "message_stop") {
      stopped_ = true;
      events.OnTerminator();
    } else if (type == "error") {
      const json* error = Member(payload, "error");
      const std::string error_type = error ? StringField(*error, "type") : std::string();
      events.OnError({OutcomeForType(error_type).value_or(Outcome::kInvalidResponse),
                      "error event in stream: " + (error ? DescribeError(*error) : "")});
    }
    // content_block_stop and unknown event types are ignored, as the docs require.
  }

  SseDecoder sse_;
  bool stopped_ = false;
};

// RFC 3339 date-time ("2026-08-02T17:43:56Z", fractions and offsets allowed) as Unix ms.
std::optional<int64_t> ParseRfc3339(std::string_view text) {
  auto number = [&](size_t pos, size_t len) -> std::optional<int> {
    if (pos + len > text.size()) {
      return std::nullopt;
    }
    int value = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return std::nullopt;
      }
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  auto at = [&](size_t pos, char c) { return pos < text.size() && text[pos] == c; };
  const auto year = number(0, 4);
  const auto month = number(5, 2);
  const auto day = number(8, 2);
  const auto hour = number(11, 2);
  const auto minute = number(14, 2);
  const auto second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || !at(4, '-') || !at(7, '-') ||
      !(at(10, 'T') || at(10, 't') || at(10, ' ')) || !at(13, ':') || !at(16, ':') || *month < 1 ||
      *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  size_t pos = 19;
  double fraction = 0;
  if (at(pos, '.')) {
    double scale = 0.1;
    ++pos;
    const size_t digits_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == digits_start) {
      return std::nullopt;
    }
  }
  int64_t offset_minutes = 0;
  if (at(pos, 'Z') || at(pos, 'z')) {
    ++pos;
  } else if (at(pos, '+') || at(pos, '-')) {
    const auto off_hour = number(pos + 1, 2);
    const auto off_minute = number(pos + 4, 2);
    if (!off_hour || !off_minute || !at(pos + 3, ':')) {
      return std::nullopt;
    }
    offset_minutes = (*off_hour * 60 + *off_minute) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) {
    return std::nullopt;
  }
  // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
  const int64_t y = *year - (*month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const auto m = static_cast<unsigned>(*month);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(*day) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146097 + static_cast<int64_t>(doe) - 719468;
  const int64_t seconds =
      days * 86400 + *hour * 3600 + *minute * 60 + *second - offset_minutes * 60;
  return seconds * 1000 + static_cast<int64_t>(std::llround(fraction * 1000));
}

std::optional<double> ParseCount(std::optional<std::string_view> text) {
  if (!text || text->empty()) {
    return std::nullopt;
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || ptr != text->data() + text->size() || !std::isfinite(value) ||
      value < 0) {
    return std::nullopt;
  }
  return value;
}

// anthropic-ratelimit-<family>-{limit,remaining,reset}; the reset instant becomes seconds from
// `now_unix_ms` (0 when already past).
RateLimit ReadFamily(const HttpHeaders& headers, std::string_view family, int64_t now_unix_ms) {
  const std::string prefix = "anthropic-ratelimit-" + std::string(family) + "-";
  RateLimit out;
  out.limit = ParseCount(headers.Find(prefix + "limit"));
  out.remaining = ParseCount(headers.Find(prefix + "remaining"));
  if (auto reset = headers.Find(prefix + "reset")) {
    if (auto instant = ParseRfc3339(*reset)) {
      out.reset_seconds = static_cast<double>(std::max<int64_t>(0, *instant - now_unix_ms)) / 1000;
    }
  }
  return out;
}

// How much of a family is left, as a fraction when the limit is known.
std::optional<double> Headroom(const RateLimit& limit) {
  if (!limit.remaining) {
    return std::nullopt;
  }
  if (limit.limit && *limit.limit > 0) {
    return *limit.remaining / *limit.limit;
  }
  return std::nullopt;
}

class AnthropicAdapter final : public ProviderAdapter {
 public:
  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& context) const override {
    if (target.base_url.empty()) {
      return Fail(Error::InvalidArgument("target has no base_url"));
    }
    std::string base = target.base_url;
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    // The SDK's base URL has no version; a copied ".../v1" is accepted too.
    if (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0) {
      base.resize(base.size() - 3);
    }
    HttpRequest request;
    request.url = base + "/v1/messages";
    request.headers.emplace_back("Content-Type", Secret("application/json"));
    request.headers.emplace_back("Accept",
                                 Secret(target.stream ? "text/event-stream" : "application/json"));
    request.headers.emplace_back(
        "anthropic-version",
        Secret(target.anthropic_version.empty() ? "2023-06-01" : target.anthropic_version));
    auto auth = KeyOrBearerHeader(target, context, tokens_, "anthropic", "x-api-key");
    if (!auth) {
      return Fail(auth.error());
    }
    if (*auth) {
      request.headers.push_back(std::move(**auth));
    }
    for (const auto& header : target.headers) {
      request.headers.push_back(header);
    }
    json body = {
        {"model", target.provider_model.empty() ? target.model : target.provider_model},
        {"max_tokens", target.max_tokens},  // required by the Messages API
        {"messages", json::array({{{"role", "user"}, {"content", target.prompt}}})},
    };
    if (target.stream) {
      body["stream"] = true;
    }
    request.body = body.dump();
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return std::make_unique<AnthropicStreamDecoder>(limits);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
    events.OnChunk();
    json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      events.OnMalformed("malformed JSON body");
      return;
    }
    const std::string type = StringField(parsed, "type");
    if (type == "error") {
      const json* error = Member(parsed, "error");
      const std::string error_type = error ? StringField(*error, "type") : std::string();
      events.OnError(
          {OutcomeForType(error_type).value_or(Outcome::kInvalidResponse),
           tokens_.Redact("error in 200 response: " + (error ? DescribeError(*error) : ""))});
      return;
    }
    if (type != "message") {
      events.OnMalformed("response is not a message");
      return;
    }
    if (const json* content = Member(parsed, "content"); content && content->is_array()) {
      for (const json& block : *content) {
        ReportBlock(block, events);
      }
    }
    ReportUsage(Member(parsed, "usage"), /*with_output=*/true, events);
    events.OnTerminator();
  }

  ProviderError ClassifyHttpError(int status, const HttpHeaders& headers,
                                  std::string_view body) const override {
    std::string type;
    std::string message;
    json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      message = std::string(body.substr(0, 200));  // e.g. Cloudflare's 413 page
    } else if (const json* error = Member(parsed, "error"); error && error->is_object()) {
      type = StringField(*error, "type");
      message = StringField(*error, "message");
    }
    message = tokens_.Redact(std::move(message));
    std::string text = "HTTP " + std::to_string(status);
    if (!type.empty()) {
      text += " " + type;
    }
    if (!message.empty()) {
      text += ": " + message;
    }
    if (auto retry = headers.Find("x-should-retry"); retry && *retry == "false") {
      text += " (x-should-retry: false)";
    }
    return {Classify(status, type, message), text};
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    HeaderInfo info;
    info.requests = ReadFamily(headers, "requests", now_unix_ms);
    // HeaderInfo (and ProbeResult) have one token budget, so it is the tightest of the combined,
    // input and output token families: the one with the least headroom is the one that throttles
    // next. Families are optional (the llm-anthropic recording has no requests-*).
    std::optional<double> best;
    for (std::string_view family : {"tokens", "input-tokens", "output-tokens"}) {
      const RateLimit candidate = ReadFamily(headers, family, now_unix_ms);
      if (!candidate.limit && !candidate.remaining && !candidate.reset_seconds) {
        continue;
      }
      const std::optional<double> headroom = Headroom(candidate);
      const bool first = !info.tokens.limit && !info.tokens.remaining && !info.tokens.reset_seconds;
      if (first || (headroom && (!best || *headroom < *best))) {
        info.tokens = candidate;
        best = headroom;
      }
    }
    // On a 200 (a streaming response has carried retry-after: 33) this is only recorded; the
    // outcome stays ok. x-should-retry: false means the server says a retry will not help, so no
    // wait applies.
    if (auto retry = headers.Find("x-should-retry"); !retry || *retry != "false") {
      info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    }
    info.request_id = ReadRequestId(headers, {"request-id", "x-request-id"});
    return info;
  }

 private:
  static Outcome Classify(int status, const std::string& type, const std::string& message) {
    if (IsCreditMessage(message) || status == 402) {
      return Outcome::kQuotaExhausted;
    }
    if (auto outcome = OutcomeForType(type); outcome && *outcome != Outcome::kClientError) {
      return *outcome;
    }
    switch (status) {
      case 429:
        return Outcome::kThrottled;
      case 529:
      case 503:
        return Outcome::kOverloaded;
      case 401:
      case 403:
        return Outcome::kAuth;
      case 408:
      case 504:
        return Outcome::kTimeout;
      default:
        break;
    }
    if (status >= 400 && status < 500) {
      return Outcome::kClientError;
    }
    if (status >= 500 && status < 600) {
      return Outcome::kServerError;
    }
    return Outcome::kInvalidResponse;
  }

  mutable TokenCommandCache tokens_;
};

}  // namespace

ProviderProfile AnthropicProfile() {
  ProviderProfile profile;
  profile.cloud = "anthropic";
  profile.auth_modes = {AuthMode::kApiKey, AuthMode::kBearerToken};
  profile.missing_credential_help =
      "provider anthropic needs an API key: set auth.api_key_env (e.g. ANTHROPIC_API_KEY) "
      "or auth.api_key_file";
  profile.default_base_url = [](const std::string&) {
    return std::string("https://api.anthropic.com");
  };
  profile.detail_keys = {"anthropic_version"};
  profile.version_example = "2023-06-01";
  return profile;
}

std::unique_ptr<ProviderAdapter> NewAnthropicAdapter() {
  return std::make_unique<AnthropicAdapter>();
}

}  // namespace modelpulse::collector
