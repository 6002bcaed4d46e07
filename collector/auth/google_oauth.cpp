#include "collector/internal/auth/google_oauth.h"

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "collector/internal/http_util.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

constexpr int64_t kAssertionLifetimeSeconds = 3600;
constexpr int64_t kDefaultTokenLifetimeSeconds = 3600;
// A token this close to expiry is not handed out even while a refresh is failing: the request
// would reach the server with a dead token.
constexpr int64_t kMinRemainingMs = 10000;
constexpr size_t kMaxCacheEntries = 1024;
constexpr size_t kMaxIssuedTokens = 64;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct CurlEasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlFreeDeleter {
  void operator()(char* text) const { curl_free(text); }
};

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) {
    return {};
  }
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

std::string FormEscape(CURL* easy, std::string_view text) {
  std::unique_ptr<char, CurlFreeDeleter> escaped(
      curl_easy_escape(easy, text.data(), static_cast<int>(text.size())));
  return escaped ? std::string(escaped.get()) : std::string();
}

struct BoundedBody {
  std::string text;
  size_t limit = 0;
  bool over = false;
};

size_t WriteBounded(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<BoundedBody*>(user);
  const size_t n = size * count;
  if (body->text.size() + n > body->limit) {
    body->over = true;
    return 0;
  }
  body->text.append(data, n);
  return n;
}

// expires_in as Google sends it: a number, or (some proxies, older servers) a numeric string.
std::optional<int64_t> ExpiresIn(const json& answer) {
  auto it = answer.find("expires_in");
  if (it == answer.end() || it->is_null()) {
    return kDefaultTokenLifetimeSeconds;
  }
  if (it->is_number()) {
    const double value = it->get<double>();
    return std::isfinite(value) && value > 0 ? std::optional<int64_t>(static_cast<int64_t>(value))
                                             : std::nullopt;
  }
  if (it->is_string()) {
    const auto& text = it->get_ref<const std::string&>();
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && ptr == text.data() + text.size() && value > 0) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<ServiceAccountKey> ParseServiceAccountKey(const Secret& json_text) {
  if (json_text.empty()) {
    return Fail(Error::InvalidArgument("service-account key is empty"));
  }
  const json parsed = json::parse(json_text.Reveal(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Fail(Error::InvalidArgument("service-account key is not a JSON object"));
  }
  if (const std::string type = StringField(parsed, "type");
      !type.empty() && type != "service_account") {
    return Fail(Error::InvalidArgument("key file has type \"" + SanitizeText(type, {}, 40) +
                                       "\", not service_account"));
  }
  ServiceAccountKey key;
  key.client_email = StringField(parsed, "client_email");
  key.private_key_id = StringField(parsed, "private_key_id");
  key.token_uri = StringField(parsed, "token_uri");
  key.private_key_pem = Secret(StringField(parsed, "private_key"));
  if (key.client_email.empty()) {
    return Fail(Error::InvalidArgument("service-account key has no client_email"));
  }
  if (key.private_key_pem.empty()) {
    return Fail(Error::InvalidArgument("service-account key has no private_key"));
  }
  return key;
}

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) {
      v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    }
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) {
      out.push_back(kAlphabet[(v >> 6) & 63]);
    }
  }
  return out;
}

Result<Secret> MakeServiceAccountAssertion(const ServiceAccountKey& key, std::string_view audience,
                                           int64_t now_unix_seconds) {
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) {
    header["kid"] = key.private_key_id;
  }
  const json claims = {
      {"iss", key.client_email},
      {"scope", kCloudPlatformScope},
      {"aud", audience},
      {"iat", now_unix_seconds},
      {"exp", now_unix_seconds + kAssertionLifetimeSeconds},
  };
  const std::string signing_input =
      Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());

  const std::string& pem = key.private_key_pem.Reveal();
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!pkey) {
    // OpenSSL's queued errors name only the failing decoder, but they belong to this call.
    ERR_clear_error();
    return Fail(Error::InvalidArgument("service-account private_key is not a readable PEM key"));
  }
  if (EVP_PKEY_base_id(pkey.get()) != EVP_PKEY_RSA) {
    return Fail(Error::InvalidArgument("service-account private_key is not an RSA key"));
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t signature_length = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &signature_length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    ERR_clear_error();
    return Fail(Error::Internal("RS256 signing failed to start"));
  }
  std::string signature(signature_length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()),
                     &signature_length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    ERR_clear_error();
    return Fail(Error::Internal("RS256 signing failed"));
  }
  signature.resize(signature_length);
  return Secret(signing_input + "." + Base64UrlEncode(signature));
}

