#include "common/duration.h"

#include <doctest/doctest.h>

#include <string>

#include "common/probe.h"

namespace modelpulse {

TEST_CASE("Prometheus durations parse and format round trip") {
  struct Case {
    const char* text;
    int64_t millis;
  };
  const Case cases[] = {{"0s", 0},          {"250ms", 250},          {"30s", 30000},
                        {"5m", 300000},     {"1h30m", 5400000},      {"1d", 86400000},
                        {"2w", 1209600000}, {"1h0m5s100ms", 3605100}};
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto parsed = ParsePromDuration(c.text);
    REQUIRE(parsed.has_value());
    CHECK(parsed->count() == c.millis);
  }
  CHECK(FormatPromDuration(Millis(5400000)) == "1h30m");
  CHECK(FormatPromDuration(Millis(3605100)) == "1h5s100ms");
  CHECK(FormatPromDuration(Millis(0)) == "0s");
}

TEST_CASE("Prometheus durations reject bad text") {
  for (std::string bad : {"", "5", "m", "5x", "1m1h", "5m5m", "-5m", "1.5h", "5 m"}) {
    CAPTURE(bad);
    auto parsed = ParsePromDuration(bad);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().message.find("duration") != std::string::npos);
  }
}

TEST_CASE("Go durations from rate-limit headers") {
  struct Case {
    const char* text;
    double seconds;
  };
  const Case cases[] = {{"1s", 1},
                        {"6m0s", 360},
                        {"0s", 0},
                        {"12ms", 0.012},
                        {"172.799999ms", 0.172799999},
                        {"7.44ms", 0.00744},
                        {"2m59.56s", 179.56},
                        {"1h2m3.5s", 3723.5},
                        {"20us", 20e-6},
                        {"20\xC2\xB5s", 20e-6},
                        {"5ns", 5e-9},
                        {"20", 20},
                        {"0.5", 0.5}};
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto parsed = ParseGoDuration(c.text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == doctest::Approx(c.seconds).epsilon(1e-12));
  }
  for (std::string bad : {"", "-1", "abc", "5x", "1.2.3s", "ms", "-5s"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseGoDuration(bad).has_value());
  }
}

TEST_CASE("Outcome names round trip") {
  for (Outcome outcome : kAllOutcomes) {
    auto back = OutcomeFromName(OutcomeName(outcome));
    REQUIRE(back.has_value());
    CHECK(*back == outcome);
  }
  CHECK(OutcomeName(Outcome::kQuotaExhausted) == "quota_exhausted");
  CHECK_FALSE(OutcomeFromName("nope").has_value());
}

}  // namespace modelpulse
