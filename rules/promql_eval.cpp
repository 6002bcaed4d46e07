#include "rules/internal/promql_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "rules/internal/go_compat.h"
#include "rules/internal/promql_functions.h"
#include "rules/internal/promql_lexer.h"

namespace modelpulse::rules::promql {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Error EvalError(const Expr& at, std::string message) {
  return Error::InvalidArgument(std::move(message), OffsetLocation(at.pos.begin));
}

// A string key for a label subset, used where Prometheus hashes label sets.
void AppendLabel(std::string& key, const std::string& name, const std::string& value) {
  key += name;
  key += '\xff';
  key += value;
  key += '\xfe';
}

std::string LabelsKey(const Labels& labels) {
  std::string key;
  for (const auto& [name, value] : labels) {
    AppendLabel(key, name, value);
  }
  return key;
}

std::string FormatLabels(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) {
      out += ", ";
    }
    first = false;
    out += name + "=\"" + value + "\"";
  }
  return out + "}";
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Prometheus's signatureFunc: on(...) hashes only the listed labels; ignoring(...) hashes all
// but the listed ones and __name__.
std::string Signature(const Labels& labels, const VectorMatching& matching) {
  std::string key;
  for (const auto& [name, value] : labels) {
    bool listed = Contains(matching.matching_labels, name);
    if (matching.on ? listed : (!listed && name != "__name__")) {
      AppendLabel(key, name, value);
    }
  }
  return key;
}

bool DropsMetricName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
    case BinaryOp::kMul:
    case BinaryOp::kDiv:
    case BinaryOp::kPow:
    case BinaryOp::kMod:
      return true;
    default:
      return false;  // atan2 and comparisons keep it in 2.42
  }
}

// Prometheus's vectorElemBinop: the value and whether a comparison kept the element.
std::pair<double, bool> ElemBinop(BinaryOp op, double lhs, double rhs) {
  switch (op) {
    case BinaryOp::kAdd:
      return {lhs + rhs, true};
    case BinaryOp::kSub:
      return {lhs - rhs, true};
    case BinaryOp::kMul:
      return {lhs * rhs, true};
    case BinaryOp::kDiv:
      return {lhs / rhs, true};
    case BinaryOp::kPow:
      return {GoPow(lhs, rhs), true};
    case BinaryOp::kMod:
      return {std::fmod(lhs, rhs), true};
    case BinaryOp::kAtan2:
      return {GoAtan2(lhs, rhs), true};
    case BinaryOp::kEql:
      return {lhs, lhs == rhs};
    case BinaryOp::kNeq:
      return {lhs, lhs != rhs};
    case BinaryOp::kGtr:
      return {lhs, lhs > rhs};
    case BinaryOp::kLss:
      return {lhs, lhs < rhs};
    case BinaryOp::kGte:
      return {lhs, lhs >= rhs};
    case BinaryOp::kLte:
      return {lhs, lhs <= rhs};
    default:
      return {kNaN, false};
  }
}

// Go's container/heap over samples, so that topk/bottomk pick the same elements among ties as
// Prometheus does. `less` orders the heap's root first.
template <typename Less>
class GoHeap {
 public:
  explicit GoHeap(Less less) : less_(less) {}
  std::vector<VectorSample>& items() { return items_; }
  void Push(VectorSample s) {
    items_.push_back(std::move(s));
    Up(items_.size() - 1);
  }
  void FixRoot() { Down(0, items_.size()); }

 private:
  void Up(size_t j) {
    while (j > 0) {
      size_t i = (j - 1) / 2;
      if (i == j || !less_(items_[j].value, items_[i].value)) {
        break;
      }
      std::swap(items_[i], items_[j]);
      j = i;
    }
  }
  void Down(size_t i0, size_t n) {
    size_t i = i0;
    while (true) {
      size_t j1 = 2 * i + 1;
      if (j1 >= n) {
        break;
      }
      size_t j = j1;
      if (size_t j2 = j1 + 1; j2 < n && less_(items_[j2].value, items_[j1].value)) {
        j = j2;
      }
      if (!less_(items_[j].value, items_[i].value)) {
        break;
      }
      std::swap(items_[i], items_[j]);
      i = j;
    }
  }
  std::vector<VectorSample> items_;
  Less less_;
};

