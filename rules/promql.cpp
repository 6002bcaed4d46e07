// Query: the public face of the PromQL subset (parse once, evaluate many times).
#include "rules/promql.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <variant>

#include "rules/internal/promql_ast.h"
#include "rules/internal/promql_eval.h"
#include "rules/internal/promql_functions.h"
#include "rules/internal/promql_lexer.h"
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

namespace {

// A range query's source. The first step that asks for a window's aggregate gets the next
// steps' too, a chunk at a time (SampleSource::SelectAggregateSteps), so that a source over
// storage reads what consecutive windows share once instead of once a step. The subset has no
// subqueries and no @: a call evaluated at step t always asks for [t - offset - range,
// t - offset], so later steps find their answer by exact key, and anything else (a call this
// did not foresee) simply goes to the base.
class StepPrefetch final : public SampleSource {
 public:
  StepPrefetch(const SampleSource& base, int64_t end_ms, int64_t step_ms)
      : base_(base), end_ms_(end_ms), step_ms_(step_ms) {}
  void SetStep(int64_t t_ms) { t_ms_ = t_ms; }

  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    return base_.Select(matchers, from_ms, to_ms);
  }
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override {
    const int64_t range_ms = to_ms - from_ms;
    const auto q_bits = std::bit_cast<uint64_t>(q);  // NaN equals itself here
    auto chunk = std::find_if(chunks_.begin(), chunks_.end(), [&](const Chunk& c) {
      return c.range_ms == range_ms && c.aggregate == aggregate && c.q_bits == q_bits &&
             c.matchers == matchers;
    });
    if (chunk != chunks_.end() && to_ms >= chunk->first_to_ms &&
        (to_ms - chunk->first_to_ms) % step_ms_ == 0 &&
        (to_ms - chunk->first_to_ms) / step_ms_ < chunk->steps) {
      return AggregatesAtStep(chunk->series,
                              static_cast<size_t>((to_ms - chunk->first_to_ms) / step_ms_));
    }
    // This call's window ends `offset` before the step's time, at every step.
    const int64_t steps_left = std::max<int64_t>(0, (end_ms_ - t_ms_) / step_ms_);
    const int64_t steps = std::min(steps_left, kChunkSteps - 1) + 1;
    auto series = base_.SelectAggregateSteps(matchers, to_ms, to_ms + (steps - 1) * step_ms_,
                                             step_ms_, range_ms, aggregate, q);
    if (!series) {
      return Fail(series.error());
    }
    if (chunk == chunks_.end()) {
      chunk = chunks_.insert(chunks_.end(), Chunk{});
    }
    *chunk = {matchers, range_ms, aggregate, q_bits, to_ms, steps, std::move(*series)};
    return AggregatesAtStep(chunk->series, 0);
  }

 private:
  // Steps asked for at once: bounds what one call holds (steps x series answers) and how long
  // it runs before the caller's deadline is checked again.
  static constexpr int64_t kChunkSteps = 32;
  struct Chunk {
    std::vector<LabelMatcher> matchers;
    int64_t range_ms = 0;
    RangeAggregate aggregate = RangeAggregate::kCount;
    uint64_t q_bits = 0;
    int64_t first_to_ms = 0;
    int64_t steps = 0;
    std::vector<SeriesSteps> series;
  };
  const SampleSource& base_;
  const int64_t end_ms_;
  const int64_t step_ms_;
  int64_t t_ms_ = 0;
  mutable std::vector<Chunk> chunks_;
};

// The steps one call of RangeOfPushdown asks for: bounds what it holds (steps x series) and how
// long it runs before the caller's deadline is checked again.
constexpr int64_t kPushdownChunkSteps = 256;

