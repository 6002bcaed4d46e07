#ifndef MODELPULSE_DAEMON_SERIES_SOURCE_H_
#define MODELPULSE_DAEMON_SERIES_SOURCE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "common/common.h"
#include "rules/promql.h"
#include "storage/storage.h"

namespace modelpulse::daemon {

// The probe series of DESIGN.md §3 as the rule engine reads them: the recent window from memory,
// fed by the prober as probes finish, and anything older from the probe rows in SQLite. Thread-
// safe: Append runs on the prober's thread while Select runs on the rule engine's.
class ProbeSeriesSource final : public rules::SampleSource {
 public:
  // `store` may be null (memory only). Memory is complete from `complete_since_ms` on (the
  // daemon's start); older ranges come from `store`.
  ProbeSeriesSource(const storage::Store* store, Millis window, int64_t complete_since_ms);

  void Append(const ProbeResult& result);

  // Returns a superset of the matching series (the evaluator re-applies every matcher): equality
  // matchers narrow the read, others are left to the evaluator.
  Result<std::vector<rules::Series>> Select(const std::vector<rules::LabelMatcher>& matchers,
                                            int64_t from_ms, int64_t to_ms) const override;

 private:
  void AppendFromStorage(const std::vector<rules::LabelMatcher>& matchers, int64_t from_ms,
                         int64_t to_ms, std::map<Labels, std::vector<rules::Sample>>& out) const;

  const storage::Store* store_;  // not owned; may be null
  const Millis window_;

  mutable std::mutex mu_;
  std::map<Labels, std::deque<rules::Sample>> recent_;  // Guarded by mu_.
  int64_t complete_since_ms_;                           // Guarded by mu_.
  int64_t last_sweep_ms_ = 0;                           // Guarded by mu_.
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_SERIES_SOURCE_H_
