// The vertex and gemini protocols over loopback HTTP: the service-account token endpoint with
// JWTs this test signs with a key pair it makes (OpenSSL), tokens that expire, alt=sse framing,
// the streamed JSON array, Google's error bodies for every kind, and API-key auth.

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/simulator/cloud_test_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::json;
using testing::CheckRefused;
using testing::Send;
using testing::StartScenario;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr const char* kEmail = "probe@test-project.iam.gserviceaccount.com";
constexpr const char* kVertexPath =
    "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.0-flash:";

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Key NewRsaKey() { return Key(EVP_RSA_gen(2048)); }

std::string PublicPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(length));
  BIO_free(bio);
  return pem;
}

// base64url without padding, written here rather than borrowed from the simulator.
std::string B64Url(const std::string& in) {
  std::string b64(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  b64.resize(static_cast<size_t>(n));
  while (!b64.empty() && b64.back() == '=')
    b64.pop_back();
  for (auto& c : b64)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  return b64;
}

std::string SignJwt(EVP_PKEY* key, const Json& claims) {
  const std::string signing_input =
      B64Url(Json{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "test-key"}}.dump()) + "." +
      B64Url(claims.dump());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t length = 0;
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1);
  REQUIRE(EVP_DigestSign(ctx, nullptr, &length,
                         reinterpret_cast<const unsigned char*>(signing_input.data()),
                         signing_input.size()) == 1);
  std::string signature(length, '\0');
  REQUIRE(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                         reinterpret_cast<const unsigned char*>(signing_input.data()),
                         signing_input.size()) == 1);
  signature.resize(length);
  EVP_MD_CTX_free(ctx);
  return signing_input + "." + B64Url(signature);
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json Claims(int64_t lifetime = 3600) {
  return Json{{"iss", kEmail},
              {"scope", "https://www.googleapis.com/auth/cloud-platform"},
              {"aud", "https://oauth2.googleapis.com/token"},
              {"iat", Now()},
              {"exp", Now() + lifetime}};
}

testing::Exchange PostToken(
    int port, const std::string& mount, const std::string& jwt,
    const std::string& grant = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
  return Send(port, "/" + mount + "/token", "grant_type=" + grant + "&assertion=" + jwt);
}

std::string GenerateBody() {
  return R"({"contents":[{"role":"user","parts":[{"text":"Say OK"}]}],"generationConfig":{"maxOutputTokens":16}})";
}

Json ErrorOf(const testing::Exchange& ex) {
  const Json body = Json::parse(ex.body, nullptr, false);
  return body.is_object() && body.contains("error") ? body["error"] : Json();
}

bool HasDetail(const Json& error, const std::string& type, const std::string& needle = "") {
  for (const auto& d : error.value("details", Json::array())) {
    if (d.value("@type", "") == "type.googleapis.com/google.rpc." + type &&
        d.dump().find(needle) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// `latency_ms` is the vertex endpoint's first_token_ms and 0 (no delay at all) for a simulator
// on a ManualClock, which would hold any delay until the test moves it.
std::string VertexScenario(const std::string& pem_path, const std::string& lifetime,
                           int latency_ms = 5) {
  return R"(
hang_cap: 2s
endpoints:
  - name: vx
    protocol: vertex
    first_token_ms: )" +
         std::to_string(latency_ms) + R"(
    inter_token_ms: )" +
         std::to_string(latency_ms > 0 ? 1 : 0) + R"(
    output_tokens: 6
    options:
      service_account_public_key: )" +
         pem_path + R"(
      service_account_email: )" +
         kEmail + R"(
      token_lifetime: )" +
         lifetime + R"(
      access_token: ya29.fixed
  - name: gm
    protocol: gemini
    api_key: AIza-test
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 6
)";
}

