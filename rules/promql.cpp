// Temporary: Query entry points until the parser and evaluator land.
#include "rules/promql.h"

namespace modelpulse::rules {

class ParsedExpr {};

Result<Query> Query::Parse(std::string_view text) {
  return Fail(Error::Parse("PromQL parser not implemented yet", "offset 0"));
}

Result<Value> Query::Evaluate(const SampleSource&, int64_t) const {
  return Fail(Error::Internal("PromQL evaluator not implemented yet"));
}

const std::string& Query::text() const { return text_; }

}  // namespace modelpulse::rules
