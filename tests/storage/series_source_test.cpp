// ProbeSeriesSource's pushdown (memory + hourly rollups + raw edges, sorted quantile windows)
// against a brute-force fold of every probe through ProbeSamples and arithmetic written here.
#include "storage/series_source.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/probe_series.h"
#include "common/sample_source.h"
#include "storage/internal/probe_codec.h"
#include "storage/storage.h"
#include "tests/independent_aggregate.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kEnd = 1'800'000'000'000 + 1234;  // not on an hour

using testing::TempDir;

std::vector<ProbeResult> History(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<ProbeResult> out;
  for (const char* target : {"a@openai", "b@azure", "c@bedrock"}) {
    // 30 hours at about one probe a minute, ending just before kEnd.
    for (int64_t t = kEnd - 30 * kHourMs; t < kEnd;
         t += 40'000 + static_cast<int64_t>(unit(rng) * 40'000)) {
      ProbeResult p;
      p.target = target;
      p.labels = {{"target", target},
                  {"provider", "openai"},
                  {"cloud", "x"},
                  {"region", "r"},
                  {"model", "m"}};
      if (t > kEnd - 10 * kHourMs && std::string(target) == "b@azure") {
        p.labels["tier"] = "canary";  // a second label set: two series from one target
      }
      p.start_unix_ms = t;
      p.outcome = unit(rng) < 0.8 ? Outcome::kOk : Outcome::kThrottled;
      p.http_status = p.outcome == Outcome::kOk ? 200 : 429;
      p.total_seconds = unit(rng);
      if (unit(rng) < 0.9) {
        p.ttft_seconds = 0.1 + unit(rng);
      }
      p.output_tokens_per_second = 10 + 90 * unit(rng);
      p.output_tokens = 16;
      p.requests = {1000.0, std::floor(1000 * unit(rng)), 1.0};
      p.tokens = {1e6, std::floor(1e6 * unit(rng)), 1.0};
      out.push_back(p);
    }
  }
  std::sort(out.begin(), out.end(), [](const ProbeResult& a, const ProbeResult& b) {
    return a.start_unix_ms < b.start_unix_ms;
  });
  // The values as storage keeps them (integer times): the brute force folds what is stored.
  for (ProbeResult& p : out) {
    p = AsStored(p);
  }
  return out;
}

// name + resource -> labels -> samples, from every probe.
std::map<Labels, std::vector<Sample>> AllSeries(const std::vector<ProbeResult>& probes,
                                                const std::string& name) {
  std::map<Labels, std::vector<Sample>> out;
  for (const ProbeResult& p : probes) {
    for (const ProbeSample& s : ProbeSamples(p)) {
      if (name != s.name) {
        continue;
      }
      Labels labels = p.labels;
      labels["__name__"] = s.name;
      if (*s.resource != '\0') {
        labels["resource"] = s.resource;
      }
      out[labels].push_back({p.start_unix_ms, s.value});
    }
  }
  return out;
}

double Independent(RangeAggregate kind, double q, const std::vector<Sample>& window) {
  return modelpulse::testing::IndependentAggregate(kind, q, window);
}

std::map<Labels, double> BruteForce(const std::vector<ProbeResult>& probes, const std::string& name,
                                    int64_t from, int64_t to, RangeAggregate aggregate, double q) {
  std::map<Labels, double> out;
  for (const auto& [labels, samples] : AllSeries(probes, name)) {
    std::vector<Sample> window;
    for (const Sample& s : samples) {
      if (s.t_ms >= from && s.t_ms <= to) {
        window.push_back(s);
      }
    }
    if (!window.empty()) {
      out[labels] = Independent(aggregate, q, window);
    }
  }
  return out;
}

// A store that keeps everything, written in batches of 500.
std::unique_ptr<storage::Store> OpenStore(const std::string& path, const Clock& clock) {
  storage::StorageOptions options;
  options.path = path;
  options.retention = Millis(0);
  options.batch_size = 500;
  auto opened = storage::Store::Open(options, clock);
  REQUIRE(opened.has_value());
  return std::move(*opened);
}

struct Fixture {
  TempDir dir;
  ManualClock clock{kEnd};
  std::unique_ptr<storage::Store> store;
  std::vector<ProbeResult> probes = History(11);
  std::unique_ptr<ProbeSeriesSource> source;

