// Evaluator of the PromQL subset: the worked examples of prometheus-semantics.md §4.12 (verified
// with promtool 2.42) and a table of cases per function and operator.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "rules/promql.h"

namespace modelpulse::rules {
namespace {

constexpr int64_t kMinute = 60'000;

// In-memory SampleSource that honours the matchers and the window exactly (the contract).
class MemorySource : public SampleSource {
 public:
  // `values`: promtool notation subset: numbers, _, stale, axN, a+bxN (1m spacing from 0).
  void Add(Labels labels, const std::string& values) {
    Series s{std::move(labels), {}};
    std::istringstream in(values);
    std::string item;
    int64_t i = 0;
    while (in >> item) {
      if (item == "_") {
        ++i;
      } else if (item == "stale") {
        s.samples.push_back({i++ * kMinute, std::bit_cast<double>(0x7ff0000000000002ULL)});
      } else if (size_t x = item.find('x'); x != std::string::npos) {
        std::string head = item.substr(0, x);
        size_t plus = head.find('+', 1);
        double v = std::stod(head.substr(0, plus));
        double step = plus == std::string::npos ? 0 : std::stod(head.substr(plus + 1));
        for (int n = 0; n <= std::stoi(item.substr(x + 1)); ++n, v += step) {
          s.samples.push_back({i++ * kMinute, v});
        }
      } else {
        s.samples.push_back({i++ * kMinute, std::stod(item)});
      }
    }
    series_.push_back(std::move(s));
  }

  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    ++selects;
    last_from = from_ms;
    last_to = to_ms;
    std::vector<Series> out;
    for (const Series& s : series_) {
      bool match = true;
      for (const LabelMatcher& m : matchers) {
        auto it = s.labels.find(m.name);
        std::string v = it == s.labels.end() ? "" : it->second;
        switch (m.type) {
          case LabelMatcher::Type::kEqual:
            match = match && v == m.value;
            break;
          case LabelMatcher::Type::kNotEqual:
            match = match && v != m.value;
            break;
          default:
            break;  // regexes: return a superset; the evaluator re-checks
        }
      }
      if (!match) {
        continue;
      }
      Series copy{s.labels, {}};
      for (const Sample& sample : s.samples) {
        if (sample.t_ms >= from_ms && sample.t_ms <= to_ms) {
          copy.samples.push_back(sample);
        }
      }
      out.push_back(std::move(copy));
    }
    return out;
  }

  mutable int selects = 0;
  mutable int64_t last_from = 0;
  mutable int64_t last_to = 0;

 private:
  std::vector<Series> series_;
};

std::string FormatLabels(const Labels& labels) {
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    out += (out.size() > 1 ? ", " : "") + name + "=\"" + value + "\"";
  }
  return out + "}";
}

// Sorted "labels value" lines (values with %.17g) or "error: ..." for a failed evaluation.
std::vector<std::string> Eval(const MemorySource& source, const std::string& text, int64_t t_ms) {
  auto query = Query::Parse(text);
  // Only a failed parse has an error to show: the message must not be built from a value.
  if (!query) {
    FAIL(text << ": " << query.error().ToString());
  }
  auto value = query->Evaluate(source, t_ms);
  if (!value) {
    return {"error: " + value.error().message};
  }
  std::vector<std::string> out;
  auto add = [&](const Labels& labels, double v) {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    out.push_back(FormatLabels(labels) + " " + buf);
  };
  if (const auto* scalar = std::get_if<Scalar>(&*value)) {
    add({}, scalar->value);
  } else if (const auto* vector = std::get_if<Vector>(&*value)) {
    for (const VectorSample& s : *vector) {
      CHECK(s.t_ms == t_ms);
      add(s.labels, s.value);
    }
  } else {
    out.push_back("non-vector");
  }
  std::sort(out.begin(), out.end());
  return out;
}

using Lines = std::vector<std::string>;

