#ifndef MODELPULSE_RULES_INTERNAL_GROUP_H_
#define MODELPULSE_RULES_INTERNAL_GROUP_H_

// Private to rules/: helpers of group evaluation shared with the promtool runner. RuleGroup and
// SeriesOverlay themselves are declared in rules/rules.h.
#include <cstdint>
#include <vector>

#include "rules/rules.h"

namespace modelpulse::rules {

// True when every matcher accepts `labels` (regexes fully anchored, as PromQL's).
bool SelectorMatches(const std::vector<LabelMatcher>& matchers, const Labels& labels);

// An instant query whose result must be a vector or a scalar (a scalar becomes one sample with
// no labels); anything else is "rule result is not a vector or scalar".
Result<Vector> EvaluateInstant(const Query& query, const SampleSource& source, int64_t t_ms);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_GROUP_H_