  // Everything in storage; memory from `restart_ms` on, as after a restart at that time.
  explicit Fixture(int64_t restart_ms, size_t max_kept_quantile_values =
                                           ProbeSeriesSource::kDefaultKeptQuantileValues) {
    store = OpenStore(dir.File("s.db"), clock);
    for (const ProbeResult& p : probes) {
      store->Append(p);
    }
    REQUIRE(store->Flush().has_value());
    source = std::make_unique<ProbeSeriesSource>(store.get(), Millis(2 * kHourMs), restart_ms,
                                                 max_kept_quantile_values);
    for (const ProbeResult& p : probes) {
      if (p.start_unix_ms >= restart_ms) {
        source->Append(p);
      }
    }
  }

  void Check(const std::string& name, int64_t from, int64_t to, RangeAggregate aggregate,
             double q = 0.95) {
    CAPTURE(name);
    CAPTURE(from - kEnd);
    CAPTURE(to - kEnd);
    CAPTURE(static_cast<int>(aggregate));
    auto got = source->SelectAggregate({{LabelMatcher::Type::kEqual, "__name__", name}}, from, to,
                                       aggregate, q);
    REQUIRE(got.has_value());
    auto want = BruteForce(probes, name, from, to, aggregate, q);
    REQUIRE(got->size() == want.size());
    for (const SeriesAggregate& a : *got) {
      auto it = want.find(a.labels);
      REQUIRE(it != want.end());
      if (aggregate == RangeAggregate::kSum || aggregate == RangeAggregate::kAvg) {
        CHECK(a.value == doctest::Approx(it->second).epsilon(1e-12));
      } else {
        CHECK(a.value == it->second);  // exact
      }
    }
  }
};

constexpr RangeAggregate kAll[] = {RangeAggregate::kCount, RangeAggregate::kSum,
                                   RangeAggregate::kAvg,   RangeAggregate::kMin,
                                   RangeAggregate::kMax,   RangeAggregate::kQuantile};

