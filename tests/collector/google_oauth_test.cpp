// Service-account JWTs and the token exchange: the JWT is checked by an independent verifier
// (Debian's python3-jwt), the exchange and cache against a loopback token endpoint.

#include "collector/internal/auth/google_oauth.h"

#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace modelpulse::collector {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
  return std::string(data, static_cast<size_t>(size));
}

KeyPair PemPair(EVP_PKEY* key) {
  KeyPair pair;
  BIO* priv = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  pair.private_pem = BioText(priv);
  BIO_free(priv);
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(pub, key);
  pair.public_pem = BioText(pub);
  BIO_free(pub);
  return pair;
}

// One RSA key pair per test run, made here: no key material is checked in.
const KeyPair& RsaPair() {
  static const KeyPair pair = [] {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    REQUIRE(key != nullptr);
    KeyPair made = PemPair(key);
    EVP_PKEY_free(key);
    return made;
  }();
  return pair;
}

std::string KeyJson(const std::string& private_pem, const std::string& token_uri = "") {
  json key = {{"type", "service_account"},
              {"project_id", "probe-project"},
              {"private_key_id", "0123456789abcdef0123456789abcdef01234567"},
              {"private_key", private_pem},
              {"client_email", "prober@probe-project.iam.gserviceaccount.com"},
              {"client_id", "1234567890"}};
  if (!token_uri.empty()) {
    key["token_uri"] = token_uri;
  }
  return key.dump();
}

struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mp-oauth-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct Command {
  int exit_code = -1;
  std::string output;
};

// The independent oracle: PyJWT verifies the RS256 signature with the public key, the audience
// and the time claims, and prints the header and claims it accepted.
Command VerifyWithPyJwt(const std::string& jwt, const std::string& public_pem,
                        const std::string& audience) {
  TempDir dir;
  WriteFile(dir.path / "key.pub", public_pem);
  WriteFile(dir.path / "token.jwt", jwt);
  WriteFile(dir.path / "verify.py", R"(import json, sys, jwt
key = open(sys.argv[1]).read()
token = open(sys.argv[2]).read()
claims = jwt.decode(token, key, algorithms=["RS256"], audience=sys.argv[3])
print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
)");
  const std::string command = "/usr/bin/python3 " + (dir.path / "verify.py").string() + " " +
                              (dir.path / "key.pub").string() + " " +
                              (dir.path / "token.jwt").string() + " '" + audience + "' 2>&1";
  Command result;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0 && result.output.size() < 65536) {
    result.output.append(buffer, n);
  }
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("Base64UrlEncode: RFC 4648 vectors, URL alphabet, no padding") {
  CHECK(Base64UrlEncode("") == "");
  CHECK(Base64UrlEncode("f") == "Zg");
  CHECK(Base64UrlEncode("fo") == "Zm8");
  CHECK(Base64UrlEncode("foo") == "Zm9v");
  CHECK(Base64UrlEncode("foob") == "Zm9vYg");
  CHECK(Base64UrlEncode("fooba") == "Zm9vYmE");
  CHECK(Base64UrlEncode("foobar") == "Zm9vYmFy");
  CHECK(Base64UrlEncode(std::string("\xfb\xff\xfe", 3)) == "-__-");
  CHECK(Base64UrlEncode(std::string("\x00\x10\x83", 3)) == "ABCD");
}

TEST_CASE("service-account JWT: verified by python3-jwt with the public key") {
  const KeyPair& pair = RsaPair();
  Result<ServiceAccountKey> key = ParseServiceAccountKey(Secret(KeyJson(pair.private_pem)));
  REQUIRE(key.has_value());
  const std::string audience = "https://oauth2.googleapis.com/token";
  const int64_t now = NowSeconds();
  Result<Secret> jwt = MakeServiceAccountAssertion(*key, audience, now);
  REQUIRE(jwt.has_value());

  const Command verified = VerifyWithPyJwt(jwt->Reveal(), pair.public_pem, audience);
  INFO(verified.output);
  REQUIRE(verified.exit_code == 0);
  const json decoded = json::parse(verified.output);
  CHECK(decoded["header"]["alg"] == "RS256");
  CHECK(decoded["header"]["typ"] == "JWT");
  CHECK(decoded["header"]["kid"] == "0123456789abcdef0123456789abcdef01234567");
  const json& claims = decoded["claims"];
  CHECK(claims["iss"] == "prober@probe-project.iam.gserviceaccount.com");
  CHECK(claims["scope"] == "https://www.googleapis.com/auth/cloud-platform");
  CHECK(claims["aud"] == audience);
  CHECK(claims["iat"] == now);
  CHECK(claims["exp"] == now + 3600);
  CHECK(claims.size() == 5);
  // base64url without padding, three parts.
  CHECK(jwt->Reveal().find('=') == std::string::npos);
  CHECK(jwt->Reveal().find('+') == std::string::npos);
  CHECK(jwt->Reveal().find('/') == std::string::npos);
}

