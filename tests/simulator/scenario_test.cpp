#include "simulator/internal/scenario.h"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/clock.h"
#include "simulator/internal/rate_limiter.h"
#include "simulator/simulator.h"

namespace modelpulse::simulator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

Error ParseError(const std::string& text) {
  auto result = ParseScenario(text, "s.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == Error::Code::kParse);
  return result.error();
}

TEST_CASE("a minimal scenario gets defaults") {
  auto scenario = ParseScenario("endpoints:\n  - name: a\n", "s.yaml");
  REQUIRE(scenario.has_value());
  REQUIRE(scenario->endpoints.size() == 1);
  const auto& ep = scenario->endpoints[0];
  CHECK(ep.protocol == "openai");
  CHECK(ep.phases.size() == 1);
  CHECK_FALSE(ep.ratelimit.has_value());
  CHECK(scenario->seed == 42);
}

TEST_CASE("a full scenario is read") {
  auto scenario = ParseScenario(R"(seed: 7
hang_cap: 2s
endpoints:
  - name: east
    protocol: openai
    api_key: sk-sim
    first_token_ms: {distribution: normal, mean: 350, stddev: 60, min: 50}
    inter_token_ms: 15
    output_tokens: {distribution: uniform, min: 4, max: 12}
    ratelimit: {requests: 120, tokens: 40000, window: 60s}
    phases:
      - {name: healthy, duration: 300ms}
      - name: throttling
        duration: 1m
        errors: [{kind: rate_limit, probability: 0.6}, {kind: hang, probability: 0.1}]
        first_token_ms: {distribution: lognormal, median: 900, sigma: 0.5}
      - {name: recovery}
)",
                                "s.yaml");
  REQUIRE(scenario.has_value());
  CHECK(scenario->seed == 7);
  CHECK(scenario->hang_cap == seconds(2));
  const auto& ep = scenario->endpoints[0];
  CHECK(ep.api_key == "sk-sim");
  CHECK(ep.first_token_ms.kind == Distribution::Kind::kNormal);
  CHECK(ep.first_token_ms.min == 50);
  CHECK(ep.inter_token_ms.value == 15);
  REQUIRE(ep.ratelimit.has_value());
  CHECK(ep.ratelimit->requests == 120);
  CHECK(ep.ratelimit->window == seconds(60));
  REQUIRE(ep.phases.size() == 3);
  CHECK(ep.phases[0].duration == milliseconds(300));
  REQUIRE(ep.phases[1].errors.size() == 2);
  CHECK(ep.phases[1].errors[0].kind == Behaviour::kRateLimit);
  CHECK(ep.phases[1].errors[1].kind == Behaviour::kHang);
  REQUIRE(ep.phases[1].first_token_ms.has_value());
  CHECK(ep.phases[1].first_token_ms->kind == Distribution::Kind::kLogNormal);
  CHECK_FALSE(ep.phases[2].duration.has_value());
}

TEST_CASE("scenario errors name file:line:column, 1-based") {
  SUBCASE("unknown key") {
    const auto e = ParseError("endpoints:\n  - name: a\n    colour: red\n");
    CHECK(e.location == "s.yaml:3:5");
    CHECK(e.message.find("colour") != std::string::npos);
  }
  SUBCASE("unknown distribution") {
    const auto e = ParseError(
        "endpoints:\n  - name: a\n    first_token_ms: {distribution: gamma, value: 1}\n");
    CHECK(e.location == "s.yaml:3:36");
    CHECK(e.message.find("gamma") != std::string::npos);
  }
  SUBCASE("a field that does not fit the distribution") {
    const auto e = ParseError(
        "endpoints:\n  - name: a\n    first_token_ms: {distribution: constant, mean: 1}\n");
    CHECK(e.location == "s.yaml:3:46");
  }
  SUBCASE("negative duration") {
    const auto e = ParseError(
        "endpoints:\n  - name: a\n    phases:\n      - {name: x, duration: -5s}\n      - {}\n");
    CHECK(e.location == "s.yaml:4:29");
  }
  SUBCASE("negative latency") {
    const auto e = ParseError("endpoints:\n  - name: a\n    inter_token_ms: -3\n");
    CHECK(e.location == "s.yaml:3:21");
  }
  SUBCASE("unknown error kind") {
    const auto e = ParseError(
        "endpoints:\n  - name: a\n    phases:\n      - errors: [{kind: gremlins, probability: "
        "1}]\n");
    CHECK(e.location == "s.yaml:4:25");
    CHECK(e.message.find("rate_limit") != std::string::npos);
  }
  SUBCASE("probabilities over 1") {
    const auto e = ParseError(
        "endpoints:\n  - name: a\n    phases:\n      - errors: [{kind: hang, probability: 0.7}, "
        "{kind: server_error_500, probability: 0.7}]\n");
    CHECK(e.location.rfind("s.yaml:4:", 0) == 0);
  }
  SUBCASE("a phase before the last without duration") {
    const auto e =
        ParseError("endpoints:\n  - name: a\n    phases:\n      - {name: x}\n      - {}\n");
    CHECK(e.location == "s.yaml:4:9");
  }
  SUBCASE("duplicate endpoint") {
    const auto e = ParseError("endpoints:\n  - name: a\n  - name: a\n");
    CHECK(e.location == "s.yaml:3:11");
  }
  SUBCASE("unknown protocol") {
    const auto e = ParseError("endpoints:\n  - name: a\n    protocol: smoke-signals\n");
    CHECK(e.location == "s.yaml:3:15");
  }
  SUBCASE("YAML syntax") {
    const auto e = ParseError("endpoints:\n  - name: [a\n");
    CHECK(e.location.rfind("s.yaml:", 0) == 0);
  }
}

