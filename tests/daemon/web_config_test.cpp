#include "daemon/web_config.h"

#include <doctest/doctest.h>

#include <map>
#include <string>

namespace modelpulse::daemon {
namespace {

// bcrypt (cost 4, to keep the test fast) of "hunter2", made with libxcrypt through Python's crypt.
constexpr const char* kHunter2 = "$2y$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm";

std::string Basic(const std::string& base64) { return "Basic " + base64; }

std::string ErrorOf(const std::string& yaml) {
  auto parsed = ParseWebConfig(yaml, "/etc/modelpulse/web.yml");
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error().ToString();
}

TEST_CASE("web config: the exporter-toolkit example parses, paths relative to the file") {
  auto parsed = ParseWebConfig(std::string(R"(
tls_server_config:
  cert_file: tls/server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS13
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
basic_auth_users:
  alice: )") + kHunter2 + "\n",
                               "/etc/modelpulse/web.yml");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().ToString());
  REQUIRE(parsed->tls.has_value());
  CHECK(parsed->tls->cert_file == "/etc/modelpulse/tls/server.crt");
  CHECK(parsed->tls->key_file == "/abs/server.key");
  CHECK(parsed->tls->client_ca_file == "/etc/modelpulse/ca.pem");
  CHECK(parsed->tls->client_auth == WebConfig::ClientAuth::kRequireAndVerifyClientCert);
  CHECK(parsed->tls->min_version == WebConfig::kTls13);
  CHECK(parsed->tls->max_version == WebConfig::kTls13);
  CHECK(parsed->basic_auth_users.at("alice") == kHunter2);
  REQUIRE(parsed->headers.size() == 2);
  CHECK(parsed->headers[0].first == "X-Frame-Options");
}

TEST_CASE("web config: no certificate and no key means plain HTTP, an empty file too") {
  auto users_only =
      ParseWebConfig(std::string("basic_auth_users: {bob: ") + kHunter2 + "}\n", "web.yml");
  REQUIRE(users_only.has_value());
  CHECK_FALSE(users_only->tls.has_value());
  auto empty = ParseWebConfig("", "web.yml");
  REQUIRE(empty.has_value());
  CHECK(empty->basic_auth_users.empty());
  CHECK_FALSE(empty->tls.has_value());
}

TEST_CASE("web config: every problem is reported with file, line and column") {
  const std::string error = ErrorOf(
      "tls_server_config:\n"
      "  cert_file: a.crt\n"
      "  min_versoin: TLS12\n"
      "  max_version: TLS14\n"
      "basic_auth_users:\n"
      "  alice: plaintext-password\n"
      "http_server_config:\n"
      "  headers:\n"
      "    Server: modelpulse\n"
      "    X-Content-Type-Options: sniff\n"
      "rate_limit: {interval: 1s, burst: 2}\n");
  CHECK(error.find("/etc/modelpulse/web.yml:1:1: \"tls_server_config\": missing key_file") !=
        std::string::npos);
  CHECK(error.find("web.yml:3:3: unknown key \"min_versoin\"") != std::string::npos);
  CHECK(error.find("did you mean \"min_version\"") != std::string::npos);
  CHECK(error.find("web.yml:4:16: \"tls_server_config.max_version\": unknown TLS version "
                   "\"TLS14\"") != std::string::npos);
  CHECK(error.find("web.yml:6:10: basic_auth_users.alice: not a bcrypt hash") != std::string::npos);
  CHECK(error.find("plaintext-password") == std::string::npos);  // a secret stays out of logs
  CHECK(error.find("web.yml:9:5: HTTP header \"Server\" can not be configured") !=
        std::string::npos);
  CHECK(error.find("web.yml:10:29: invalid value for X-Content-Type-Options") != std::string::npos);
  CHECK(error.find("web.yml:11:1: unknown key \"rate_limit\"") != std::string::npos);
}

TEST_CASE("web config: unsupported exporter-toolkit keys and unsafe client auth are refused") {
  CHECK(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [X]\n")
            .find("web.yml:4:3: \"tls_server_config.cipher_suites\" is not supported") !=
        std::string::npos);
  CHECK(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n")
            .find("web.yml:4:3: \"tls_server_config\": client_ca_file is set but "
                  "client_auth_type is NoClientCert") != std::string::npos);
  CHECK(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                "  client_auth_type: RequireAndVerifyClientCert\n")
            .find("needs client_ca_file") != std::string::npos);
  CHECK(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                "  client_auth_type: Sometimes\n")
            .find("web.yml:4:21: \"tls_server_config.client_auth_type\": unknown client auth "
                  "type \"Sometimes\"") != std::string::npos);
  CHECK(ErrorOf("basic_auth_users: [alice]\n").find("web.yml:1:19:") != std::string::npos);
}

