#ifndef MODELPULSE_DAEMON_PROBE_SERIES_H_
#define MODELPULSE_DAEMON_PROBE_SERIES_H_

#include <optional>
#include <string>
#include <vector>

#include "common/common.h"

namespace modelpulse::daemon {

// One sample a probe contributes to one series of DESIGN.md §3. `resource` is the extra label of
// probe_ratelimit_remaining_ratio and empty otherwise.
struct ProbeSample {
  const char* name;
  const char* resource;
  double value;
};

// The series names and their help texts, in a fixed order.
struct ProbeSeriesInfo {
  const char* name;
  const char* help;
};
const std::vector<ProbeSeriesInfo>& ProbeSeriesNames();

// The samples one probe yields, blackbox-style; phases that did not happen yield none, so /metrics
// and the rule engine see exactly the same series.
std::vector<ProbeSample> ProbeSamples(const ProbeResult& result);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_PROBE_SERIES_H_
