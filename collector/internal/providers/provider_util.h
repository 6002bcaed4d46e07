#ifndef MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_UTIL_H_
#define MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_UTIL_H_

// Small pieces several provider adapters need in the same form: JSON field readers, the usage
// report, the SSE feed with its over-the-limit report, and the api-key/bearer/token-command
// auth header. Only what is the same rule for every adapter that uses it lives here; each
// provider's own rules (error tables, header families) stay in its file. Private to the
// collector. Only nlohmann's forward declarations here.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "collector/internal/auth/token_command.h"
#include "collector/internal/providers/provider.h"
#include "collector/internal/sse.h"

namespace modelpulse::collector {

// The string at `key` of a JSON object; empty when `object` is not an object, the key is absent
// or its value is not a string.
std::string StringField(const nlohmann::json& object, const char* key);

// The number at `key` of a JSON object (a float is truncated); nullopt when `object` is not an
// object, the key is absent or its value is not a number.
std::optional<int64_t> IntField(const nlohmann::json& object, const char* key);

// Reports the token counts of a usage object whose counts are named `input_key` and
// `output_key` (nullptr: this object's output count is not to be trusted, e.g. a placeholder).
// Reports nothing when `usage` is not an object or carries neither count.
void ReportUsageFields(const nlohmann::json& usage, const char* input_key, const char* output_key,
                       StreamEvents& events);

// Feeds one read of a stream to `sse`. A line or event over the decoder's limits is reported
// malformed once; the decoder then stays failed (sse.h) and later reads are ignored.
void FeedSse(SseDecoder& sse, std::string_view bytes, StreamEvents& events,
             const SseDecoder::EventCallback& on_event);

// The credential header of a provider that takes a static key in its own header (`key_header`:
// Azure's "api-key", Anthropic's "x-api-key") or a bearer token, static or printed by a token
// command. Returns nullopt for auth none/api_key without a key (nothing to send); fails for a
// bearer mode without a token, a failed token command, or any other auth mode. `provider` names
// the provider in those errors.
Result<std::optional<std::pair<std::string, Secret>>> KeyOrBearerHeader(
    const TargetSpec& target, const RequestContext& context, TokenCommandCache& tokens,
    std::string_view provider, std::string_view key_header);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_UTIL_H_
