// Query: the public face of the PromQL subset (parse once, evaluate many times).
#include "rules/promql.h"

#include "rules/internal/promql_ast.h"
#include "rules/internal/promql_eval.h"
#include "rules/internal/promql_parser.h"

namespace modelpulse::rules {

Result<Query> Query::Parse(std::string_view text) {
  auto root = promql::ParseExpr(text);
  if (!root) {
    return Fail(root.error());
  }
  Query query;
  query.expr_ = std::make_shared<const ParsedExpr>(std::move(*root));
  query.text_ = std::string(text);
  return query;
}

Result<Value> Query::Evaluate(const SampleSource& source, int64_t t_ms,
                              const EvalCancel& cancelled) const {
  if (!expr_) {
    return Fail(Error::InvalidArgument("evaluating a query that was never parsed"));
  }
  return promql::Evaluate(expr_->root(), source, t_ms, cancelled);
}

const std::string& Query::text() const { return text_; }

}  // namespace modelpulse::rules