TEST_CASE("web config: the shipped example loads, and its user's password is the documented one") {
  auto loaded = LoadWebConfig(std::string(MODELPULSE_SOURCE_ROOT) + "/config/web-config.yml");
  REQUIRE_MESSAGE(loaded.has_value(), loaded.error().ToString());
  REQUIRE(loaded->tls.has_value());
  CHECK(loaded->tls->cert_file ==
        std::string(MODELPULSE_SOURCE_ROOT) + "/config/tls/modelpulse.crt");
  BasicAuth auth(loaded->basic_auth_users);
  CHECK(auth.Check(Basic("cHJvbWV0aGV1czpjaGFuZ2UtbWU=")));  // prometheus:change-me
}

TEST_CASE("bcrypt hash shape") {
  CHECK(IsBcryptHash(kHunter2));
  CHECK(IsBcryptHash("$2b$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"));
  CHECK_FALSE(IsBcryptHash("$2x$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm"));
  CHECK_FALSE(IsBcryptHash("$2y$03$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXVm"));
  CHECK_FALSE(IsBcryptHash("$2y$04$abcdefghijklmnopqrstuuV3duMsC0HpUex6N9qapiuOHHWkwRXV"));
  CHECK_FALSE(IsBcryptHash("$6$salt$hash"));
}

TEST_CASE(
    "basic auth: the right password passes, a wrong, unknown, missing or malformed one fails") {
  BasicAuth auth(std::map<std::string, std::string>{{"alice", kHunter2}});
  REQUIRE(auth.enabled());
  CHECK(auth.Check(Basic("YWxpY2U6aHVudGVyMg==")));        // alice:hunter2
  CHECK(auth.Check("basic YWxpY2U6aHVudGVyMg=="));         // the scheme is case-insensitive
  CHECK(auth.Check(Basic("YWxpY2U6aHVudGVyMg==")));        // a second time, from the cache
  CHECK_FALSE(auth.Check(Basic("YWxpY2U6aHVudGVyMw==")));  // alice:hunter3
  CHECK_FALSE(auth.Check(Basic("YWxpY2U6aHVudGVyMw==")));  // a cached failure stays one
  CHECK_FALSE(auth.Check(Basic("Ym9iOmh1bnRlcjI=")));      // bob:hunter2, no such user
  CHECK_FALSE(auth.Check(Basic("YWxpY2VodW50ZXIy")));      // "alicehunter2": no colon
  CHECK_FALSE(auth.Check(Basic("not base64!")));
  CHECK_FALSE(auth.Check(""));
  CHECK_FALSE(auth.Check("Bearer YWxpY2U6aHVudGVyMg=="));
  CHECK_FALSE(auth.Check(Basic("YWxpY2U6aHVudGVyMg")));  // padding missing
}

TEST_CASE("basic auth: without users every request passes") {
  BasicAuth auth(std::map<std::string, std::string>{});
  CHECK_FALSE(auth.enabled());
  CHECK(auth.Check(""));
}

}  // namespace
}  // namespace modelpulse::daemon