TEST_CASE("service-account JWT: the oracle rejects a wrong key, audience or signature") {
  const KeyPair& pair = RsaPair();
  Result<ServiceAccountKey> key = ParseServiceAccountKey(Secret(KeyJson(pair.private_pem)));
  REQUIRE(key.has_value());
  const std::string audience = "http://127.0.0.1:1/token";
  Result<Secret> jwt = MakeServiceAccountAssertion(*key, audience, NowSeconds());
  REQUIRE(jwt.has_value());

  CHECK(VerifyWithPyJwt(jwt->Reveal(), pair.public_pem, "https://other/token").exit_code != 0);
  std::string tampered = jwt->Reveal();
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  CHECK(VerifyWithPyJwt(tampered, pair.public_pem, audience).exit_code != 0);
  EVP_PKEY* other = EVP_RSA_gen(2048);
  REQUIRE(other != nullptr);
  const KeyPair other_pair = PemPair(other);
  EVP_PKEY_free(other);
  CHECK(VerifyWithPyJwt(jwt->Reveal(), other_pair.public_pem, audience).exit_code != 0);
}

TEST_CASE("service-account key: missing fields and unusable keys are named, never quoted") {
  const std::string pem = RsaPair().private_pem;
  CHECK_FALSE(ParseServiceAccountKey(Secret("")).has_value());
  CHECK_FALSE(ParseServiceAccountKey(Secret("not json " + pem)).has_value());
  json no_email = json::parse(KeyJson(pem));
  no_email.erase("client_email");
  Result<ServiceAccountKey> missing = ParseServiceAccountKey(Secret(no_email.dump()));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("client_email") != std::string::npos);
  json authorized_user = json::parse(KeyJson(pem));
  authorized_user["type"] = "authorized_user";
  CHECK_FALSE(ParseServiceAccountKey(Secret(authorized_user.dump())).has_value());

  // A truncated PEM and an EC key cannot make an RS256 assertion.
  Result<ServiceAccountKey> truncated =
      ParseServiceAccountKey(Secret(KeyJson(pem.substr(0, pem.size() / 2))));
  REQUIRE(truncated.has_value());
  Result<Secret> bad = MakeServiceAccountAssertion(*truncated, "aud", 0);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("MII") == std::string::npos);
  EVP_PKEY* ec = EVP_EC_gen("P-256");
  REQUIRE(ec != nullptr);
  const KeyPair ec_pair = PemPair(ec);
  EVP_PKEY_free(ec);
  Result<ServiceAccountKey> ec_key = ParseServiceAccountKey(Secret(KeyJson(ec_pair.private_pem)));
  REQUIRE(ec_key.has_value());
  Result<Secret> not_rsa = MakeServiceAccountAssertion(*ec_key, "aud", 0);
  REQUIRE_FALSE(not_rsa.has_value());
  CHECK(not_rsa.error().message.find("RSA") != std::string::npos);
}

// A loopback OAuth token endpoint. Checks the grant it receives and answers per `mode`.
class TokenEndpoint {
 public:
  enum class Mode { kOk, kStringExpiry, kInvalidGrant, kEchoAssertion, kHuge, kNoToken };