TEST_CASE("vertex: the token endpoint exchanges a signed JWT for a token that later expires") {
  TempDir dir;
  const Key key = NewRsaKey();
  dir.Write("sa.pub.pem", PublicPem(key.get()));
  // A relative path: resolved against the scenario file's folder.
  // Token lifetimes run on the simulator's clock; the JWT's own iat/exp are checked on wall time,
  // so the clock starts at the real time.
  ManualClock clock(SystemClock().NowUnixMillis());
  auto sim = StartScenario(dir, VertexScenario("sa.pub.pem", "1500ms", 0),
                           SimulatorOptions{}.worker_threads, clock);
  const int port = sim->port();

  auto ex = PostToken(port, "vx", SignJwt(key.get(), Claims()));
  REQUIRE(ex.status == 200);
  const Json token = Json::parse(ex.body);
  CHECK(token["token_type"] == "Bearer");
  CHECK(token["expires_in"] == 2);
  const std::string access = token["access_token"].get<std::string>();

  ex = Send(port, std::string("/vx") + kVertexPath + "generateContent", GenerateBody(),
            {{"Authorization", "Bearer " + access}});
  CHECK(ex.status == 200);

  // Accepted until it expires, then 401 ACCESS_TOKEN_EXPIRED.
  clock.Advance(1499ms);
  ex = Send(port, std::string("/vx") + kVertexPath + "generateContent", GenerateBody(),
            {{"Authorization", "Bearer " + access}});
  CHECK(ex.status == 200);
  clock.Advance(1ms);
  ex = Send(port, std::string("/vx") + kVertexPath + "generateContent", GenerateBody(),
            {{"Authorization", "Bearer " + access}});
  REQUIRE(ex.status == 401);
  CHECK(ErrorOf(ex)["status"] == "UNAUTHENTICATED");
  CHECK(HasDetail(ErrorOf(ex), "ErrorInfo", "ACCESS_TOKEN_EXPIRED"));
  CHECK(ex.Header("www-authenticate").find("invalid_token") != std::string::npos);

  // The fixed token does not expire.
  ex = Send(port, std::string("/vx") + kVertexPath + "generateContent", GenerateBody(),
            {{"Authorization", "Bearer ya29.fixed"}});
  CHECK(ex.status == 200);
}

TEST_CASE("vertex: bad assertions get Google's OAuth errors") {
  TempDir dir;
  const Key key = NewRsaKey();
  const Key other = NewRsaKey();
  dir.Write("sa.pub.pem", PublicPem(key.get()));
  auto sim = StartScenario(dir, VertexScenario("sa.pub.pem", "1h"));
  const int port = sim->port();
  auto expect = [&](const testing::Exchange& ex, const std::string& error,
                    const std::string& description) {
    CHECK(ex.status == 400);
    const Json body = Json::parse(ex.body);
    CHECK(body["error"] == error);
    CHECK(body["error_description"].get<std::string>().find(description) != std::string::npos);
  };
  expect(PostToken(port, "vx", SignJwt(other.get(), Claims())), "invalid_grant",
         "Invalid JWT Signature.");
  std::string tampered = SignJwt(key.get(), Claims());
  tampered[tampered.find('.') + 3] ^= 1;
  expect(PostToken(port, "vx", tampered), "invalid_grant", "Invalid JWT Signature.");
  Json claims = Claims();
  claims["iss"] = "someone@else.iam.gserviceaccount.com";
  expect(PostToken(port, "vx", SignJwt(key.get(), claims)), "invalid_grant", "account not found");
  claims = Claims();
  claims["exp"] = Now() - 10;
  claims["iat"] = Now() - 100;
  expect(PostToken(port, "vx", SignJwt(key.get(), claims)), "invalid_grant", "short-lived");
  expect(PostToken(port, "vx", SignJwt(key.get(), Claims(7200))), "invalid_grant", "short-lived");
  claims = Claims();
  claims["aud"] = "https://example.com/token";
  expect(PostToken(port, "vx", SignJwt(key.get(), claims)), "invalid_grant", "audience");
  claims = Claims();
  claims.erase("scope");
  expect(PostToken(port, "vx", SignJwt(key.get(), claims)), "invalid_scope", "scope");
  expect(PostToken(port, "vx", SignJwt(key.get(), Claims()), "client_credentials"),
         "unsupported_grant_type", "client_credentials");
  expect(PostToken(port, "vx", "not-a-jwt"), "invalid_grant", "Invalid JWT");

  // This endpoint's own URL is an accepted audience too.
  claims = Claims();
  claims["aud"] = "http://127.0.0.1:" + std::to_string(port) + "/vx/token";
  CHECK(PostToken(port, "vx", SignJwt(key.get(), claims)).status == 200);
}

TEST_CASE("vertex: missing and unknown bearer tokens are 401 UNAUTHENTICATED") {
  TempDir dir;
  const Key key = NewRsaKey();
  dir.Write("sa.pub.pem", PublicPem(key.get()));
  auto sim = StartScenario(dir, VertexScenario("sa.pub.pem", "1h"));
  auto ex = Send(sim->port(), std::string("/vx") + kVertexPath + "generateContent", GenerateBody());
  CHECK(ex.status == 401);
  CHECK(HasDetail(ErrorOf(ex), "ErrorInfo", "CREDENTIALS_MISSING"));
  ex = Send(sim->port(), std::string("/vx") + kVertexPath + "generateContent", GenerateBody(),
            {{"Authorization", "Bearer ya29.never-issued"}});
  CHECK(ex.status == 401);
  CHECK(ErrorOf(ex)["message"].get<std::string>().find("invalid authentication credentials") !=
        std::string::npos);
}

