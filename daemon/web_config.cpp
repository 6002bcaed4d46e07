#include "daemon/web_config.h"

#include <crypt.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <filesystem>

#include "common/environment.h"
#include "common/yaml_reader.h"

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;
using yaml::Diagnostics;
using yaml::Entry;
using yaml::MapEntries;

// Keys exporter-toolkit defines but modelpulse does not implement: named so the error says so.
constexpr std::array<std::string_view, 6> kUnsupportedTlsKeys = {
    "cert", "key", "client_ca", "cipher_suites", "curve_preferences", "client_allowed_sans"};

constexpr std::array<std::string_view, 3> kTopKeys = {"tls_server_config", "http_server_config",
                                                      "basic_auth_users"};
constexpr std::array<std::string_view, 13> kTlsKeys = {"cert_file",
                                                       "key_file",
                                                       "client_auth_type",
                                                       "client_ca_file",
                                                       "min_version",
                                                       "max_version",
                                                       "prefer_server_cipher_suites",
                                                       "client_allowed_sans",
                                                       "cert",
                                                       "key",
                                                       "client_ca",
                                                       "cipher_suites",
                                                       "curve_preferences"};
constexpr std::array<std::string_view, 2> kHttpKeys = {"http2", "headers"};

std::optional<int> TlsVersion(std::string_view name) {
  if (name == "TLS10") {
    return WebConfig::kTls10;
  }
  if (name == "TLS11") {
    return WebConfig::kTls11;
  }
  if (name == "TLS12") {
    return WebConfig::kTls12;
  }
  if (name == "TLS13") {
    return WebConfig::kTls13;
  }
  return std::nullopt;
}

std::optional<WebConfig::ClientAuth> ClientAuthType(std::string_view name) {
  using enum WebConfig::ClientAuth;
  if (name == "NoClientCert") {
    return kNoClientCert;
  }
  if (name == "RequestClientCert") {
    return kRequestClientCert;
  }
  if (name == "RequireAnyClientCert") {
    return kRequireAnyClientCert;
  }
  if (name == "VerifyClientCertIfGiven") {
    return kVerifyClientCertIfGiven;
  }
  if (name == "RequireAndVerifyClientCert") {
    return kRequireAndVerifyClientCert;
  }
  return std::nullopt;
}

void ReadTls(const Entry& section, const fs::path& folder, WebConfig& config, Diagnostics& diag) {
  WebConfig::Tls tls;
  const Entry* ca_entry = nullptr;
  const Entry* auth_entry = nullptr;
  std::vector<Entry> entries = MapEntries(section.value, section.ValueMark(), "tls_server_config",
                                          "in \"tls_server_config\"", kTlsKeys, diag);
  for (const Entry& e : entries) {
    const std::string path = "tls_server_config." + e.key;
    const bool unsupported = std::find(kUnsupportedTlsKeys.begin(), kUnsupportedTlsKeys.end(),
                                       e.key) != kUnsupportedTlsKeys.end();
    if (unsupported) {
      diag.Add(e.key_node.Mark(),
               fmt::format("\"{}\" is not supported by modelpulse (use cert_file, key_file and "
                           "client_ca_file; OpenSSL's default ciphers and curves apply)",
                           path));
    } else if (e.key == "cert_file" || e.key == "key_file" || e.key == "client_ca_file") {
      if (auto value = yaml::ReadString(e, path, diag); value && !value->empty()) {
        std::string& slot = e.key == "cert_file"  ? tls.cert_file
                            : e.key == "key_file" ? tls.key_file
                                                  : tls.client_ca_file;
        slot = yaml::ResolvePath(folder, *value).string();
        if (e.key == "client_ca_file") {
          ca_entry = &e;
        }
      }
    } else if (e.key == "client_auth_type") {
      if (auto value = yaml::ReadString(e, path, diag)) {
        if (auto auth = ClientAuthType(*value)) {
          tls.client_auth = *auth;
          auth_entry = &e;
        } else {
          diag.Add(e.ValueMark(),
                   fmt::format("\"{}\": unknown client auth type \"{}\" (NoClientCert, "
                               "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven "
                               "or RequireAndVerifyClientCert)",
                               path, *value));
        }
      }
    } else if (e.key == "min_version" || e.key == "max_version") {
      if (auto value = yaml::ReadString(e, path, diag)) {
        if (auto version = TlsVersion(*value)) {
          (e.key == "min_version" ? tls.min_version : tls.max_version) = *version;
        } else {
          diag.Add(e.ValueMark(), fmt::format("\"{}\": unknown TLS version \"{}\" (TLS10, TLS11, "
                                              "TLS12 or TLS13)",
                                              path, *value));
        }
      }
    } else if (e.key == "prefer_server_cipher_suites") {
      if (auto value = yaml::ReadBool(e, path, diag)) {
        tls.prefer_server_cipher_suites = *value;
      }
    }
  }
  if (tls.min_version > tls.max_version) {
    diag.Add(section.ValueMark(), "\"tls_server_config\": min_version is above max_version");
  }
  const bool verifies = tls.client_auth == WebConfig::ClientAuth::kVerifyClientCertIfGiven ||
                        tls.client_auth == WebConfig::ClientAuth::kRequireAndVerifyClientCert;
  if (!tls.client_ca_file.empty() && tls.client_auth == WebConfig::ClientAuth::kNoClientCert) {
    // exporter-toolkit's own check: a CA without a policy would look like client auth but be none.
    diag.Add(ca_entry->key_node.Mark(),
             "\"tls_server_config\": client_ca_file is set but client_auth_type is NoClientCert "
             "(client certificates would not be checked)");
  }
  if (verifies && tls.client_ca_file.empty()) {
    diag.Add(auth_entry->ValueMark(), "\"tls_server_config\": client_auth_type " +
                                          auth_entry->value.Scalar() + " needs client_ca_file");
  }
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    // As exporter-toolkit: no certificate and no key means plain HTTP.
    if (!tls.client_ca_file.empty() || auth_entry != nullptr) {
      diag.Add(section.key_node.Mark(),
               "\"tls_server_config\": client authentication needs cert_file and key_file");
    }
    return;
  }
  if (tls.cert_file.empty()) {
    diag.Add(section.key_node.Mark(), "\"tls_server_config\": missing cert_file");
    return;
  }
  if (tls.key_file.empty()) {
    diag.Add(section.key_node.Mark(), "\"tls_server_config\": missing key_file");
    return;
  }
  config.tls = std::move(tls);
}