Result<AccessToken> ExchangeAssertion(std::string_view token_url, const Secret& assertion,
                                      int64_t now_unix_ms, const TokenFetchLimits& limits) {
  std::unique_ptr<CURL, CurlEasyDeleter> easy(curl_easy_init());
  if (!easy) {
    return Fail(Error::Internal("curl_easy_init failed"));
  }
  const std::string url(token_url);
  const std::string form =
      "grant_type=" + FormEscape(easy.get(), "urn:ietf:params:oauth:grant-type:jwt-bearer") +
      "&assertion=" + FormEscape(easy.get(), assertion.Reveal());
  std::unique_ptr<curl_slist, CurlSlistDeleter> headers(
      curl_slist_append(nullptr, "Content-Type: application/x-www-form-urlencoded"));
  headers.reset(curl_slist_append(headers.release(), "Accept: application/json"));
  headers.reset(curl_slist_append(headers.release(), "Expect:"));
  BoundedBody body;
  body.limit = limits.max_body_bytes;
  char curl_error[CURL_ERROR_SIZE] = {};

  CURL* handle = easy.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE, static_cast<long>(form.size()));
  curl_easy_setopt(handle, CURLOPT_POSTFIELDS, form.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_USERAGENT, "modelpulse/0.1");
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(limits.connect_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.total_timeout.count()));
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &WriteBounded);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, curl_error);

  const CURLcode code = curl_easy_perform(handle);
  const std::vector<std::string_view> secrets = {assertion.Reveal()};
  if (body.over) {
    return Fail(Error::Unavailable("token endpoint answer over " +
                                   std::to_string(limits.max_body_bytes) + " bytes"));
  }
  if (code != CURLE_OK) {
    const std::string detail = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(code);
    return Fail(Error::Unavailable("token endpoint unreachable: " + SanitizeText(detail, secrets)));
  }
  long status = 0;  // NOLINT(google-runtime-int): libcurl's type
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  const json answer = json::parse(body.text, nullptr, /*allow_exceptions=*/false);
  if (status != 200) {
    // {"error":"invalid_grant","error_description":"Invalid JWT Signature."} (RFC 6749 §5.2).
    std::string detail;
    if (!answer.is_discarded() && answer.is_object()) {
      detail = StringField(answer, "error");
      if (const std::string text = StringField(answer, "error_description"); !text.empty()) {
        detail += detail.empty() ? text : ": " + text;
      }
    } else {
      detail = body.text.substr(0, 100);
    }
    std::string message = "token endpoint answered HTTP " + std::to_string(status);
    if (!detail.empty()) {
      message += ": " + SanitizeText(detail, secrets, 150);
    }
    return Fail(Error::Unavailable(std::move(message)));
  }
  if (answer.is_discarded() || !answer.is_object()) {
    return Fail(Error::Parse("token endpoint answer is not a JSON object"));
  }
  AccessToken token;
  token.token = Secret(StringField(answer, "access_token"));
  if (token.token.empty()) {
    return Fail(Error::Parse("token endpoint answer has no access_token"));
  }
  const std::optional<int64_t> expires_in = ExpiresIn(answer);
  if (!expires_in) {
    return Fail(Error::Parse("token endpoint answer has an unreadable expires_in"));
  }
  token.expires_unix_ms = now_unix_ms + *expires_in * 1000;
  return token;
}

