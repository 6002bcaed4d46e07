// Implementations of the PromQL subset's functions, following Prometheus 2.42's
// promql/functions.go and promql/quantile.go algorithm by algorithm (results must agree bit for
// bit with promtool 2.42).
#include "rules/internal/promql_functions.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <unordered_map>

#include "rules/internal/go_compat.h"
#include "rules/internal/promql_eval.h"

namespace modelpulse::rules::promql {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
using V = ValueType;

const Expr& Unwrap(const Expr& expr) {
  const Expr* e = &expr;
  while (const auto* paren = std::get_if<Paren>(&e->node)) {
    e = paren->expr.get();
  }
  return *e;
}

double ScalarArg(const std::vector<Value>& args, size_t i) {
  return std::get<Scalar>(args[i]).value;
}
const std::string& StringArg(const std::vector<Value>& args, size_t i) {
  return std::get<String>(args[i]).value;
}

bool IsValidLabelName(const std::string& name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          (i > 0 && c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

// Applies `f` to each series of the matrix argument; series for which f yields nothing are
// dropped. The evaluator drops __name__ afterwards unless the function keeps it.
template <typename F>
Value OverTime(const Value& arg, F f) {
  Vector out;
  for (const Series& s : std::get<Matrix>(arg)) {
    std::optional<double> v = f(s.samples);
    if (v) {
      out.push_back({s.labels, *v, 0});
    }
  }
  return out;
}

template <typename F>
Value Elementwise(const Value& arg, F f) {
  Vector out = std::get<Vector>(arg);
  for (VectorSample& s : out) {
    s.value = f(s.value);
  }
  return out;
}

Result<Value> AvgOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kAvg, 0, samples);
  });
}

Result<Value> SumOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kSum, 0, samples);
  });
}

Result<Value> CountOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kCount, 0, samples);
  });
}

Result<Value> MinOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kMin, 0, samples);
  });
}

Result<Value> MaxOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kMax, 0, samples);
  });
}

Result<Value> LastOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return samples.back().v;
  });
}

Result<Value> PresentOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>&) -> std::optional<double> { return 1.0; });
}

Result<Value> QuantileOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  double q = ScalarArg(args, 0);
  return OverTime(args[1], [q](const std::vector<Sample>& samples) -> std::optional<double> {
    return AggregateSamples(RangeAggregate::kQuantile, q, samples);
  });
}

// Population variance, Welford with compensated sums (funcStdvarOverTime).
double VarianceOverTime(const std::vector<Sample>& samples) {
  double count = 0;
  KahanSum mean;
  KahanSum aux;
  for (const Sample& s : samples) {
    count++;
    double delta = s.v - (mean.sum + mean.c);
    mean.Add(delta / count);
    aux.Add(delta * (s.v - (mean.sum + mean.c)));
  }
  return (aux.sum + aux.c) / count;
}

Result<Value> StddevOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return std::sqrt(VarianceOverTime(samples));
  });
}

Result<Value> StdvarOverTime(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    return VarianceOverTime(samples);
  });
}

// Labels for absent()/absent_over_time(): the equality matchers of a plain selector argument,
// minus __name__ and minus any label matched more than once or by another matcher type.
Labels AbsentLabels(const Expr& arg) {
  const Expr& e = Unwrap(arg);
  const VectorSelector* selector = std::get_if<VectorSelector>(&e.node);
  if (const auto* matrix = std::get_if<MatrixSelector>(&e.node)) {
    selector = &matrix->selector;
  }
  Labels labels;
  if (selector == nullptr) {
    return labels;
  }
  std::vector<std::string> drop;
  for (const CompiledMatcher& m : selector->matchers) {
    if (m.matcher.name == "__name__") {
      continue;
    }
    if (m.matcher.type == LabelMatcher::Type::kEqual && labels.count(m.matcher.name) == 0) {
      if (!m.matcher.value.empty()) {
        labels[m.matcher.name] = m.matcher.value;
      }
    } else {
      drop.push_back(m.matcher.name);
    }
  }
  for (const std::string& name : drop) {
    labels.erase(name);
  }
  return labels;
}

Result<Value> Absent(const Call& call, const std::vector<Value>& args, int64_t) {
  if (!std::get<Vector>(args[0]).empty()) {
    return Vector{};
  }
  return Vector{{AbsentLabels(*call.args[0]), 1.0, 0}};
}

Result<Value> AbsentOverTime(const Call& call, const std::vector<Value>& args, int64_t) {
  if (!std::get<Matrix>(args[0]).empty()) {
    return Vector{};
  }
  return Vector{{AbsentLabels(*call.args[0]), 1.0, 0}};
}

