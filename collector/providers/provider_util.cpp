// Pieces shared by several provider adapters; see provider_util.h.

#include "collector/internal/providers/provider_util.h"

#include <limits>
#include <nlohmann/json.hpp>

namespace modelpulse::collector {

using nlohmann::json;

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) {
    return {};
  }
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> IntField(const json& object, const char* key) {
  if (!object.is_object()) {
    return std::nullopt;
  }
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) {
    return std::nullopt;
  }
  // A number outside int64 is no count or code a provider sends: none, rather than a cast C++
  // leaves undefined (libFuzzer found {"error":{"code":42444444444444444444}}, a double 4.2e19).
  if (it->is_number_unsigned()) {
    const auto value = it->get<uint64_t>();
    return value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::optional<int64_t>(static_cast<int64_t>(value))
               : std::nullopt;
  }
  if (it->is_number_float()) {
    const double value = it->get<double>();
    constexpr double kTwoTo63 = 9223372036854775808.0;
    if (!(value >= -kTwoTo63 && value < kTwoTo63)) {  // NaN fails both
      return std::nullopt;
    }
    return static_cast<int64_t>(value);
  }
  return it->get<int64_t>();
}

void ReportUsageFields(const json& usage, const char* input_key, const char* output_key,
                       StreamEvents& events) {
  if (!usage.is_object()) {
    return;
  }
  Usage out;
  out.input_tokens = IntField(usage, input_key);
  if (output_key != nullptr) {
    out.output_tokens = IntField(usage, output_key);
  }
  if (out.input_tokens || out.output_tokens) {
    events.OnUsage(out);
  }
}

void FeedSse(SseDecoder& sse, std::string_view bytes, StreamEvents& events,
             const SseDecoder::EventCallback& on_event) {
  if (sse.status() != SseDecoder::Status::kOk) {
    return;  // reported when it failed
  }
  const SseDecoder::Status status = sse.Feed(bytes, on_event);
  if (status != SseDecoder::Status::kOk) {
    events.OnMalformed(status == SseDecoder::Status::kLineTooLong ? "SSE line over the limit"
                                                                  : "SSE event over the limit");
  }
}

Result<std::optional<std::pair<std::string, Secret>>> KeyOrBearerHeader(
    const TargetSpec& target, const RequestContext& context, TokenCommandCache& tokens,
    std::string_view provider, std::string_view key_header) {
  using Header = std::pair<std::string, Secret>;
  switch (target.auth.mode) {
    case AuthMode::kNone:
    case AuthMode::kApiKey:
      // kNone with a key is a key: the SDKs' default.
      if (target.api_key.empty()) {
        return std::optional<Header>();
      }
      return Header(std::string(key_header), target.api_key);
    case AuthMode::kBearerToken:
      if (target.api_key.empty()) {
        return Fail(CredentialError(std::string(provider) + ": bearer auth without a token"));
      }
      return Header("Authorization", Secret("Bearer " + target.api_key.Reveal()));
    case AuthMode::kTokenCommand: {
      Result<Secret> token = tokens.Token(target.auth.token_command, target.auth.token_command_ttl,
                                          context.now_unix_ms);
      if (!token) {
        return Fail(token.error());
      }
      return Header("Authorization", Secret("Bearer " + token->Reveal()));
    }
    case AuthMode::kAwsSigV4:
    case AuthMode::kGoogleServiceAccount:
      break;
  }
  return Fail(Error::InvalidArgument(std::string(provider) +
                                     " supports auth api_key, bearer_token or token_command only"));
}

}  // namespace modelpulse::collector