  TokenEndpoint() {
    server_.Post("/token", [this](const httplib::Request& req, httplib::Response& res) {
      const int n = ++requests_;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_content_type_ = req.get_header_value("Content-Type");
        last_body_ = req.body;
      }
      std::this_thread::sleep_for(delay_.load());
      const std::string prefix =
          "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
      if (req.body.rfind(prefix, 0) != 0) {
        res.status = 400;
        res.set_content(R"({"error":"unsupported_grant_type"})", "application/json");
        return;
      }
      const std::string assertion = req.body.substr(prefix.size());
      switch (mode_.load()) {
        case Mode::kOk:
          res.set_content(json({{"access_token", "ya29.token-" + std::to_string(n)},
                                {"expires_in", expires_in_.load()},
                                {"token_type", "Bearer"}})
                              .dump(),
                          "application/json");
          return;
        case Mode::kStringExpiry:
          res.set_content(R"({"access_token":"ya29.string-expiry","expires_in":"3599"})",
                          "application/json");
          return;
        case Mode::kInvalidGrant:
          res.status = 400;
          res.set_content(
              R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})",
              "application/json");
          return;
        case Mode::kEchoAssertion:
          res.status = 400;
          res.set_content(json({{"error", "invalid_grant"},
                                {"error_description", "bad assertion " + assertion}})
                              .dump(),
                          "application/json");
          return;
        case Mode::kHuge:
          res.set_content(std::string(200 * 1024, ' ') + "{}", "application/json");
          return;
        case Mode::kNoToken:
          res.set_content(R"({"token_type":"Bearer"})", "application/json");
          return;
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(2ms);
    }
    REQUIRE(server_.is_running());
  }
  ~TokenEndpoint() {
    server_.stop();
    thread_.join();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/token"; }
  int requests() const { return requests_.load(); }
  void set_mode(Mode mode) { mode_ = mode; }
  void set_expires_in(int seconds) { expires_in_ = seconds; }
  void set_delay(std::chrono::milliseconds delay) { delay_ = delay; }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }
  std::string last_content_type() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_content_type_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::atomic<Mode> mode_{Mode::kOk};
  std::atomic<int> expires_in_{3599};
  std::atomic<std::chrono::milliseconds> delay_{0ms};
  std::mutex mu_;
  std::string last_body_;
  std::string last_content_type_;
};

TargetAuth ServiceAccountAuth(const std::string& token_url) {
  TargetAuth auth;
  auth.mode = AuthMode::kGoogleServiceAccount;
  auth.google_service_account_json = Secret(KeyJson(RsaPair().private_pem));
  auth.token_url = token_url;
  return auth;
}

// A fixed wall clock well inside the validity of any JWT library's checks is not needed: the
// endpoint here does not check times, so the cache is driven by explicit `now` values.
constexpr int64_t kT0 = 1'790'000'000'000;

TEST_CASE("token exchange: form POST with the assertion, token parsed") {
  TokenEndpoint endpoint;
  Result<ServiceAccountKey> key = ParseServiceAccountKey(Secret(KeyJson(RsaPair().private_pem)));
  REQUIRE(key.has_value());
  Result<Secret> jwt = MakeServiceAccountAssertion(*key, endpoint.Url(), NowSeconds());
  REQUIRE(jwt.has_value());
  Result<AccessToken> token = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE(token.has_value());
  CHECK(token->token.Reveal() == "ya29.token-1");
  CHECK(token->expires_unix_ms == kT0 + 3599 * 1000);
  CHECK(endpoint.last_content_type() == "application/x-www-form-urlencoded");
  CHECK(endpoint.last_body() ==
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" +
            jwt->Reveal());
  // The assertion the endpoint received is one PyJWT accepts for this endpoint as audience.
  const Command verified = VerifyWithPyJwt(jwt->Reveal(), RsaPair().public_pem, endpoint.Url());
  INFO(verified.output);
  CHECK(verified.exit_code == 0);

  endpoint.set_mode(TokenEndpoint::Mode::kStringExpiry);
  Result<AccessToken> string_expiry = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE(string_expiry.has_value());
  CHECK(string_expiry->expires_unix_ms == kT0 + 3599 * 1000);
}