MemorySource WorkedExampleSource() {
  MemorySource source;
  source.Add({{"__name__", "probe_latency_seconds"}, {"target", "a"}, {"model", "m1"}}, "1 2 3 4");
  source.Add({{"__name__", "probe_latency_seconds"}, {"target", "b"}, {"model", "m1"}},
             "10 10 10 10");
  source.Add({{"__name__", "probe_success"}, {"target", "a"}, {"model", "m1"}}, "1 1 0 1 stale");
  source.Add({{"__name__", "probe_success"}, {"target", "b"}, {"model", "m1"}}, "1 _ _ _ 1");
  source.Add({{"__name__", "target_info"}, {"target", "a"}, {"team", "x"}}, "1x10");
  source.Add({{"__name__", "target_info"}, {"target", "b"}, {"team", "y"}}, "1x10");
  source.Add({{"__name__", "ok"}, {"t", "a"}}, "1 1 0 1 1 1 1 1 1 1 1");
  return source;
}

}  // namespace

TEST_CASE("eval: worked examples of prometheus-semantics.md 4.12") {
  MemorySource s = WorkedExampleSource();
  const std::string a = "model=\"m1\", target=\"a\"}";
  const std::string b = "model=\"m1\", target=\"b\"}";
  CHECK(Eval(s, "quantile_over_time(0.9, probe_latency_seconds{target=\"a\"}[5m])", 3 * kMinute) ==
        Lines{"{" + a + " 3.7000000000000002"});
  CHECK(Eval(s, "count_over_time(probe_latency_seconds{target=\"a\"}[2m])", 3 * kMinute) ==
        Lines{"{" + a + " 3"});
  CHECK(Eval(s, "probe_latency_seconds offset 1m", 3 * kMinute) ==
        Lines{"{__name__=\"probe_latency_seconds\", " + a + " 3",
              "{__name__=\"probe_latency_seconds\", " + b + " 10"});
  CHECK(Eval(s, "probe_success", 4 * kMinute) == Lines{"{__name__=\"probe_success\", " + b + " 1"});
  CHECK(Eval(s, "probe_success", 3 * kMinute) == Lines{"{__name__=\"probe_success\", " + a + " 1",
                                                       "{__name__=\"probe_success\", " + b + " 1"});
  CHECK(Eval(s, "count_over_time(probe_success[10m])", 4 * kMinute) ==
        Lines{"{" + a + " 4", "{" + b + " 2"});
  CHECK(Eval(s, "probe_latency_seconds > 5", 0) ==
        Lines{"{__name__=\"probe_latency_seconds\", " + b + " 10"});
  CHECK(Eval(s, "probe_latency_seconds + on(target) target_info", 0) ==
        Lines{"{target=\"a\"} 2", "{target=\"b\"} 11"});
  CHECK(Eval(s, "probe_latency_seconds / ignoring(model) target_info", 0).empty());
  CHECK(Eval(s, "probe_latency_seconds unless probe_success == 0", 2 * kMinute) ==
        Lines{"{__name__=\"probe_latency_seconds\", " + b + " 10"});
  CHECK(Eval(s, "-probe_latency_seconds", 0) == Lines{"{" + a + " -1", "{" + b + " -10"});
  CHECK(Eval(s, "label_replace(probe_success, \"host\", \"$1\", \"target\", \"(.*)\")", 0) ==
        Lines{"{__name__=\"probe_success\", host=\"a\", " + a + " 1",
              "{__name__=\"probe_success\", host=\"b\", " + b + " 1"});
  CHECK(Eval(s, "1 - avg_over_time(ok[10m])", 10 * kMinute) ==
        Lines{"{t=\"a\"} 0.090909090909090939"});
  CHECK(Eval(s, "sum_over_time(ok[10m]) / count_over_time(ok[10m])", 10 * kMinute) ==
        Lines{"{t=\"a\"} 0.90909090909090906"});
}

