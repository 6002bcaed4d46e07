#ifndef MODELPULSE_DAEMON_PROBE_OUTPUT_H_
#define MODELPULSE_DAEMON_PROBE_OUTPUT_H_

#include <string>

#include "common/common.h"

namespace modelpulse::daemon {

// One JSON object on one line with the fields DESIGN.md §4 lists; absent values are null.
std::string ProbeToJsonLine(const ProbeResult& result);
// Phase by phase, for people.
std::string ProbeToText(const ProbeResult& result);
// 0 for ok; 10 + the outcome's number otherwise, so scripts can tell failures apart.
int ExitCodeFor(Outcome outcome);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_PROBE_OUTPUT_H_
