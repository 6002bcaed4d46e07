#include "storage/recorded_store.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/recorded_series.h"
#include "storage/series_source.h"
#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kT0 = 1'800'000'000'000 - 1'800'000'000'000 % kHour;  // on an hour

std::unique_ptr<RecordedStore> OpenRecorded(const std::string& path, const Clock& clock,
                                            Millis retention = Millis(0)) {
  RecordedStoreOptions options;
  options.path = path;
  options.retention = retention;
  options.retention_interval = Millis(0);
  auto store = RecordedStore::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

Labels Named(const std::string& name, const std::string& model) {
  return {{"__name__", name}, {"model", model}};
}

std::vector<LabelMatcher> NameIs(const std::string& name) {
  return {{LabelMatcher::Type::kEqual, "__name__", name}};
}

// 15 s samples of `labels` over [from, to), value i % 7 (i counted from kT0).
std::vector<RecordedPoint> Every15s(const Labels& labels, int64_t from, int64_t to) {
  std::vector<RecordedPoint> points;
  for (int64_t t = from; t < to; t += 15'000) {
    points.push_back({labels, t, static_cast<double>(((t - kT0) / 15'000) % 7)});
  }
  return points;
}

TEST_CASE("recorded samples survive a reopen, stale markers and NaN kept apart") {
  testing::TempDir dir;
  const std::string path = dir.File("rec.db");
  ManualClock clock(kT0);
  const Labels a = Named("model_cloud:probe_success:avg_15m", "m1");
  {
    auto store = OpenRecorded(path, clock);
    REQUIRE(store
                ->AppendRecorded({{a, kT0, 0.5},
                                  {a, kT0 + 15'000, std::numeric_limits<double>::quiet_NaN()},
                                  {a, kT0 + 30'000, StaleNaN()}})
                .has_value());
    CHECK(store->SeriesCount() == 1);
  }
  auto store = OpenRecorded(path, clock);
  CHECK(store->SeriesCount() == 1);
  auto got = store->Select(NameIs("model_cloud:probe_success:avg_15m"), kT0, kT0 + 60'000);
  REQUIRE(got.has_value());
  REQUIRE(got->size() == 1);
  CHECK((*got)[0].labels == a);
  REQUIRE((*got)[0].samples.size() == 3);
  CHECK((*got)[0].samples[0].v == 0.5);
  CHECK(std::isnan((*got)[0].samples[1].v));
  CHECK_FALSE(IsStaleNaN((*got)[0].samples[1].v));
  CHECK(IsStaleNaN((*got)[0].samples[2].v));
  // Bounds are inclusive; an unmatched name and an empty range give nothing.
  auto one = store->Select(NameIs("model_cloud:probe_success:avg_15m"), kT0 + 15'000, kT0 + 15'000);
  REQUIRE(one.has_value());
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].samples.size() == 1);
  auto other = store->Select(NameIs("nothing"), kT0, kT0 + 60'000);
  REQUIRE(other.has_value());
  CHECK(other->empty());
  auto later =
      store->Select(NameIs("model_cloud:probe_success:avg_15m"), kT0 + 31'000, kT0 + 90'000);
  REQUIRE(later.has_value());
  CHECK(later->empty());
}

TEST_CASE("a re-evaluation at the same time replaces the sample and its hour's rollup") {
  testing::TempDir dir;
  ManualClock clock(kT0);
  auto store = OpenRecorded(dir.File("rec.db"), clock);
  const Labels a = Named("r", "m1");
  auto points = Every15s(a, kT0, kT0 + 3 * kHour);
  REQUIRE(store->AppendRecorded(points).has_value());
  REQUIRE(store->AppendRecorded({{a, kT0 + kHour, 1000.0}}).has_value());
  points[kHour / 15'000].v = 1000.0;
  std::vector<Sample> expected;
  for (const auto& p : points) {
    expected.push_back({p.t_ms, p.v});
  }
  for (RangeAggregate aggregate :
       {RangeAggregate::kCount, RangeAggregate::kSum, RangeAggregate::kAvg, RangeAggregate::kMax}) {
    auto got = store->SelectAggregate(NameIs("r"), kT0, kT0 + 3 * kHour - 1, aggregate, 0);
    REQUIRE(got.has_value());
    REQUIRE(got->size() == 1);
    CHECK((*got)[0].value == doctest::Approx(AggregateSamples(aggregate, 0, expected)));
  }
}

TEST_CASE("long-range aggregates from the rollups equal the same aggregates over the samples") {
  testing::TempDir dir;
  ManualClock clock(kT0);
  auto store = OpenRecorded(dir.File("rec.db"), clock);
  const Labels a = Named("r", "m1");
  const Labels b = Named("r", "m2");
  // Written in several evaluations, as the rule engine does; b stops (stale) after 5 hours.
  for (int64_t h = 0; h < 30; ++h) {
    auto points = Every15s(a, kT0 + h * kHour, kT0 + (h + 1) * kHour);
    if (h < 5) {
      auto more = Every15s(b, kT0 + h * kHour, kT0 + (h + 1) * kHour);
      points.insert(points.end(), more.begin(), more.end());
    } else if (h == 5) {
      points.push_back({b, kT0 + h * kHour, StaleNaN()});
    }
    REQUIRE(store->AppendRecorded(points).has_value());
  }
  // Ranges that start and end inside an hour, so the edges come from the samples.
  const int64_t from = kT0 + 17 * 60'000 + 3'000;
  const int64_t to = kT0 + 29 * kHour + 41 * 60'000;
  auto raw = store->Select(NameIs("r"), from, to);
  REQUIRE(raw.has_value());
  REQUIRE(raw->size() == 2);
  for (RangeAggregate aggregate :
       {RangeAggregate::kCount, RangeAggregate::kSum, RangeAggregate::kAvg, RangeAggregate::kMin,
        RangeAggregate::kMax, RangeAggregate::kQuantile}) {
    CAPTURE(static_cast<int>(aggregate));
    auto got = store->SelectAggregate(NameIs("r"), from, to, aggregate, 0.95);
    REQUIRE(got.has_value());
    REQUIRE(got->size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      std::vector<Sample> samples;
      for (const Sample& s : (*raw)[i].samples) {
        if (!IsStaleNaN(s.v)) {
          samples.push_back(s);
        }
      }
      CHECK((*got)[i].labels == (*raw)[i].labels);
      CHECK((*got)[i].value == doctest::Approx(AggregateSamples(aggregate, 0.95, samples)));
    }
  }
}

TEST_CASE("retention deletes old samples, their hours' rollups and emptied series") {
  testing::TempDir dir;
  ManualClock clock(kT0);
  auto store = OpenRecorded(dir.File("rec.db"), clock, Millis(10 * kHour));
  const Labels a = Named("r", "m1");
  const Labels gone = Named("r", "m2");
  REQUIRE(store->AppendRecorded(Every15s(a, kT0, kT0 + 20 * kHour)).has_value());
  REQUIRE(store->AppendRecorded(Every15s(gone, kT0, kT0 + kHour)).has_value());
  CHECK(store->SeriesCount() == 2);
  clock.Set(kT0 + 25 * kHour + 30 * 60'000);  // keeps a from 15h30m on
  auto deleted = store->ApplyRetention();
  REQUIRE(deleted.has_value());
  CHECK(*deleted == static_cast<uint64_t>(15 * 240 + 120 + 240));
  CHECK(store->SeriesCount() == 1);
  auto count =
      store->SelectAggregate(NameIs("r"), kT0, kT0 + 30 * kHour, RangeAggregate::kCount, 0);
  REQUIRE(count.has_value());
  REQUIRE(count->size() == 1);
  CHECK((*count)[0].labels == a);
  CHECK((*count)[0].value == 4 * 240 + 120);
  auto sum = store->SelectAggregate(NameIs("r"), kT0, kT0 + 30 * kHour, RangeAggregate::kSum, 0);
  auto raw = store->Select(NameIs("r"), kT0, kT0 + 30 * kHour);
  REQUIRE(sum.has_value());
  REQUIRE(raw.has_value());
  CHECK((*sum)[0].value ==
        doctest::Approx(AggregateSamples(RangeAggregate::kSum, 0, (*raw)[0].samples)));
}

TEST_CASE("the union of the probe series and the recorded series answers both") {
  testing::TempDir dir;
  const std::string path = dir.File("rec.db");
  ManualClock clock(kT0);
  StorageOptions options;
  options.path = path;
  auto probes_store = Store::Open(options, clock);
  REQUIRE(probes_store.has_value());
  (*probes_store)->Append(testing::FullProbe("t1", kT0));
  REQUIRE((*probes_store)->Flush().has_value());
  auto recorded = OpenRecorded(path, clock);
  REQUIRE(recorded->AppendRecorded({{Named("r", "m1"), kT0, 2.0}}).has_value());
  const ProbeSeriesSource probes(probes_store->get(), Millis(0), INT64_MAX);
  const SourceUnion both(probes, *recorded);
  auto success = both.Select(NameIs("probe_success"), kT0 - 1000, kT0 + 1000);
  REQUIRE(success.has_value());
  CHECK(success->size() == 1);
  auto r = both.Select(NameIs("r"), kT0 - 1000, kT0 + 1000);
  REQUIRE(r.has_value());
  CHECK(r->size() == 1);
}

}  // namespace
}  // namespace modelpulse::storage