// extrapolatedRate(): rate, increase (counters) and delta (gauges).
Value ExtrapolatedRate(const Call& call, const std::vector<Value>& args, int64_t t_ms,
                       bool is_counter, bool is_rate) {
  const auto& matrix = std::get<MatrixSelector>(Unwrap(*call.args[0]).node);
  int64_t range_start = t_ms - (matrix.range_ms + matrix.selector.offset_ms);
  int64_t range_end = t_ms - matrix.selector.offset_ms;
  return OverTime(args[0], [&](const std::vector<Sample>& samples) -> std::optional<double> {
    if (samples.size() < 2) {
      return std::nullopt;
    }
    // One implementation with the sources' pushdown (common/sample_source.h).
    return modelpulse::ExtrapolatedRate(modelpulse::RateInputsOf(samples, is_counter), range_start,
                                        range_end, is_counter, is_rate);
  });
}

Result<Value> Rate(const Call& call, const std::vector<Value>& args, int64_t t_ms) {
  return ExtrapolatedRate(call, args, t_ms, true, true);
}
Result<Value> Increase(const Call& call, const std::vector<Value>& args, int64_t t_ms) {
  return ExtrapolatedRate(call, args, t_ms, true, false);
}
Result<Value> Delta(const Call& call, const std::vector<Value>& args, int64_t t_ms) {
  return ExtrapolatedRate(call, args, t_ms, false, false);
}

// instantValue(): irate and idelta from the last two samples.
Value InstantValue(const std::vector<Value>& args, bool is_rate) {
  return OverTime(args[0], [&](const std::vector<Sample>& samples) -> std::optional<double> {
    if (samples.size() < 2) {
      return std::nullopt;
    }
    const Sample& last = samples.back();
    const Sample& previous = samples[samples.size() - 2];
    double result = is_rate && last.v < previous.v ? last.v : last.v - previous.v;
    int64_t interval = last.t_ms - previous.t_ms;
    if (interval == 0) {
      return std::nullopt;
    }
    if (is_rate) {
      result /= static_cast<double>(interval) / 1000;
    }
    return result;
  });
}

Result<Value> Irate(const Call&, const std::vector<Value>& args, int64_t) {
  return InstantValue(args, true);
}
Result<Value> Idelta(const Call&, const std::vector<Value>& args, int64_t) {
  return InstantValue(args, false);
}

Result<Value> Changes(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    double changes = 0;
    double previous = samples[0].v;
    for (size_t i = 1; i < samples.size(); ++i) {
      double current = samples[i].v;
      if (current != previous && !(std::isnan(current) && std::isnan(previous))) {
        changes++;
      }
      previous = current;
    }
    return changes;
  });
}

Result<Value> Resets(const Call&, const std::vector<Value>& args, int64_t) {
  return OverTime(args[0], [](const std::vector<Sample>& samples) -> std::optional<double> {
    double resets = 0;
    double previous = samples[0].v;
    for (size_t i = 1; i < samples.size(); ++i) {
      if (samples[i].v < previous) {
        resets++;
      }
      previous = samples[i].v;
    }
    return resets;
  });
}

struct Bucket {
  double upper_bound;
  double count;
};

// bucketQuantile() of promql/quantile.go.
double BucketQuantile(double q, std::vector<Bucket>& buckets) {
  if (std::isnan(q)) {
    return kNaN;
  }
  if (q < 0) {
    return -kInf;
  }
  if (q > 1) {
    return kInf;
  }
  std::sort(buckets.begin(), buckets.end(),
            [](const Bucket& a, const Bucket& b) { return a.upper_bound < b.upper_bound; });
  if (!(std::isinf(buckets.back().upper_bound) && buckets.back().upper_bound > 0)) {
    return kNaN;
  }
  // Merge buckets with equal bounds, then force the counts to be monotonic.
  size_t n = 0;
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (buckets[i].upper_bound == buckets[n].upper_bound) {
      buckets[n].count += buckets[i].count;
    } else {
      buckets[++n] = buckets[i];
    }
  }
  buckets.resize(n + 1);
  double max = -kInf;
  for (Bucket& b : buckets) {
    if (b.count > max) {
      max = b.count;
    } else if (b.count < max) {
      b.count = max;
    }
  }
  if (buckets.size() < 2) {
    return kNaN;
  }
  double observations = buckets.back().count;
  if (observations == 0) {
    return kNaN;
  }
  double rank = q * observations;
  size_t b = 0;
  while (b < buckets.size() - 1 && !(buckets[b].count >= rank)) {
    ++b;
  }
  if (b == buckets.size() - 1) {
    return buckets[buckets.size() - 2].upper_bound;
  }
  if (b == 0 && buckets[0].upper_bound <= 0) {
    return buckets[0].upper_bound;
  }
  double bucket_start = 0;
  double bucket_end = buckets[b].upper_bound;
  double count = buckets[b].count;
  if (b > 0) {
    bucket_start = buckets[b - 1].upper_bound;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

// Go's strconv.ParseFloat, close enough for `le` values ("0.5", "+Inf", "1e3").
std::optional<double> ParseGoFloat(const std::string& text) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])) != 0) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) {
    return std::nullopt;
  }
  return v;
}

