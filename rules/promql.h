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
  Labels labels;  // includes __name__
  std::vector<Sample> samples;  // ascending by time
};

struct LabelMatcher {
  enum class Type { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  Type type = Type::kEqual;
  std::string name;
  std::string value;
};

// Where the evaluator reads raw samples. Storage's reader, the in-memory recent window and the
// promtool-test loader each satisfy it; rules/ never includes storage/.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Every series matching all matchers, with its samples in [from_ms, to_ms] (both inclusive).
  virtual Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers,
                                             int64_t from_ms, int64_t to_ms) const = 0;
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