class Evaluator {
 public:
  Evaluator(const SampleSource& source, int64_t t_ms, const EvalCancel& cancelled)
      : source_(source), t_ms_(t_ms), cancelled_(cancelled) {}

  Result<Value> Eval(const Expr& expr) {
    if (Cancelled()) {
      return Fail(TimedOut());
    }
    auto value = std::visit([&](const auto& node) { return EvalNode(expr, node); }, expr.node);
    if (value && Cancelled()) {
      return Fail(TimedOut());
    }
    return value;
  }

 private:
  Result<Value> EvalNode(const Expr&, const NumberLiteral& n) { return Scalar{n.value, t_ms_}; }
  Result<Value> EvalNode(const Expr&, const StringLiteral& s) { return String{s.value}; }
  Result<Value> EvalNode(const Expr&, const Paren& p) { return Eval(*p.expr); }

  Result<Value> EvalNode(const Expr& expr, const VectorSelector& selector) {
    auto vector = SelectVector(expr, selector, /*sample_time=*/false);
    if (!vector) {
      return Fail(vector.error());
    }
    return Value(std::move(*vector));
  }

  Result<Value> EvalNode(const Expr& expr, const MatrixSelector& selector) {
    auto matrix = SelectMatrix(expr, selector);
    if (!matrix) {
      return Fail(matrix.error());
    }
    return Value(std::move(*matrix));
  }

  Result<Value> EvalNode(const Expr& expr, const Unary& unary) {
    auto value = Eval(*unary.expr);
    if (!value || !unary.negate) {
      return value;
    }
    if (auto* scalar = std::get_if<Scalar>(&*value)) {
      scalar->value = -scalar->value;
      return value;
    }
    Vector& vector = std::get<Vector>(*value);
    for (VectorSample& s : vector) {
      s.value = -s.value;
      DropMetricName(s.labels);
    }
    if (ContainsSameLabelset(vector)) {
      return Fail(EvalError(expr, "vector cannot contain metrics with the same labelset"));
    }
    return value;
  }

  Result<Value> EvalNode(const Expr& expr, const Call& call) {
    Result<Value> result = Pushdown(call);
    if (!result) {
      return result;
    }
    if (std::holds_alternative<String>(*result)) {  // not a pushdown call
      result = CallFunction(expr, call);
      if (!result) {
        return result;
      }
    }
    if (auto* vector = std::get_if<Vector>(&*result)) {
      for (VectorSample& s : *vector) {
        s.t_ms = t_ms_;
        if (!call.function->keeps_metric_name) {
          DropMetricName(s.labels);
        }
      }
      if (ContainsSameLabelset(*vector)) {
        return Fail(EvalError(expr, "vector cannot contain metrics with the same labelset"));
      }
    }
    return result;
  }

