#include "simulator/internal/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace modelpulse::simulator {

RateLimiter::RateLimiter(const RateLimitSpec& spec, TimePoint start) : window_(spec.window) {
  requests_ = Bucket{static_cast<double>(spec.requests), static_cast<double>(spec.requests), start,
                     spec.requests > 0};
  tokens_ = Bucket{static_cast<double>(spec.tokens), static_cast<double>(spec.tokens), start,
                   spec.tokens > 0};
}

void RateLimiter::Refill(Bucket& bucket, TimePoint now) const {
  if (!bucket.enabled || now <= bucket.updated)
    return;
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  const double per_second = bucket.capacity / std::chrono::duration<double>(window_).count();
  bucket.level = std::min(bucket.capacity, bucket.level + elapsed * per_second);
  bucket.updated = now;
}

Micros RateLimiter::TimeToReach(const Bucket& bucket, double level) const {
  const double missing = level - bucket.level;
  if (missing <= 0 || bucket.capacity <= 0)
    return Micros(0);
  const double seconds = missing / bucket.capacity * std::chrono::duration<double>(window_).count();
  return Micros(static_cast<int64_t>(std::ceil(seconds * 1e6)));
}

BudgetState RateLimiter::State(const Bucket& bucket) const {
  return BudgetState{static_cast<int64_t>(bucket.capacity),
                     static_cast<int64_t>(std::floor(bucket.level + 1e-9)),
                     TimeToReach(bucket, bucket.capacity)};
}

RateLimitSnapshot RateLimiter::Peek(TimePoint now) {
  Refill(requests_, now);
  Refill(tokens_, now);
  RateLimitSnapshot snapshot;
  if (requests_.enabled)
    snapshot.requests = State(requests_);
  if (tokens_.enabled)
    snapshot.tokens = State(tokens_);
  return snapshot;
}

RateLimiter::Decision RateLimiter::Admit(TimePoint now, int64_t tokens) {
  Refill(requests_, now);
  Refill(tokens_, now);
  Decision decision;
  const double cost = static_cast<double>(tokens);
  if (requests_.enabled && requests_.level < 1.0) {
    decision.verdict = Verdict::kRequestsExhausted;
    decision.retry_after = TimeToReach(requests_, 1.0);
  } else if (tokens_.enabled && tokens_.level < std::min(cost, tokens_.capacity)) {
    decision.verdict = Verdict::kTokensExhausted;
    decision.retry_after = TimeToReach(tokens_, std::min(cost, tokens_.capacity));
  } else {
    if (requests_.enabled)
      requests_.level -= 1.0;
    if (tokens_.enabled)
      tokens_.level = std::max(0.0, tokens_.level - cost);
  }
  decision.after = Peek(now);
  return decision;
}

}  // namespace modelpulse::simulator
