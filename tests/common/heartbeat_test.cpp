#include "common/heartbeat.h"

#include <doctest/doctest.h>

#include <chrono>

namespace modelpulse {
namespace {

using std::chrono_literals::operator""ms;

TEST_CASE("heartbeat: a waiting loop is never stalled, a working one since its last beat") {
  ManualClock clock(1'000'000);
  Heartbeat heartbeat(clock);
  CHECK(heartbeat.StalledFor(clock.MonotonicNow()).count() == 0);  // not started yet
  heartbeat.Beat();
  clock.Advance(150ms);
  CHECK(heartbeat.StalledFor(clock.MonotonicNow()) == 150ms);
  heartbeat.Beat();  // progress: the stall starts over
  clock.Advance(20ms);
  CHECK(heartbeat.StalledFor(clock.MonotonicNow()) == 20ms);
  heartbeat.Idle();
  clock.Advance(std::chrono::hours(1));
  CHECK(heartbeat.StalledFor(clock.MonotonicNow()).count() == 0);
}

}  // namespace
}  // namespace modelpulse