  // count/sum/avg/min/max/quantile/present/absent_over_time of a plain range selector: asks the
  // source for the aggregate (SampleSource::SelectAggregate) instead of the samples. Returns a
  // String when the call is not one of those, so the caller evaluates it the ordinary way.
  Result<Value> Pushdown(const Call& call) {
    const std::optional<PushedCall> pushed = PushedCallOf(call);
    if (!pushed) {
      return Value(String{});
    }
    const Expr* arg = pushed->arg;
    const MatrixSelector* matrix = pushed->matrix;
    double q = 0;
    if (pushed->aggregate == RangeAggregate::kQuantile) {
      auto q_value = Eval(*call.args[0]);
      if (!q_value) {
        return q_value;
      }
      q = std::get<Scalar>(*q_value).value;
    }
    const int64_t end = t_ms_ - matrix->selector.offset_ms;
    const int64_t start = end - matrix->range_ms;
    std::vector<LabelMatcher> matchers;
    matchers.reserve(matrix->selector.matchers.size());
    for (const CompiledMatcher& m : matrix->selector.matchers) {
      matchers.push_back(m.matcher);
    }
    auto aggregates = source_.SelectAggregate(matchers, start, end, pushed->aggregate, q);
    if (!aggregates) {
      Error error = aggregates.error();
      if (error.location.empty()) {
        error.location = OffsetLocation(arg->pos.begin);
      }
      return Fail(std::move(error));
    }
    Vector out;
    for (SeriesAggregate& a : *aggregates) {
      for (auto it = a.labels.begin(); it != a.labels.end();) {
        it = it->second.empty() ? a.labels.erase(it) : std::next(it);
      }
      if (SelectorAccepts(matrix->selector, a.labels)) {
        out.push_back(
            {std::move(a.labels), call.function->name == "present_over_time" ? 1.0 : a.value, 0});
      }
    }
    // Sources answer in label order as a rule (storage does), so the sort is mostly a check.
    auto by_labels = [](const VectorSample& a, const VectorSample& b) {
      return a.labels < b.labels;
    };
    if (!std::is_sorted(out.begin(), out.end(), by_labels)) {
      std::sort(out.begin(), out.end(), by_labels);
    }
    if (call.function->name == "absent_over_time") {
      // Labels from the selector, exactly as without the pushdown.
      Matrix none;
      if (!out.empty()) {
        none.push_back({out.front().labels, {{end, out.front().value}}});
      }
      return call.function->impl(call, {Value(std::move(none))}, t_ms_);
    }
    return Value(std::move(out));
  }

  Result<Value> CallFunction(const Expr& expr, const Call& call) {
    std::vector<Value> args;
    args.reserve(call.args.size());
    for (const ExprPtr& arg : call.args) {
      const Expr* inner = arg.get();
      // timestamp(selector) reports each sample's own timestamp (Prometheus special-cases it).
      if (call.function->name == "timestamp") {
        while (const auto* paren = std::get_if<Paren>(&inner->node)) {
          inner = paren->expr.get();
        }
        if (const auto* selector = std::get_if<VectorSelector>(&inner->node)) {
          auto vector = SelectVector(*inner, *selector, /*sample_time=*/true);
          if (!vector) {
            return Fail(vector.error());
          }
          args.emplace_back(std::move(*vector));
          continue;
        }
      }
      auto value = Eval(*arg);
      if (!value) {
        return value;
      }
      args.push_back(std::move(*value));
    }
    auto result = call.function->impl(call, args, t_ms_);
    if (!result) {
      result.error().location = OffsetLocation(expr.pos.begin);
    }
    return result;
  }

