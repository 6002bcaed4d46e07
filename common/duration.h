#ifndef MODELPULSE_COMMON_DURATION_H_
#define MODELPULSE_COMMON_DURATION_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace modelpulse {

using Millis = std::chrono::milliseconds;

// Prometheus duration syntax as used in configs and PromQL: "5m", "1h30m", "90s", "250ms", "30d",
// "2w", "1y". Units in descending order, integers only. Returns an InvalidArgument error naming the
// offending text otherwise.
Result<Millis> ParsePromDuration(std::string_view text);

// The inverse of ParsePromDuration: the shortest Prometheus form, e.g. 5400000 ms -> "1h30m".
std::string FormatPromDuration(Millis duration);

// Go time.Duration.String() output as sent in rate-limit reset headers ("6m0s", "172.799999ms",
// "1h2m3.5s", "7.44ms", "20us", "5ns"). Also accepts a bare number of seconds ("20", "0.5"), as
// Azure sends. Returns seconds, or nullopt when the text is none of these or is negative.
std::optional<double> ParseGoDuration(std::string_view text);

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_DURATION_H_
