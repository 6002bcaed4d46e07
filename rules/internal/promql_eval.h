#ifndef MODELPULSE_RULES_INTERNAL_PROMQL_EVAL_H_
#define MODELPULSE_RULES_INTERNAL_PROMQL_EVAL_H_

// The PromQL evaluator (private to rules/): walks the immutable AST at one instant, reading raw
// samples through a SampleSource. Semantics are Prometheus 2.42's (closed lookback and range
// windows, 5m lookback, plain-sum aggregations), so results agree bit for bit with promtool 2.42.

#include <cstdint>
#include <optional>
#include <string>

#include "rules/internal/promql_ast.h"
#include "rules/promql.h"

namespace modelpulse::rules::promql {

inline constexpr int64_t kLookbackMs = 5 * 60 * 1000;

// Evaluates `expr` at `t_ms`. Errors (kInvalidArgument) carry "offset N" of the failing node.
Result<Value> Evaluate(const Expr& expr, const SampleSource& source, int64_t t_ms,
                       const EvalCancel& cancelled = {});

// A call the evaluator pushes down to its source (SampleSource::SelectAggregate):
// count/sum/avg/min/max/quantile/present/absent_over_time, rate or increase of a plain range
// selector, parentheses allowed. Its aggregate and that selector (`arg` is its node), or nullopt.
struct PushedCall {
  RangeAggregate aggregate = RangeAggregate::kCount;
  const Expr* arg = nullptr;
  const MatrixSelector* matrix = nullptr;
};
std::optional<PushedCall> PushedCallOf(const Call& call);
// Whether a pushdown's answer (empty labels already dropped) satisfies every matcher of
// `selector`: sources may answer a superset.
bool SelectorAccepts(const VectorSelector& selector, const Labels& labels);

// Helpers shared with promql_functions.cpp.
void DropMetricName(Labels& labels);
// True if two samples of `vector` have the same label set.
bool ContainsSameLabelset(const Vector& vector);

}  // namespace modelpulse::rules::promql

#endif  // MODELPULSE_RULES_INTERNAL_PROMQL_EVAL_H_
