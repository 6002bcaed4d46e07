#ifndef MODELPULSE_RULES_PROMQL_EVAL_H_
#define MODELPULSE_RULES_PROMQL_EVAL_H_

// The PromQL evaluator (private to rules/): walks the immutable AST at one instant, reading raw
// samples through a SampleSource. Semantics are Prometheus 2.42's (closed lookback and range
// windows, 5m lookback, plain-sum aggregations), so results agree bit for bit with promtool 2.42.

#include <cstdint>
#include <string>

#include "rules/promql.h"
#include "rules/promql_ast.h"

namespace modelpulse::rules::promql {

inline constexpr int64_t kLookbackMs = 5 * 60 * 1000;

// Evaluates `expr` at `t_ms`. Errors (kInvalidArgument) carry "offset N" of the failing node.
Result<Value> Evaluate(const Expr& expr, const SampleSource& source, int64_t t_ms);

// Helpers shared with promql_functions.cpp.
void DropMetricName(Labels& labels);
// True if two samples of `vector` have the same label set.
bool ContainsSameLabelset(const Vector& vector);
// Go's math.Max/math.Min: NaN wins, +0 beats -0 (std::fmax would ignore the NaN).
double GoMax(double x, double y);
double GoMin(double x, double y);
// Go's math.Pow, which is not glibc's pow: integer exponents are computed by the same repeated
// squaring, so results agree bit for bit; fractional exponents go through exp/log and may differ
// from Go's in the last ulp.
double GoPow(double x, double y);
// Go's math.Atan2 (pure Go on amd64, Cephes polynomials), not glibc's correctly rounded one.
double GoAtan2(double y, double x);
// Go's strconv.FormatFloat(v, 'f', -1, 64): "0.1", "1e+21" -> "1000000000000000000000", "+Inf".
std::string FormatFloatShortest(double v);
// Neumaier-compensated summation step, as Prometheus's kahanSumInc.
struct KahanSum {
  double sum = 0;
  double c = 0;
  void Add(double inc);
};

}  // namespace modelpulse::rules::promql

#endif  // MODELPULSE_RULES_PROMQL_EVAL_H_
