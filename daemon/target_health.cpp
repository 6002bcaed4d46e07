#include "daemon/target_health.h"

#include <algorithm>

namespace modelpulse::daemon {

std::optional<TargetHealth::Change> TargetHealth::Observe(const ProbeResult& result) {
  Last last{result.outcome, result.start_unix_ms, result.total_seconds, result.http_status,
            result.error};
  std::lock_guard lock(mu_);
  auto it = last_.find(result.target);
  if (it == last_.end()) {
    last_.emplace(result.target, std::move(last));
    if (result.outcome == Outcome::kOk) {
      return std::nullopt;
    }
    return Change{std::nullopt, result.outcome};
  }
  const Outcome previous = it->second.outcome;
  it->second = std::move(last);
  if (previous == result.outcome) {
    return std::nullopt;
  }
  return Change{previous, result.outcome};
}

std::optional<TargetHealth::Last> TargetHealth::LastOf(const std::string& target) const {
  std::lock_guard lock(mu_);
  auto it = last_.find(target);
  if (it == last_.end()) {
    return std::nullopt;
  }
  return it->second;
}

void TargetHealth::ForgetTargetsExcept(const std::vector<std::string>& kept) {
  std::lock_guard lock(mu_);
  std::erase_if(last_, [&kept](const auto& entry) {
    return std::find(kept.begin(), kept.end(), entry.first) == kept.end();
  });
}

const char* HealthOf(const std::optional<TargetHealth::Last>& last) {
  if (!last) {
    return "unknown";
  }
  return last->outcome == Outcome::kOk ? "up" : "down";
}

}  // namespace modelpulse::daemon
