#ifndef MODELPULSE_SIMULATOR_INTERNAL_ENDPOINT_H_
#define MODELPULSE_SIMULATOR_INTERNAL_ENDPOINT_H_

// One simulated endpoint at run time: its phase timeline, its random draws and its rate-limit
// budgets. Decide() is the only place a request's fate is chosen. Thread-safe (one mutex), since
// every HTTP worker calls it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "simulator/internal/protocol.h"
#include "simulator/internal/rate_limiter.h"
#include "simulator/internal/scenario.h"

namespace modelpulse::simulator {

class Endpoint {
 public:
  using TimePoint = Clock::MonotonicTime;

  // `seed` makes the draws reproducible; `start` is when the phase timeline begins.
  Endpoint(EndpointSpec spec, std::unique_ptr<Protocol> protocol, uint64_t seed, TimePoint start);
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const EndpointSpec& spec() const { return spec_; }
  const Protocol& protocol() const { return *protocol_; }

  // Chooses the behaviour, latencies, length and rate-limit headers for a request that arrived
  // at `arrival`.
  Plan Decide(const Call& call, TimePoint arrival);
  // The phase in force at `now`.
  const Phase& PhaseAt(TimePoint now) const;

 private:
  std::string RandomHex(size_t digits);
  std::string RandomAlnum(size_t chars);

  const EndpointSpec spec_;
  const std::unique_ptr<Protocol> protocol_;
  const TimePoint start_;
  std::mutex mu_;
  std::mt19937_64 rng_;                 // Guarded by mu_. The scenario's draws, seeded.
  std::mt19937_64 id_rng_;              // Guarded by mu_. Request ids, unique per run.
  std::optional<RateLimiter> limiter_;  // Guarded by mu_.
};

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_ENDPOINT_H_