TEST_CASE("eval: lookback (closed 5m in 2.42), staleness, range windows, offsets") {
  MemorySource s;
  s.Add({{"__name__", "once"}}, "7");
  s.Add({{"__name__", "ok"}}, "1 1 0 0 0 0 1 1 1 1 1");
  CHECK(Eval(s, "once", 5 * kMinute) == Lines{"{__name__=\"once\"} 7"});
  CHECK(Eval(s, "once", 5 * kMinute + 1000).empty());
  CHECK(Eval(s, "count_over_time(ok[5m])", 10 * kMinute) == Lines{"{} 6"});
  CHECK(Eval(s, "avg_over_time(ok[5m])", 5 * kMinute) == Lines{"{} 0.33333333333333331"});
  CHECK(Eval(s, "ok offset -2m", 3 * kMinute) == Lines{"{__name__=\"ok\"} 0"});
  CHECK(Eval(s, "timestamp(once)", 2 * kMinute) == Lines{"{} 0"});
  CHECK(Eval(s, "timestamp(once + 0)", 2 * kMinute) == Lines{"{} 120"});
  // The window is what reaches the source: [t - offset - range, t - offset].
  (void)Eval(s, "sum_over_time(ok[3m] offset 1m)", 10 * kMinute);
  CHECK(s.last_from == 6 * kMinute);
  CHECK(s.last_to == 9 * kMinute);
}

TEST_CASE("eval: *_over_time follow 2.42's float algorithms") {
  MemorySource s;
  s.Add({{"__name__", "x"}}, "1 1 0");
  s.Add({{"__name__", "y"}}, "1 2 3 4");
  s.Add({{"__name__", "n"}}, "1 NaN 3");
  CHECK(Eval(s, "avg_over_time(x[5m])", 2 * kMinute) == Lines{"{} 0.66666666666666674"});
  CHECK(Eval(s, "stddev_over_time(y[5m])", 3 * kMinute) == Lines{"{} 1.1180339887498949"});
  CHECK(Eval(s, "stdvar_over_time(y[5m])", 3 * kMinute) == Lines{"{} 1.25"});
  CHECK(Eval(s, "quantile_over_time(0.5, y[5m])", 3 * kMinute) == Lines{"{} 2.5"});
  CHECK(Eval(s, "quantile_over_time(-1, y[5m])", 3 * kMinute) == Lines{"{} -inf"});
  CHECK(Eval(s, "min_over_time(n[5m])", 2 * kMinute) == Lines{"{} 1"});
  CHECK(Eval(s, "max_over_time(n[5m])", 2 * kMinute) == Lines{"{} 3"});
  CHECK(Eval(s, "last_over_time(y[5m])", 3 * kMinute) == Lines{"{__name__=\"y\"} 4"});
  CHECK(Eval(s, "present_over_time(y[1m])", 3 * kMinute) == Lines{"{} 1"});
  CHECK(Eval(s, "sum_over_time(y[5m])", 3 * kMinute) == Lines{"{} 10"});
}

TEST_CASE("eval: rate, increase, delta, histogram_quantile") {
  MemorySource s;
  s.Add({{"__name__", "req_total"}}, "0+60x10");
  s.Add({{"__name__", "reset_total"}}, "5 10 2 4");
  s.Add({{"__name__", "req_bucket"}, {"le", "0.5"}}, "0+10x10");
  s.Add({{"__name__", "req_bucket"}, {"le", "1"}}, "0+20x10");
  s.Add({{"__name__", "req_bucket"}, {"le", "+Inf"}}, "0+25x10");
  CHECK(Eval(s, "rate(req_total[5m])", 5 * kMinute) == Lines{"{} 1"});
  CHECK(Eval(s, "increase(req_total[5m])", 5 * kMinute) == Lines{"{} 300"});
  CHECK(Eval(s, "delta(req_total[2m])", 5 * kMinute) == Lines{"{} 120"});
  CHECK(Eval(s, "increase(reset_total[3m])", 3 * kMinute) == Lines{"{} 9"});
  CHECK(Eval(s, "rate(req_total[1m] offset 20m)", 5 * kMinute).empty());
  CHECK(Eval(s, "histogram_quantile(0.9, rate(req_bucket[5m]))", 5 * kMinute) == Lines{"{} 1"});
  CHECK(Eval(s, "histogram_quantile(0.2, rate(req_bucket[5m]))", 5 * kMinute) == Lines{"{} 0.25"});
  CHECK(Eval(s, "histogram_quantile(2, req_bucket)", 5 * kMinute) == Lines{"{} inf"});
}

