#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_GOOGLE_OAUTH_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_GOOGLE_OAUTH_H_

// Google OAuth 2.0 access tokens from a service-account JSON key: the JWT-bearer grant of RFC 7523
// as google-auth-library-python does it (google/oauth2/service_account.py, _client.py). Private to
// the collector. No libcurl, OpenSSL or JSON headers here.
//
// Nothing in this file puts a private key, assertion or access token into an error message.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"

namespace modelpulse::collector {

inline constexpr std::string_view kDefaultGoogleTokenUrl = "https://oauth2.googleapis.com/token";
inline constexpr std::string_view kCloudPlatformScope =
    "https://www.googleapis.com/auth/cloud-platform";

// The fields of a service-account key file that the grant needs.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key_id;  // the JWT header's kid; may be empty
  std::string token_uri;       // may be empty
  Secret private_key_pem;      // PKCS#8 (or PKCS#1) PEM
};

// Parses a key file's content. Returns InvalidArgument naming the missing or mistyped field; the
// message never quotes the content.
Result<ServiceAccountKey> ParseServiceAccountKey(const Secret& json_text);

// RFC 4648 §5 base64url without padding.
std::string Base64UrlEncode(std::string_view bytes);

// The signed assertion: header {"alg":"RS256","typ":"JWT","kid":private_key_id}, claims
// iss=client_email, scope=cloud-platform, aud=`audience`, iat=now, exp=now+3600, signed with
// RSASSA-PKCS1-v1_5 SHA-256. Returns InvalidArgument when the PEM is unreadable or not RSA.
Result<Secret> MakeServiceAccountAssertion(const ServiceAccountKey& key, std::string_view audience,
                                           int64_t now_unix_seconds);

struct AccessToken {
  Secret token;
  int64_t expires_unix_ms = 0;
};

struct TokenFetchLimits {
  Millis connect_timeout{2000};
  Millis total_timeout{3000};
  size_t max_body_bytes = 64 * 1024;
};

// POSTs grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=... to `token_url` on a
// blocking libcurl easy handle and reads {"access_token","expires_in"} (expires_in may be a number
// or a numeric string; absent means 3600 s). Returns Unavailable for transport failures and error
// statuses (with the endpoint's OAuth error code and description), Parse for an unreadable answer.
// REQUIRES: curl_global_init was called.
Result<AccessToken> ExchangeAssertion(std::string_view token_url, const Secret& assertion,
                                      int64_t now_unix_ms, const TokenFetchLimits& limits);

struct TokenCacheOptions {
  // A token is replaced this long before it expires (google-auth uses 3 min 45 s), or at half its
  // lifetime when that is shorter.
  Millis refresh_margin{300000};
  // After a failed exchange nobody asks again for backoff_initial, doubling per further failure up
  // to backoff_max; the last error is returned meanwhile (or the old token while it is valid).
  Millis backoff_initial{5000};
  Millis backoff_max{300000};
  TokenFetchLimits fetch;
};

// Access tokens per (service-account key, token URL), fetched on demand and reused until shortly
// before they expire. Thread-safe: concurrent callers for the same key wait for one exchange
// rather than each starting their own; callers for other keys are not blocked by it.
//
// Trade-off: Token() blocks for up to fetch.total_timeout (3 s by default) when a refresh is
// due, and it is called while a request is being built on the prober's event-loop thread, so one
// refresh can delay other targets' transfers by up to that long, about once an hour per key (and
// once per backoff period while the endpoint fails). The short timeout and the backoff keep that
// bounded; a refresh started in the background ahead of expiry would remove it, but needs a hook
// the prober does not have yet.
class GoogleTokenCache {
 public:
  explicit GoogleTokenCache(TokenCacheOptions options = {}) : options_(options) {}
  GoogleTokenCache(const GoogleTokenCache&) = delete;
  GoogleTokenCache& operator=(const GoogleTokenCache&) = delete;

  // A bearer token for `auth` (mode kGoogleServiceAccount): the cached one while it is fresh, else
  // a new one from auth.token_url, else the key file's token_uri, else kDefaultGoogleTokenUrl.
  // Errors are those of ParseServiceAccountKey, MakeServiceAccountAssertion and ExchangeAssertion,
  // prefixed "service-account token: ".
  Result<Secret> Token(const TargetAuth& auth, int64_t now_unix_ms);

  // Replaces every token this cache handed out recently, wherever it occurs in `text`, with
  // "<redacted>": for provider messages that might echo a credential back.
  std::string Redact(std::string text) const;

 private:
  struct Entry {
    std::mutex mu;
    AccessToken token;          // Guarded by mu. Empty until the first success.
    int64_t refresh_at_ms = 0;  // Guarded by mu.
    int failures = 0;           // Guarded by mu. Consecutive.
    int64_t retry_at_ms = 0;    // Guarded by mu. No exchange before this after a failure.
    Error last_error;           // Guarded by mu.
  };

  std::shared_ptr<Entry> EntryFor(const TargetAuth& auth);
  Result<AccessToken> Fetch(const TargetAuth& auth, int64_t now_unix_ms) const;

  const TokenCacheOptions options_;
  mutable std::mutex mu_;
  // Keyed by SHA-256 of key content and token URL, so the map holds no key material.
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // Guarded by mu_.
  // The most recent tokens fetched (bounded), for Redact without waiting on a running exchange.
  std::vector<Secret> issued_;  // Guarded by mu_.
};

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_GOOGLE_OAUTH_H_