// A range query of one pushed-down call (avg_over_time(x[1h]), Grafana's most common panel query)
// built series by series from the source's series-major answer instead of evaluating each step:
// the same points as the step-by-step path. Nullopt where that path must run: any other
// expression, absent_over_time, a quantile whose argument is not a number literal, and answers
// whose label sets meet once the metric name is dropped (only step by step shows at which steps
// they collide).
std::optional<Result<Matrix>> RangeOfPushdown(const promql::Expr& root, const SampleSource& source,
                                              int64_t start_ms, int64_t end_ms, int64_t step_ms,
                                              size_t max_series) {
  const promql::Expr* expr = &root;
  while (const auto* paren = std::get_if<promql::Paren>(&expr->node)) {
    expr = paren->expr.get();
  }
  const auto* call = std::get_if<promql::Call>(&expr->node);
  if (call == nullptr) {
    return std::nullopt;
  }
  const std::optional<promql::PushedCall> pushed = promql::PushedCallOf(*call);
  if (!pushed || call->function->name == "absent_over_time") {
    return std::nullopt;
  }
  double q = 0;
  if (pushed->aggregate == RangeAggregate::kQuantile) {
    const auto* number = std::get_if<promql::NumberLiteral>(&call->args[0]->node);
    if (number == nullptr) {
      return std::nullopt;
    }
    q = number->value;
  }
  const promql::VectorSelector& selector = pushed->matrix->selector;
  std::vector<LabelMatcher> matchers;
  for (const promql::CompiledMatcher& m : selector.matchers) {
    matchers.push_back(m.matcher);
  }
  const bool present_over_time = call->function->name == "present_over_time";
  std::map<Labels, std::vector<Sample>> series;
  for (int64_t first = start_ms;; first += kPushdownChunkSteps * step_ms) {
    const int64_t steps = std::min(kPushdownChunkSteps, (end_ms - first) / step_ms + 1);
    const int64_t first_to = first - selector.offset_ms;
    auto answer =
        source.SelectAggregateSteps(matchers, first_to, first_to + (steps - 1) * step_ms, step_ms,
                                    pushed->matrix->range_ms, pushed->aggregate, q);
    if (!answer) {
      Error error = answer.error();
      if (error.location.empty()) {
        error.location = promql::OffsetLocation(pushed->arg->pos.begin);
      }
      return Fail(std::move(error));
    }
    std::set<const Labels*> answered;  // the output series this chunk's answers went to
    for (SeriesSteps& s : *answer) {
      if (std::find(s.present.begin(), s.present.end(), true) == s.present.end()) {
        continue;
      }
      std::erase_if(s.labels, [](const auto& label) { return label.second.empty(); });
      if (!promql::SelectorAccepts(selector, s.labels)) {
        continue;
      }
      if (!call->function->keeps_metric_name) {
        promql::DropMetricName(s.labels);
      }
      auto [it, added] = series.try_emplace(std::move(s.labels));
      if (added && series.size() > max_series) {
        return Fail(Error::Unavailable("query returned more than " + std::to_string(max_series) +
                                       " series"));
      }
      if (!answered.insert(&it->first).second) {
        return std::nullopt;
      }
      for (size_t i = 0; i < s.present.size(); ++i) {
        if (s.present[i]) {
          it->second.push_back(
              {first + static_cast<int64_t>(i) * step_ms, present_over_time ? 1.0 : s.values[i]});
        }
      }
    }
    if ((end_ms - first) / step_ms < kPushdownChunkSteps) {
      break;  // the last chunk: the next would pass end_ms, or overflow
    }
  }
  Matrix out;
  out.reserve(series.size());
  for (auto& [labels, samples] : series) {
    out.push_back({labels, std::move(samples)});
  }
  return out;
}

}  // namespace

