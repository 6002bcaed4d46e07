#ifndef MODELPULSE_RULES_INTERNAL_GROUP_H_
#define MODELPULSE_RULES_INTERNAL_GROUP_H_

// Private to rules/: helpers of group evaluation shared with the promtool runner. RuleGroup and
// SeriesOverlay themselves are declared in rules/rules.h.
#include <cstdint>
#include <optional>
#include <vector>

#include "common/regex.h"
#include "rules/rules.h"

namespace modelpulse::rules {

// Matchers compiled once for the many label sets of one selection. Regexes are fully anchored,
// as PromQL's; one that does not compile matches nothing (so its !~ matches everything).
class CompiledSelector {
 public:
  explicit CompiledSelector(const std::vector<LabelMatcher>& matchers);
  // True when every matcher accepts `labels`.
  bool Matches(const Labels& labels) const;

 private:
  struct Matcher {
    const LabelMatcher* matcher;
    std::optional<Regex> regex;
  };
  std::vector<Matcher> matchers_;
};

// An instant query whose result must be a vector or a scalar (a scalar becomes one sample with
// no labels); anything else is "rule result is not a vector or scalar".
Result<Vector> EvaluateInstant(const Query& query, const SampleSource& source, int64_t t_ms,
                               const EvalCancel& cancelled = {});

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_GROUP_H_