TEST_CASE("gemini: x-goog-api-key or ?key=, Google's answers to a wrong or missing key") {
  TempDir dir;
  const Key key = NewRsaKey();
  dir.Write("sa.pub.pem", PublicPem(key.get()));
  auto sim = StartScenario(dir, VertexScenario("sa.pub.pem", "1h"));
  const std::string path = "/gm/v1beta/models/gemini-2.0-flash:generateContent";
  auto ex = Send(sim->port(), path, GenerateBody(), {{"x-goog-api-key", "AIza-test"}});
  REQUIRE(ex.status == 200);
  const Json body = Json::parse(ex.body);
  CHECK(body["candidates"][0]["content"]["parts"][0]["text"] == "OK lorem ipsum dolor sit amet");
  CHECK(body["candidates"][0]["finishReason"] == "STOP");
  CHECK(body["usageMetadata"]["candidatesTokenCount"] == 6);
  CHECK_FALSE(body["usageMetadata"].contains("trafficType"));
  CHECK(ex.Header("x-gemini-service-tier") == "standard");
  CHECK(ex.Header("server-timing").rfind("gfet4t7; dur=", 0) == 0);

  CHECK(Send(sim->port(), path + "?key=AIza-test", GenerateBody()).status == 200);
  ex = Send(sim->port(), path, GenerateBody(), {{"x-goog-api-key", "AIza-wrong"}});
  CHECK(ex.status == 400);
  CHECK(ErrorOf(ex)["status"] == "INVALID_ARGUMENT");
  CHECK(HasDetail(ErrorOf(ex), "ErrorInfo", "API_KEY_INVALID"));
  ex = Send(sim->port(), path, GenerateBody());
  CHECK(ex.status == 403);
  CHECK(ErrorOf(ex)["status"] == "PERMISSION_DENIED");
  // Routes: a model with '/' in it, another method or no model is Google's 404.
  for (const char* other :
       {"/gm/v1beta/models/a/b:generateContent", "/gm/v1beta/models/gemini-2.0-flash:countTokens",
        "/gm/v1beta/models/:generateContent", "/gm/v1beta/gemini:generateContent"}) {
    CAPTURE(other);
    ex = Send(sim->port(), other, GenerateBody(), {{"x-goog-api-key", "AIza-test"}});
    CHECK(ex.status == 404);
  }
}

TEST_CASE(
    "vertex: alt=sse chunks end in \\r\\n\\r\\n, finishReason only in the last, no terminator") {
  TempDir dir;
  auto sim = StartScenario(dir, R"(
endpoints:
  - name: vx
    protocol: vertex
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 6
)");
  auto ex = Send(sim->port(), std::string("/vx") + kVertexPath + "streamGenerateContent?alt=sse",
                 GenerateBody());
  REQUIRE(ex.status == 200);
  CHECK(ex.Header("Content-Type") == "text/event-stream");
  std::vector<Json> chunks;
  size_t at = 0;
  while (at < ex.body.size()) {
    const size_t end = ex.body.find("\r\n\r\n", at);
    REQUIRE(end != std::string::npos);
    const std::string event = ex.body.substr(at, end - at);
    REQUIRE(event.rfind("data: ", 0) == 0);
    chunks.push_back(Json::parse(event.substr(6)));
    at = end + 4;
  }
  REQUIRE(chunks.size() == 6);
  std::string text;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& candidate = chunks[i]["candidates"][0];
    text += candidate["content"]["parts"][0]["text"].get<std::string>();
    CHECK(candidate.contains("finishReason") == (i + 1 == chunks.size()));
    CHECK(chunks[i]["usageMetadata"].contains("promptTokenCount"));
    CHECK(chunks[i]["usageMetadata"]["trafficType"] == "ON_DEMAND");
  }
  CHECK(text == "OK lorem ipsum dolor sit amet");
  CHECK(chunks.back()["usageMetadata"]["candidatesTokenCount"] == 6);

  // Without alt=sse: one JSON array, streamed.
  ex =
      Send(sim->port(), std::string("/vx") + kVertexPath + "streamGenerateContent", GenerateBody());
  REQUIRE(ex.status == 200);
  const Json array = Json::parse(ex.body);
  REQUIRE(array.is_array());
  CHECK(array.size() == 6);
  CHECK(array.back()["candidates"][0]["finishReason"] == "STOP");

  // The OpenAI-compatible route.
  ex = Send(sim->port(),
            "/vx/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions",
            R"({"model":"google/gemini-2.0-flash","messages":[{"role":"user","content":"hi"}]})");
  REQUIRE(ex.status == 200);
  CHECK(Json::parse(ex.body)["object"] == "chat.completion");
}