Result<Matrix> Query::EvaluateRange(const SampleSource& source, int64_t start_ms, int64_t end_ms,
                                    int64_t step_ms, size_t max_series) const {
  if (!expr_) {
    return Fail(Error::InvalidArgument("evaluating a query that was never parsed"));
  }
  const promql::ValueType type = expr_->root().type;
  if (type != promql::ValueType::kScalar && type != promql::ValueType::kVector) {
    return Fail(Error::InvalidArgument("invalid expression type \"" +
                                       std::string(type == promql::ValueType::kMatrix
                                                       ? "range vector"
                                                       : promql::ValueTypeName(type)) +
                                       "\" for range query, must be Scalar or instant Vector"));
  }
  if (step_ms <= 0 || end_ms < start_ms) {
    return Fail(Error::InvalidArgument("invalid range: step must be positive and end >= start"));
  }
  if (auto matrix = RangeOfPushdown(expr_->root(), source, start_ms, end_ms, step_ms, max_series)) {
    return std::move(*matrix);
  }
  using SeriesMap = std::map<Labels, std::vector<Sample>>;
  SeriesMap series;
  // Where the previous step put its i-th sample: steps mostly return the same series in the same
  // order, so one comparison finds a sample's series instead of a search.
  std::vector<SeriesMap::iterator> previous;
  StepPrefetch prefetch(source, end_ms, step_ms);
  for (int64_t t = start_ms; t <= end_ms; t += step_ms) {
    prefetch.SetStep(t);
    auto value = promql::Evaluate(expr_->root(), prefetch, t);
    if (!value) {
      return Fail(value.error());
    }
    if (const auto* vector = std::get_if<Vector>(&*value)) {
      previous.resize(vector->size(), series.end());
      for (size_t i = 0; i < vector->size(); ++i) {
        const VectorSample& sample = (*vector)[i];
        auto it = previous[i] != series.end() && previous[i]->first == sample.labels
                      ? previous[i]
                      : series.find(sample.labels);
        if (it == series.end()) {
          if (series.size() >= max_series) {
            return Fail(Error::Unavailable("query returned more than " +
                                           std::to_string(max_series) + " series"));
          }
          it = series.emplace(sample.labels, std::vector<Sample>{}).first;
        }
        it->second.push_back({t, sample.value});
        previous[i] = it;
      }
    } else if (const auto* scalar = std::get_if<Scalar>(&*value)) {
      series[Labels{}].push_back({t, scalar->value});
    }
  }
  Matrix out;
  out.reserve(series.size());
  for (auto& [labels, samples] : series) {
    out.push_back({labels, std::move(samples)});
  }
  return out;
}

Result<Selector> Selector::Parse(std::string_view text) {
  auto root = promql::ParseExpr(text);
  if (!root) {
    return Fail(root.error());
  }
  const auto* vector = std::get_if<promql::VectorSelector>(&(*root)->node);
  if (vector == nullptr) {
    return Fail(
        Error::InvalidArgument("invalid parameter \"match[]\": expected a series "
                               "selector, got \"" +
                               std::string(text) + "\""));
  }
  Selector selector;
  for (const promql::CompiledMatcher& m : vector->matchers) {
    selector.matchers_.push_back(m.matcher);
  }
  selector.expr_ = std::make_shared<const ParsedExpr>(std::move(*root));
  return selector;
}

bool Selector::Matches(const Labels& labels) const {
  const auto& selector = std::get<promql::VectorSelector>(expr_->root().node);
  for (const promql::CompiledMatcher& m : selector.matchers) {
    auto it = labels.find(m.matcher.name);
    if (!m.Matches(it == labels.end() ? std::string() : it->second)) {
      return false;
    }
  }
  return true;
}

namespace {

void CollectSelectors(const promql::Expr& expr, std::vector<Query::SelectorUse>& out) {
  std::visit(
      [&out](const auto& node) {
        using T = std::decay_t<decltype(node)>;
        if constexpr (std::is_same_v<T, promql::VectorSelector>) {
          out.push_back({node.name, false});
        } else if constexpr (std::is_same_v<T, promql::MatrixSelector>) {
          out.push_back({node.selector.name, true});
        } else if constexpr (std::is_same_v<T, promql::Call>) {
          for (const auto& arg : node.args) {
            CollectSelectors(*arg, out);
          }
        } else if constexpr (std::is_same_v<T, promql::Aggregate>) {
          if (node.param) {
            CollectSelectors(*node.param, out);
          }
          CollectSelectors(*node.expr, out);
        } else if constexpr (std::is_same_v<T, promql::Binary>) {
          CollectSelectors(*node.lhs, out);
          CollectSelectors(*node.rhs, out);
        } else if constexpr (std::is_same_v<T, promql::Unary> || std::is_same_v<T, promql::Paren>) {
          CollectSelectors(*node.expr, out);
        }
      },
      expr.node);
}

}  // namespace

std::vector<Query::SelectorUse> Query::Selectors() const {
  std::vector<SelectorUse> out;
  if (expr_) {
    CollectSelectors(expr_->root(), out);
  }
  return out;
}

}  // namespace modelpulse::rules
