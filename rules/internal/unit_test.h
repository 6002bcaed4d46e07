#ifndef MODELPULSE_RULES_INTERNAL_UNIT_TEST_H_
#define MODELPULSE_RULES_INTERNAL_UNIT_TEST_H_

// Private to rules/: the pieces of the promtool-compatible runner that tests exercise directly.
// RunRuleTests and CheckRuleFiles are declared in rules/rules.h.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rules.h"

namespace modelpulse::rules {

// Series notation: `name{a="b", c='d'}`, `{__name__="m", a="b"}`, `name`, `{}`.
Result<Labels> ParseSeriesLabels(std::string_view text);

// Expanding notation (§3.3): one entry per step; nullopt is a missing sample ('_'), a stale
// marker is StaleNaN() (go_compat.h). Refuses more than `max_samples` entries.
Result<std::vector<std::optional<double>>> ExpandSeriesValues(std::string_view text,
                                                              size_t max_samples = 10'000'000);

// Go's time.Duration.String(): "0s", "1m0s", "1h30m0s", "1.5s", "250ms".
std::string GoDurationText(std::chrono::milliseconds d);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_UNIT_TEST_H_
