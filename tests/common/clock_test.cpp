#include "common/clock.h"

#include <doctest/doctest.h>

#include <atomic>
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

TEST_CASE("ManualClock::WaitUntil does not lose a notification sent as the waiter registers") {
  // The notifier takes the mutex the moment the waiter is inside WaitUntil; had WaitUntil released
  // the mutex before waiting (to list itself, say), the notification could land in between and
  // the waiter would sleep until the clock moved. Only a lost notification needs the clock here.
  ManualClock clock(0);
  const Clock::MonotonicTime far = clock.MonotonicNow() + std::chrono::hours(1);
  int lost = 0;
  for (int round = 0; round < 200; ++round) {
    std::mutex mu;
    std::condition_variable cv;
    std::condition_variable done_cv;
    bool waiting = false;
    bool go = false;
    bool done = false;
    std::thread waiter([&] {
      std::unique_lock lock(mu);
      waiting = true;
      while (!go) {
        clock.WaitUntil(cv, lock, far);
      }
      done = true;
      done_cv.notify_all();
    });
    for (bool sent = false; !sent;) {
      std::lock_guard lock(mu);
      if (waiting) {
        go = true;
        cv.notify_all();
        sent = true;
      }
    }
    {
      // A hang guard, not a timing: a notification that arrived returns at once.
      std::unique_lock lock(mu);
      if (!done_cv.wait_for(lock, std::chrono::seconds(30), [&] { return done; })) {
        ++lost;
      }
    }
    if (lost > 0) {
      clock.Advance(std::chrono::hours(2));  // lets a stranded waiter out
    }
    waiter.join();
    if (lost > 0) {
      break;
    }
  }
  CHECK(lost == 0);
}

TEST_CASE("ManualClock::Advance wakes the waiters whose deadline it passes") {
  ManualClock clock(0);
  std::mutex mu;
  std::condition_variable cv;
  const Clock::MonotonicTime start = clock.MonotonicNow();
  auto wait_for_deadline = [&](std::chrono::minutes after) {
    const Clock::MonotonicTime deadline = start + after;
    std::unique_lock lock(mu);
    while (clock.MonotonicNow() < deadline) {
      clock.WaitUntil(cv, lock, deadline);
    }
  };
  bool early_done = false;
  bool late_done = false;
  std::thread early([&] {
    wait_for_deadline(std::chrono::minutes(1));
    std::lock_guard lock(mu);
    early_done = true;
  });
  std::thread late([&] {
    wait_for_deadline(std::chrono::minutes(60));
    std::lock_guard lock(mu);
    late_done = true;
  });
  clock.Advance(std::chrono::minutes(1));
  early.join();  // woken by the move past its deadline
  {
    std::lock_guard lock(mu);
    CHECK(early_done);
    CHECK_FALSE(late_done);
  }
  clock.Advance(std::chrono::minutes(59));
  late.join();
  CHECK(late_done);
}

TEST_CASE("ManualClock::WaitUntil is done with the caller's mutex and cv when it returns") {
  // Each round's mutex and cv die right after the wait while another thread keeps moving the
  // clock, whose wake-ups must never reach a waiter that has left (ASan reports it if they do).
  ManualClock clock(0);
  std::atomic<bool> finished{false};
  std::thread waiter([&] {
    for (int round = 0; round < 300; ++round) {
      std::mutex mu;
      std::condition_variable cv;
      std::unique_lock lock(mu);
      const Clock::MonotonicTime deadline = clock.MonotonicNow() + std::chrono::microseconds(1);
      while (clock.MonotonicNow() < deadline) {
        clock.WaitUntil(cv, lock, deadline);
      }
    }
    finished = true;
  });
  int64_t moves = 0;
  while (!finished) {
    clock.Advance(std::chrono::microseconds(1));
    ++moves;
  }
  waiter.join();
  CHECK(moves >= 300);  // every round needed a move of its own
}

TEST_CASE("SystemClock's monotonic time does not go back") {
  SystemClock clock;
  const Clock::MonotonicTime first = clock.MonotonicNow();
  CHECK(clock.MonotonicNow() >= first);
  CHECK(clock.NowUnixMillis() > 1'600'000'000'000);
}

}  // namespace
}  // namespace modelpulse