std::shared_ptr<GoogleTokenCache::Entry> GoogleTokenCache::EntryFor(const TargetAuth& auth) {
  std::string id = auth.google_service_account_json.Reveal();
  id.push_back('\0');
  id += auth.token_url;
  const std::string digest = Sha256Hex(id);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(digest);
  if (it != entries_.end()) {
    return it->second;
  }
  if (entries_.size() >= kMaxCacheEntries) {
    // Only reachable when configs keep rotating keys: start over rather than grow without bound.
    // Holders of old entries keep them alive until they are done.
    entries_.clear();
  }
  auto entry = std::make_shared<Entry>();
  entries_.emplace(digest, entry);
  return entry;
}

Result<AccessToken> GoogleTokenCache::Fetch(const TargetAuth& auth, int64_t now_unix_ms) const {
  Result<ServiceAccountKey> key = ParseServiceAccountKey(auth.google_service_account_json);
  if (!key) {
    return Fail(key.error());
  }
  std::string token_url = auth.token_url;
  if (token_url.empty()) {
    token_url = key->token_uri.empty() ? std::string(kDefaultGoogleTokenUrl) : key->token_uri;
  }
  Result<Secret> assertion = MakeServiceAccountAssertion(*key, token_url, now_unix_ms / 1000);
  if (!assertion) {
    return Fail(assertion.error());
  }
  return ExchangeAssertion(token_url, *assertion, now_unix_ms, options_.fetch);
}

Result<Secret> GoogleTokenCache::Token(const TargetAuth& auth, int64_t now_unix_ms) {
  const std::shared_ptr<Entry> entry = EntryFor(auth);
  std::lock_guard<std::mutex> lock(entry->mu);
  const bool have_token = !entry->token.token.empty();
  const bool still_valid =
      have_token && now_unix_ms + kMinRemainingMs < entry->token.expires_unix_ms;
  if (have_token && now_unix_ms < entry->refresh_at_ms) {
    return entry->token.token;
  }
  if (now_unix_ms < entry->retry_at_ms) {
    if (still_valid) {
      return entry->token.token;
    }
    Error error = entry->last_error;
    error.message += " (next attempt in " +
                     std::to_string((entry->retry_at_ms - now_unix_ms + 999) / 1000) + " s)";
    return Fail(std::move(error));
  }
  Result<AccessToken> fetched = Fetch(auth, now_unix_ms);
  if (!fetched) {
    ++entry->failures;
    const int64_t initial = options_.backoff_initial.count();
    int64_t backoff = initial;
    for (int i = 1; i < entry->failures && backoff < options_.backoff_max.count(); ++i) {
      backoff *= 2;
    }
    entry->retry_at_ms = now_unix_ms + std::min<int64_t>(backoff, options_.backoff_max.count());
    entry->last_error = fetched.error();
    entry->last_error.message = "service-account token: " + entry->last_error.message;
    if (still_valid) {
      return entry->token.token;
    }
    return Fail(entry->last_error);
  }
  entry->failures = 0;
  entry->retry_at_ms = 0;
  entry->token = std::move(*fetched);
  {
    // Lock order: an entry's mu, then mu_ (EntryFor takes mu_ alone).
    std::lock_guard<std::mutex> lock_issued(mu_);
    if (issued_.size() >= kMaxIssuedTokens) {
      issued_.erase(issued_.begin());
    }
    issued_.push_back(entry->token.token);
  }
  const int64_t lifetime = entry->token.expires_unix_ms - now_unix_ms;
  entry->refresh_at_ms = entry->token.expires_unix_ms -
                         std::min<int64_t>(options_.refresh_margin.count(), lifetime / 2);
  return entry->token.token;
}

std::string GoogleTokenCache::Redact(std::string text) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Secret& token : issued_) {
    const std::string& value = token.Reveal();
    if (value.empty()) {
      continue;
    }
    for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at)) {
      text.replace(at, value.size(), "<redacted>");
      at += 10;
    }
  }
  return text;
}

}  // namespace modelpulse::collector