Result<Value> HistogramQuantile(const Call&, const std::vector<Value>& args, int64_t) {
  double q = ScalarArg(args, 0);
  struct Group {
    Labels labels;
    std::vector<Bucket> buckets;
  };
  std::unordered_map<std::string, size_t> index;
  std::vector<Group> groups;
  for (const VectorSample& s : std::get<Vector>(args[1])) {
    auto le = s.labels.find("le");
    if (le == s.labels.end()) {
      continue;
    }
    std::optional<double> upper = ParseGoFloat(le->second);
    if (!upper) {
      continue;
    }
    // Grouped by every label but le (__name__ included), output without __name__ and le.
    std::string key;
    for (const auto& [name, value] : s.labels) {
      if (name != "le") {
        key += name + '\xff' + value + '\xfe';
      }
    }
    auto [it, inserted] = index.try_emplace(key, groups.size());
    if (inserted) {
      Labels labels = s.labels;
      labels.erase("le");
      labels.erase("__name__");
      groups.push_back({std::move(labels), {}});
    }
    groups[it->second].buckets.push_back({*upper, s.value});
  }
  Vector out;
  for (Group& g : groups) {
    out.push_back({std::move(g.labels), BucketQuantile(q, g.buckets), 0});
  }
  return out;
}

Result<Value> Abs(const Call&, const std::vector<Value>& args, int64_t) {
  return Elementwise(args[0], [](double v) { return std::fabs(v); });
}
Result<Value> Ceil(const Call&, const std::vector<Value>& args, int64_t) {
  return Elementwise(args[0], [](double v) { return std::ceil(v); });
}
Result<Value> Floor(const Call&, const std::vector<Value>& args, int64_t) {
  return Elementwise(args[0], [](double v) { return std::floor(v); });
}
Result<Value> Sqrt(const Call&, const std::vector<Value>& args, int64_t) {
  return Elementwise(args[0], [](double v) { return std::sqrt(v); });
}
Result<Value> Sgn(const Call&, const std::vector<Value>& args, int64_t) {
  return Elementwise(args[0], [](double v) { return v < 0 ? -1.0 : v > 0 ? 1.0 : v; });
}

Result<Value> Round(const Call&, const std::vector<Value>& args, int64_t) {
  double to_nearest = args.size() >= 2 ? ScalarArg(args, 1) : 1.0;
  // Prometheus multiplies by the inverse, "as it seems to cause fewer floating point accuracy
  // issues"; ties round up.
  double inverse = 1.0 / to_nearest;
  return Elementwise(args[0],
                     [inverse](double v) { return std::floor(v * inverse + 0.5) / inverse; });
}

Result<Value> ClampMin(const Call&, const std::vector<Value>& args, int64_t) {
  double min = ScalarArg(args, 1);
  return Elementwise(args[0], [min](double v) { return GoMax(min, v); });
}
Result<Value> ClampMax(const Call&, const std::vector<Value>& args, int64_t) {
  double max = ScalarArg(args, 1);
  return Elementwise(args[0], [max](double v) { return GoMin(max, v); });
}
Result<Value> Clamp(const Call&, const std::vector<Value>& args, int64_t) {
  double min = ScalarArg(args, 1);
  double max = ScalarArg(args, 2);
  if (max < min) {
    return Vector{};
  }
  return Elementwise(args[0], [min, max](double v) { return GoMax(min, GoMin(max, v)); });
}

