#ifndef MODELPULSE_DAEMON_TARGET_HEALTH_H_
#define MODELPULSE_DAEMON_TARGET_HEALTH_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/common.h"

namespace modelpulse::daemon {

// Each target's last probe, for /api/v1/targets (Prometheus's health, lastScrape,
// lastScrapeDuration, lastError) and for logging a target's state once per change rather than
// once per probe. Thread-safe: the prober's thread observes, HTTP threads read.
class TargetHealth {
 public:
  struct Last {
    Outcome outcome = Outcome::kOk;
    int64_t start_unix_ms = 0;
    double duration_seconds = 0;
    int http_status = 0;
    std::string error;
  };

  // What a probe changed: nullopt when its outcome is the target's previous one, or when it is
  // the target's first probe and succeeded (nothing to report about a target that starts up).
  struct Change {
    std::optional<Outcome> previous;  // nullopt: the target's first probe
    Outcome current = Outcome::kOk;
  };

  std::optional<Change> Observe(const ProbeResult& result);
  // The target's last probe; nullopt before its first one.
  std::optional<Last> LastOf(const std::string& target) const;
  // Drops the targets not in `kept` (after a reload removed them).
  void ForgetTargetsExcept(const std::vector<std::string>& kept);

 private:
  mutable std::mutex mu_;
  std::map<std::string, Last, std::less<>> last_;  // guarded by mu_
};

// Prometheus's target health: "up" after a successful probe, "down" after a failed one,
// "unknown" before the first.
const char* HealthOf(const std::optional<TargetHealth::Last>& last);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_TARGET_HEALTH_H_