TEST_CASE("Start reports a bad scenario file as kParse with its path and position") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mp_sim_scn_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "bad.yaml").string();
  std::ofstream(path) << "seed: 1\nendpoints:\n  - name: a\n    phases: [{errors: 3}]\n";
  const SystemClock clock;
  auto started = Simulator::Start({.scenario_path = path}, clock);
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code == Error::Code::kParse);
  CHECK(started.error().location == path + ":4:23");
  auto missing = Simulator::Start({.scenario_path = (dir / "none.yaml").string()}, clock);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == Error::Code::kIo);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Go-style durations as in x-ratelimit-reset headers") {
  using std::chrono::microseconds;
  CHECK(FormatGoDuration(microseconds(0)) == "0s");
  CHECK(FormatGoDuration(milliseconds(120)) == "120ms");
  CHECK(FormatGoDuration(microseconds(7440)) == "7.44ms");
  CHECK(FormatGoDuration(milliseconds(1500)) == "1.5s");
  CHECK(FormatGoDuration(seconds(360)) == "6m0s");
  CHECK(FormatGoDuration(milliseconds(179560)) == "2m59.56s");
  CHECK(FormatGoDuration(seconds(3600)) == "1h0m0s");
}

TEST_CASE("draws stay within bounds and repeat with the seed") {
  Distribution normal{
      .kind = Distribution::Kind::kNormal, .mean = 100, .stddev = 80, .min = 50, .max = 150};
  std::mt19937_64 a(5);
  std::mt19937_64 b(5);
  for (int i = 0; i < 1000; ++i) {
    const double x = Draw(normal, a);
    CHECK(x >= 50);
    CHECK(x <= 150);
    CHECK(x == Draw(normal, b));
  }
  Distribution uniform{.kind = Distribution::Kind::kUniform, .min = 4, .max = 12};
  for (int i = 0; i < 1000; ++i) {
    const double x = Draw(uniform, a);
    CHECK(x >= 4);
    CHECK(x <= 12);
  }
}

TEST_CASE("rate-limit buckets count down, refuse, and refill over the window") {
  const ManualClock clock(0);
  const Clock::MonotonicTime t0 = clock.MonotonicNow();
  RateLimiter limiter(RateLimitSpec{.requests = 3, .tokens = 100, .window = seconds(60)}, t0);
  auto d = limiter.Admit(t0, 10);
  CHECK(d.verdict == RateLimiter::Verdict::kAdmitted);
  REQUIRE(d.after.requests.has_value());
  CHECK(d.after.requests->limit == 3);
  CHECK(d.after.requests->remaining == 2);
  CHECK(d.after.requests->reset == seconds(20));  // one request of three refills in a third
  CHECK(d.after.tokens->remaining == 90);
  CHECK(limiter.Admit(t0, 10).after.requests->remaining == 1);
  CHECK(limiter.Admit(t0, 10).after.requests->remaining == 0);
  d = limiter.Admit(t0, 10);
  CHECK(d.verdict == RateLimiter::Verdict::kRequestsExhausted);
  CHECK(d.retry_after == seconds(20));
  CHECK(d.after.tokens->remaining == 70);  // a refused request takes nothing
  // Twenty seconds later one request is back.
  d = limiter.Admit(t0 + seconds(20), 10);
  CHECK(d.verdict == RateLimiter::Verdict::kAdmitted);
  CHECK(d.after.requests->remaining == 0);
  // A full window after the last draw, everything is back.
  const auto full = limiter.Peek(t0 + seconds(80));
  CHECK(full.requests->remaining == 3);
  CHECK(full.requests->reset == seconds(0));
  CHECK(full.tokens->remaining == 100);
  // Tokens run out on their own.
  d = limiter.Admit(t0 + seconds(80), 95);
  CHECK(d.verdict == RateLimiter::Verdict::kAdmitted);
  d = limiter.Admit(t0 + seconds(80), 10);
  CHECK(d.verdict == RateLimiter::Verdict::kTokensExhausted);
}

}  // namespace
}  // namespace modelpulse::simulator

namespace modelpulse::simulator {
namespace {

TEST_CASE("the shipped scenarios load") {
  const auto dir = std::filesystem::path(MODELPULSE_SOURCE_ROOT) / "config" / "scenarios";
  for (const char* name : {"demo.yaml", "test.yaml"}) {
    CAPTURE(name);
    auto scenario = LoadScenario((dir / name).string());
    if (!scenario)
      FAIL(scenario.error().ToString());
  }
  auto demo = LoadScenario((dir / "demo.yaml").string());
  REQUIRE(demo.has_value());
  REQUIRE(demo->endpoints.size() == 7);
  CHECK(demo->endpoints[1].name == "azure-east");
  CHECK(demo->endpoints[1].protocol == "azure");
  REQUIRE(demo->endpoints[1].phases.size() == 4);
  CHECK(demo->endpoints[1].phases[0].duration == std::chrono::seconds(60));
}

}  // namespace
}  // namespace modelpulse::simulator
