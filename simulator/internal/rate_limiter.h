#ifndef MODELPULSE_SIMULATOR_INTERNAL_RATE_LIMITER_H_
#define MODELPULSE_SIMULATOR_INTERNAL_RATE_LIMITER_H_

// OpenAI-style request and token budgets: buckets that refill continuously and are full again one
// window after they were last drawn from, which is what x-ratelimit-reset-* reports ("time until
// fully replenished"). Not thread-safe: the owning endpoint serialises calls.

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/clock.h"
#include "simulator/internal/scenario.h"

namespace modelpulse::simulator {

struct BudgetState {
  int64_t limit = 0;
  int64_t remaining = 0;
  Micros reset{0};  // until full again
};

struct RateLimitSnapshot {
  std::optional<BudgetState> requests;
  std::optional<BudgetState> tokens;
};

class RateLimiter {
 public:
  using TimePoint = Clock::MonotonicTime;

  // Both budgets start full at `start`.
  RateLimiter(const RateLimitSpec& spec, TimePoint start);

  enum class Verdict { kAdmitted, kRequestsExhausted, kTokensExhausted };
  struct Decision {
    Verdict verdict = Verdict::kAdmitted;
    RateLimitSnapshot after;  // the headers to send with this response
    Micros retry_after{0};    // when refused: until the missing budget has refilled
  };

  // Takes one request and `tokens` tokens if both budgets hold them; otherwise takes nothing.
  Decision Admit(TimePoint now, int64_t tokens);
  RateLimitSnapshot Peek(TimePoint now);

 private:
  struct Bucket {
    double capacity = 0;
    double level = 0;
    TimePoint updated;
    bool enabled = false;
  };
  void Refill(Bucket& bucket, TimePoint now) const;
  BudgetState State(const Bucket& bucket) const;
  Micros TimeToReach(const Bucket& bucket, double level) const;

  Micros window_;
  Bucket requests_;
  Bucket tokens_;
};

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_RATE_LIMITER_H_
