#ifndef MODELPULSE_ALERTING_INTERNAL_MATCHER_H_
#define MODELPULSE_ALERTING_INTERNAL_MATCHER_H_

// Private to alerting/: Alertmanager's label matchers (AM 0.25 pkg/labels): `name=value`,
// `name!="value"`, `name=~"regex"`, `name!~regex`, alone, comma-separated or in braces.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/common.h"
#include "common/go_quote.h"
#include "common/regex.h"

namespace modelpulse::alerting {

struct Matcher {
  enum class Op { kEqual, kNotEqual, kRegex, kNotRegex };
  std::string name;
  Op op = Op::kEqual;
  std::string value;
  std::optional<Regex> regex;  // anchored at both ends, for kRegex and kNotRegex

  // A missing label matches as the empty string, as in Alertmanager.
  bool Matches(const Labels& labels) const;
  // Go's `name<op>%q`, as Alertmanager prints a matcher into a route key.
  std::string String() const;
};

// kInvalidArgument with a message naming the problem.
Result<std::vector<Matcher>> ParseMatchers(std::string_view text);
bool MatchAll(const std::vector<Matcher>& matchers, const Labels& labels);
// "{a=\"b\",c=~\"d\"}" sorted as Alertmanager's route sorts them (name, value, operator).
std::string MatchersString(std::vector<Matcher> matchers);
}  // namespace modelpulse::alerting

#endif  // MODELPULSE_ALERTING_INTERNAL_MATCHER_H_