TEST_CASE("token exchange: failures say what happened without the assertion") {
  TokenEndpoint endpoint;
  Result<ServiceAccountKey> key = ParseServiceAccountKey(Secret(KeyJson(RsaPair().private_pem)));
  REQUIRE(key.has_value());
  Result<Secret> jwt = MakeServiceAccountAssertion(*key, endpoint.Url(), NowSeconds());
  REQUIRE(jwt.has_value());
  const std::string signature = jwt->Reveal().substr(jwt->Reveal().rfind('.') + 1);

  endpoint.set_mode(TokenEndpoint::Mode::kInvalidGrant);
  Result<AccessToken> denied = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE_FALSE(denied.has_value());
  CHECK(denied.error().message ==
        "token endpoint answered HTTP 400: invalid_grant: Invalid JWT Signature.");

  endpoint.set_mode(TokenEndpoint::Mode::kEchoAssertion);
  Result<AccessToken> echoed = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE_FALSE(echoed.has_value());
  CHECK(echoed.error().message.find("invalid_grant") != std::string::npos);
  CHECK(echoed.error().message.find(signature.substr(0, 20)) == std::string::npos);

  endpoint.set_mode(TokenEndpoint::Mode::kHuge);
  Result<AccessToken> huge = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().message.find("over") != std::string::npos);

  endpoint.set_mode(TokenEndpoint::Mode::kNoToken);
  Result<AccessToken> no_token = ExchangeAssertion(endpoint.Url(), *jwt, kT0, {});
  REQUIRE_FALSE(no_token.has_value());
  CHECK(no_token.error().message.find("access_token") != std::string::npos);

  endpoint.set_mode(TokenEndpoint::Mode::kOk);
  endpoint.set_delay(1500ms);
  TokenFetchLimits quick;
  quick.total_timeout = 300ms;
  Result<AccessToken> slow = ExchangeAssertion(endpoint.Url(), *jwt, kT0, quick);
  REQUIRE_FALSE(slow.has_value());
  CHECK(slow.error().code == Error::Code::kUnavailable);
  CHECK(slow.error().message.find(signature.substr(0, 20)) == std::string::npos);
}

TEST_CASE("token cache: reuses, refreshes before expiry, keeps keys apart") {
  TokenEndpoint endpoint;
  GoogleTokenCache cache;  // refresh 5 min early
  const TargetAuth auth = ServiceAccountAuth(endpoint.Url());

  Result<Secret> first = cache.Token(auth, kT0);
  REQUIRE(first.has_value());
  CHECK(first->Reveal() == "ya29.token-1");
  CHECK(cache.Token(auth, kT0 + 1000)->Reveal() == "ya29.token-1");
  CHECK(cache.Token(auth, kT0 + (3599 - 301) * 1000LL)->Reveal() == "ya29.token-1");
  CHECK(endpoint.requests() == 1);
  // Inside the 5-minute margin: a new token, before the old one expired.
  CHECK(cache.Token(auth, kT0 + (3599 - 299) * 1000LL)->Reveal() == "ya29.token-2");
  CHECK(endpoint.requests() == 2);

  // Another key is another entry.
  TargetAuth other = auth;
  EVP_PKEY* key = EVP_RSA_gen(2048);
  REQUIRE(key != nullptr);
  other.google_service_account_json = Secret(KeyJson(PemPair(key).private_pem));
  EVP_PKEY_free(key);
  CHECK(cache.Token(other, kT0)->Reveal() == "ya29.token-3");
  CHECK(cache.Token(auth, kT0 + (3599 - 299) * 1000LL)->Reveal() == "ya29.token-2");
  CHECK(endpoint.requests() == 3);

  // A short-lived token is refreshed at half its lifetime.
  GoogleTokenCache short_cache;
  endpoint.set_expires_in(10);
  CHECK(short_cache.Token(auth, kT0)->Reveal() == "ya29.token-4");
  CHECK(short_cache.Token(auth, kT0 + 4900)->Reveal() == "ya29.token-4");
  CHECK(short_cache.Token(auth, kT0 + 5000)->Reveal() == "ya29.token-5");
}

TEST_CASE("token cache: the token URL defaults to the key file's token_uri") {
  TokenEndpoint endpoint;
  GoogleTokenCache cache;
  TargetAuth auth;
  auth.mode = AuthMode::kGoogleServiceAccount;
  auth.google_service_account_json = Secret(KeyJson(RsaPair().private_pem, endpoint.Url()));
  Result<Secret> token = cache.Token(auth, kT0);
  REQUIRE(token.has_value());
  CHECK(endpoint.requests() == 1);
}

