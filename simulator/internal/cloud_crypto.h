#ifndef MODELPULSE_SIMULATOR_INTERNAL_CLOUD_CRYPTO_H_
#define MODELPULSE_SIMULATOR_INTERNAL_CLOUD_CRYPTO_H_

// Small byte helpers for the cloud protocols (Bedrock's SigV4 and event-stream, Google's JWT):
// hashes and MACs through OpenSSL, CRC-32, base64url, URI encoding. Written for the simulator
// alone: collector/ has its own, and the two must not share code (an encoder bug mirrored in a
// decoder would pass every test). Private to the simulator.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace modelpulse::simulator {

// Raw 32-byte digests / MACs.
std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string LowerHex(std::string_view bytes);

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32), continuing from `crc`.
uint32_t Crc32(std::string_view data, uint32_t crc = 0);

std::string Base64UrlEncode(std::string_view bytes);  // no padding
// Accepts the URL alphabet with or without padding; nullopt for anything else.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// The simulator's one percent-encoding pair. Written apart from collector/percent_encoding.h on
// purpose: SigV4 checks here must not share a bug with the signer they check (DESIGN.md §2).
// %XX decoding ('+' stays '+'); nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view text);
// RFC 3986 encoding of everything but unreserved characters (and '/' when keep_slash), with
// upper-case hex, as SigV4 prescribes.
std::string UriEncode(std::string_view text, bool keep_slash);

// Compares without an early exit, for secrets.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_CLOUD_CRYPTO_H_