TEST_CASE("eval: absent, scalar, vector, time and element-wise functions") {
  MemorySource s = WorkedExampleSource();
  CHECK(Eval(s, "absent(probe_success{target=\"c\",model=~\"m.*\"})", 0) ==
        Lines{"{target=\"c\"} 1"});
  CHECK(Eval(s, "absent(nothing{a=\"1\",a=\"2\"})", 0) == Lines{"{} 1"});
  CHECK(Eval(s, "absent(sum(nothing))", 0) == Lines{"{} 1"});
  CHECK(Eval(s, "absent(probe_success)", 0).empty());
  CHECK(Eval(s, "absent_over_time(probe_success{target=\"b\"}[2m])", 3 * kMinute) ==
        Lines{"{target=\"b\"} 1"});
  CHECK(Eval(s, "scalar(probe_latency_seconds)", 0) == Lines{"{} nan"});
  CHECK(Eval(s, "scalar(probe_latency_seconds{target=\"b\"})", 0) == Lines{"{} 10"});
  CHECK(Eval(s, "vector(2) + time()", 90'000) == Lines{"{} 92"});
  CHECK(Eval(s, "sum(nothing) or vector(0)", 0) == Lines{"{} 0"});
  CHECK(Eval(s, "clamp_min(probe_latency_seconds, 5)", 0) ==
        Lines{"{model=\"m1\", target=\"a\"} 5", "{model=\"m1\", target=\"b\"} 10"});
  CHECK(Eval(s, "clamp_max(probe_latency_seconds, 5)", 0) ==
        Lines{"{model=\"m1\", target=\"a\"} 1", "{model=\"m1\", target=\"b\"} 5"});
  CHECK(Eval(s, "round(probe_latency_seconds / 3, 0.5)", 0) ==
        Lines{"{model=\"m1\", target=\"a\"} 0.5", "{model=\"m1\", target=\"b\"} 3.5"});
  CHECK(Eval(s, "ceil(probe_latency_seconds / 3)", 0)[1] == "{model=\"m1\", target=\"b\"} 4");
  CHECK(Eval(s, "floor(-probe_latency_seconds / 3)", 0)[1] == "{model=\"m1\", target=\"b\"} -4");
  CHECK(Eval(s, "abs(-probe_latency_seconds)", 0)[0] == "{model=\"m1\", target=\"a\"} 1");
  CHECK(Eval(s, "label_replace(ok, \"t\", \"\", \"t\", \"(.*)\")", 0) ==
        Lines{"{__name__=\"ok\"} 1"});
  CHECK(Eval(s, "label_replace(ok, \"u\", \"$1x-${1}y\", \"t\", \"(.*)\")", 0) ==
        Lines{"{__name__=\"ok\", t=\"a\", u=\"-ay\"} 1"});
  CHECK(Eval(s, "label_join(target_info, \"tt\", \"/\", \"team\", \"target\")", 0) ==
        Lines{"{__name__=\"target_info\", target=\"a\", team=\"x\", tt=\"x/a\"} 1",
              "{__name__=\"target_info\", target=\"b\", team=\"y\", tt=\"y/b\"} 1"});
  CHECK(Eval(s, "label_replace(ok, \"1bad\", \"x\", \"t\", \"(.*)\")", 0)[0].rfind("error:", 0) ==
        0);
}

TEST_CASE("eval: aggregations") {
  MemorySource s = WorkedExampleSource();
  CHECK(Eval(s, "sum by (model) (probe_latency_seconds)", 0) == Lines{"{model=\"m1\"} 11"});
  CHECK(Eval(s, "avg without (target) (probe_latency_seconds)", 0) == Lines{"{model=\"m1\"} 5.5"});
  CHECK(Eval(s, "topk(1, probe_latency_seconds)", 0) ==
        Lines{"{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"b\"} 10"});
  CHECK(Eval(s, "bottomk(1, probe_latency_seconds)", 0) ==
        Lines{"{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"a\"} 1"});
  CHECK(Eval(s, "topk(0, probe_latency_seconds)", 0).empty());
  CHECK(Eval(s, "count(target_info)", 0) == Lines{"{} 2"});
  CHECK(Eval(s, "min(probe_latency_seconds)", 0) == Lines{"{} 1"});
  CHECK(Eval(s, "max(probe_latency_seconds)", 0) == Lines{"{} 10"});
  CHECK(Eval(s, "stddev(probe_latency_seconds)", 0) == Lines{"{} 4.5"});
  CHECK(Eval(s, "stdvar(probe_latency_seconds)", 0) == Lines{"{} 20.25"});
  CHECK(Eval(s, "quantile(0.5, probe_latency_seconds)", 0) == Lines{"{} 5.5"});
  CHECK(Eval(s, "group by (team) (target_info)", 0) == Lines{"{team=\"x\"} 1", "{team=\"y\"} 1"});
  CHECK(Eval(s, "count_values(\"v\", target_info)", 0) == Lines{"{v=\"1\"} 2"});
  CHECK(Eval(s, "sum(nothing)", 0).empty());
}

TEST_CASE("eval: binary operators and vector matching") {
  MemorySource s = WorkedExampleSource();
  CHECK(Eval(s, "2 ^ 3 ^ 2", 0) == Lines{"{} 512"});
  CHECK(Eval(s, "-2 ^ 2", 0) == Lines{"{} -4"});
  CHECK(Eval(s, "7 % 4 * 2", 0) == Lines{"{} 6"});
  CHECK(Eval(s, "1 > bool 2", 0) == Lines{"{} 0"});
  CHECK(Eval(s, "5 < probe_latency_seconds", 0) ==
        Lines{"{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"b\"} 10"});
  CHECK(Eval(s, "probe_latency_seconds > bool 5", 0) ==
        Lines{"{model=\"m1\", target=\"a\"} 0", "{model=\"m1\", target=\"b\"} 1"});
  CHECK(Eval(s, "probe_latency_seconds * on(target) group_left(team) target_info", 0) ==
        Lines{"{model=\"m1\", target=\"a\", team=\"x\"} 1",
              "{model=\"m1\", target=\"b\", team=\"y\"} 10"});
  CHECK(Eval(s, "target_info * on(target) group_right probe_latency_seconds", 0).size() == 2);
  CHECK(Eval(s, "probe_success or probe_latency_seconds", 4 * kMinute) ==
        Lines{"{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"a\"} 4",
              "{__name__=\"probe_success\", model=\"m1\", target=\"b\"} 1"});
  CHECK(Eval(s, "vector(1) and on() probe_success", 0) == Lines{"{} 1"});
  CHECK(Eval(s, "probe_latency_seconds and on(target) target_info{team=\"x\"}", 0) ==
        Lines{"{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"a\"} 1"});
  // Errors Prometheus raises instead of answering.
  CHECK(Eval(s, "target_info + on() probe_latency_seconds", 0) ==
        Lines{"error: found duplicate series for the match group {} on the right hand-side of "
              "the operation: [{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"b\"}, "
              "{__name__=\"probe_latency_seconds\", model=\"m1\", target=\"a\"}];many-to-many "
              "matching not allowed: matching labels must be unique on one side"});
  CHECK(Eval(s, "probe_latency_seconds + on(model) group_left vector(1)", 0).size() == 0);
  CHECK(Eval(s, "{__name__=~\"probe_.*\", target=\"a\"} * 1", 0) ==
        Lines{"error: vector cannot contain metrics with the same labelset"});
  CHECK(Eval(s, "probe_latency_seconds + on(model) vector(1)", 0).empty());
}

}  // namespace modelpulse::rules

namespace modelpulse::rules {

TEST_CASE("eval: range query merges each step's vector into series, as query_range") {
  MemorySource s = WorkedExampleSource();
  auto query = Query::Parse("probe_success{target=\"a\"} * 2");
  REQUIRE(query);
  auto matrix = query->EvaluateRange(s, kMinute, 3 * kMinute, kMinute, 10);
  REQUIRE(matrix);
  REQUIRE(matrix->size() == 1);
  CHECK(matrix->front().labels == Labels{{"model", "m1"}, {"target", "a"}});
  std::vector<std::pair<int64_t, double>> points;
  for (const Sample& sample : matrix->front().samples) {
    points.emplace_back(sample.t_ms, sample.v);
  }
  CHECK(points ==
        std::vector<std::pair<int64_t, double>>{{kMinute, 2}, {2 * kMinute, 0}, {3 * kMinute, 2}});

  auto scalar = Query::Parse("time()")->EvaluateRange(s, 0, 2 * kMinute, kMinute, 10);
  REQUIRE(scalar);
  REQUIRE(scalar->size() == 1);
  CHECK(scalar->front().labels.empty());
  CHECK(scalar->front().samples.size() == 3);
}

// Counts the range queries' batched pushdown calls of the source it wraps.
class StepCounting final : public SampleSource {
 public:
  explicit StepCounting(const SampleSource& base) : base_(base) {}
  mutable int step_calls = 0;
  mutable int64_t steps_asked = 0;
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    return base_.Select(matchers, from_ms, to_ms);
  }
  Result<std::vector<SeriesSteps>> SelectAggregateSteps(const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate,
                                                        double q) const override {
    ++step_calls;
    steps_asked += (last_to_ms - first_to_ms) / step_ms + 1;
    return base_.SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                                      aggregate, q);
  }

 private:
  const SampleSource& base_;
};