Result<Value> ScalarFn(const Call&, const std::vector<Value>& args, int64_t t_ms) {
  const Vector& v = std::get<Vector>(args[0]);
  return Scalar{v.size() == 1 ? v[0].value : kNaN, t_ms};
}
Result<Value> VectorFn(const Call&, const std::vector<Value>& args, int64_t) {
  return Vector{{Labels{}, ScalarArg(args, 0), 0}};
}
Result<Value> Time(const Call&, const std::vector<Value>&, int64_t t_ms) {
  return Scalar{static_cast<double>(t_ms) / 1000, t_ms};
}
Result<Value> Timestamp(const Call&, const std::vector<Value>& args, int64_t) {
  Vector out = std::get<Vector>(args[0]);
  for (VectorSample& s : out) {
    s.value = static_cast<double>(s.t_ms) / 1000;
  }
  return out;
}

Result<Value> Sort(const Call&, const std::vector<Value>& args, int64_t) {
  Vector out = std::get<Vector>(args[0]);
  std::stable_sort(out.begin(), out.end(), [](const VectorSample& a, const VectorSample& b) {
    return (std::isnan(b.value) && !std::isnan(a.value)) || a.value < b.value;
  });
  return out;
}
Result<Value> SortDesc(const Call&, const std::vector<Value>& args, int64_t) {
  Vector out = std::get<Vector>(args[0]);
  std::stable_sort(out.begin(), out.end(), [](const VectorSample& a, const VectorSample& b) {
    return (std::isnan(b.value) && !std::isnan(a.value)) || a.value > b.value;
  });
  return out;
}

Result<Value> LabelReplace(const Call&, const std::vector<Value>& args, int64_t) {
  const std::string& dst = StringArg(args, 1);
  const std::string& replacement = StringArg(args, 2);
  const std::string& src = StringArg(args, 3);
  const std::string& pattern = StringArg(args, 4);
  auto regex = CompileWrappedRegex(pattern);
  if (!regex) {
    return Fail(
        Error::InvalidArgument("invalid regular expression in label_replace(): " + pattern));
  }
  if (!IsValidLabelName(dst)) {
    return Fail(
        Error::InvalidArgument("invalid destination label name in label_replace(): " + dst));
  }
  Vector out = std::get<Vector>(args[0]);
  for (VectorSample& s : out) {
    auto it = s.labels.find(src);
    std::string value = it == s.labels.end() ? "" : it->second;
    auto groups = regex->FullMatchGroups(value);
    if (!groups) {
      continue;
    }
    std::string result = regex->Expand(replacement, *groups);
    s.labels.erase(dst);
    if (!result.empty()) {
      s.labels[dst] = std::move(result);
    }
  }
  return out;
}

Result<Value> LabelJoin(const Call&, const std::vector<Value>& args, int64_t) {
  const std::string& dst = StringArg(args, 1);
  const std::string& separator = StringArg(args, 2);
  std::vector<std::string> sources;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string& src = StringArg(args, i);
    if (!IsValidLabelName(src)) {
      return Fail(Error::InvalidArgument("invalid source label name in label_join(): " + src));
    }
    sources.push_back(src);
  }
  if (!IsValidLabelName(dst)) {
    return Fail(Error::InvalidArgument("invalid destination label name in label_join(): " + dst));
  }
  Vector out = std::get<Vector>(args[0]);
  for (VectorSample& s : out) {
    std::string joined;
    for (size_t i = 0; i < sources.size(); ++i) {
      if (i > 0) {
        joined += separator;
      }
      auto it = s.labels.find(sources[i]);
      if (it != s.labels.end()) {
        joined += it->second;
      }
    }
    if (joined.empty()) {
      s.labels.erase(dst);
    } else {
      s.labels[dst] = std::move(joined);
    }
  }
  return out;
}

constexpr FunctionSpec Fn(std::string_view name, std::array<ValueType, 5> types, int n,
                          int variadic, ValueType ret, FunctionImpl impl, bool keeps = false) {
  return FunctionSpec{name, types, n, variadic, ret, impl, keeps};
}

