#ifndef MODELPULSE_RULES_SLO_CONFIG_H_
#define MODELPULSE_RULES_SLO_CONFIG_H_

// The `slos:` section of the main config (rules/slo.h says what each key means). Includes
// common/yaml_reader.h (yaml-cpp), so only the daemon's config loader includes it.
//
//   slos:
//     - name: gpt-4o-availability
//       selector: {model: gpt-4o}          # or target: NAME; labels a probe must carry
//       kind: availability                 # availability | latency | throttle_free
//       objective: 99.9                    # percent, 0 < objective < 100
//       window: 30d                        # 28d | 30d | calendar_month
//       latency: {phase: first_token, threshold: 2s}   # latency only; phase first_token | total
//       provider_fault_outcomes: [server_error, overloaded, timeout, ...]   # availability only
//       min_probes: 10                     # events a long window needs before it may alert
//       min_failed_probes: 2               # failed probes a long window needs before it may alert

#include <vector>

#include "common/yaml_reader.h"
#include "rules/slo.h"

namespace modelpulse::rules {

// Reads the section into `out`, reporting every problem (with its position) in `diag`.
void ReadSloSection(const yaml::Entry& section, std::vector<SloSpec>& out, yaml::Diagnostics& diag);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_SLO_CONFIG_H_
