#ifndef MODELPULSE_COMMON_CLOCK_H_
#define MODELPULSE_COMMON_CLOCK_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace modelpulse {

// Both kinds of time, injected (as Envoy's TimeSource) so that rules, retention, budgets,
// schedules, rate limits and token lifetimes can be tested without sleeping: wall time for
// timestamps, and monotonic time for deadlines, intervals and durations, which must not jump when
// the wall clock is set. Implementations are safe to read from any thread.
class Clock {
 public:
  using MonotonicTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual int64_t NowUnixMillis() const = 0;
  virtual MonotonicTime MonotonicNow() const = 0;
  // Blocks until `cv` is notified or `deadline` (this clock's monotonic time) has passed; like any
  // condition-variable wait it may also return early, so callers recheck in a loop.
  // REQUIRES: `lock` holds the mutex that guards what `cv` signals.
  virtual void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                         MonotonicTime deadline) const = 0;
};

// The real clocks. Whatever is timed against bytes on real sockets or a real child process (a
// probe's phases, the simulator's pacing) must run on this one.
class SystemClock final : public Clock {
 public:
  int64_t NowUnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  MonotonicTime MonotonicNow() const override { return std::chrono::steady_clock::now(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) const override {
    cv.wait_until(lock, deadline);
  }
};

// A clock that only moves when told to; wall and monotonic time advance together. Thread-safe, so
// a test can move it while a server or worker thread reads it. Its monotonic time has an arbitrary
// origin and is unrelated to steady_clock's: code waits through WaitUntil, which Advance and Set
// wake, never for its time points on a real condition variable.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_unix_ms) : wall_ns_(ToNanos(start_unix_ms)) {}
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  int64_t NowUnixMillis() const override {
    const int64_t ns = wall_ns_.load();
    // Floor, as system_clock's milliseconds are, for times before 1970 too.
    return ns >= 0 ? ns / kNanosPerMilli : -((-ns + kNanosPerMilli - 1) / kNanosPerMilli);
  }
  MonotonicTime MonotonicNow() const override {
    return MonotonicTime(std::chrono::nanoseconds(monotonic_ns_.load()));
  }
  // Waits for `cv` only: the deadline passes when a test moves the clock, which notifies `cv`.
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) const override {
    const Waiter waiter{&cv, lock.mutex()};
    // The caller's mutex is never held while taking waiters_mu_, and WakeWaiters takes them in
    // the other order; a waiter stays listed until it has stopped using its mutex.
    lock.unlock();
    {
      std::lock_guard guard(waiters_mu_);
      waiters_.push_back(waiter);
    }
    lock.lock();
    // A move of the clock after this check finds the waiter listed and must take the caller's
    // mutex to notify, which it gets only once wait() has released it: no clock move is lost.
    // A notification of the caller's own (a shutdown, say) sent while the mutex was released
    // above would be, so the wait also ends after a short real time and the caller rechecks.
    if (MonotonicNow() < deadline) {
      cv.wait_for(lock, kRecheckInterval);
    }
    lock.unlock();
    {
      std::lock_guard guard(waiters_mu_);
      waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
    }
    lock.lock();
  }

  static constexpr std::chrono::milliseconds kRecheckInterval{5};

  // Moves both clocks forward; a zero or negative step does nothing.
  void Advance(std::chrono::nanoseconds by) {
    if (by.count() <= 0) {
      return;
    }
    monotonic_ns_ += by.count();
    wall_ns_ += by.count();
    WakeWaiters();
  }
  void Advance(int64_t ms) { Advance(std::chrono::milliseconds(ms)); }
  // Sets wall time. Monotonic time never goes back: it moves forward by as much as wall time does
  // and stays where it is when wall time is set backwards.
  void Set(int64_t unix_ms) {
    const int64_t forward_ns = ToNanos(unix_ms) - wall_ns_.exchange(ToNanos(unix_ms));
    if (forward_ns > 0) {
      monotonic_ns_ += forward_ns;
      WakeWaiters();
    }
  }

 private:
  static constexpr int64_t kNanosPerMilli = 1'000'000;
  static constexpr int64_t ToNanos(int64_t ms) { return ms * kNanosPerMilli; }

  struct Waiter {
    std::condition_variable* cv;
    std::mutex* mu;
    bool operator==(const Waiter&) const = default;
  };

  void WakeWaiters() const {
    std::lock_guard guard(waiters_mu_);
    for (const Waiter& waiter : waiters_) {
      std::lock_guard waiter_lock(*waiter.mu);
      waiter.cv->notify_all();
    }
  }

  std::atomic<int64_t> wall_ns_;
  // Starts away from zero so that no time point it hands out equals a default-constructed one.
  std::atomic<int64_t> monotonic_ns_{3'600 * 1'000 * kNanosPerMilli};
  mutable std::mutex waiters_mu_;
  mutable std::vector<Waiter> waiters_;  // Guarded by waiters_mu_.
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_CLOCK_H_
