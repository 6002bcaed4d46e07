#ifndef MODELPULSE_COLLECTOR_INTERNAL_HTTP_UTIL_H_
#define MODELPULSE_COLLECTOR_INTERNAL_HTTP_UTIL_H_

// Header readers and text hygiene shared by every provider adapter. Private to the collector.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/internal/providers/provider.h"
#include "common/probe.h"

namespace modelpulse::collector {

// RFC 9110 HTTP-date in any of its three forms (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT",
// RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994"), as Unix ms.
std::optional<int64_t> ParseHttpDate(std::string_view text);

// The server's requested delay in seconds, as the Stainless SDKs read it: retry-after-ms (float
// milliseconds) first, then retry-after as float seconds, then as an HTTP-date relative to
// `now_unix_ms` (a past date gives 0). Negative or unparsable values give nullopt.
std::optional<double> ParseRetryAfter(const HttpHeaders& headers, int64_t now_unix_ms);

// x-ratelimit-{limit,remaining,reset}-{requests,tokens}; resets are Go durations ("6m0s",
// "172.799999ms") or bare seconds. Negative sentinels (Azure's -1) mean unknown.
void ReadOpenAIRateLimits(const HttpHeaders& headers, RateLimit& requests, RateLimit& tokens);

// The first present header of `names`, made safe to store (printable, at most 128 chars).
std::string ReadRequestId(const HttpHeaders& headers, const std::vector<std::string_view>& names);

// Replaces each of `secrets` (exact; those under 4 bytes are skipped, they would mangle ordinary
// words) wherever it occurs in `text` with "<redacted>". For provider-echoed text before anything
// cuts it, so that no prefix of a secret survives a truncation.
void RedactSecrets(std::string& text, const std::vector<std::string_view>& secrets);

// Makes provider- or curl-supplied text safe to store: removes each of `secrets` (exact), redacts
// key-shaped tokens (sk-..., Bearer ...), drops URL queries, replaces control characters and
// invalid UTF-8 with '?', collapses whitespace and cuts to `max_len` bytes on a character boundary.
std::string SanitizeText(std::string_view text, const std::vector<std::string_view>& secrets = {},
                         size_t max_len = 200);

// The host of an http(s) URL, lower-cased, without port or IPv6 brackets. Fails on another
// scheme, white space, a query or fragment, or user:password@; messages never repeat the URL (a
// query string may carry a key).
Result<std::string> UrlHost(std::string_view url);

// Case-insensitive ASCII substring search.
bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_HTTP_UTIL_H_
