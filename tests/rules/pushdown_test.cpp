// SampleSource::SelectAggregate, the pushdown of count/sum/avg/min/max/quantile/present/
// absent_over_time: the default gives the evaluator's own bits, and an overriding source's
// answers reach the result with the evaluator's matcher, label and absent semantics. Expected
// values come from the functions' definitions (Independent), never from AggregateSamples.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "rules/promql.h"
#include "tests/independent_aggregate.h"

namespace modelpulse::rules {
namespace {

constexpr int64_t kMinute = 60'000;
const double kStale = std::bit_cast<double>(0x7ff0000000000002ULL);

// Returns every series whatever the matchers and window: the contract allows a superset of
// series, and the default must still keep only the window's non-stale samples.
class LooseSource : public SampleSource {
 public:
  std::vector<Series> series;
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    return series;
  }
};

class FixedAggregates final : public LooseSource {
 public:
  std::vector<SeriesAggregate> answers;
  mutable RangeAggregate last_kind = RangeAggregate::kCount;
  mutable double last_q = -1;
  mutable int64_t last_from = 0;
  mutable int64_t last_to = 0;
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>&,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate kind,
                                                       double q) const override {
    last_kind = kind;
    last_q = q;
    last_from = from_ms;
    last_to = to_ms;
    return answers;
  }
};

double Independent(RangeAggregate kind, double q, const std::vector<Sample>& window) {
  return testing::IndependentAggregate(kind, q, window);
}

Vector Eval(const SampleSource& source, const std::string& text, int64_t t) {
  auto query = Query::Parse(text);
  REQUIRE_MESSAGE(query.has_value(), (query ? "" : query.error().ToString()));
  auto value = query->Evaluate(source, t);
  REQUIRE_MESSAGE(value.has_value(), (value ? "" : value.error().ToString()));
  return std::get<Vector>(*value);
}

TEST_CASE("the default SelectAggregate folds the window's non-stale samples in time order") {
  LooseSource source;
  source.series.push_back({{{"__name__", "x"}, {"k", "a"}},
                           {{3 * kMinute, 4.0},
                            {1 * kMinute, 1.5},  // out of order: sorted before folding
                            {2 * kMinute, kStale},
                            {9 * kMinute, 100.0},  // after the window
                            {0, -7.0}}});          // before the window
  source.series.push_back({{{"__name__", "x"}, {"k", "b"}}, {{2 * kMinute, kStale}}});
  const std::vector<Sample> window = {{1 * kMinute, 1.5}, {3 * kMinute, 4.0}};
  for (RangeAggregate kind :
       {RangeAggregate::kCount, RangeAggregate::kSum, RangeAggregate::kAvg, RangeAggregate::kMin,
        RangeAggregate::kMax, RangeAggregate::kQuantile}) {
    auto got = source.SelectAggregate({}, kMinute, 5 * kMinute, kind, 0.3);
    REQUIRE(got.has_value());
    REQUIRE(got->size() == 1);  // b has only a stale marker
    CHECK(got->front().labels.at("k") == "a");
    CHECK(got->front().value == Independent(kind, 0.3, window));
  }
  // The window {1.5, 4.0} by hand: rank 0.3 * (2 - 1) lies 0.3 of the way from 1.5 to 4.0.
  CHECK(Independent(RangeAggregate::kCount, 0.3, window) == 2.0);
  CHECK(Independent(RangeAggregate::kSum, 0.3, window) == 5.5);
  CHECK(Independent(RangeAggregate::kAvg, 0.3, window) == 2.75);
  CHECK(Independent(RangeAggregate::kMin, 0.3, window) == 1.5);
  CHECK(Independent(RangeAggregate::kMax, 0.3, window) == 4.0);
  CHECK(Independent(RangeAggregate::kQuantile, 0.3, window) == 1.5 * 0.7 + 4.0 * 0.3);
}

TEST_CASE("the evaluator uses the pushdown with its own label and matcher semantics") {
  FixedAggregates source;
  source.answers = {{{{"__name__", "x"}, {"k", "b"}, {"empty", ""}}, 2.0},
                    {{{"__name__", "x"}, {"k", "a"}}, 1.0},
                    {{{"__name__", "y"}, {"k", "c"}}, 9.0}};  // not x: dropped
  const int64_t t = 100 * kMinute;
  Vector v = Eval(source, "avg_over_time(x[10m] offset 5m)", t);
  CHECK(source.last_kind == RangeAggregate::kAvg);
  CHECK(source.last_from == t - 15 * kMinute);
  CHECK(source.last_to == t - 5 * kMinute);
  REQUIRE(v.size() == 2);
  CHECK(v[0].labels == Labels{{"k", "a"}});  // sorted, __name__ and empty labels dropped
  CHECK(v[0].value == 1.0);
  CHECK(v[0].t_ms == t);
  CHECK(v[1].labels == Labels{{"k", "b"}});

  v = Eval(source, "quantile_over_time(0.5 + 0.25, (x[5m]))", t);
  CHECK(source.last_kind == RangeAggregate::kQuantile);
  CHECK(source.last_q == 0.75);
  CHECK(v.size() == 2);

  v = Eval(source, "present_over_time(x[5m])", t);
  REQUIRE(v.size() == 2);
  CHECK(v[1].value == 1.0);
  CHECK(source.last_kind == RangeAggregate::kCount);

  CHECK(Eval(source, "absent_over_time(x[5m])", t).empty());
  source.answers.clear();
  v = Eval(source, "absent_over_time(x{k=\"z\", j=~\"q\"}[5m])", t);
  REQUIRE(v.size() == 1);
  CHECK(v[0].labels == Labels{{"k", "z"}});
  CHECK(v[0].value == 1.0);
  CHECK(Eval(source, "count_over_time(x[5m])", t).empty());
}

TEST_CASE("without an override the pushdown gives what the samples give") {
  LooseSource source;
  for (int s = 0; s < 3; ++s) {
    Series series{{{"__name__", "x"}, {"k", std::to_string(s)}}, {}};
    for (int i = 0; i < 50; ++i) {
      series.samples.push_back({i * 15'000, std::sin(i * 0.7 + s) * 1e3 + 0.1 * i});
    }
    source.series.push_back(series);
  }
  const int64_t t = 11 * kMinute + 7'000;
  for (const char* fn : {"count", "sum", "avg", "min", "max"}) {
    Vector v = Eval(source, std::string(fn) + "_over_time(x[7m])", t);
    REQUIRE(v.size() == 3);
    for (const VectorSample& s : v) {
      const Series& series = source.series[static_cast<size_t>(std::stoi(s.labels.at("k")))];
      std::vector<Sample> window;
      for (const Sample& sample : series.samples) {
        if (sample.t_ms >= t - 7 * kMinute && sample.t_ms <= t) {
          window.push_back(sample);
        }
      }
      const std::string name = fn;
      RangeAggregate kind = name == "count" ? RangeAggregate::kCount
                            : name == "sum" ? RangeAggregate::kSum
                            : name == "avg" ? RangeAggregate::kAvg
                            : name == "min" ? RangeAggregate::kMin
                                            : RangeAggregate::kMax;
      if (kind == RangeAggregate::kSum || kind == RangeAggregate::kAvg) {
        CHECK(s.value == doctest::Approx(Independent(kind, 0, window)).epsilon(1e-12));
      } else {
        CHECK(s.value == Independent(kind, 0, window));
      }
    }
  }
}

}  // namespace
}  // namespace modelpulse::rules
