// The counter families (modelpulse_probes_total, the ttft/duration/tokens-per-second histograms)
// as ProbeSeriesSource derives them from stored probes and its memory window: values at each probe
// instant computed by hand from five probes.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/probe_series.h"
#include "common/sample_source.h"
#include "storage/series_source.h"
#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000;

using testing::TempDir;

ProbeResult Probe(int64_t t_offset_ms, Outcome outcome, std::optional<double> ttft, double total,
                  std::optional<double> tokens_per_second) {
  ProbeResult p;
  p.target = "a@x";
  p.labels = {{"target", "a@x"}, {"model", "m"}};
  p.start_unix_ms = kT0 + t_offset_ms;
  p.outcome = outcome;
  p.http_status = outcome == Outcome::kOk ? 200 : 429;
  p.ttft_seconds = ttft;
  p.total_seconds = total;
  p.output_tokens_per_second = tokens_per_second;
  return p;
}

// p1..p4 are committed; p5 is not yet. The daemon restarted at 3000: memory holds p3..p5.
const std::vector<ProbeResult> kProbes = {
    Probe(1000, Outcome::kOk, 0.04, 0.5, 30),
    Probe(2000, Outcome::kThrottled, std::nullopt, 0.2, std::nullopt),
    Probe(3000, Outcome::kOk, 0.3, 1.5, 120),
    Probe(4000, Outcome::kOk, 2.5, 4, 8),
    Probe(5000, Outcome::kThrottled, std::nullopt, 0.1, std::nullopt),
};

struct Fixture {
  TempDir dir;
  ManualClock clock{kT0 + 6000};
  std::unique_ptr<Store> store;
  std::unique_ptr<ProbeSeriesSource> source;

  explicit Fixture(int64_t restart_offset_ms, size_t stored = 4) {
    StorageOptions options;
    options.path = dir.File("s.db");
    options.retention = Millis(0);
    auto opened = Store::Open(options, clock);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    for (size_t i = 0; i < stored; ++i) {
      store->Append(kProbes[i]);
    }
    REQUIRE(store->Flush().has_value());
    source = std::make_unique<ProbeSeriesSource>(store.get(), Millis(3'600'000),
                                                 kT0 + restart_offset_ms);
    for (const ProbeResult& p : kProbes) {
      if (p.start_unix_ms >= kT0 + restart_offset_ms) {
        source->Append(p);
      }
    }
  }

  // label value of `label` (or "" when none) -> (offset ms, value) samples.
  std::map<std::string, std::vector<std::pair<int64_t, double>>> Read(const std::string& name,
                                                                      const std::string& label,
                                                                      int64_t from, int64_t to) {
    auto got =
        source->Select({{LabelMatcher::Type::kEqual, "__name__", name}}, kT0 + from, kT0 + to);
    REQUIRE(got.has_value());
    std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
    for (const Series& s : *got) {
      CHECK(s.labels.at("__name__") == name);
      CHECK(s.labels.at("target") == "a@x");
      CHECK(s.labels.at("model") == "m");
      auto it = s.labels.find(label);
      auto& samples = out[it == s.labels.end() ? "" : it->second];
      for (const Sample& sample : s.samples) {
        samples.push_back({sample.t_ms - kT0, sample.v});
      }
    }
    return out;
  }
};

using Samples = std::vector<std::pair<int64_t, double>>;

TEST_CASE("counters: modelpulse_probes_total counts stored and recent probes up to each probe") {
  for (int64_t restart : {int64_t{3000}, int64_t{1000}}) {
    CAPTURE(restart);
    Fixture f(restart);
    auto got = f.Read("modelpulse_probes_total", "outcome", 2500, 5000);
    // ok: p1 before the window (1); p3 2, p4 3, p5 3. throttled: p2 before (1); p5 2.
    CHECK(got.size() == 2);
    CHECK(got["ok"] == Samples{{3000, 2}, {4000, 3}, {5000, 3}});
    CHECK(got["throttled"] == Samples{{3000, 1}, {4000, 1}, {5000, 2}});
    // A window before the first throttled probe: that series does not exist yet.
    auto early = f.Read("modelpulse_probes_total", "outcome", 0, 1500);
    CHECK(early.size() == 1);
    CHECK(early["ok"] == Samples{{1000, 1}});
    // A window starting before the kept totals (a longer range, an offset): the probes between
    // are subtracted, and a series first seen between does not exist before it.
    auto longer = f.Read("modelpulse_probes_total", "outcome", 1500, 5000);
    CHECK(longer["ok"] == Samples{{2000, 1}, {3000, 2}, {4000, 3}, {5000, 3}});
    CHECK(longer["throttled"] == Samples{{2000, 1}, {3000, 1}, {4000, 1}, {5000, 2}});
    CHECK(f.Read("modelpulse_probes_total", "outcome", 2500, 5000) == got);
  }
}