TEST_CASE("eval: a range query's pushdowns go to the source a chunk of steps at a time") {
  MemorySource memory = WorkedExampleSource();
  const StepCounting s(memory);
  // Two distinct pushed-down calls (one twice, one with an offset and a NaN argument), 300
  // steps of a second: each call's windows are asked for 32 steps at a time, 10 times.
  auto query = Query::Parse(
      "avg_over_time(probe_latency_seconds[2m]) + avg_over_time(probe_latency_seconds[2m]) + "
      "on(target) quantile_over_time(NaN, probe_latency_seconds[90s] offset 30s) * 0");
  REQUIRE(query);
  const int64_t start = kMinute;
  const int64_t step = 1'000;
  const int64_t end = start + 299 * step;
  auto matrix = query->EvaluateRange(s, start, end, step, 10);
  REQUIRE(matrix);
  CHECK(s.step_calls == 2 * 10);
  CHECK(s.steps_asked == 2 * 300);
  // The same answers as each step evaluated on its own (NaN compared by its bits).
  REQUIRE(matrix->size() == 2);
  size_t points = 0;
  for (const Series& series : *matrix) {
    points += series.samples.size();
  }
  size_t points_alone = 0;
  for (int64_t t = start; t <= end; t += step) {
    auto alone = query->Evaluate(memory, t);
    REQUIRE(alone);
    const Vector& vector = std::get<Vector>(*alone);
    points_alone += vector.size();
    for (const VectorSample& sample : vector) {
      auto series = std::find_if(matrix->begin(), matrix->end(),
                                 [&](const Series& m) { return m.labels == sample.labels; });
      REQUIRE(series != matrix->end());
      auto point = std::find_if(series->samples.begin(), series->samples.end(),
                                [&](const Sample& p) { return p.t_ms == t; });
      REQUIRE(point != series->samples.end());
      CHECK(std::bit_cast<uint64_t>(point->v) == std::bit_cast<uint64_t>(sample.value));
    }
  }
  CHECK(points == points_alone);
  CHECK(points > 300);
}