  Result<Value> EvalNode(const Expr& expr, const Binary& binary) {
    auto lhs = Eval(*binary.lhs);
    if (!lhs) {
      return lhs;
    }
    auto rhs = Eval(*binary.rhs);
    if (!rhs) {
      return rhs;
    }
    const auto* lhs_scalar = std::get_if<Scalar>(&*lhs);
    const auto* rhs_scalar = std::get_if<Scalar>(&*rhs);
    if (lhs_scalar != nullptr && rhs_scalar != nullptr) {
      auto [value, keep] = ElemBinop(binary.op, lhs_scalar->value, rhs_scalar->value);
      if (IsComparison(binary.op)) {
        value = keep ? 1.0 : 0.0;  // the parser only lets bool comparisons through here
      }
      return Value(Scalar{value, t_ms_});
    }
    Vector out;
    if (lhs_scalar != nullptr || rhs_scalar != nullptr) {
      bool swap = lhs_scalar != nullptr;
      Vector& vector = std::get<Vector>(swap ? *rhs : *lhs);
      double scalar = swap ? lhs_scalar->value : rhs_scalar->value;
      for (VectorSample& s : vector) {
        double l = swap ? scalar : s.value;
        double r = swap ? s.value : scalar;
        auto [value, keep] = ElemBinop(binary.op, l, r);
        // A comparison keeps the vector element's value even when the scalar is on the left.
        if (IsComparison(binary.op) && swap) {
          value = r;
        }
        if (binary.return_bool) {
          value = keep ? 1.0 : 0.0;
          keep = true;
        }
        if (!keep) {
          continue;
        }
        s.value = value;
        if (DropsMetricName(binary.op) || binary.return_bool) {
          DropMetricName(s.labels);
        }
        out.push_back(std::move(s));
      }
    } else {
      Vector& l = std::get<Vector>(*lhs);
      Vector& r = std::get<Vector>(*rhs);
      Result<Vector> result;
      switch (binary.op) {
        case BinaryOp::kAnd:
          result = And(l, r, binary.matching);
          break;
        case BinaryOp::kOr:
          result = Or(l, r, binary.matching);
          break;
        case BinaryOp::kUnless:
          result = Unless(l, r, binary.matching);
          break;
        default:
          result = VectorBinop(expr, binary, l, r);
          break;
      }
      if (!result) {
        return Fail(result.error());
      }
      out = std::move(*result);
    }
    for (VectorSample& s : out) {
      s.t_ms = t_ms_;
    }
    if (ContainsSameLabelset(out)) {
      return Fail(EvalError(expr, "vector cannot contain metrics with the same labelset"));
    }
    return Value(std::move(out));
  }