TEST_CASE("counters: histogram buckets, _sum and _count of ttft") {
  Fixture f(3000);
  auto buckets = f.Read("modelpulse_probe_ttft_seconds_bucket", "le", 2500, 5000);
  // ttft 0.04 (p1), 0.3 (p3), 2.5 (p4); p2 and p5 have none but still yield samples.
  CHECK(buckets.size() == ProbeLatencyBuckets().size() + 1);
  CHECK(buckets["0.05"] == Samples{{3000, 1}, {4000, 1}, {5000, 1}});
  CHECK(buckets["0.25"] == Samples{{3000, 1}, {4000, 1}, {5000, 1}});
  CHECK(buckets["0.5"] == Samples{{3000, 2}, {4000, 2}, {5000, 2}});
  CHECK(buckets["2"] == Samples{{3000, 2}, {4000, 2}, {5000, 2}});
  CHECK(buckets["3"] == Samples{{3000, 2}, {4000, 3}, {5000, 3}});
  CHECK(buckets["+Inf"] == Samples{{3000, 2}, {4000, 3}, {5000, 3}});
  auto sum = f.Read("modelpulse_probe_ttft_seconds_sum", "", 2500, 5000);
  REQUIRE(sum[""].size() == 3);
  CHECK(sum[""][0].second == doctest::Approx(0.34));
  CHECK(sum[""][1].second == doctest::Approx(2.84));
  CHECK(sum[""][2].second == doctest::Approx(2.84));
  auto count = f.Read("modelpulse_probe_ttft_seconds_count", "", 2500, 5000);
  CHECK(count[""] == Samples{{3000, 2}, {4000, 3}, {5000, 3}});
}

TEST_CASE("counters: tokens-per-second and duration histograms") {
  Fixture f(3000);
  // tokens/s 30 (p1), 120 (p3), 8 (p4).
  auto tps = f.Read("modelpulse_probe_output_tokens_per_second_bucket", "le", 3500, 4000);
  CHECK(tps["5"] == Samples{{4000, 0}});
  CHECK(tps["10"] == Samples{{4000, 1}});
  CHECK(tps["35"] == Samples{{4000, 2}});
  CHECK(tps["150"] == Samples{{4000, 3}});
  // duration 0.5, 0.2, 1.5, 4, 0.1: every probe has one, but the histograms observe the
  // successful ones only (p1, p3, p4), as the latency SLOs count them.
  auto total = f.Read("modelpulse_probe_duration_seconds_count", "", 0, 5000);
  CHECK(total[""] == Samples{{1000, 1}, {2000, 1}, {3000, 2}, {4000, 3}, {5000, 3}});
  auto le1 = f.Read("modelpulse_probe_duration_seconds_bucket", "le", 4500, 5000);
  CHECK(le1["1"] == Samples{{5000, 1}});
}

TEST_CASE("counters: storage alone (the CLI's source) gives the same values as storage + memory") {
  Fixture f(3000, 5);
  ProbeSeriesSource stored_only(f.store.get(), Millis(0), INT64_MAX);
  auto from_memory = f.Read("modelpulse_probes_total", "outcome", 0, 5000);
  f.source = std::make_unique<ProbeSeriesSource>(f.store.get(), Millis(0), INT64_MAX);
  auto from_storage = f.Read("modelpulse_probes_total", "outcome", 0, 5000);
  CHECK(from_memory == from_storage);
  CHECK(from_storage["throttled"] == Samples{{2000, 1}, {3000, 1}, {4000, 1}, {5000, 2}});
  // Evaluated twice (the second from the kept totals), the same.
  CHECK(f.Read("modelpulse_probes_total", "outcome", 3500, 5000) ==
        f.Read("modelpulse_probes_total", "outcome", 3500, 5000));
}

// The outcome label values (or "" for a series without one) SeriesIn lists for `name`.
std::set<std::string> Listed(const ProbeSeriesSource& source, const std::string& name,
                             const std::string& label, int64_t from, int64_t to) {
  auto got =
      source.SeriesIn({{LabelMatcher::Type::kEqual, "__name__", name}}, kT0 + from, kT0 + to);
  REQUIRE(got.has_value());
  std::set<std::string> out;
  for (const Labels& labels : *got) {
    if (labels.at("__name__") != name) {
      continue;  // a superset is allowed; the API re-applies the selector
    }
    auto it = labels.find(label);
    out.insert(it == labels.end() ? "" : it->second);
  }
  return out;
}