TEST_CASE("vertex and gemini: each error kind as Google sends it") {
  struct Case {
    const char* kind;
    int status;
    const char* code;
    const char* detail;  // a details @type that must be there, or ""
    const char* needle;
  };
  const Case cases[] = {
      {"rate_limit", 429, "RESOURCE_EXHAUSTED", "QuotaFailure", "PerMinute"},
      {"quota_per_day", 429, "RESOURCE_EXHAUSTED", "QuotaFailure", "PerDay"},
      {"insufficient_quota", 429, "RESOURCE_EXHAUSTED", "QuotaFailure", "PerDay"},
      {"overloaded_503", 503, "UNAVAILABLE", "", ""},
      {"server_error_500", 500, "INTERNAL", "", ""},
      {"unauthorized_401", 401, "UNAUTHENTICATED", "ErrorInfo", "ACCESS_TOKEN_EXPIRED"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.kind);
    TempDir dir;
    auto sim = StartScenario(dir, std::string(R"(
endpoints:
  - name: vx
    protocol: vertex
    first_token_ms: 1
    phases: [{errors: [{kind: )") + c.kind +
                                      R"(, probability: 1}]}]
  - name: gm
    protocol: gemini
    first_token_ms: 1
    phases: [{errors: [{kind: )" + c.kind +
                                      ", probability: 1}]}]\n");
    auto ex =
        Send(sim->port(), std::string("/vx") + kVertexPath + "generateContent", GenerateBody());
    CHECK(ex.status == c.status);
    const Json error = ErrorOf(ex);
    CHECK(error["code"] == c.status);
    CHECK(error["status"] == c.code);
    if (*c.detail != '\0')
      CHECK(HasDetail(error, c.detail, c.needle));
    if (c.status == 429)
      CHECK(HasDetail(error, "RetryInfo", "retryDelay"));
    ex = Send(sim->port(), "/gm/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
              GenerateBody());
    if (std::string(c.kind) == "unauthorized_401") {
      CHECK(ex.status == 400);  // Gemini answers a bad key with 400 API_KEY_INVALID
      CHECK(HasDetail(ErrorOf(ex), "ErrorInfo", "API_KEY_INVALID"));
    } else {
      CHECK(ex.status == c.status);
      CHECK(ErrorOf(ex)["status"] == c.code);
    }
  }
}

TEST_CASE("vertex: in-stream failures and broken streams") {
  auto stream_with = [](const std::string& kind) {
    TempDir dir;
    auto sim = StartScenario(dir, R"(
endpoints:
  - name: vx
    protocol: vertex
    first_token_ms: 1
    inter_token_ms: 1
    output_tokens: 6
    phases: [{errors: [{kind: )" + kind +
                                      ", probability: 1}]}]\n");
    auto ex = Send(sim->port(), std::string("/vx") + kVertexPath + "streamGenerateContent?alt=sse",
                   GenerateBody());
    CHECK(ex.status == 200);
    return ex.body;
  };
  SUBCASE("exception_midstream: text, then a RESOURCE_EXHAUSTED error object") {
    const std::string body = stream_with("exception_midstream");
    CHECK(body.find("OK") != std::string::npos);
    CHECK(body.find(R"("status":"RESOURCE_EXHAUSTED")") != std::string::npos);
    CHECK(body.find("finishReason") == std::string::npos);
  }
  SUBCASE("error_in_200: an INTERNAL error object and no text") {
    const std::string body = stream_with("error_in_200");
    CHECK(body.find(R"("status":"INTERNAL")") != std::string::npos);
    CHECK(body.find("candidates") == std::string::npos);
  }
  SUBCASE("truncated_stream: text without the finishReason chunk") {
    const std::string body = stream_with("truncated_stream");
    CHECK(body.find("OK") != std::string::npos);
    CHECK(body.find("finishReason") == std::string::npos);
  }
  SUBCASE("malformed_json: the first chunk is not JSON") {
    const std::string body = stream_with("malformed_json");
    const std::string first = body.substr(6, body.find("\r\n\r\n") - 6);
    CHECK(Json::parse(first, nullptr, false).is_discarded());
  }
}

TEST_CASE("vertex: scenario checks (options, key files, kinds)") {
  TempDir dir;
  CheckRefused(dir, R"(
endpoints:
  - name: vx
    protocol: vertex
    options: {service_account_public_key: missing.pem, service_account_email: a@b}
)",
               "cannot read service_account_public_key");
  CheckRefused(dir, R"(
endpoints:
  - name: vx
    protocol: vertex
    phases: [{errors: [{kind: model_not_ready, probability: 1}]}]
)",
               "no rendering of error kind 'model_not_ready'");
  auto bad = Simulator::Start({.scenario_path = dir.Write("c.yaml", R"(
endpoints:
  - name: gm
    protocol: gemini
    options: {access_token: x}
)")},
                              testing::RealClock());
  REQUIRE_FALSE(bad);
}

}  // namespace
}  // namespace modelpulse::simulator
