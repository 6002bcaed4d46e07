#ifndef MODELPULSE_DAEMON_WEB_CONFIG_H_
#define MODELPULSE_DAEMON_WEB_CONFIG_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/common.h"

namespace modelpulse::daemon {

// `--web.config.file`, in the Prometheus exporter-toolkit format (docs/web-configuration.md of
// prometheus/exporter-toolkit), so one file can serve Prometheus, its exporters and modelpulse.
// Unsupported keys of that format (inline `cert`/`key`/`client_ca`, `cipher_suites`,
// `curve_preferences`, `client_allowed_sans`, `rate_limit`) are refused by name rather than
// silently ignored: a security setting that does nothing is worse than an error.
struct WebConfig {
  enum class ClientAuth {
    kNoClientCert,
    kRequestClientCert,
    kRequireAnyClientCert,
    kVerifyClientCertIfGiven,
    kRequireAndVerifyClientCert,
  };
  // TLS protocol versions as the wire numbers OpenSSL uses (TLS1_2_VERSION = 0x0303).
  static constexpr int kTls10 = 0x0301;
  static constexpr int kTls11 = 0x0302;
  static constexpr int kTls12 = 0x0303;
  static constexpr int kTls13 = 0x0304;

  struct Tls {
    std::string cert_file;  // absolute (relative paths start at the web config's folder)
    std::string key_file;
    std::string client_ca_file;  // empty: none
    ClientAuth client_auth = ClientAuth::kNoClientCert;
    int min_version = kTls12;
    int max_version = kTls13;
    bool prefer_server_cipher_suites = true;
  };

  std::string file;
  std::optional<Tls> tls;  // nullopt: plain HTTP, as exporter-toolkit without cert and key
  std::map<std::string, std::string> basic_auth_users;       // user -> bcrypt hash; empty: no auth
  std::vector<std::pair<std::string, std::string>> headers;  // added to every response
};

// Problems are reported as "FILE:LINE:COLUMN: message", all at once.
Result<WebConfig> LoadWebConfig(const std::string& path);
Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name);

// HTTP basic authentication against bcrypt hashes, as exporter-toolkit does it: an unknown user
// costs a bcrypt too (against a fixed hash), so timing does not tell which users exist; the hash
// comparison is constant-time; bcrypt runs one at a time (a flood of guesses takes one core, not
// all); a verified (user, hash, password) is remembered by its SHA-256 so a scraper's every
// request does not pay bcrypt's ~70 ms. Thread-safe.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users);
  ~BasicAuth();
  BasicAuth(const BasicAuth&) = delete;
  BasicAuth& operator=(const BasicAuth&) = delete;

  bool enabled() const { return !users_.empty(); }
  // True when `authorization` (the whole header value, "Basic base64(user:password)") names a
  // configured user with the right password, or when no users are configured.
  bool Check(std::string_view authorization);

 private:
  struct CryptArea;  // libxcrypt's crypt_data, 32 KiB, reused under bcrypt_mutex_
  bool Bcrypt(const std::string& password, const std::string& hash);

  std::map<std::string, std::string> users_;
  std::mutex bcrypt_mutex_;
  std::unique_ptr<CryptArea> area_;
  std::mutex cache_mutex_;
  std::map<std::string, bool> cache_;  // SHA-256(user, hash, password) -> verified
};

// True when `hash` looks like a bcrypt hash libxcrypt verifies ($2a$, $2b$ or $2y$, cost 4-31).
bool IsBcryptHash(std::string_view hash);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_WEB_CONFIG_H_