TEST_CASE("counters: SeriesIn lists a counter series from the probe that first moved it") {
  for (int64_t restart : {int64_t{3000}, int64_t{1000}}) {
    CAPTURE(restart);
    Fixture f(restart);
    using Names = std::set<std::string>;
    // Before p2, nothing was throttled yet; from p2 on, both outcomes exist at every probe.
    CHECK(Listed(*f.source, "modelpulse_probes_total", "outcome", 0, 1500) == Names{"ok"});
    CHECK(Listed(*f.source, "modelpulse_probes_total", "outcome", 1500, 2500) ==
          Names{"ok", "throttled"});
    CHECK(Listed(*f.source, "modelpulse_probes_total", "outcome", 3500, 4500) ==
          Names{"ok", "throttled"});
    // A window without a probe has no sample of any series.
    CHECK(Listed(*f.source, "modelpulse_probes_total", "outcome", 5500, 6000).empty());
    CHECK(Listed(*f.source, "probe_success", "", 5500, 6000).empty());
    // The ttft histogram exists from p1, which had a first token; _sum and _count too.
    CHECK(Listed(*f.source, "modelpulse_probe_ttft_seconds_bucket", "le", 1500, 2500).size() ==
          ProbeLatencyBuckets().size() + 1);
    CHECK(Listed(*f.source, "modelpulse_probe_ttft_seconds_count", "", 1500, 2500) == Names{""});
    // The gauge of a phase the window's only probe lacked has no sample there.
    CHECK(Listed(*f.source, "probe_ttft_seconds", "", 1500, 2500).empty());
    // A regex on __name__ lists every counter family, none of the gauges.
    auto families = f.source->SeriesIn(
        {{LabelMatcher::Type::kRegexMatch, "__name__", "modelpulse_probe.*_(total|count)"}}, kT0,
        kT0 + 5000);
    REQUIRE(families.has_value());
    Names names;
    for (const Labels& labels : *families) {
      names.insert(labels.at("__name__"));
    }
    CHECK(names == Names{"modelpulse_probes_total", "modelpulse_probe_ttft_seconds_count",
                         "modelpulse_probe_duration_seconds_count",
                         "modelpulse_probe_output_tokens_per_second_count"});
  }
}

TEST_CASE("counters: the slot table names every outcome and bucket once") {
  const auto [first, last] = ProbeCounterSlotsNamed("modelpulse_probes_total");
  CHECK(last - first == kAllOutcomes.size());
  const auto [b0, b1] = ProbeCounterSlotsNamed("modelpulse_probe_ttft_seconds_bucket");
  CHECK(b1 - b0 == ProbeLatencyBuckets().size() + 1);
  CHECK(ProbeCounterSlots()[b1 - 1].label_value == "+Inf");
  CHECK(FormatBucketBound(0.05) == "0.05");
  CHECK(FormatBucketBound(60) == "60");
  const auto [n0, n1] = ProbeCounterSlotsNamed("probe_success");
  CHECK(n0 == n1);
}

TEST_CASE("counters: rate() and increase() pushed down equal the evaluator's over the samples") {
  Fixture f(3000);
  const std::vector<LabelMatcher> matchers = {
      {LabelMatcher::Type::kEqual, "__name__", "modelpulse_probes_total"}};
  // Hand-computed: ok goes 2 (3000) -> 3 (5000), three samples, in [2500, 5000]: an increase of
  // 1 over 2 s sampled, extrapolated by the 0.5 s to the window's start: 1.25.
  auto increase =
      f.source->SelectAggregate(matchers, kT0 + 2500, kT0 + 5000, RangeAggregate::kIncrease, 0);
  REQUIRE(increase.has_value());
  REQUIRE(increase->size() == 2);
  for (const SeriesAggregate& a : *increase) {
    CHECK(a.value == 1.25);
  }
  for (const RangeAggregate kind : {RangeAggregate::kRate, RangeAggregate::kIncrease}) {
    for (const auto& [from, to] : std::vector<std::pair<int64_t, int64_t>>{
             {0, 5000}, {1500, 5000}, {2500, 4500}, {1000, 2000}, {4500, 5000}}) {
      CAPTURE(from);
      CAPTURE(to);
      auto pushed = f.source->SelectAggregate(matchers, kT0 + from, kT0 + to, kind, 0);
      auto series = f.source->Select(matchers, kT0 + from, kT0 + to);
      REQUIRE(pushed.has_value());
      REQUIRE(series.has_value());
      std::map<Labels, double> want;
      for (const Series& s : *series) {
        if (s.samples.size() >= 2) {
          want[s.labels] = ExtrapolatedRate(RateInputsOf(s.samples, true), kT0 + from, kT0 + to,
                                            true, kind == RangeAggregate::kRate);
        }
      }
      std::map<Labels, double> got;
      for (const SeriesAggregate& a : *pushed) {
        got[a.labels] = a.value;
      }
      CHECK(got == want);
    }
  }
}

}  // namespace
}  // namespace modelpulse::storage
