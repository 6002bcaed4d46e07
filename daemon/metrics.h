#ifndef MODELPULSE_DAEMON_METRICS_H_
#define MODELPULSE_DAEMON_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"
#include "daemon/build_info.h"
#include "daemon/process_stats.h"
#include "rules/manager.h"
#include "storage/storage.h"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace modelpulse::daemon {

// Self-observation read at scrape time, so nothing has to push it.
struct SelfStatus {
  size_t probes_in_flight = 0;
  storage::StorageStats storage;
  std::vector<collector::TargetStatus> targets;
  rules::RulesStatus rules;
  std::optional<ProcessStats> process;  // the process_* series; none when /proc is unreadable
  std::shared_ptr<prometheus::Collectable> alerting;  // notification delivery; may be null
};

// Everything on /metrics. Owns the prometheus-cpp registry; thread-safe (prometheus-cpp's
// families and metrics are). Per-target gauges carry the last probe's values under the series
// names of DESIGN.md §3; the counters and histograms of common/probe_series.h
// (ProbeCounterFamilies) count every probe, and the rule engine derives the same series from
// the stored probes, so rules over those mean the same here and in a Prometheus scraping this.
class Metrics {
 public:
  // `build` labels modelpulse_build_info{version,revision,branch,compiler}.
  explicit Metrics(const BuildInfo& build);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  void ObserveProbe(const ProbeResult& result);
  void ObserveReload(bool success, int64_t unix_ms);
  // Drops the last-probe gauges of targets that are no longer configured.
  void ForgetTargetsExcept(const std::vector<std::string>& kept_targets);
  // The text exposition (format 0.0.4).
  std::string Render(const SelfStatus& status);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_METRICS_H_
