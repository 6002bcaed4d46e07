#include "collector/internal/http_util.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse::collector {
namespace {

HttpHeaders Headers(std::initializer_list<std::pair<const char*, const char*>> items) {
  HttpHeaders headers;
  for (const auto& [name, value] : items) {
    headers.Add(name, value);
  }
  return headers;
}

constexpr int64_t kNov6_1994 = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT

TEST_CASE("HTTP-date in all three RFC 9110 forms") {
  CHECK(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT") == kNov6_1994);
  CHECK(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT") == kNov6_1994);
  CHECK(ParseHttpDate("Sun Nov  6 08:49:37 1994") == kNov6_1994);
  CHECK(ParseHttpDate("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480000);
  CHECK_FALSE(ParseHttpDate("yesterday").has_value());
  CHECK_FALSE(ParseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT").has_value());
  CHECK_FALSE(ParseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT").has_value());
}

TEST_CASE("retry-after: -ms first, then seconds (float), then HTTP-date") {
  struct Case {
    HttpHeaders headers;
    std::optional<double> seconds;
  };
  const int64_t now = kNov6_1994;
  const Case cases[] = {
      {Headers({{"retry-after-ms", "1500"}}), 1.5},
      {Headers({{"retry-after-ms", "120.5"}, {"retry-after", "9"}}), 0.1205},
      {Headers({{"retry-after", "20"}}), 20.0},
      {Headers({{"retry-after", "0.5"}}), 0.5},
      {Headers({{"retry-after", "Sun, 06 Nov 1994 08:50:07 GMT"}}), 30.0},
      {Headers({{"retry-after", "Sun, 06 Nov 1994 08:00:00 GMT"}}), 0.0},  // in the past
      {Headers({{"retry-after", "-3"}}), std::nullopt},
      {Headers({{"retry-after", "soon"}}), std::nullopt},
      {Headers({{"retry-after-ms", "junk"}, {"retry-after", "2"}}), 2.0},
      {Headers({}), std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.headers.items().empty() ? std::string("-") : c.headers.items().front().second);
    const std::optional<double> got = ParseRetryAfter(c.headers, now);
    REQUIRE(got.has_value() == c.seconds.has_value());
    if (got) {
      CHECK(*got == doctest::Approx(*c.seconds));
    }
  }
}

TEST_CASE("x-ratelimit headers: counts, Go-duration resets, Azure sentinels") {
  // protocols.md §1 recorded headers and §7 Groq resets.
  const HttpHeaders headers = Headers({{"x-ratelimit-limit-requests", "5000"},
                                       {"x-ratelimit-limit-tokens", "800000"},
                                       {"x-ratelimit-remaining-requests", "4999"},
                                       {"x-ratelimit-remaining-tokens", "799986"},
                                       {"x-ratelimit-reset-requests", "172.799999ms"},
                                       {"x-ratelimit-reset-tokens", "6m0s"}});
  RateLimit requests;
  RateLimit tokens;
  ReadOpenAIRateLimits(headers, requests, tokens);
  CHECK(requests.limit == 5000);
  CHECK(requests.remaining == 4999);
  CHECK(*requests.reset_seconds == doctest::Approx(0.172799999));
  CHECK(tokens.limit == 800000);
  CHECK(tokens.remaining == 799986);
  CHECK(*tokens.reset_seconds == doctest::Approx(360));

  RateLimit azure_requests;
  RateLimit azure_tokens;
  ReadOpenAIRateLimits(Headers({{"x-ratelimit-limit-tokens", "-1"},
                                {"x-ratelimit-remaining-tokens", "-1"},
                                {"x-ratelimit-reset-tokens", "0"},
                                {"x-ratelimit-remaining-requests", "237"},
                                {"x-ratelimit-reset-requests", "2m59.56s"}}),
                       azure_requests, azure_tokens);
  CHECK_FALSE(azure_tokens.limit.has_value());
  CHECK_FALSE(azure_tokens.remaining.has_value());
  CHECK(azure_tokens.reset_seconds == 0.0);
  CHECK(azure_requests.remaining == 237);
  CHECK_FALSE(azure_requests.limit.has_value());
  CHECK(*azure_requests.reset_seconds == doctest::Approx(179.56));
}

TEST_CASE("request id with and without the req_ prefix") {
  CHECK(ReadRequestId(Headers({{"x-request-id", "req_ca8197062dd44e208e21ceef70b46fce"}}),
                      {"x-request-id"}) == "req_ca8197062dd44e208e21ceef70b46fce");
  CHECK(ReadRequestId(Headers({{"x-request-id", "ca8197062dd44e208e21ceef70b46fce"}}),
                      {"x-request-id"}) == "ca8197062dd44e208e21ceef70b46fce");
  CHECK(ReadRequestId(Headers({{"request-id", "req_011C"}}), {"x-request-id", "request-id"}) ==
        "req_011C");
  CHECK(ReadRequestId(Headers({}), {"x-request-id"}).empty());
  CHECK(ReadRequestId(Headers({{"x-request-id", std::string(500, 'a').c_str()}}), {"x-request-id"})
            .size() == 128);
}

TEST_CASE("SanitizeText keeps errors short, printable and secret-free") {
  const std::string key = "sk-proj-ABCDEFGHIJKLMNOP";
  CHECK(SanitizeText("Incorrect API key provided: " + key + ". You can find your key", {key})
            .find("ABCDEFGHIJ") == std::string::npos);
  CHECK(SanitizeText("Incorrect API key provided: sk-abc***xyz.") ==
        "Incorrect API key provided: sk-<redacted>");
  CHECK(SanitizeText("header Authorization: Bearer tok_123456 rejected") ==
        "header Authorization: Bearer <redacted> rejected");
  CHECK(SanitizeText("custom secret value hunter22 leaked", {"hunter22"}) ==
        "custom secret value <redacted> leaked");
  CHECK(SanitizeText("failed for https://x.example/v1/models?key=AIzaSECRET#frag now") ==
        "failed for https://x.example/v1/models now");
  CHECK(SanitizeText("line\none\ttab\x01\x7f") == "line one tab??");
  CHECK(SanitizeText(std::string(1000, 'a')).size() == 200);
  CHECK(SanitizeText("bad \xff utf8") == "bad ? utf8");
  // A cut never splits a multi-byte character.
  std::string euros;
  for (int i = 0; i < 100; ++i) {
    euros += "\xE2\x82\xAC";
  }
  const std::string cut = SanitizeText(euros, {}, 200);
  CHECK(cut.size() == 198);
  CHECK(ContainsIgnoreCase("The Engine is currently OVERLOADED", "currently overloaded"));
}

}  // namespace
}  // namespace modelpulse::collector
