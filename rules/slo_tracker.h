#ifndef MODELPULSE_RULES_SLO_TRACKER_H_
#define MODELPULSE_RULES_SLO_TRACKER_H_

// The figures behind the modelpulse_slo_* metrics: per SLO, probe events and bad events over
// the SLO's window (rolling 28d/30d, or the calendar month so far, UTC) and over each burn-rate
// window (5m ... 3d), read from the probe series through a SampleSource. Availability and
// throttle-free SLOs use the source's range aggregates (count_over_time / sum_over_time, which
// storage answers from hourly rollups over long windows), so their figures equal the generated
// rules' slo:sli_events / slo:sli_errors recordings. Latency SLOs read raw samples (no rollup
// counts under a threshold): the probes the rules' histograms observe, good when <= threshold
// (the bucket's le); exact counts, where the rules' increase() extrapolates. Settled hours are
// cached for every kind; a refresh reads each window's first partial hour and the unsettled end.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/sample_source.h"
#include "rules/slo.h"

namespace modelpulse::rules {

struct SloWindowFigures {
  std::string window;  // "5m" ... "3d", or "slo" for the SLO's own window
  int64_t events = 0;
  int64_t bad = 0;
  // Whether this window may alert: events >= min_probes and bad >= min_failed_probes.
  bool enough_evidence = false;
};

struct SloStatus {
  SloSpec spec;
  int64_t at_ms = 0;
  int64_t window_start_ms = 0;         // the SLO window is [window_start_ms, at_ms]
  SloWindowFigures slo_window;         // window "slo"
  std::vector<SloWindowFigures> burn;  // BurnRateWindowNames() order
  // (bad / events) / error budget; nullopt without events.
  static std::optional<double> BurnRate(const SloSpec& spec, const SloWindowFigures& w);
};

class SloTracker {
 public:
  // REQUIRES: `source` outlives the tracker.
  SloTracker(std::vector<SloSpec> slos, const SampleSource& source);
  // Figures at `now_ms`. Thread-safe; failures of the source are returned.
  Result<std::vector<SloStatus>> Compute(int64_t now_ms);
  // The start of an SLO's window ending at `now_ms`.
  static int64_t WindowStart(const SloSpec& spec, int64_t now_ms);

 private:
  // Events and bad events in [from_ms, to_ms] as the source gives them, uncached.
  Result<SloWindowFigures> Direct(const SloSpec& spec, int64_t from_ms, int64_t to_ms);
  // The same through the hour cache; `tails` memoises the unsettled end within one Compute.
  Result<SloWindowFigures> Figures(const SloSpec& spec, int64_t from_ms, int64_t to_ms,
                                   std::map<int64_t, SloWindowFigures>& tails);
  Result<SloWindowFigures> LatencyRaw(const SloSpec& spec, int64_t from_ms, int64_t to_ms) const;

  std::vector<SloSpec> slos_;
  const SampleSource& source_;
  std::mutex mu_;
  // (slo name, hour start) -> events and bad of that whole, settled hour.
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> hours_;
};

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_SLO_TRACKER_H_