void ReadHttp(const Entry& section, WebConfig& config, Diagnostics& diag) {
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "http_server_config",
                                   "in \"http_server_config\"", kHttpKeys, diag)) {
    if (e.key == "http2") {
      // Accepted for compatibility; modelpulse serves HTTP/1.1 only.
      yaml::ReadBool(e, "http_server_config.http2", diag);
      continue;
    }
    // exporter-toolkit's list, with its value checks.
    for (const Entry& h :
         MapEntries(e.value, e.ValueMark(), "http_server_config.headers", "", {}, diag)) {
      auto value = yaml::ReadString(h, "http_server_config.headers." + h.key, diag);
      if (!value) {
        continue;
      }
      const auto is = [&h](const char* name) { return strcasecmp(h.key.c_str(), name) == 0; };
      if (is("X-Content-Type-Options")) {
        if (!value->empty() && strcasecmp(value->c_str(), "nosniff") != 0) {
          diag.Add(h.ValueMark(),
                   fmt::format("invalid value for {}: \"{}\" (only \"nosniff\")", h.key, *value));
          continue;
        }
      } else if (is("X-Frame-Options")) {
        if (!value->empty() && strcasecmp(value->c_str(), "deny") != 0 &&
            strcasecmp(value->c_str(), "sameorigin") != 0) {
          diag.Add(h.ValueMark(),
                   fmt::format("invalid value for {}: \"{}\" (deny or sameorigin)", h.key, *value));
          continue;
        }
      } else if (!is("Strict-Transport-Security") && !is("X-XSS-Protection") &&
                 !is("Content-Security-Policy")) {
        diag.Add(h.key_node.Mark(), fmt::format("HTTP header \"{}\" can not be configured "
                                                "(Content-Security-Policy, X-Frame-Options, "
                                                "X-Content-Type-Options, X-XSS-Protection or "
                                                "Strict-Transport-Security)",
                                                h.key));
        continue;
      }
      if (value->find_first_of("\r\n") != std::string::npos) {
        diag.Add(h.ValueMark(), fmt::format("header {} contains a line break", h.key));
      } else if (!value->empty()) {
        config.headers.emplace_back(h.key, *value);
      }
    }
  }
}

void ReadUsers(const Entry& section, WebConfig& config, Diagnostics& diag) {
  for (const Entry& e :
       MapEntries(section.value, section.ValueMark(), "basic_auth_users", "", {}, diag)) {
    auto hash = yaml::ReadString(e, "basic_auth_users." + e.key, diag);
    if (!hash) {
      continue;
    }
    if (e.key.find(':') != std::string::npos) {
      diag.Add(e.key_node.Mark(),
               fmt::format("basic_auth_users: user name \"{}\" contains ':'", e.key));
    } else if (!IsBcryptHash(*hash)) {
      // The hash itself is not repeated: it is a secret, and errors end up in logs.
      diag.Add(e.ValueMark(), fmt::format("basic_auth_users.{}: not a bcrypt hash ($2y$, $2b$ or "
                                          "$2a$ followed by the cost; e.g. from "
                                          "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
                                          e.key));
    } else {
      config.basic_auth_users.emplace(e.key, *hash);
    }
  }
}

