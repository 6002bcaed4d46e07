// The rollups' quantile sketch against exact quantiles of the same values: the stated relative
// error holds for every rank asked, merging equals sketching everything at once, and the bytes
// for a BLOB column round-trip.

#include "storage/ddsketch.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace modelpulse::storage {
namespace {

// The lower quantile of `sorted`: the value of rank floor(q * (n - 1)), as the sketch defines it.
double Exact(const std::vector<double>& sorted, double q) {
  const auto rank = static_cast<size_t>(std::floor(q * static_cast<double>(sorted.size() - 1)));
  return sorted[rank];
}

std::vector<double> Latencies(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  // Log-normal around 400 ms with a heavy tail, plus a cluster of fast cache hits.
  std::lognormal_distribution<double> slow(std::log(0.4), 0.8);
  std::uniform_real_distribution<double> fast(0.010, 0.030);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(unit(rng) < 0.1 ? fast(rng) : slow(rng));
  }
  return out;
}

constexpr double kQuantiles[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1};

TEST_CASE("sketch quantiles are within the stated relative error of the exact ones") {
  for (uint64_t seed : {1, 2, 3}) {
    for (int n : {1, 2, 7, 240, 5760, 100'000}) {
      std::vector<double> values = Latencies(seed, n);
      DDSketch sketch;
      for (double v : values) {
        sketch.Add(v);
      }
      std::sort(values.begin(), values.end());
      CHECK(sketch.Count() == n);
      for (double q : kQuantiles) {
        CAPTURE(seed);
        CAPTURE(n);
        CAPTURE(q);
        const double exact = Exact(values, q);
        const auto got = sketch.Quantile(q);
        REQUIRE(got);
        CHECK(std::fabs(*got - exact) <= DDSketch::kRelativeAccuracy * exact * (1 + 1e-12));
      }
    }
  }
}

TEST_CASE("hourly sketches merged equal the day sketched at once, and quantiles stay in error") {
  const std::vector<double> day = Latencies(9, 24 * 240);  // a day at 15 s
  DDSketch whole;
  DDSketch merged;
  for (int hour = 0; hour < 24; ++hour) {
    DDSketch h;
    for (int i = 0; i < 240; ++i) {
      h.Add(day[static_cast<size_t>(hour * 240 + i)]);
      whole.Add(day[static_cast<size_t>(hour * 240 + i)]);
    }
    // Through the stored form, as a daily rollup would read its hours back.
    auto decoded = DDSketch::Decode(h.Encode());
    REQUIRE(decoded);
    CHECK(*decoded == h);
    merged.Merge(*decoded);
  }
  CHECK(merged == whole);
  std::vector<double> sorted = day;
  std::sort(sorted.begin(), sorted.end());
  for (double q : kQuantiles) {
    const double exact = Exact(sorted, q);
    CHECK(std::fabs(*merged.Quantile(q) - exact) <= DDSketch::kRelativeAccuracy * exact * 1.000001);
  }
  MESSAGE("a day of 5760 latencies: " << whole.Encode().size() << " bytes");
  CHECK(whole.Encode().size() < 600);
}

TEST_CASE("zeros, negatives and NaN in the sketch") {
  DDSketch s;
  CHECK_FALSE(s.Quantile(0.5));
  s.Add(0);
  s.Add(-1);
  s.Add(std::nan(""));  // not counted
  s.Add(2.0);
  CHECK(s.Count() == 3);
  CHECK(*s.Quantile(0) == 0);
  CHECK(*s.Quantile(0.5) == 0);
  CHECK(std::fabs(*s.Quantile(1) - 2.0) <= 0.02);
  auto decoded = DDSketch::Decode(s.Encode());
  REQUIRE(decoded);
  CHECK(*decoded == s);
  CHECK_FALSE(DDSketch::Decode(std::string("\x80", 1)));
  CHECK(DDSketch::Decode(DDSketch().Encode()) == DDSketch());
}

TEST_CASE("every rank's value and the count under a threshold are within the stated error") {
  std::vector<double> values = Latencies(7, 5000);
  DDSketch sketch;
  for (double v : values) {
    sketch.Add(v);
  }
  std::sort(values.begin(), values.end());
  for (size_t rank = 0; rank < values.size(); rank += 37) {
    const auto got = sketch.ValueAtRank(static_cast<int64_t>(rank));
    REQUIRE(got.has_value());
    CHECK(std::abs(*got - values[rank]) <= DDSketch::kRelativeAccuracy * values[rank] * (1 + 1e-9));
  }
  CHECK(sketch.ValueAtRank(-5) == sketch.ValueAtRank(0));
  CHECK(sketch.ValueAtRank(1'000'000) == sketch.ValueAtRank(4999));
  CHECK(!DDSketch().ValueAtRank(0).has_value());
  // A latency SLO's count: exact except for values within the error of the threshold.
  for (double threshold : {0.02, 0.1, 0.4, 1.0, 3.0}) {
    CAPTURE(threshold);
    const auto at_most = [&](double t) {
      return static_cast<int64_t>(std::upper_bound(values.begin(), values.end(), t) -
                                  values.begin());
    };
    const int64_t got = sketch.CountAtMost(threshold);
    CHECK(got >= at_most(threshold / (1 + DDSketch::kRelativeAccuracy)));
    CHECK(got <= at_most(threshold / (1 - DDSketch::kRelativeAccuracy)));
  }
  CHECK(sketch.CountAtMost(1e9) == sketch.Count());
  CHECK(sketch.CountAtMost(-1) == 0);
}

}  // namespace
}  // namespace modelpulse::storage