  static Vector And(Vector& lhs, Vector& rhs, const VectorMatching& matching) {
    Vector out;
    if (lhs.empty() || rhs.empty()) {
      return out;
    }
    std::unordered_set<std::string> right;
    for (const VectorSample& s : rhs) {
      right.insert(Signature(s.labels, matching));
    }
    for (VectorSample& s : lhs) {
      if (right.count(Signature(s.labels, matching)) != 0) {
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  static Vector Or(Vector& lhs, Vector& rhs, const VectorMatching& matching) {
    Vector out;
    std::unordered_set<std::string> left;
    for (VectorSample& s : lhs) {
      left.insert(Signature(s.labels, matching));
      out.push_back(std::move(s));
    }
    for (VectorSample& s : rhs) {
      if (left.count(Signature(s.labels, matching)) == 0) {
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  static Vector Unless(Vector& lhs, Vector& rhs, const VectorMatching& matching) {
    Vector out;
    std::unordered_set<std::string> right;
    for (const VectorSample& s : rhs) {
      right.insert(Signature(s.labels, matching));
    }
    for (VectorSample& s : lhs) {
      if (right.count(Signature(s.labels, matching)) == 0) {
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  // Prometheus's VectorBinop: one-to-one, many-to-one (group_left), one-to-many (group_right).
  static Result<Vector> VectorBinop(const Expr& expr, const Binary& binary, Vector& lhs_in,
                                    Vector& rhs_in) {
    const VectorMatching& matching = binary.matching;
    bool one_to_many = matching.card == Cardinality::kOneToMany;
    Vector& lhs = one_to_many ? rhs_in : lhs_in;
    Vector& rhs = one_to_many ? lhs_in : rhs_in;
    std::unordered_map<std::string, const VectorSample*> right;
    for (const VectorSample& s : rhs) {
      std::string sig = Signature(s.labels, matching);
      auto [it, inserted] = right.emplace(sig, &s);
      if (!inserted) {
        Labels group;
        for (const auto& [name, value] : s.labels) {
          bool listed = Contains(matching.matching_labels, name);
          if (matching.on ? listed : (!listed && name != "__name__")) {
            group[name] = value;
          }
        }
        return Fail(EvalError(
            expr, "found duplicate series for the match group " + FormatLabels(group) + " on the " +
                      (one_to_many ? "left" : "right") + " hand-side of the operation: [" +
                      FormatLabels(s.labels) + ", " + FormatLabels(it->second->labels) +
                      "];many-to-many matching not allowed: matching labels must be unique on "
                      "one side"));
      }
    }
    std::unordered_map<std::string, std::unordered_set<std::string>> matched;
    Vector out;
    for (const VectorSample& ls : lhs) {
      std::string sig = Signature(ls.labels, matching);
      auto found = right.find(sig);
      if (found == right.end()) {
        continue;
      }
      const VectorSample& rs = *found->second;
      double vl = one_to_many ? rs.value : ls.value;
      double vr = one_to_many ? ls.value : rs.value;
      auto [value, keep] = ElemBinop(binary.op, vl, vr);
      if (binary.return_bool) {
        value = keep ? 1.0 : 0.0;
      } else if (!keep) {
        continue;
      }
      // resultMetric: the "many" side's labels, adjusted.
      Labels metric = ls.labels;
      if (DropsMetricName(binary.op) || binary.return_bool) {
        DropMetricName(metric);
      }
      if (matching.card == Cardinality::kOneToOne) {
        for (auto it = metric.begin(); it != metric.end();) {
          bool listed = Contains(matching.matching_labels, it->first);
          it = (matching.on ? !listed : listed) ? metric.erase(it) : std::next(it);
        }
      }
      for (const std::string& name : matching.include) {
        auto value_it = rs.labels.find(name);
        if (value_it != rs.labels.end() && !value_it->second.empty()) {
          metric[name] = value_it->second;
        } else {
          metric.erase(name);
        }
      }
      auto [sigs, first_match] = matched.try_emplace(sig);
      if (matching.card == Cardinality::kOneToOne) {
        if (!first_match) {
          return Fail(EvalError(expr,
                                "multiple matches for labels: many-to-one matching must be "
                                "explicit (group_left/group_right)"));
        }
      } else if (!sigs->second.insert(LabelsKey(metric)).second) {
        return Fail(EvalError(
            expr, "multiple matches for labels: grouping labels must ensure unique matches"));
      }
      out.push_back({std::move(metric), value, 0});
    }
    return out;
  }

  Result<Value> EvalNode(const Expr& expr, const Aggregate& aggregate) {
    double param = 0;
    std::string value_label;
    if (aggregate.param) {
      auto value = Eval(*aggregate.param);
      if (!value) {
        return value;
      }
      if (const auto* scalar = std::get_if<Scalar>(&*value)) {
        param = scalar->value;
      } else {
        value_label = std::get<String>(*value).value;
      }
    }
    auto input = Eval(*aggregate.expr);
    if (!input) {
      return input;
    }
    auto out = Aggregation(expr, aggregate, param, value_label, std::get<Vector>(*input));
    if (!out) {
      return Fail(out.error());
    }
    for (VectorSample& s : *out) {
      s.t_ms = t_ms_;
    }
    return Value(std::move(*out));
  }

  struct Group {
    Labels labels;
    double value = 0;
    double mean = 0;
    double count = 0;
    std::vector<VectorSample> heap;  // topk/bottomk (as a Go heap) and quantile inputs
  };

  // Prometheus 2.42's aggregation(): plain += for sum, incremental mean for avg, Welford for
  // stddev/stdvar, NaN replaced by any number for min/max.
  static Result<Vector> Aggregation(const Expr& expr, const Aggregate& aggregate, double param,
                                    const std::string& value_label, Vector& input) {
    AggregateOp op = aggregate.op;
    std::vector<std::string> grouping = aggregate.grouping;
    int64_t k = 0;
    if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk) {
      if (!(param >= -9.2233720368547758e18 && param <= 9.2233720368547758e18)) {
        return Fail(
            EvalError(expr, "Scalar value " + FormatFloatShortest(param) + " overflows int64"));
      }
      k = static_cast<int64_t>(param);
      if (k < 1) {
        return Vector{};
      }
    }
    if (op == AggregateOp::kCountValues) {
      bool valid = !value_label.empty();
      for (size_t i = 0; i < value_label.size(); ++i) {
        char c = value_label[i];
        valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                          (i > 0 && c >= '0' && c <= '9'));
      }
      if (!valid) {
        return Fail(EvalError(expr, "invalid label name \"" + value_label + "\""));
      }
      if (!aggregate.without) {
        grouping.push_back(value_label);
      }
    }
    auto topk_less = [](double a, double b) { return std::isnan(a) || a < b; };
    auto bottomk_less = [](double a, double b) { return std::isnan(a) || a > b; };
    std::map<std::string, Group> groups;
    std::vector<std::string> order;
    std::map<std::string, GoHeap<decltype(topk_less)>> top_heaps;
    std::map<std::string, GoHeap<decltype(bottomk_less)>> bottom_heaps;
    for (VectorSample& s : input) {
      Labels metric = s.labels;
      if (op == AggregateOp::kCountValues) {
        metric[value_label] = FormatFloatShortest(s.value);
      }
      Labels group_labels;
      if (aggregate.without) {
        group_labels = metric;
        for (const std::string& name : grouping) {
          group_labels.erase(name);
        }
        group_labels.erase("__name__");
      } else {
        for (const std::string& name : grouping) {
          if (auto it = metric.find(name); it != metric.end()) {
            group_labels[name] = it->second;
          }
        }
      }
      std::string key = LabelsKey(group_labels);
      auto [it, inserted] = groups.try_emplace(key);
      Group& group = it->second;
      if (inserted) {
        order.push_back(key);
        group.labels = std::move(group_labels);
        group.value = s.value;
        group.mean = s.value;
        group.count = 1;
        switch (op) {
          case AggregateOp::kStddev:
          case AggregateOp::kStdvar:
            group.value = 0;
            break;
          case AggregateOp::kGroup:
            group.value = 1;
            break;
          case AggregateOp::kTopk:
            top_heaps.try_emplace(key, topk_less).first->second.Push(s);
            break;
          case AggregateOp::kBottomk:
            bottom_heaps.try_emplace(key, bottomk_less).first->second.Push(s);
            break;
          case AggregateOp::kQuantile:
            group.heap.push_back(s);
            break;
          default:
            break;
        }
        continue;
      }
      double v = s.value;
      switch (op) {
        case AggregateOp::kSum:
          group.value += v;
          break;
        case AggregateOp::kAvg:
          group.count++;
          if (std::isinf(group.mean)) {
            if (std::isinf(v) && (group.mean > 0) == (v > 0)) {
              break;
            }
            if (!std::isinf(v) && !std::isnan(v)) {
              break;
            }
          }
          group.mean += v / group.count - group.mean / group.count;
          break;
        case AggregateOp::kGroup:
          break;
        case AggregateOp::kMax:
          if (group.value < v || std::isnan(group.value)) {
            group.value = v;
          }
          break;
        case AggregateOp::kMin:
          if (group.value > v || std::isnan(group.value)) {
            group.value = v;
          }
          break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues:
          group.count++;
          break;
        case AggregateOp::kStddev:
        case AggregateOp::kStdvar: {
          group.count++;
          double delta = v - group.mean;
          group.mean += delta / group.count;
          group.value += delta * (v - group.mean);
          break;
        }
        case AggregateOp::kTopk: {
          auto& heap = top_heaps.at(key);
          if (static_cast<int64_t>(heap.items().size()) < k) {
            heap.Push(s);
          } else if (heap.items()[0].value < v ||
                     (std::isnan(heap.items()[0].value) && !std::isnan(v))) {
            heap.items()[0] = s;
            heap.FixRoot();
          }
          break;
        }
        case AggregateOp::kBottomk: {
          auto& heap = bottom_heaps.at(key);
          if (static_cast<int64_t>(heap.items().size()) < k) {
            heap.Push(s);
          } else if (heap.items()[0].value > v ||
                     (std::isnan(heap.items()[0].value) && !std::isnan(v))) {
            heap.items()[0] = s;
            heap.FixRoot();
          }
          break;
        }
        case AggregateOp::kQuantile:
          group.heap.push_back(s);
          break;
      }
    }
    Vector out;
    for (const std::string& key : order) {
      Group& group = groups.at(key);
      switch (op) {
        case AggregateOp::kAvg:
          group.value = group.mean;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kCountValues:
          group.value = group.count;
          break;
        case AggregateOp::kStdvar:
          group.value = group.value / group.count;
          break;
        case AggregateOp::kStddev:
          group.value = std::sqrt(group.value / group.count);
          break;
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk: {
          std::vector<VectorSample>& items =
              op == AggregateOp::kTopk ? top_heaps.at(key).items() : bottom_heaps.at(key).items();
          for (VectorSample& s : items) {
            out.push_back(std::move(s));
          }
          continue;
        }
        case AggregateOp::kQuantile: {
          std::vector<double> values;
          values.reserve(group.heap.size());
          for (const VectorSample& s : group.heap) {
            values.push_back(s.value);
          }
          group.value = Quantile(param, values);
          break;
        }
        default:
          break;
      }
      out.push_back({std::move(group.labels), group.value, 0});
    }
    return out;
  }

  // The API's matchers for the source, then the compiled ones re-applied: a source may return a
  // superset (e.g. filter by name only), and regex semantics stay ours.
  Result<std::vector<Series>> Select(const Expr& expr, const VectorSelector& selector,
                                     int64_t from_ms, int64_t to_ms) {
    std::vector<LabelMatcher> matchers;
    matchers.reserve(selector.matchers.size());
    for (const CompiledMatcher& m : selector.matchers) {
      matchers.push_back(m.matcher);
    }
    auto series = source_.Select(matchers, from_ms, to_ms);
    if (!series) {
      Error error = series.error();
      if (error.location.empty()) {
        error.location = OffsetLocation(expr.pos.begin);
      }
      return Fail(std::move(error));
    }
    std::vector<Series> kept;
    kept.reserve(series->size());
    for (Series& s : *series) {
      if (Cancelled()) {
        return Fail(TimedOut());
      }
      for (auto it = s.labels.begin(); it != s.labels.end();) {
        it = it->second.empty() ? s.labels.erase(it) : std::next(it);
      }
      bool match = std::all_of(selector.matchers.begin(), selector.matchers.end(),
                               [&](const CompiledMatcher& m) {
                                 auto it = s.labels.find(m.matcher.name);
                                 static const std::string kEmpty;
                                 return m.Matches(it == s.labels.end() ? kEmpty : it->second);
                               });
      if (match) {
        kept.push_back(std::move(s));
      }
    }
    std::sort(kept.begin(), kept.end(),
              [](const Series& a, const Series& b) { return a.labels < b.labels; });
    return kept;
  }

  // 2.42: the newest sample in the closed window [t - offset - 5m, t - offset], unless stale.
  Result<Vector> SelectVector(const Expr& expr, const VectorSelector& selector, bool sample_time) {
    int64_t ref = t_ms_ - selector.offset_ms;
    auto series = Select(expr, selector, ref - kLookbackMs, ref);
    if (!series) {
      return Fail(series.error());
    }
    Vector out;
    for (Series& s : *series) {
      const Sample* newest = nullptr;
      for (const Sample& sample : s.samples) {
        if (sample.t_ms <= ref && sample.t_ms >= ref - kLookbackMs) {
          if (newest == nullptr || sample.t_ms >= newest->t_ms) {
            newest = &sample;
          }
        }
      }
      if (newest == nullptr || IsStaleNaN(newest->v)) {
        continue;
      }
      out.push_back({std::move(s.labels), newest->v, sample_time ? newest->t_ms : t_ms_});
    }
    return out;
  }

  // 2.42: all non-stale samples in the closed window [t - offset - range, t - offset].
  Result<Matrix> SelectMatrix(const Expr& expr, const MatrixSelector& matrix) {
    int64_t end = t_ms_ - matrix.selector.offset_ms;
    int64_t start = end - matrix.range_ms;
    auto series = Select(expr, matrix.selector, start, end);
    if (!series) {
      return Fail(series.error());
    }
    Matrix out;
    for (Series& s : *series) {
      std::vector<Sample> window;
      for (const Sample& sample : s.samples) {
        if (sample.t_ms >= start && sample.t_ms <= end && !IsStaleNaN(sample.v)) {
          window.push_back(sample);
        }
      }
      std::stable_sort(window.begin(), window.end(),
                       [](const Sample& a, const Sample& b) { return a.t_ms < b.t_ms; });
      if (!window.empty()) {
        out.push_back({std::move(s.labels), std::move(window)});
      }
    }
    return out;
  }

  bool Cancelled() const { return cancelled_ && cancelled_(); }
  static Error TimedOut() { return Error::Unavailable("query timed out in expression evaluation"); }

  const SampleSource& source_;
  int64_t t_ms_;
  const EvalCancel& cancelled_;
};

}  // namespace

std::optional<PushedCall> PushedCallOf(const Call& call) {
  static const std::map<std::string_view, RangeAggregate> kPushed = {
      {"count_over_time", RangeAggregate::kCount},
      {"sum_over_time", RangeAggregate::kSum},
      {"avg_over_time", RangeAggregate::kAvg},
      {"min_over_time", RangeAggregate::kMin},
      {"max_over_time", RangeAggregate::kMax},
      {"quantile_over_time", RangeAggregate::kQuantile},
      {"present_over_time", RangeAggregate::kCount},
      {"absent_over_time", RangeAggregate::kCount},
      {"rate", RangeAggregate::kRate},
      {"increase", RangeAggregate::kIncrease}};
  auto kind = kPushed.find(call.function->name);
  if (kind == kPushed.end() || call.args.empty()) {
    return std::nullopt;
  }
  const Expr* arg = call.args.back().get();
  while (const auto* paren = std::get_if<Paren>(&arg->node)) {
    arg = paren->expr.get();
  }
  const auto* matrix = std::get_if<MatrixSelector>(&arg->node);
  if (matrix == nullptr) {
    return std::nullopt;
  }
  return PushedCall{kind->second, arg, matrix};
}

bool SelectorAccepts(const VectorSelector& selector, const Labels& labels) {
  static const std::string kEmpty;
  return std::all_of(selector.matchers.begin(), selector.matchers.end(),
                     [&](const CompiledMatcher& m) {
                       auto it = labels.find(m.matcher.name);
                       return m.Matches(it == labels.end() ? kEmpty : it->second);
                     });
}

void DropMetricName(Labels& labels) { labels.erase("__name__"); }

bool ContainsSameLabelset(const Vector& vector) {
  if (vector.size() < 2) {
    return false;
  }
  // A vector in label order (a pushdown's answer, and still after dropping one shared metric
  // name) holds a repeat only next to itself: linear, where the set costs a node and log n
  // comparisons per sample at every step of a range query.
  auto by_labels = [](const VectorSample& a, const VectorSample& b) { return a.labels < b.labels; };
  if (std::is_sorted(vector.begin(), vector.end(), by_labels)) {
    return std::adjacent_find(vector.begin(), vector.end(),
                              [](const VectorSample& a, const VectorSample& b) {
                                return a.labels == b.labels;
                              }) != vector.end();
  }
  std::set<const Labels*, bool (*)(const Labels*, const Labels*)> seen(
      [](const Labels* a, const Labels* b) { return *a < *b; });
  for (const VectorSample& s : vector) {
    if (!seen.insert(&s.labels).second) {
      return true;
    }
  }
  return false;
}

Result<Value> Evaluate(const Expr& expr, const SampleSource& source, int64_t t_ms,
                       const EvalCancel& cancelled) {
  return Evaluator(source, t_ms, cancelled).Eval(expr);
}

}  // namespace modelpulse::rules::promql
