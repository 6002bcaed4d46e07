#ifndef MODELPULSE_COMMON_CLOCK_H_
#define MODELPULSE_COMMON_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace modelpulse {

// Wall time for timestamps, injected so that rules, retention and budgets can be tested without
// sleeping. Monotonic phase timing inside a probe does not go through this interface.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowUnixMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that only moves when told to. Not thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_unix_ms) : now_(start_unix_ms) {}
  int64_t NowUnixMillis() const override { return now_; }
  void Advance(int64_t ms) { now_ += ms; }
  void Set(int64_t unix_ms) { now_ = unix_ms; }

 private:
  int64_t now_;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_CLOCK_H_
