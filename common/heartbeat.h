#ifndef MODELPULSE_COMMON_HEARTBEAT_H_
#define MODELPULSE_COMMON_HEARTBEAT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

#include "common/clock.h"

namespace modelpulse {

// A worker loop's sign of life, read by the service watchdog (daemon/watchdog.h) on another
// thread. The loop calls Beat() whenever it makes progress (a round of work starts, a rule group
// is evaluated) and Idle() just before it blocks waiting for work or for its next deadline. A
// waiting loop counts as alive however long it waits, because what it waits for has a deadline of
// its own; a loop that has been working since its last beat for longer than the watchdog interval
// is stuck (a query that never ends, a database lock that is never released), and the service
// manager should restart it. Time comes from the injected clock. Lock-free and thread-safe.
class Heartbeat {
 public:
  explicit Heartbeat(const Clock& clock) : clock_(clock) {}
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void Beat() { last_beat_ns_.store(NowNanos(), std::memory_order_relaxed); }
  void Idle() { last_beat_ns_.store(kIdle, std::memory_order_relaxed); }

  // How long the loop has worked without a beat at `now` (this clock's monotonic time); zero while
  // it waits.
  std::chrono::nanoseconds StalledFor(Clock::MonotonicTime now) const {
    const int64_t last = last_beat_ns_.load(std::memory_order_relaxed);
    if (last == kIdle) {
      return std::chrono::nanoseconds::zero();
    }
    const int64_t stalled = now.time_since_epoch().count() - last;
    return std::chrono::nanoseconds(stalled > 0 ? stalled : 0);
  }

 private:
  // Before the loop's first beat it has not started working, so it is stalled on nothing.
  static constexpr int64_t kIdle = std::numeric_limits<int64_t>::min();

  int64_t NowNanos() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_.MonotonicNow().time_since_epoch())
        .count();
  }

  const Clock& clock_;
  std::atomic<int64_t> last_beat_ns_{kIdle};
};

// For loops whose heartbeat is optional: null means no watchdog watches them.
inline void BeatIfWatched(Heartbeat* heartbeat) {
  if (heartbeat != nullptr) {
    heartbeat->Beat();
  }
}
inline void IdleIfWatched(Heartbeat* heartbeat) {
  if (heartbeat != nullptr) {
    heartbeat->Idle();
  }
}

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_HEARTBEAT_H_