TEST_CASE("token cache: failures back off, doubling, and a valid old token is kept") {
  TokenEndpoint endpoint;
  TokenCacheOptions options;
  options.backoff_initial = 5s;
  options.backoff_max = 20s;
  GoogleTokenCache cache(options);
  const TargetAuth auth = ServiceAccountAuth(endpoint.Url());
  const std::string pem_body = RsaPair().private_pem.substr(40, 40);

  endpoint.set_mode(TokenEndpoint::Mode::kInvalidGrant);
  Result<Secret> failed = cache.Token(auth, kT0);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().message ==
        "service-account token: token endpoint answered HTTP 400: invalid_grant: Invalid JWT "
        "Signature.");
  CHECK(failed.error().message.find(pem_body) == std::string::npos);
  CHECK(endpoint.requests() == 1);
  // Within the backoff: the remembered error, no request.
  Result<Secret> backing_off = cache.Token(auth, kT0 + 4000);
  REQUIRE_FALSE(backing_off.has_value());
  CHECK(backing_off.error().message.find("invalid_grant") != std::string::npos);
  CHECK(backing_off.error().message.find("next attempt in 1 s") != std::string::npos);
  CHECK(endpoint.requests() == 1);
  // After 5 s one more try, then 10 s, then 20 s (the cap), then 20 s again.
  CHECK_FALSE(cache.Token(auth, kT0 + 5000).has_value());
  CHECK(endpoint.requests() == 2);
  CHECK_FALSE(cache.Token(auth, kT0 + 14'999).has_value());
  CHECK(endpoint.requests() == 2);
  CHECK_FALSE(cache.Token(auth, kT0 + 15'000).has_value());
  CHECK(endpoint.requests() == 3);
  CHECK_FALSE(cache.Token(auth, kT0 + 35'000).has_value());
  CHECK(endpoint.requests() == 4);
  CHECK_FALSE(cache.Token(auth, kT0 + 54'999).has_value());
  CHECK(endpoint.requests() == 4);

  // Recovery resets the backoff.
  endpoint.set_mode(TokenEndpoint::Mode::kOk);
  Result<Secret> recovered = cache.Token(auth, kT0 + 55'000);
  REQUIRE(recovered.has_value());
  CHECK(endpoint.requests() == 5);
  const std::string token = recovered->Reveal();

  // A failed refresh inside the margin still hands out the old, unexpired token.
  endpoint.set_mode(TokenEndpoint::Mode::kInvalidGrant);
  const int64_t in_margin = kT0 + 55'000 + (3599 - 100) * 1000LL;
  Result<Secret> kept = cache.Token(auth, in_margin);
  REQUIRE(kept.has_value());
  CHECK(kept->Reveal() == token);
  CHECK(endpoint.requests() == 6);
  // Past its expiry it is not handed out.
  CHECK_FALSE(cache.Token(auth, kT0 + 55'000 + 3600 * 1000LL).has_value());
}

TEST_CASE("token cache: concurrent callers share one exchange") {
  TokenEndpoint endpoint;
  endpoint.set_delay(200ms);
  GoogleTokenCache cache;
  const TargetAuth auth = ServiceAccountAuth(endpoint.Url());
  std::vector<std::string> tokens(4);
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < tokens.size(); ++i) {
      threads.emplace_back([&, i] {
        Result<Secret> token = cache.Token(auth, kT0);
        tokens[i] = token ? token->Reveal() : token.error().message;
      });
    }
  }
  for (const std::string& token : tokens) {
    CHECK(token == "ya29.token-1");
  }
  CHECK(endpoint.requests() == 1);
}

TEST_CASE("token cache: a bad key file fails without quoting it") {
  GoogleTokenCache cache;
  TargetAuth auth;
  auth.mode = AuthMode::kGoogleServiceAccount;
  auth.google_service_account_json =
      Secret(R"({"type":"service_account","private_key":"SECRETPEM"})");
  auth.token_url = "http://127.0.0.1:1/token";
  Result<Secret> token = cache.Token(auth, kT0);
  REQUIRE_FALSE(token.has_value());
  CHECK(token.error().message == "service-account token: service-account key has no client_email");
}

}  // namespace
}  // namespace modelpulse::collector
