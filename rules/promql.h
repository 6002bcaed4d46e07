#ifndef MODELPULSE_RULES_PROMQL_H_
#define MODELPULSE_RULES_PROMQL_H_

// The PromQL subset's public surface: parse once, evaluate at instants over a SampleSource.
// Semantics follow ../shared/prometheus-semantics.md (Prometheus 2.x compatibility, as promtool
// 2.42 evaluates). Light header: no parser internals here.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/common.h"

namespace modelpulse::rules {

struct Sample {
  int64_t t_ms = 0;
  double v = 0;
};

struct Series {
  Labels labels;                // includes __name__
  std::vector<Sample> samples;  // ascending by time
};

struct LabelMatcher {
  enum class Type { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  Type type = Type::kEqual;
  std::string name;
  std::string value;
};

// A range function a source may compute itself instead of returning raw samples (the pushdown):
// count/sum/avg/min/max/quantile_over_time, and present/absent_over_time through kCount.
enum class RangeAggregate { kCount, kSum, kAvg, kMin, kMax, kQuantile };

struct SeriesAggregate {
  Labels labels;  // includes __name__
  double value = 0;
};

// The evaluator's own arithmetic for one series (Prometheus 2.42's, bit for bit): `samples` in
// ascending time, none of them stale markers, at least one. `q` is quantile_over_time's argument.
double AggregateSamples(RangeAggregate aggregate, double q, const std::vector<Sample>& samples);

// Where the evaluator reads raw samples. Storage's reader, the in-memory recent window and the
// promtool-test loader each satisfy it; rules/ never includes storage/.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Every series matching all matchers, with its samples in [from_ms, to_ms] (both inclusive).
  virtual Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers,
                                             int64_t from_ms, int64_t to_ms) const = 0;
  // For each series matching all matchers (a superset is fine: the evaluator re-applies them)
  // with at least one non-stale sample in [from_ms, to_ms], the aggregate of those samples.
  // The default calls Select and AggregateSamples, so a source that does not override it gives
  // the same bits as the evaluator without the pushdown. An override (rollups) must be exact for
  // count, min, max and quantile; for sum and avg it may differ by float rounding order.
  virtual Result<std::vector<SeriesAggregate>> SelectAggregate(
      const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
      RangeAggregate aggregate, double q) const;
};

struct VectorSample {
  Labels labels;
  double value = 0;
  int64_t t_ms = 0;  // the evaluation time
};
using Vector = std::vector<VectorSample>;
using Matrix = std::vector<Series>;
struct Scalar {
  double value = 0;
  int64_t t_ms = 0;
};
struct String {
  std::string value;
};
using Value = std::variant<Scalar, Vector, Matrix, String>;

class ParsedExpr;  // immutable AST; defined in the parser's private header

// A parsed expression, cheap to copy and safe to share between threads.
class Query {
 public:
  // Parses `text`. Errors are kParse with `location` = the byte offset ("offset N") and a message
  // naming what was expected; anything outside the supported subset is such an error.
  static Result<Query> Parse(std::string_view text);

  // Evaluates at `t_ms` with Prometheus's 5m lookback.
  Result<Value> Evaluate(const SampleSource& source, int64_t t_ms) const;
  const std::string& text() const;

 private:
  std::shared_ptr<const ParsedExpr> expr_;
  std::string text_;
};

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_PROMQL_H_