// The matrix a range query returns, from Evaluate at each step on its own.
Matrix StepByStep(const Query& query, const SampleSource& source, int64_t start, int64_t end,
                  int64_t step) {
  std::map<Labels, std::vector<Sample>> series;
  for (int64_t t = start; t <= end; t += step) {
    auto value = query.Evaluate(source, t);
    REQUIRE(value);
    for (const VectorSample& sample : std::get<Vector>(*value)) {
      series[sample.labels].push_back({t, sample.value});
    }
  }
  Matrix out;
  for (auto& [labels, samples] : series) {
    out.push_back({labels, std::move(samples)});
  }
  return out;
}

TEST_CASE("eval: a range query of one pushed-down call is built series by series") {
  MemorySource memory = WorkedExampleSource();
  const int64_t start = 0;
  const int64_t step = 1'000;
  const int64_t end = 5 * kMinute;  // 301 steps
  for (const char* text :
       {"avg_over_time(probe_latency_seconds[2m])",
        "count_over_time(probe_success[90s] offset 30s)", "present_over_time(probe_success[1m])",
        "quantile_over_time(0.5, probe_latency_seconds[3m])", "rate(probe_latency_seconds[2m])",
        "(max_over_time((ok[1m])))", "sum_over_time(probe_success{target=~\"a|b\"}[2m])",
        "min_over_time(probe_latency_seconds{model!=\"m2\"}[1m])"}) {
    CAPTURE(text);
    auto query = Query::Parse(text);
    REQUIRE(query);
    const StepCounting s(memory);
    auto matrix = query->EvaluateRange(s, start, end, step, 10);
    REQUIRE(matrix);
    // All 301 steps in two calls (256 and 45), not the step-by-step path's ten chunks of 32.
    CHECK(s.step_calls == 2);
    CHECK(s.steps_asked == 301);
    const Matrix want = StepByStep(*query, memory, start, end, step);
    REQUIRE_FALSE(want.empty());
    REQUIRE(matrix->size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK((*matrix)[i].labels == want[i].labels);
      REQUIRE((*matrix)[i].samples.size() == want[i].samples.size());
      for (size_t j = 0; j < want[i].samples.size(); ++j) {
        CHECK((*matrix)[i].samples[j].t_ms == want[i].samples[j].t_ms);
        CHECK(std::bit_cast<uint64_t>((*matrix)[i].samples[j].v) ==
              std::bit_cast<uint64_t>(want[i].samples[j].v));
      }
    }
  }
  // Two series whose label sets meet once the name is dropped: step by step, as Prometheus
  // refuses the steps where both have a value.
  auto colliding =
      Query::Parse("avg_over_time({__name__=~\"probe_latency_seconds|probe_success\"}[2m])");
  REQUIRE(colliding);
  auto refused = colliding->EvaluateRange(memory, start, end, step, 10);
  REQUIRE_FALSE(refused);
  auto at_one_step = colliding->Evaluate(memory, 2 * kMinute);
  REQUIRE_FALSE(at_one_step);
  CHECK(refused.error().message == at_one_step.error().message);
  CHECK(refused.error().message == "vector cannot contain metrics with the same labelset");
  // More series than allowed: the same error as step by step.
  auto many = Query::Parse("avg_over_time(probe_latency_seconds[2m])")
                  ->EvaluateRange(memory, start, end, step, 1);
  REQUIRE_FALSE(many);
  CHECK(many.error().code == Error::Code::kUnavailable);
  CHECK(many.error().message == "query returned more than 1 series");
}