const std::array kFunctions = {
    Fn("abs", {V::kVector}, 1, 0, V::kVector, Abs),
    Fn("absent", {V::kVector}, 1, 0, V::kVector, Absent, true),
    Fn("absent_over_time", {V::kMatrix}, 1, 0, V::kVector, AbsentOverTime, true),
    Fn("avg_over_time", {V::kMatrix}, 1, 0, V::kVector, AvgOverTime),
    Fn("ceil", {V::kVector}, 1, 0, V::kVector, Ceil),
    Fn("changes", {V::kMatrix}, 1, 0, V::kVector, Changes),
    Fn("clamp", {V::kVector, V::kScalar, V::kScalar}, 3, 0, V::kVector, Clamp),
    Fn("clamp_max", {V::kVector, V::kScalar}, 2, 0, V::kVector, ClampMax),
    Fn("clamp_min", {V::kVector, V::kScalar}, 2, 0, V::kVector, ClampMin),
    Fn("count_over_time", {V::kMatrix}, 1, 0, V::kVector, CountOverTime),
    Fn("delta", {V::kMatrix}, 1, 0, V::kVector, Delta),
    Fn("floor", {V::kVector}, 1, 0, V::kVector, Floor),
    Fn("histogram_quantile", {V::kScalar, V::kVector}, 2, 0, V::kVector, HistogramQuantile),
    Fn("idelta", {V::kMatrix}, 1, 0, V::kVector, Idelta),
    Fn("increase", {V::kMatrix}, 1, 0, V::kVector, Increase),
    Fn("irate", {V::kMatrix}, 1, 0, V::kVector, Irate),
    Fn("label_join", {V::kVector, V::kString, V::kString, V::kString}, 4, -1, V::kVector, LabelJoin,
       true),
    Fn("label_replace", {V::kVector, V::kString, V::kString, V::kString, V::kString}, 5, 0,
       V::kVector, LabelReplace, true),
    Fn("last_over_time", {V::kMatrix}, 1, 0, V::kVector, LastOverTime, true),
    Fn("max_over_time", {V::kMatrix}, 1, 0, V::kVector, MaxOverTime),
    Fn("min_over_time", {V::kMatrix}, 1, 0, V::kVector, MinOverTime),
    Fn("present_over_time", {V::kMatrix}, 1, 0, V::kVector, PresentOverTime),
    Fn("quantile_over_time", {V::kScalar, V::kMatrix}, 2, 0, V::kVector, QuantileOverTime),
    Fn("rate", {V::kMatrix}, 1, 0, V::kVector, Rate),
    Fn("resets", {V::kMatrix}, 1, 0, V::kVector, Resets),
    Fn("round", {V::kVector, V::kScalar}, 2, 1, V::kVector, Round),
    Fn("scalar", {V::kVector}, 1, 0, V::kScalar, ScalarFn),
    Fn("sgn", {V::kVector}, 1, 0, V::kVector, Sgn),
    Fn("sort", {V::kVector}, 1, 0, V::kVector, Sort, true),
    Fn("sort_desc", {V::kVector}, 1, 0, V::kVector, SortDesc, true),
    Fn("sqrt", {V::kVector}, 1, 0, V::kVector, Sqrt),
    Fn("stddev_over_time", {V::kMatrix}, 1, 0, V::kVector, StddevOverTime),
    Fn("stdvar_over_time", {V::kMatrix}, 1, 0, V::kVector, StdvarOverTime),
    Fn("sum_over_time", {V::kMatrix}, 1, 0, V::kVector, SumOverTime),
    Fn("time", {}, 0, 0, V::kScalar, Time),
    Fn("timestamp", {V::kVector}, 1, 0, V::kVector, Timestamp),
    Fn("vector", {V::kScalar}, 1, 0, V::kVector, VectorFn),
};

}  // namespace

double Quantile(double q, std::vector<double>& values) {
  if (!values.empty() && q >= 0 && q <= 1) {
    std::sort(values.begin(), values.end(),
              [](double a, double b) { return (std::isnan(a) && !std::isnan(b)) || a < b; });
  }
  return QuantileOfSorted(q, values);
}

const FunctionSpec* FindFunction(std::string_view name) {
  for (const FunctionSpec& spec : kFunctions) {
    if (spec.name == name) {
      return &spec;
    }
  }
  return nullptr;
}

bool IsKnownUnsupportedFunction(std::string_view name) {
  static constexpr std::array<std::string_view, 22> kUnsupported = {
      "acos",         "acosh",       "asin",
      "asinh",        "atan",        "atanh",
      "cos",          "cosh",        "day_of_month",
      "day_of_week",  "day_of_year", "days_in_month",
      "deg",          "deriv",       "exp",
      "holt_winters", "hour",        "ln",
      "log10",        "log2",        "predict_linear",
      "rad"};
  static constexpr std::array<std::string_view, 7> kMore = {"minute", "month", "pi",  "sin",
                                                            "sinh",   "tan",   "tanh"};
  return std::find(kUnsupported.begin(), kUnsupported.end(), name) != kUnsupported.end() ||
         std::find(kMore.begin(), kMore.end(), name) != kMore.end() || name == "year" ||
         name == "histogram_count" || name == "histogram_sum" || name == "histogram_fraction";
}

}  // namespace modelpulse::rules::promql
