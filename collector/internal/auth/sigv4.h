#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_SIGV4_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_SIGV4_H_

// AWS Signature Version 4 (header signing), written against AWS's published test suite and
// botocore's SigV4Auth, because curl 7.88's signer does not double-encode the path and so fails
// on Bedrock model ids with ':' (toolchain.md §4). Private to the collector. Pure functions: no
// I/O, no clock, no logging; no error message ever carries a credential.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"

namespace modelpulse::collector {

// Whether to send (and sign) x-amz-content-sha256. botocore and the JS SDK send it for Bedrock;
// AWS's generic test suite does not.
enum class PayloadHashHeader { kOmit, kSend };

struct SigV4Request {
  std::string_view method;  // "POST"
  // Absolute URL, exactly as it goes on the wire: scheme://host[:port]/path[?query]. The path is
  // already percent-encoded (a model id's ':' as %3A); it is encoded once more for the canonical
  // URI, as AWS does for every service except S3.
  std::string_view url;
  // The headers that will be sent and signed ("Name", value). Host, x-amz-date and the others
  // this signer adds must not be in here.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
};

struct SigV4Params {
  std::string region;        // the endpoint's region, e.g. us-east-1
  std::string service;       // signing name: "bedrock", "bedrock-mantle", "service" (test suite)
  int64_t unix_seconds = 0;  // request time; becomes x-amz-date
  PayloadHashHeader payload_hash_header = PayloadHashHeader::kSend;
};

// What a signature produced; canonical_request and string_to_sign are for tests and debugging
// (they contain the session token when there is one: never log them).
struct SigV4Signature {
  // Headers to add to the request: X-Amz-Date, X-Amz-Content-Sha256 (kSend),
  // X-Amz-Security-Token (session credentials) and Authorization. Host is not included: the
  // HTTP client derives the same value from the URL.
  std::vector<std::pair<std::string, Secret>> headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // lower-case hex
};

// Signs `request`. Fails with kInvalidArgument when the URL is not absolute http(s), the access
// key id or secret is empty, or region/service is empty; messages name the problem, never a value.
Result<SigV4Signature> SignSigV4(const SigV4Request& request, const AwsCredentials& credentials,
                                 const SigV4Params& params);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// "20150830T123600Z" for a Unix time in seconds.
std::string AmzDate(int64_t unix_seconds);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_SIGV4_H_