TEST_CASE("eval: range query refuses range vectors and too many series") {
  MemorySource s = WorkedExampleSource();
  auto range = Query::Parse("probe_success[5m]")->EvaluateRange(s, 0, kMinute, kMinute, 10);
  REQUIRE_FALSE(range);
  CHECK(range.error().message ==
        "invalid expression type \"range vector\" for range query, must be Scalar or instant "
        "Vector");
  auto many = Query::Parse("target_info")->EvaluateRange(s, 0, kMinute, kMinute, 1);
  REQUIRE_FALSE(many);
  CHECK(many.error().code == Error::Code::kUnavailable);
}

TEST_CASE("eval: a selector on its own matches label sets as the evaluator does") {
  auto selector = Selector::Parse("probe_success{target=~\"a|b\", model!=\"m2\"}");
  REQUIRE(selector);
  CHECK(selector->matchers().size() == 3);
  CHECK(selector->Matches({{"__name__", "probe_success"}, {"target", "a"}, {"model", "m1"}}));
  CHECK_FALSE(selector->Matches({{"__name__", "probe_success"}, {"target", "ab"}}));
  CHECK_FALSE(selector->Matches({{"__name__", "probe_success"}, {"target", "a"}, {"model", "m2"}}));
  CHECK_FALSE(Selector::Parse("sum(probe_success)"));
  CHECK_FALSE(Selector::Parse("probe_success{"));
  CHECK(FormatFloatShortest(1e-7) == "0.0000001");
  CHECK(FormatFloatShortest(-std::numeric_limits<double>::infinity()) == "-Inf");
}

}  // namespace modelpulse::rules
