#include "daemon/target_health.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse::daemon {
namespace {

ProbeResult Probe(const std::string& target, Outcome outcome, int64_t start_ms) {
  ProbeResult result;
  result.target = target;
  result.outcome = outcome;
  result.start_unix_ms = start_ms;
  result.total_seconds = 0.25;
  result.http_status = outcome == Outcome::kOk ? 200 : 429;
  result.error = outcome == Outcome::kOk ? "" : "HTTP 429";
  return result;
}

TEST_CASE("target health: a change of outcome is reported once, not every probe") {
  TargetHealth health;
  // A target that starts healthy has nothing to report.
  CHECK_FALSE(health.Observe(Probe("a", Outcome::kOk, 1000)).has_value());
  CHECK_FALSE(health.Observe(Probe("a", Outcome::kOk, 2000)).has_value());
  // ok -> throttled: one change, then quiet while it stays throttled.
  auto failing = health.Observe(Probe("a", Outcome::kThrottled, 3000));
  REQUIRE(failing.has_value());
  CHECK(failing->previous == Outcome::kOk);
  CHECK(failing->current == Outcome::kThrottled);
  CHECK_FALSE(health.Observe(Probe("a", Outcome::kThrottled, 4000)).has_value());
  CHECK_FALSE(health.Observe(Probe("a", Outcome::kThrottled, 5000)).has_value());
  // One failure becoming another is a change too.
  auto other = health.Observe(Probe("a", Outcome::kTimeout, 6000));
  REQUIRE(other.has_value());
  CHECK(other->previous == Outcome::kThrottled);
  // Recovery, once.
  auto recovered = health.Observe(Probe("a", Outcome::kOk, 7000));
  REQUIRE(recovered.has_value());
  CHECK(recovered->previous == Outcome::kTimeout);
  CHECK(recovered->current == Outcome::kOk);
  CHECK_FALSE(health.Observe(Probe("a", Outcome::kOk, 8000)).has_value());
  // A target whose first probe fails is reported, with no previous outcome.
  auto first = health.Observe(Probe("b", Outcome::kAuth, 1000));
  REQUIRE(first.has_value());
  CHECK_FALSE(first->previous.has_value());
}

TEST_CASE("target health: the last probe, its health, and forgetting removed targets") {
  TargetHealth health;
  CHECK(std::string(HealthOf(health.LastOf("a"))) == "unknown");
  health.Observe(Probe("a", Outcome::kOk, 1000));
  health.Observe(Probe("b", Outcome::kThrottled, 2000));
  CHECK(std::string(HealthOf(health.LastOf("a"))) == "up");
  const auto b = health.LastOf("b");
  REQUIRE(b.has_value());
  CHECK(std::string(HealthOf(b)) == "down");
  CHECK(b->start_unix_ms == 2000);
  CHECK(b->duration_seconds == 0.25);
  CHECK(b->error == "HTTP 429");
  CHECK(b->http_status == 429);
  health.ForgetTargetsExcept({"a"});
  CHECK(health.LastOf("a").has_value());
  CHECK_FALSE(health.LastOf("b").has_value());
}

}  // namespace
}  // namespace modelpulse::daemon
