#ifndef MODELPULSE_COMMON_REGEX_H_
#define MODELPULSE_COMMON_REGEX_H_

// Linear-time regular expressions for every pattern a user, a rule author or a provider can
// reach. RE2 is the dialect Prometheus and Go use, and it never backtracks, so `(a+)+$` or
// `(.|\n)*` on a long text costs time proportional to the text, not a crash or minutes of CPU.
// A public header of its own (not in common.h): RE2's header stays inside regex.cpp.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace re2 {
class RE2;
}

namespace modelpulse {

struct RegexOptions {
  // Prometheus and promtool anchor label matchers at both ends; `expect` searches anywhere.
  bool case_insensitive = false;
  // RE2's compiled-program budget in bytes. A pattern over it is a compile error, so a rule like
  // `a{1000}{1000}` is refused instead of taking gigabytes. 8 MiB is RE2's own default.
  std::size_t max_program_memory = std::size_t{8} << 20;
};

class Regex {
 public:
  // Compiles `pattern`; the error quotes RE2's reason ("missing closing ): ...").
  static Result<Regex> Compile(std::string_view pattern, RegexOptions options = {});

  // True when the whole of `text` matches, as Prometheus's `=~` does.
  bool FullMatch(std::string_view text) const;
  // True when some part of `text` matches.
  bool Search(std::string_view text) const;
  // The groups of a whole-text match (index 0 is the whole text; an unmatched group is empty),
  // or nullopt when it does not match. Views point into `text`.
  std::optional<std::vector<std::string_view>> FullMatchGroups(std::string_view text) const;
  // Group names to their index, for `$name` expansions.
  std::optional<int> GroupIndex(std::string_view name) const;
  int GroupCount() const;

  // Go's Regexp.Expand: `tmpl` with $1, ${1}, $name, ${name} replaced by the groups of one match
  // (`groups` as FullMatchGroups gives them) and $$ by '$'. A name is the longest run of letters,
  // digits and '_' ("$1x" is the group named "1x"); an unknown or unmatched group expands to
  // nothing; a malformed reference ("${1", "$-") leaves the '$' as text.
  std::string Expand(std::string_view tmpl, const std::vector<std::string_view>& groups) const;
  // Go's Regexp.ReplaceAllString: every leftmost-first, non-overlapping match in `text` replaced
  // by Expand(tmpl), with Go's rules for empty matches. Fails once the result would pass
  // `max_size` bytes, so a short text and template cannot be made to take gigabytes.
  Result<std::string> ReplaceAll(std::string_view text, std::string_view tmpl,
                                 std::size_t max_size) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(std::string pattern, std::shared_ptr<const re2::RE2> compiled);

  std::string pattern_;
  std::shared_ptr<const re2::RE2> compiled_;  // shared: a Regex is copied into matchers freely
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_REGEX_H_
