#ifndef MODELPULSE_RULES_PROMQL_H_
#define MODELPULSE_RULES_PROMQL_H_

// The PromQL subset's public surface: parse once, evaluate at instants over a SampleSource.
// Semantics follow ../shared/prometheus-semantics.md (Prometheus 2.x compatibility, as promtool
// 2.42 evaluates). Light header: no parser internals here.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/common.h"
#include "common/sample_source.h"

namespace modelpulse::rules {

// The series model and SampleSource live in common/sample_source.h (storage implements sources
// too); the evaluator names them as its own.
using modelpulse::AggregateSamples;
using modelpulse::LabelMatcher;
using modelpulse::RangeAggregate;
using modelpulse::Sample;
using modelpulse::SampleSource;
using modelpulse::Series;
using modelpulse::SeriesAggregate;

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

// Ends an evaluation early: asked before and after every node and between the series of a
// selection; once it says true the evaluation fails with Prometheus's "query timed out in
// expression evaluation". Empty: never.
using EvalCancel = std::function<bool()>;

// A parsed expression, cheap to copy and safe to share between threads.
class Query {
 public:
  // Parses `text`. Errors are kParse with `location` = the byte offset ("offset N") and a message
  // naming what was expected; anything outside the supported subset is such an error.
  static Result<Query> Parse(std::string_view text);

  // Evaluates at `t_ms` with Prometheus's 5m lookback.
  Result<Value> Evaluate(const SampleSource& source, int64_t t_ms,
                         const EvalCancel& cancelled = {}) const;

  // A range query as Prometheus's /api/v1/query_range: evaluated at start, start+step, ... up to
  // end, instant vectors merged by label set into series (a scalar result becomes one series
  // without labels). Only scalar and instant-vector expressions are allowed (kInvalidArgument
  // otherwise, with Prometheus's message). More than `max_series` distinct series is
  // kUnavailable ("too many series"), checked as the series appear, so memory stays bounded.
  Result<Matrix> EvaluateRange(const SampleSource& source, int64_t start_ms, int64_t end_ms,
                               int64_t step_ms, size_t max_series) const;
  const std::string& text() const;

  // Every series selector of the expression: the metric name written (empty for `{...}` alone)
  // and whether it is read over a range (`x[5m]`), which is where one sample per probe and one
  // sample per scrape part ways.
  struct SelectorUse {
    std::string name;
    bool range = false;
  };
  std::vector<SelectorUse> Selectors() const;

 private:
  std::shared_ptr<const ParsedExpr> expr_;
  std::string text_;
};

// A sample value as Prometheus's API writes it (Go's strconv.FormatFloat(v, 'f', -1, 64)): the
// shortest digits that read back the same, never an exponent; NaN, +Inf, -Inf.
std::string FormatFloatShortest(double v);

// A series selector on its own (`up{job="x"}`, `{__name__=~"a.*"}`), as /api/v1/series and
// /api/v1/labels take in match[]: its matchers, and the test of a label set against them with
// the same (anchored) regex semantics as the evaluator.
class Selector {
 public:
  // kParse for a syntax error, kInvalidArgument for an expression that is not a selector.
  static Result<Selector> Parse(std::string_view text);
  const std::vector<LabelMatcher>& matchers() const { return matchers_; }
  bool Matches(const Labels& labels) const;

 private:
  std::shared_ptr<const ParsedExpr> expr_;
  std::vector<LabelMatcher> matchers_;
};

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_PROMQL_H_