// Decodes standard base64 (with padding); nullopt when malformed.
std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) {
    return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  size_t padding = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
    ++padding;
  }
  if (padding > 2) {
    return std::nullopt;
  }
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

// Timing for users that do not exist: a valid cost-10 hash of a password nobody knows.
constexpr const char* kDummyHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
constexpr size_t kMaxCacheEntries = 1024;

}  // namespace

bool IsBcryptHash(std::string_view hash) {
  // $2y$NN$ then 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
  if (hash.size() != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$') {
    return false;
  }
  if (hash[2] != 'a' && hash[2] != 'b' && hash[2] != 'y') {
    return false;
  }
  if (hash[4] < '0' || hash[4] > '3' || hash[5] < '0' || hash[5] > '9') {
    return false;
  }
  const int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
  if (cost < 4 || cost > 31) {
    return false;
  }
  for (char c : hash.substr(7)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '/';
    if (!ok) {
      return false;
    }
  }
  return true;
}

Result<WebConfig> LoadWebConfig(const std::string& path) {
  SystemEnvironment env;
  Result<std::string> content = env.ReadFile(path);
  if (!content) {
    Error error = content.error();
    error.message = "cannot load web config: " + error.message;
    return Fail(std::move(error));
  }
  return ParseWebConfig(*content, path);
}

Result<WebConfig> ParseWebConfig(std::string_view yaml, const std::string& file_name) {
  Diagnostics diag;
  WebConfig config;
  std::error_code ec;
  const fs::path absolute = yaml::ResolvePath(fs::current_path(ec), file_name);
  config.file = absolute.string();
  yaml::ReadSingleDocument(yaml, "a web config file", diag, [&](const YAML::Node& root) {
    for (const Entry& e :
         MapEntries(root, root.Mark(), "web config", "in the web config", kTopKeys, diag)) {
      if (e.key == "tls_server_config") {
        ReadTls(e, absolute.parent_path(), config, diag);
      } else if (e.key == "http_server_config") {
        ReadHttp(e, config, diag);
      } else if (e.key == "basic_auth_users") {
        ReadUsers(e, config, diag);
      }
    }
  });
  if (!diag.empty()) {
    return Fail(diag.ToError(file_name));
  }
  return config;
}

struct BasicAuth::CryptArea {
  crypt_data data{};
};

BasicAuth::BasicAuth(std::map<std::string, std::string> users)
    : users_(std::move(users)), area_(std::make_unique<CryptArea>()) {}

BasicAuth::~BasicAuth() = default;

bool BasicAuth::Bcrypt(const std::string& password, const std::string& hash) {
  std::lock_guard lock(bcrypt_mutex_);
  const char* out = crypt_rn(password.c_str(), hash.c_str(), &area_->data, sizeof(area_->data));
  const bool ok = out != nullptr && std::string_view(out).size() == hash.size() &&
                  CRYPTO_memcmp(out, hash.data(), hash.size()) == 0;
  OPENSSL_cleanse(area_->data.input, sizeof(area_->data.input));
  return ok;
}

bool BasicAuth::Check(std::string_view authorization) {
  if (users_.empty()) {
    return true;
  }
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.size() <= kScheme.size() ||
      strncasecmp(authorization.data(), kScheme.data(), kScheme.size()) != 0) {
    return false;
  }
  std::string_view encoded = authorization.substr(kScheme.size());
  while (!encoded.empty() && encoded.front() == ' ') {
    encoded.remove_prefix(1);
  }
  std::optional<std::string> decoded = DecodeBase64(encoded);
  if (!decoded) {
    return false;
  }
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) {
    OPENSSL_cleanse(decoded->data(), decoded->size());
    return false;
  }
  const std::string user = decoded->substr(0, colon);
  std::string password = decoded->substr(colon + 1);
  OPENSSL_cleanse(decoded->data(), decoded->size());

  auto it = users_.find(user);
  const bool known = it != users_.end();
  const std::string& hash = known ? it->second : std::string(kDummyHash);

  // The cache key is a digest: the plaintext password is never kept.
  std::string key_input = user;
  key_input.push_back('\0');
  key_input += hash;
  key_input.push_back('\0');
  key_input += password;
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(key_input.data()), key_input.size(), digest.data());
  OPENSSL_cleanse(key_input.data(), key_input.size());
  const std::string key(reinterpret_cast<const char*>(digest.data()), digest.size());

  std::optional<bool> cached;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto hit = cache_.find(key); hit != cache_.end()) {
      cached = hit->second;
    }
  }
  bool ok = cached ? *cached : Bcrypt(password, hash);
  OPENSSL_cleanse(password.data(), password.size());
  if (!cached) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) {
      cache_.clear();
    }
    cache_.emplace(key, ok);
  }
  return ok && known;
}

}  // namespace modelpulse::daemon
