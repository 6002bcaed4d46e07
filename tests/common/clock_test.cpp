#include "common/clock.h"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace modelpulse {
namespace {

using std::chrono_literals::operator""ms;
using std::chrono_literals::operator""us;

TEST_CASE("ManualClock moves wall and monotonic time together") {
  ManualClock clock(1'000);
  const Clock::MonotonicTime start = clock.MonotonicNow();
  CHECK(start != Clock::MonotonicTime{});
  clock.Advance(1500ms);
  CHECK(clock.NowUnixMillis() == 2'500);
  CHECK(clock.MonotonicNow() - start == 1500ms);
  clock.Advance(250);
  CHECK(clock.NowUnixMillis() == 2'750);
  CHECK(clock.MonotonicNow() - start == 1750ms);
  // Sub-millisecond steps add up on the wall clock too.
  for (int i = 0; i < 4; ++i) {
    clock.Advance(250us);
  }
  CHECK(clock.NowUnixMillis() == 2'751);
  CHECK(clock.MonotonicNow() - start == 1751ms);
  // No step backwards.
  clock.Advance(-5ms);
  CHECK(clock.NowUnixMillis() == 2'751);
}

TEST_CASE("ManualClock::Set moves monotonic time forward only") {
  ManualClock clock(10'000);
  const Clock::MonotonicTime start = clock.MonotonicNow();
  clock.Set(12'000);
  CHECK(clock.NowUnixMillis() == 12'000);
  CHECK(clock.MonotonicNow() - start == 2000ms);
  clock.Set(5'000);  // the wall clock may be set back; monotonic time stays
  CHECK(clock.NowUnixMillis() == 5'000);
  CHECK(clock.MonotonicNow() - start == 2000ms);
  clock.Set(6'000);
  CHECK(clock.MonotonicNow() - start == 3000ms);
}

TEST_CASE("ManualClock floors wall milliseconds before 1970") {
  ManualClock clock(-1);
  CHECK(clock.NowUnixMillis() == -1);
  clock.Advance(500us);
  CHECK(clock.NowUnixMillis() == -1);
  clock.Advance(500us);
  CHECK(clock.NowUnixMillis() == 0);
}

TEST_CASE("ManualClock::WaitUntil returns once the clock has passed the deadline") {
  ManualClock clock(0);
  std::mutex mu;
  std::condition_variable cv;
  {
    // Already due: no wait at all.
    std::unique_lock lock(mu);
    clock.WaitUntil(cv, lock, clock.MonotonicNow());
    CHECK(lock.owns_lock());
  }
  const Clock::MonotonicTime deadline = clock.MonotonicNow() + std::chrono::hours(1);
  bool woke = false;
  std::thread waiter([&] {
    std::unique_lock lock(mu);
    while (clock.MonotonicNow() < deadline) {
      clock.WaitUntil(cv, lock, deadline);
    }
    woke = true;
  });
  // Whether the waiter is already waiting or not yet, moving the clock lets it through.
  clock.Advance(std::chrono::minutes(30));
  clock.Advance(std::chrono::minutes(30));
  waiter.join();
  CHECK(woke);
}

TEST_CASE("SystemClock's monotonic time does not go back") {
  SystemClock clock;
  const Clock::MonotonicTime first = clock.MonotonicNow();
  CHECK(clock.MonotonicNow() >= first);
  CHECK(clock.NowUnixMillis() > 1'600'000'000'000);
}

}  // namespace
}  // namespace modelpulse
