#ifndef MODELPULSE_COMMON_CLOCK_H_
#define MODELPULSE_COMMON_CLOCK_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
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
    // The waiter is listed while the caller still holds its mutex, from before the deadline check
    // until wait() releases it: a clock move after the check must take that mutex to notify, and a
    // notification of the caller's own (a shutdown, say) finds the caller in wait() or is seen by
    // the predicate it checked under the same mutex. Nothing is lost in between.
    std::list<Waiter>::iterator self;
    {
      std::lock_guard guard(waiters_mu_);
      self = waiters_.insert(waiters_.end(), Waiter{&cv, lock.mutex(), 0});
    }
    if (MonotonicNow() < deadline) {
      cv.wait(lock);
    }
    std::unique_lock guard(waiters_mu_);
    if (self->pins > 0) {
      // A clock move is notifying this waiter and needs the caller's mutex for that; the entry,
      // and with it the caller's mutex and cv, stay in use until it has finished.
      guard.unlock();
      lock.unlock();
      guard.lock();
      unpinned_.wait(guard, [&] { return self->pins == 0; });
      waiters_.erase(self);
      guard.unlock();
      lock.lock();
      return;
    }
    waiters_.erase(self);
  }

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
    int pins;  // WakeWaiters calls using cv and mu; guarded by waiters_mu_
  };

  // Lock order: a caller's mutex, then waiters_mu_. The callers' mutexes are taken here with
  // waiters_mu_ released; the pins keep each entry listed (and its mutex and cv alive) meanwhile.
  void WakeWaiters() const {
    std::vector<Waiter*> pinned;
    {
      std::lock_guard guard(waiters_mu_);
      for (Waiter& waiter : waiters_) {
        ++waiter.pins;
        pinned.push_back(&waiter);
      }
    }
    for (const Waiter* waiter : pinned) {
      std::lock_guard waiter_lock(*waiter->mu);
      waiter->cv->notify_all();
    }
    {
      std::lock_guard guard(waiters_mu_);
      for (Waiter* waiter : pinned) {
        --waiter->pins;
      }
    }
    unpinned_.notify_all();
  }

  std::atomic<int64_t> wall_ns_;
  // Starts away from zero so that no time point it hands out equals a default-constructed one.
  std::atomic<int64_t> monotonic_ns_{3'600 * 1'000 * kNanosPerMilli};
  mutable std::mutex waiters_mu_;
  mutable std::list<Waiter> waiters_;         // Guarded by waiters_mu_.
  mutable std::condition_variable unpinned_;  // Signalled when WakeWaiters drops its pins.
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_CLOCK_H_