TEST_CASE("pushdown answers equal a brute-force fold for ranges across hours and memory") {
  // Memory holds the last 90 minutes; the rest is in storage only.
  Fixture f(kEnd - 90 * 60'000);
  const int64_t hour = (kEnd / kHourMs) * kHourMs;
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {kEnd - 5 * 60'000, kEnd},                           // memory only
      {kEnd - 15 * 60'000 - kHourMs, kEnd - 15 * 60'000},  // storage edge + memory
      {kEnd - 24 * kHourMs - 900'000, kEnd - 900'000},     // a day, offset 15m
      {hour - 5 * kHourMs, hour - kHourMs},                // whole hours only
      {hour - 5 * kHourMs, hour - kHourMs - 1},            // one ms short of the last hour
      {hour - 5 * kHourMs + 1, hour - kHourMs},            // one ms into the first hour
      {hour - 3 * kHourMs - 17, hour - 3 * kHourMs + 17},  // straddles one boundary, < 1 h
      {kEnd - 29 * kHourMs, kEnd - 2 * kHourMs},           // storage only, many hours
      {kEnd - 40 * kHourMs, kEnd},                         // before the first probe
      {kEnd - 31 * kHourMs, kEnd - 30 * kHourMs - 1},      // nothing at all
  };
  for (const auto& [from, to] : ranges) {
    for (RangeAggregate aggregate : kAll) {
      f.Check("probe_ttft_seconds", from, to, aggregate);
      f.Check("probe_success", from, to, aggregate);
      f.Check("probe_ratelimit_remaining_ratio", from, to, aggregate);
    }
  }
  // Every probe series maps to its stored field.
  for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
    f.Check(info.name, kEnd - 20 * kHourMs, kEnd - 30 * 60'000, RangeAggregate::kCount);
    f.Check(info.name, kEnd - 20 * kHourMs, kEnd - 30 * 60'000, RangeAggregate::kMax);
  }
}

TEST_CASE("unaligned windows (a head hour's rollup minus the rows before) equal a brute force") {
  // As a range query over history sees them: 1 h windows at 1 h steps, off the hour by a few
  // seconds (the head hour's rollup minus one or two rows) to half an hour (raw rows instead),
  // or ending late in an hour (the tail hour's rollup minus the rows after the window), through
  // a restarted daemon's source (nothing in memory) and the CLI's (storage only).
  const int64_t hour = (kEnd / kHourMs) * kHourMs;
  for (const bool cli : {false, true}) {
    CAPTURE(cli);
    Fixture f(kEnd + 1);
    if (cli) {
      f.source = std::make_unique<ProbeSeriesSource>(f.store.get(), Millis(0), INT64_MAX);
    }
    for (const int64_t offset :
         {int64_t{7'503}, int64_t{50'000}, int64_t{20 * 60'000}, int64_t{29 * 60'000},
          int64_t{31 * 60'000}, int64_t{45 * 60'000}, int64_t{kHourMs - 7'503}}) {
      for (int64_t step = 25; step >= 2; step -= 3) {
        const int64_t to = hour - step * kHourMs + offset;
        for (RangeAggregate aggregate : kAll) {
          f.Check("probe_ttft_seconds", to - kHourMs, to, aggregate);
          f.Check("probe_output_tokens_per_second", to - kHourMs, to, aggregate);
          f.Check("probe_success", to - kHourMs, to, aggregate);
        }
        // Longer and shorter windows: whole hours between the two partial ones, or none.
        for (const int64_t length : {5 * kHourMs, kHourMs + 40 * 60'000, int64_t{50 * 60'000}}) {
          f.Check("probe_ttft_seconds", to - length, to, RangeAggregate::kAvg);
          f.Check("probe_ttft_seconds", to - length, to, RangeAggregate::kMax);
          f.Check("probe_ttft_seconds", to - length, to, RangeAggregate::kCount);
        }
      }
    }
  }
}

// The store's reads, counted: how many statements a query costs.
class CountingHistory final : public ProbeHistory {
 public:
  explicit CountingHistory(const ProbeHistory& base) : base_(base) {}
  mutable int reads = 0;
  mutable int seeks = 0;  // intervals of rows asked for, one per ReadField

  Result<std::vector<ProbeResult>> ReadProbes(std::string_view target, int64_t from_ms,
                                              int64_t to_ms) const override {
    ++reads;
    return base_.ReadProbes(target, from_ms, to_ms);
  }
  Result<std::vector<std::pair<std::string, Labels>>> Targets() const override {
    ++reads;
    return base_.Targets();
  }
  Result<std::vector<StoredTarget>> ListTargets() const override {
    ++reads;
    return base_.ListTargets();
  }
  Result<std::vector<FieldPoint>> ReadField(int64_t target_id, ProbeField field, int64_t from_ms,
                                            int64_t to_ms) const override {
    ++reads;
    ++seeks;
    return base_.ReadField(target_id, field, from_ms, to_ms);
  }
  Result<std::vector<std::vector<FieldPoint>>> ReadFieldIn(
      int64_t target_id, ProbeField field,
      const std::vector<std::pair<int64_t, int64_t>>& intervals) const override {
    ++reads;
    seeks += static_cast<int>(intervals.size());
    return base_.ReadFieldIn(target_id, field, intervals);
  }
  Result<std::vector<FieldRollup>> ReadRollups(int64_t target_id, ProbeField field, int64_t from_ms,
                                               int64_t to_ms) const override {
    ++reads;
    return base_.ReadRollups(target_id, field, from_ms, to_ms);
  }
  Result<std::vector<RollupValues>> ReadRollupValues(int64_t target_id, ProbeField field,
                                                     int64_t from_ms,
                                                     int64_t to_ms) const override {
    return base_.ReadRollupValues(target_id, field, from_ms, to_ms);
  }
  Status ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                           const std::function<void(const CounterPoint&)>& each) const override {
    ++reads;
    return base_.ScanCounterInputs(target_id, from_ms, to_ms, each);
  }
  Result<std::vector<CounterFirstSeen>> FirstSeenCounters(int64_t target_id) const override {
    ++reads;
    return base_.FirstSeenCounters(target_id);
  }
  Result<Labels> LabelSet(int64_t label_set_id) const override {
    ++reads;
    return base_.LabelSet(label_set_id);
  }

 private:
  const ProbeHistory& base_;
};

TEST_CASE("a range query's steps at once equal each step alone, bit for bit, in a few reads") {
  // Restarted (nothing in memory) and the CLI's source (storage only); windows aligned on the
  // hour as Grafana aligns them, off it by seconds or minutes (edges by rollup complement or by
  // rows), longer than the step, and shorter than an hour (rows only).
  const int64_t hour = (kEnd / kHourMs) * kHourMs;
  for (const bool cli : {false, true}) {
    CAPTURE(cli);
    Fixture f(kEnd + 1);
    CountingHistory counted(*f.store);
    const ProbeSeriesSource batched(&counted, cli ? Millis(0) : Millis(2 * kHourMs),
                                    cli ? INT64_MAX : kEnd + 1);
    const ProbeSeriesSource alone(f.store.get(), cli ? Millis(0) : Millis(2 * kHourMs),
                                  cli ? INT64_MAX : kEnd + 1);
    struct Shape {
      int64_t first_to, step, range;
    };
    const Shape shapes[] = {
        {hour - 26 * kHourMs, kHourMs, kHourMs},                 // aligned, 1 h at 1 h
        {hour - 26 * kHourMs + 7'503, kHourMs, kHourMs},         // 7.5 s past the hour
        {hour - 26 * kHourMs + 30 * 60'000, kHourMs, kHourMs},   // half past
        {hour - 26 * kHourMs + 50 * 60'000, kHourMs, kHourMs},   // ends late in an hour
        {hour - 20 * kHourMs + 1'000, 5 * 60'000, 3 * kHourMs},  // 5 min steps, 3 h windows
        {hour - 20 * kHourMs + 1'000, kHourMs, 20 * 60'000},     // 20 min windows, no whole hour
        {hour - 20 * kHourMs, 15'000, 5 * 60'000},               // short windows, overlapping
    };
    const std::vector<const char*> names = {"probe_ttft_seconds", "probe_success",
                                            "probe_output_tokens_per_second"};
    for (const char* name : names) {  // the warm-up and label sets, read once
      REQUIRE(batched.SelectAggregate({{LabelMatcher::Type::kEqual, "__name__", name}},
                                      kEnd - kHourMs, kEnd, RangeAggregate::kCount, 0));
    }
    for (const Shape& shape : shapes) {
      const int64_t last_to = std::min(shape.first_to + 24 * kHourMs, kEnd);
      const int64_t steps = (last_to - shape.first_to) / shape.step + 1;
      CAPTURE(shape.first_to - kEnd);
      CAPTURE(shape.step);
      CAPTURE(shape.range);
      for (const char* name : names) {
        for (const RangeAggregate aggregate :
             {RangeAggregate::kCount, RangeAggregate::kSum, RangeAggregate::kAvg,
              RangeAggregate::kMin, RangeAggregate::kMax}) {
          CAPTURE(name);
          CAPTURE(static_cast<int>(aggregate));
          const std::vector<LabelMatcher> matchers = {
              {LabelMatcher::Type::kEqual, "__name__", name}};
          counted.reads = 0;
          auto all = batched.SelectAggregateSteps(matchers, shape.first_to, last_to, shape.step,
                                                  shape.range, aggregate, 0);
          REQUIRE(all.has_value());
          REQUIRE_FALSE(all->empty());
          for (const SeriesSteps& series : *all) {
            REQUIRE(static_cast<int64_t>(series.values.size()) == steps);
            REQUIRE(static_cast<int64_t>(series.present.size()) == steps);
          }
          // Listing the targets, then per target its rollups and its edge rows, whatever the
          // number of steps (asked alone, each step costs a few reads per target); a step
          // whose window straddles the start of memory may read its stored part itself.
          CHECK(counted.reads <= 1 + 3 * 2 + 3);
          for (int64_t i = 0; i < steps; ++i) {
            const int64_t to = shape.first_to + i * shape.step;
            auto one = alone.SelectAggregate(matchers, to - shape.range, to, aggregate, 0);
            REQUIRE(one.has_value());
            const std::vector<SeriesAggregate> got = AggregatesAtStep(*all, static_cast<size_t>(i));
            REQUIRE(got.size() == one->size());
            for (size_t j = 0; j < got.size(); ++j) {
              CHECK(got[j].labels == (*one)[j].labels);
              // Bit for bit: the same rows through the same arithmetic.
              CHECK(std::bit_cast<uint64_t>(got[j].value) ==
                    std::bit_cast<uint64_t>((*one)[j].value));
            }
          }
        }
      }
    }
    // And against the brute force, once through the evaluator's path.
    auto all = batched.SelectAggregateSteps(
        {{LabelMatcher::Type::kEqual, "__name__", "probe_ttft_seconds"}},
        hour - 26 * kHourMs + 7'503, hour - 2 * kHourMs + 7'503, kHourMs, kHourMs,
        RangeAggregate::kMax, 0);
    REQUIRE(all.has_value());
    for (size_t i = 0; i < 25; ++i) {
      const int64_t to = hour - 26 * kHourMs + 7'503 + static_cast<int64_t>(i) * kHourMs;
      auto want =
          BruteForce(f.probes, "probe_ttft_seconds", to - kHourMs, to, RangeAggregate::kMax, 0);
      const std::vector<SeriesAggregate> got = AggregatesAtStep(*all, i);
      REQUIRE(got.size() == want.size());
      for (const SeriesAggregate& a : got) {
        CHECK(a.value == want.at(a.labels));
      }
    }
  }
}

// probe_ttft_seconds over `store` through two daemon sources restarted after kEnd (every hour
// settled): `batched` reads through `counted`, `alone` directly; the warm-up and label sets read.
struct SettledSources {
  explicit SettledSources(const ProbeHistory& store)
      : counted(store),
        batched(&counted, Millis(2 * kHourMs), kEnd + 1),
        alone(&store, Millis(2 * kHourMs), kEnd + 1) {
    REQUIRE(batched.SelectAggregate(matchers, kEnd - kHourMs, kEnd, RangeAggregate::kCount, 0));
  }
  CountingHistory counted;
  const ProbeSeriesSource batched;
  const ProbeSeriesSource alone;
  const std::vector<LabelMatcher> matchers = {
      {LabelMatcher::Type::kEqual, "__name__", "probe_ttft_seconds"}};
};

TEST_CASE("a range query's windows ending on the hour seek no edge row") {
  // A probe every 15 s, 7 s past; on every third hour one more exactly at the hour, the instant
  // that a window [t - 1 h, t] ending there holds beside its whole hour. The rollups' first and
  // last row times show the other ends empty, and their first values give the row at the hour.
  TempDir dir;
  ManualClock clock{kEnd};
  const std::unique_ptr<storage::Store> store = OpenStore(dir.File("edges.db"), clock);
  const int64_t hour = kEnd / kHourMs * kHourMs;
  auto probe = [](int64_t t_ms, double ttft) {
    ProbeResult p;
    p.target = "a@openai";
    p.labels = {{"target", "a@openai"}, {"provider", "openai"}, {"model", "m"}};
    p.start_unix_ms = t_ms;
    p.outcome = Outcome::kOk;
    p.http_status = 200;
    p.ttft_seconds = ttft;
    return p;
  };
  const int64_t first_to = hour - 10 * kHourMs;
  const int64_t last_to = hour - kHourMs;
  int ends_with_a_row = 0;
  for (int64_t h = hour - 12 * kHourMs; h < hour; h += kHourMs) {
    const bool at_the_hour = (h / kHourMs) % 3 == 0;
    if (at_the_hour) {
      store->Append(probe(h, 9.5));  // the largest value: it shows when counted wrongly
      ends_with_a_row += h >= first_to && h <= last_to ? 1 : 0;
    }
    for (int64_t t = h + 7'000; t < h + kHourMs; t += 15'000) {
      store->Append(probe(t, 0.1 + static_cast<double>(t % 997) / 997));
    }
  }
  REQUIRE(store->Flush().has_value());
  REQUIRE(ends_with_a_row > 0);
  REQUIRE(ends_with_a_row < 10);
  // A daemon's source, restarted after the last probe: every hour is settled. (The CLI's source
  // never is, since a running daemon may still be writing the file; it seeks every edge.)
  SettledSources sources(*store);
  CountingHistory& counted = sources.counted;
  const ProbeSeriesSource& batched = sources.batched;
  const ProbeSeriesSource& alone = sources.alone;
  const std::vector<LabelMatcher>& matchers = sources.matchers;
  for (const RangeAggregate aggregate : {RangeAggregate::kCount, RangeAggregate::kAvg}) {
    CAPTURE(static_cast<int>(aggregate));
    counted.seeks = 0;
    auto all =
        batched.SelectAggregateSteps(matchers, first_to, last_to, kHourMs, kHourMs, aggregate, 0);
    REQUIRE(all.has_value());
    // And the edges that hold a row hold their hour's first one, which its rollup keeps.
    CHECK(counted.seeks == 0);
    REQUIRE(all->size() == 1);
    REQUIRE(all->front().values.size() == 10);
    for (size_t i = 0; i < 10; ++i) {
      const int64_t to = first_to + static_cast<int64_t>(i) * kHourMs;
      auto one = alone.SelectAggregate(matchers, to - kHourMs, to, aggregate, 0);
      REQUIRE(one.has_value());
      REQUIRE(all->front().present[i]);
      REQUIRE(one->size() == 1);
      CHECK(std::bit_cast<uint64_t>(all->front().values[i]) ==
            std::bit_cast<uint64_t>((*one)[0].value));
      if (aggregate == RangeAggregate::kCount) {  // 240 rows an hour, and the one at its end
        CHECK(all->front().values[i] ==
              240 + ((to / kHourMs) % 3 == 0 ? 1 : 0) + ((to / kHourMs - 1) % 3 == 0 ? 1 : 0));
      }
    }
  }
}

TEST_CASE(
    "a range query's windows ending seconds past the hour take each hour's first row from its "
    "rollup") {
  // A probe every 15 s, 7 s past; two label sets, the second one's probes 4 s later. Windows end
  // 10 s past the hour: each edge [h, h + 10 s] holds the hour's first row of the first label set
  // only, which its rollup keeps (its second row is 22 s past). Ending 25 s past, the edges hold
  // two rows of a label set, which only a seek reads. (min and max read each edge hour whole.)
  TempDir dir;
  ManualClock clock{kEnd};
  const std::unique_ptr<storage::Store> store = OpenStore(dir.File("first.db"), clock);
  const int64_t hour = kEnd / kHourMs * kHourMs;
  for (int64_t h = hour - 12 * kHourMs; h < hour; h += kHourMs) {
    for (int64_t t = h + 7'000; t < h + kHourMs; t += 15'000) {
      for (const char* tier : {"a", "b"}) {
        ProbeResult p;
        p.target = "a@openai";
        p.labels = {{"target", "a@openai"}, {"provider", "openai"}, {"tier", tier}};
        p.start_unix_ms = t + (tier[0] == 'b' ? 4'000 : 0);
        p.outcome = Outcome::kOk;
        p.http_status = 200;
        p.ttft_seconds = 0.1 + static_cast<double>(p.start_unix_ms % 997) / 997;
        store->Append(p);
      }
    }
  }
  REQUIRE(store->Flush().has_value());
  SettledSources sources(*store);
  CountingHistory& counted = sources.counted;
  const ProbeSeriesSource& batched = sources.batched;
  const ProbeSeriesSource& alone = sources.alone;
  const std::vector<LabelMatcher>& matchers = sources.matchers;
  for (const int64_t past : {int64_t{10'000}, int64_t{25'000}}) {
    for (const RangeAggregate aggregate :
         {RangeAggregate::kCount, RangeAggregate::kAvg, RangeAggregate::kMax}) {
      CAPTURE(past);
      CAPTURE(static_cast<int>(aggregate));
      const int64_t first_to = hour - 10 * kHourMs + past;
      counted.seeks = 0;
      auto all = batched.SelectAggregateSteps(matchers, first_to, first_to + 8 * kHourMs, kHourMs,
                                              kHourMs, aggregate, 0);
      REQUIRE(all.has_value());
      if (aggregate != RangeAggregate::kMax) {
        CHECK((counted.seeks == 0) == (past == 10'000));
      }
      REQUIRE(all->size() == 2);
      for (size_t i = 0; i < 9; ++i) {
        const int64_t to = first_to + static_cast<int64_t>(i) * kHourMs;
        auto one = alone.SelectAggregate(matchers, to - kHourMs, to, aggregate, 0);
        REQUIRE(one.has_value());
        const std::vector<SeriesAggregate> got = AggregatesAtStep(*all, i);
        REQUIRE(got.size() == one->size());
        for (size_t j = 0; j < got.size(); ++j) {
          CHECK(got[j].labels == (*one)[j].labels);
          CHECK(std::bit_cast<uint64_t>(got[j].value) == std::bit_cast<uint64_t>((*one)[j].value));
          if (aggregate == RangeAggregate::kCount) {
            CHECK(got[j].value == 240);  // an hour of probes every 15 s, whatever the offset
          }
        }
      }
    }
  }
}

TEST_CASE("sliding quantile windows stay equal to a fresh computation") {
  Fixture f(kEnd - 2 * kHourMs);
  // A day offset 15m evaluated every 15 s, as the capacity rules do; the first call builds the
  // window, the others slide it (only settled ranges are kept).
  for (int k = 0; k < 12; ++k) {
    const int64_t to = kEnd - 40 * 60'000 + k * 15'000;
    f.Check("probe_ttft_seconds", to - 24 * kHourMs, to, RangeAggregate::kQuantile, 0.95);
    f.Check("probe_ttft_seconds", to - 24 * kHourMs, to, RangeAggregate::kQuantile, 0.5);
  }
  // The same for count/sum/avg/min/max: rollups and head rows are kept between evaluations
  // while the window's whole hours stay the same, and memory past the last rolled-up hour.
  for (int k = 0; k < 12; ++k) {
    const int64_t to = kEnd - 40 * 60'000 + k * 15'000;
    for (RangeAggregate aggregate : kAll) {
      f.Check("probe_output_tokens_per_second", to - 24 * kHourMs, to, aggregate);
    }
  }
  // A jump backwards rebuilds.
  f.Check("probe_ttft_seconds", kEnd - 26 * kHourMs, kEnd - 2 * kHourMs, RangeAggregate::kQuantile);
}

TEST_CASE("kept quantile windows stay within their bound, and answers stay exact past it") {
  const int64_t restart = kEnd - 2 * kHourMs;
  // Unbounded, a day's windows of the three targets are all kept.
  Fixture unbounded(restart);
  const int64_t to = kEnd - 40 * 60'000;
  unbounded.Check("probe_ttft_seconds", to - 24 * kHourMs, to, RangeAggregate::kQuantile);
  const size_t all = unbounded.source->KeptQuantileValues();
  REQUIRE(all > 1'000);
  // One value short of that: some are kept, one is not, and every answer is still exact while
  // the windows slide.
  Fixture bounded(restart, all - 1);
  for (int k = 0; k < 8; ++k) {
    const int64_t slid = to + k * 15'000;
    bounded.Check("probe_ttft_seconds", slid - 24 * kHourMs, slid, RangeAggregate::kQuantile, 0.95);
    bounded.Check("probe_ttft_seconds", slid - 24 * kHourMs, slid, RangeAggregate::kQuantile, 0.5);
    CHECK(bounded.source->KeptQuantileValues() > 0);
    CHECK(bounded.source->KeptQuantileValues() < all - 1);
  }
  // Nothing allowed: nothing kept, the same answers.
  Fixture none(restart, 0);
  for (int k = 0; k < 3; ++k) {
    const int64_t slid = to + k * 15'000;
    none.Check("probe_ttft_seconds", slid - 24 * kHourMs, slid, RangeAggregate::kQuantile, 0.9);
    CHECK(none.source->KeptQuantileValues() == 0);
  }
}

TEST_CASE("a quantile over hours whose values are not kept, or are damaged, reads their rows") {
  Fixture f(kEnd - 2 * kHourMs);
  // Every other hour loses its kept values; one more hour's run is cut inside a value.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(f.dir.File("s.db").c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "DELETE FROM rollup_values WHERE (bucket_ms / 3600000) % 2 = 0; "
                     "UPDATE rollup_values SET vals = x'80' WHERE bucket_ms = (SELECT "
                     "min(bucket_ms) FROM rollup_values)",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  CHECK(sqlite3_changes(db) > 0);
  sqlite3_close(db);
  for (const int64_t to : {kEnd - 40 * 60'000, kEnd - 3 * kHourMs}) {
    f.Check("probe_ttft_seconds", to - 24 * kHourMs, to, RangeAggregate::kQuantile, 0.95);
    f.Check("probe_duration_seconds", to - 20 * kHourMs, to, RangeAggregate::kQuantile, 0.5);
  }
}

TEST_CASE("a window's first quantile (by selection, unsorted) and later ones (sorted) are exact") {
  Fixture f(kEnd - 2 * kHourMs);
  const int64_t to = kEnd - 40 * 60'000;
  const double qs[] = {0, 0.01, 0.25, 0.5, 0.95, 0.999, 1};  // out of [0, 1]: promql_eval_test
  for (size_t k = 0; k < std::size(qs); ++k) {
    CAPTURE(qs[k]);
    // A range length of its own: a window not seen before, answered without a sort.
    const int64_t from = to - 24 * kHourMs - static_cast<int64_t>(k) * 1000;
    f.Check("probe_ttft_seconds", from, to, RangeAggregate::kQuantile, qs[k]);
    // The same window again: sorted now, and then slid.
    f.Check("probe_ttft_seconds", from, to, RangeAggregate::kQuantile, qs[k]);
    f.Check("probe_ttft_seconds", from + 15'000, to + 15'000, RangeAggregate::kQuantile, qs[k]);
  }
}

// The label sets Select returns with a sample in [from, to] for `name`.
std::set<Labels> Selected(const ProbeSeriesSource& source, const std::string& name, int64_t from,
                          int64_t to) {
  auto got = source.Select({{LabelMatcher::Type::kEqual, "__name__", name}}, from, to);
  REQUIRE(got.has_value());
  std::set<Labels> out;
  for (const Series& series : *got) {
    if (!series.samples.empty()) {
      out.insert(series.labels);
    }
  }
  return out;
}

TEST_CASE("SeriesIn lists exactly the series a query returns, gauges and counter families") {
  Fixture f(kEnd - 90 * 60'000);
  std::set<std::string> names;
  for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
    names.insert(info.name);
  }
  for (const ProbeCounterSlot& slot : ProbeCounterSlots()) {
    names.insert(slot.name);
  }
  const int64_t hour = (kEnd / kHourMs) * kHourMs;
  const std::vector<std::pair<int64_t, int64_t>> ranges = {
      {0, kEnd},                                        // all of history (the API's default)
      {kEnd - 5 * 60'000, kEnd},                        // memory only
      {kEnd - 24 * kHourMs - 900'000, kEnd - 900'000},  // rollups, edges and memory
      {hour - 12 * kHourMs + 7'503, hour - 11 * kHourMs + 7'503},  // storage, unaligned
      {kEnd - 40 * kHourMs, kEnd - 30 * kHourMs - 1},              // before the first probe
  };
  for (const auto& [from, to] : ranges) {
    CAPTURE(from - kEnd);
    CAPTURE(to - kEnd);
    // Listed once for all names (as the API's default {__name__=~".+"}) and once per name.
    auto all = f.source->SeriesIn({{LabelMatcher::Type::kRegexMatch, "__name__", ".+"}}, from, to);
    REQUIRE(all.has_value());
    const std::set<Labels> listed(all->begin(), all->end());
    CHECK(listed.size() == all->size());  // no series twice
    std::set<Labels> selected;
    for (const std::string& name : names) {
      CAPTURE(name);
      const std::set<Labels> want = Selected(*f.source, name, from, to);
      auto one = f.source->SeriesIn({{LabelMatcher::Type::kEqual, "__name__", name}}, from, to);
      REQUIRE(one.has_value());
      CHECK(std::set<Labels>(one->begin(), one->end()) == want);
      selected.insert(want.begin(), want.end());
    }
    CHECK(listed == selected);
  }
  // Other matchers narrow the targets read (a superset: the API re-applies them); the canary
  // label set (the last ten hours of b@azure) has its own counter series.
  auto canary =
      f.source->SeriesIn({{LabelMatcher::Type::kEqual, "__name__", "modelpulse_probes_total"},
                          {LabelMatcher::Type::kEqual, "target", "b@azure"}},
                         kEnd - 2 * kHourMs, kEnd);
  REQUIRE(canary.has_value());
  size_t canaries = 0;
  for (const Labels& labels : *canary) {
    CHECK(labels.at("target") == "b@azure");
    canaries += labels.count("tier");
  }
  CHECK(canaries > 0);
}

TEST_CASE("a memory-only source and other matchers fall back to samples") {
  Fixture f(kEnd - 2 * kHourMs);
  ProbeSeriesSource memory_only(nullptr, Millis(2 * kHourMs), kEnd - 2 * kHourMs);
  for (const ProbeResult& p : f.probes) {
    if (p.start_unix_ms >= kEnd - 2 * kHourMs) {
      memory_only.Append(p);
    }
  }
  auto got =
      memory_only.SelectAggregate({{LabelMatcher::Type::kEqual, "__name__", "probe_success"}},
                                  kEnd - kHourMs, kEnd, RangeAggregate::kAvg, 0);
  REQUIRE(got.has_value());
  auto want = BruteForce(f.probes, "probe_success", kEnd - kHourMs, kEnd, RangeAggregate::kAvg, 0);
  REQUIRE(got->size() == want.size());
  for (const auto& a : *got) {
    CHECK(a.value == doctest::Approx(want[a.labels]).epsilon(1e-12));
  }
  // A target matcher narrows the stored targets read.
  auto narrowed =
      f.source->SelectAggregate({{LabelMatcher::Type::kEqual, "__name__", "probe_success"},
                                 {LabelMatcher::Type::kEqual, "target", "a@openai"}},
                                kEnd - 20 * kHourMs, kEnd, RangeAggregate::kCount, 0);
  REQUIRE(narrowed.has_value());
  REQUIRE(narrowed->size() == 1);
  CHECK(narrowed->front().labels.at("target") == "a@openai");
}

}  // namespace
}  // namespace modelpulse::storage
