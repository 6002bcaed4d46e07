// Probe summaries (migration 9): what storage::Archive::DigestDays gives must equal a computation
// over the stored rows done here independently (counts exact, quantiles within the sketch's 1 %,
// downtime minutes equal), whether the summaries came from the writer batch by batch, from the
// migration's backfill, or outlived the rows that retention deleted.
#include "storage/internal/summary.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "storage/archive.h"
#include "storage/storage.h"
#include "tests/storage/legacy_schema.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::FullProbe;
using testing::TempDir;

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kNow = 1'800'000'000'000;  // a whole hour, not a whole day

StorageOptions Options(const std::string& path) {
  StorageOptions options;
  options.path = path;
  options.batch_size = 5;  // many small transactions: minutes and hours split across batches
  options.flush_interval = Millis(3600 * 1000);
  options.retention_interval = Millis(0);
  options.retention = Millis(0);
  return options;
}

std::unique_ptr<Store> OpenOrDie(const StorageOptions& options, const Clock& clock) {
  auto store = Store::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

// Probes every `step_ms` (with jitter, sometimes two in one ms) from `from_ms`, with outages
// (runs of failures of mixed outcomes), throttling, auth failures (not the provider's fault) and
// a long-tailed latency.
std::vector<ProbeResult> Scenario(const std::string& target, int64_t from_ms, int n,
                                  int64_t step_ms, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<ProbeResult> out;
  int64_t t = from_ms;
  int outage_left = 0;
  for (int i = 0; i < n; ++i) {
    ProbeResult p = FullProbe(target, t);
    if (outage_left == 0 && unit(rng) < 0.01) {
      outage_left = 3 + static_cast<int>(rng() % 30);
    }
    if (outage_left > 0) {
      --outage_left;
      const Outcome bad[] = {Outcome::kTimeout, Outcome::kOverloaded, Outcome::kServerError,
                             Outcome::kAuth};
      p.outcome = bad[rng() % 4];
    } else {
      const double u = unit(rng);
      p.outcome = u < 0.03   ? Outcome::kThrottled
                  : u < 0.04 ? Outcome::kQuotaExhausted
                  : u < 0.05 ? Outcome::kNetwork
                             : Outcome::kOk;
    }
    p.ttft_seconds =
        unit(rng) < 0.1 ? std::nullopt : std::optional<double>(0.05 + std::exp(3 * unit(rng)) / 10);
    p.total_seconds = 0.3 + std::exp(4 * unit(rng)) / 5;
    p.output_tokens_per_second =
        unit(rng) < 0.05 ? std::nullopt : std::optional<double>(10 + 90 * unit(rng));
    out.push_back(p);
    t += unit(rng) < 0.05
             ? 0
             : step_ms / 2 + static_cast<int64_t>(unit(rng) * static_cast<double>(step_ms));
  }
  return out;
}

// The independent computation: everything from the stored rows, with sorted vectors for the
// quantiles and a per-minute list of outcomes for downtime.
struct Expected {
  int64_t probes = 0;
  std::map<Outcome, int64_t> outcomes;
  std::vector<double> ttft, total;
  double tps_sum = 0;
  int64_t tps_count = 0;
  std::map<int64_t, std::vector<Outcome>> minutes;
};

Expected Compute(const Store& store, const std::string& target, int64_t from_ms, int64_t to_ms) {
  auto rows = store.ReadProbes(target, from_ms, to_ms);
  REQUIRE(rows.has_value());
  Expected e;
  for (const ProbeResult& p : *rows) {
    ++e.probes;
    ++e.outcomes[p.outcome];
    e.minutes[p.start_unix_ms / kMinuteMs * kMinuteMs].push_back(p.outcome);
    if (p.outcome == Outcome::kOk) {
      if (p.ttft_seconds) {
        e.ttft.push_back(*p.ttft_seconds);
      }
      e.total.push_back(p.total_seconds);
      if (p.output_tokens_per_second) {
        e.tps_sum += *p.output_tokens_per_second;
        ++e.tps_count;
      }
    }
  }
  std::sort(e.ttft.begin(), e.ttft.end());
  std::sort(e.total.begin(), e.total.end());
  return e;
}

// Downtime minutes under a bad set, as the report defined them before summaries: minutes with
// probes in which every probe was bad.
int64_t DownMinutes(const Expected& e, const std::vector<Outcome>& bad) {
  int64_t n = 0;
  for (const auto& [minute, outcomes] : e.minutes) {
    n += std::all_of(outcomes.begin(), outcomes.end(),
                     [&](Outcome o) { return std::find(bad.begin(), bad.end(), o) != bad.end(); });
  }
  return n;
}

int64_t DownMinutes(const ProbeDigest& d, const std::vector<Outcome>& bad) {
  OutcomeMask mask = 0;
  for (Outcome o : bad) {
    mask |= MaskOf(o);
  }
  int64_t n = 0;
  for (const auto& [minute, seen] : d.down_minutes) {
    n += (seen & ~mask) == 0;
  }
  return n;
}

void CheckSketch(const DDSketch& sketch, const std::vector<double>& sorted) {
  REQUIRE(sketch.Count() == static_cast<int64_t>(sorted.size()));
  for (double q : {0.0, 0.5, 0.9, 0.95, 0.99, 1.0}) {
    if (sorted.empty()) {
      break;
    }
    const auto rank = static_cast<int64_t>(std::floor(q * static_cast<double>(sorted.size() - 1)));
    const double exact = sorted[static_cast<size_t>(rank)];
    const auto got = sketch.ValueAtRank(rank);
    REQUIRE(got.has_value());
    CAPTURE(q);
    CHECK(std::abs(*got - exact) <= DDSketch::kRelativeAccuracy * exact * (1 + 1e-9));
  }
}

ProbeDigest Digest(const std::string& path, const Store& store, const std::string& target,
                   int64_t from_ms, int64_t to_ms, size_t* days = nullptr) {
  auto archive = Archive::OpenReadOnly(path);
  REQUIRE(archive.has_value());
  int64_t id = -1;
  // The archive's list: a target whose rows retention deleted keeps its summaries.
  (void)store;
  auto targets = (*archive)->ListTargets();
  REQUIRE(targets.has_value());
  for (const StoredTarget& t : *targets) {
    if (t.name == target) {
      id = t.id;
    }
  }
  auto digested = (*archive)->DigestDays(id, from_ms, to_ms);
  REQUIRE(digested.has_value());
  ProbeDigest all;
  int64_t previous = INT64_MIN;
  for (const DayDigest& day : *digested) {
    CHECK(day.day_ms > previous);
    CHECK(day.day_ms % kDayMs == 0);
    previous = day.day_ms;
    all.Merge(day.digest);
  }
  if (days != nullptr) {
    *days = digested->size();
  }
  return all;
}

void CheckEqual(const ProbeDigest& got, const Expected& want) {
  CHECK(got.probes == want.probes);
  for (Outcome o : kAllOutcomes) {
    CAPTURE(OutcomeName(o));
    auto it = want.outcomes.find(o);
    CHECK(got.Count(o) == (it == want.outcomes.end() ? 0 : it->second));
  }
  CheckSketch(got.first_token, want.ttft);
  CheckSketch(got.total, want.total);
  CHECK(got.tokens_per_s_count == want.tps_count);
  CHECK(got.tokens_per_s_sum == doctest::Approx(want.tps_sum).epsilon(1e-12));
  const std::vector<Outcome> availability_bad = {Outcome::kThrottled,   Outcome::kOverloaded,
                                                 Outcome::kTimeout,     Outcome::kNetwork,
                                                 Outcome::kServerError, Outcome::kClientError};
  CHECK(DownMinutes(got, availability_bad) == DownMinutes(want, availability_bad));
  CHECK(DownMinutes(got, {Outcome::kTimeout}) == DownMinutes(want, {Outcome::kTimeout}));
  std::vector<Outcome> everything_bad(kAllOutcomes.begin() + 1, kAllOutcomes.end());
  CHECK(DownMinutes(got, everything_bad) == DownMinutes(want, everything_bad));
}

// Every column of every summary, sorted, with the float sum rounded (it is added in a
// different order batch by batch than in a rebuild).
std::vector<std::string> SummaryRows(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "SELECT target_id || ',' || span_ms || ',' || bucket_ms || ',' || "
                             "probes || ',' || ok || ',' || throttled || ',' || timeout || ',' || "
                             "auth || ',' || hex(first_token) || ',' || hex(total) || ',' || "
                             "round(tokens_per_s_sum, 6) || ',' || tokens_per_s_count || ',' || "
                             "hex(down_minutes) FROM probe_summaries ORDER BY 1",
                             -1, &s, nullptr) == SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

TEST_CASE("the writer's summaries equal a computation over the rows, and a rebuild") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("s.db");
  auto store = OpenOrDie(Options(path), clock);
  const int64_t start = kNow - 3 * kDayMs - 7 * kHourMs - 13 * kMinuteMs;
  auto a = Scenario("a", start, 4000, 15'000, 1);  // ~17 h at 15 s
  auto b = Scenario("b", start, 600, 400'000, 2);  // ~3 days at ~7 min
  // Arrival out of start order within a few minutes, as concurrent probes finish.
  std::mt19937_64 rng(3);
  for (size_t i = 0; i + 8 < a.size(); i += 8) {
    std::shuffle(a.begin() + static_cast<std::ptrdiff_t>(i),
                 a.begin() + static_cast<std::ptrdiff_t>(i + 8), rng);
  }
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    if (i < a.size()) {
      store->Append(a[i]);
    }
    if (i < b.size()) {
      store->Append(b[i]);
    }
  }
  REQUIRE(store->Flush().has_value());
  // The scenario has outages of both kinds: minutes down for every bad set and minutes down
  // only when auth counts.
  const Expected all_a = Compute(*store, "a", INT64_MIN / 2, INT64_MAX / 2);
  CHECK(DownMinutes(all_a, {Outcome::kTimeout, Outcome::kOverloaded, Outcome::kServerError}) > 0);
  for (const char* target : {"a", "b"}) {
    CAPTURE(target);
    SUBCASE("everything") {
      CheckEqual(Digest(path, *store, target, INT64_MIN / 2, INT64_MAX / 2),
                 Compute(*store, target, INT64_MIN / 2, INT64_MAX / 2));
    }
    SUBCASE("edges inside hours and days") {
      const int64_t from = start + kDayMs / 3 + 17 * kMinuteMs + 3'000;
      const int64_t to = kNow - kDayMs / 2 - 23 * kMinuteMs;
      CheckEqual(Digest(path, *store, target, from, to), Compute(*store, target, from, to));
    }
    SUBCASE("inside one hour") {
      const int64_t from = start + 2 * kHourMs + 5 * kMinuteMs;
      const int64_t to = from + 40 * kMinuteMs;
      CheckEqual(Digest(path, *store, target, from, to), Compute(*store, target, from, to));
    }
  }
  // The writer's rows equal a rebuild from the stored rows, blob for blob.
  const auto written = SummaryRows(path);
  CHECK(written.size() > 10);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(RebuildSummaries(db, INT64_MIN, INT64_MAX, INT64_MIN, INT64_MAX).has_value());
    sqlite3_close(db);
  }
  CHECK(SummaryRows(path) == written);
}

TEST_CASE("opening a version-7 database backfills the summaries of its rows") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("old.db");
  testing::WriteLegacyDatabase(path, 7, Scenario("a", kNow - 2 * kDayMs, 3000, 30'000, 4));
  auto store = OpenOrDie(Options(path), clock);
  CheckEqual(Digest(path, *store, "a", INT64_MIN / 2, INT64_MAX / 2),
             Compute(*store, "a", INT64_MIN / 2, INT64_MAX / 2));
}

TEST_CASE("summaries outlive the rows retention deletes, and go on their own retention") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("r.db");
  auto options = Options(path);
  options.retention = Millis(90 * kDayMs);
  options.summary_retention = Millis(2 * 365 * kDayMs);
  auto store = OpenOrDie(options, clock);
  // 120 days at 10 minutes.
  const int64_t start = kNow - 120 * kDayMs;
  for (const ProbeResult& p : Scenario("a", start, 120 * 144, 600'000, 5)) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  const int64_t from = start / kDayMs * kDayMs;
  const Expected before = Compute(*store, "a", from, kNow);
  REQUIRE(before.probes > 10'000);

  auto deleted = store->ApplyRetention();
  REQUIRE(deleted.has_value());
  CHECK(*deleted > 0);
  auto rows = store->ReadProbes("a", INT64_MIN / 2, INT64_MAX / 2);
  REQUIRE(rows.has_value());
  REQUIRE(!rows->empty());
  CHECK(rows->front().start_unix_ms >= kNow - 90 * kDayMs);
  CHECK(store->Stats().summaries_deleted_by_retention == 0);
  // The whole period still adds up, though a quarter of its rows are gone.
  size_t days = 0;
  CheckEqual(Digest(path, *store, "a", from, kNow, &days), before);
  CHECK(days >= 110);  // the scenario's jitter makes 17280 probes about 115 days

  // Two years on, the summaries of those days go too (whole buckets only).
  clock.Advance(2 * 365 * kDayMs - 100 * kDayMs);
  REQUIRE(store->ApplyRetention().has_value());
  const ProbeDigest left = Digest(path, *store, "a", from, kNow);
  CHECK(left.probes > 0);
  CHECK(left.probes < before.probes);
  CHECK(store->Stats().summaries_deleted_by_retention > 0);
  clock.Advance(200 * kDayMs);
  REQUIRE(store->ApplyRetention().has_value());
  CHECK(Digest(path, *store, "a", from, kNow).probes == 0);
}

TEST_CASE("a summary retention shorter than the rows' is raised to it") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("short.db");
  auto options = Options(path);
  options.retention = Millis(30 * kDayMs);
  options.summary_retention = Millis(1 * kDayMs);
  auto store = OpenOrDie(options, clock);
  for (const ProbeResult& p : Scenario("a", kNow - 20 * kDayMs, 20 * 24, 3'600'000, 6)) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  REQUIRE(store->ApplyRetention().has_value());
  CHECK(store->Stats().summaries_deleted_by_retention == 0);
  CheckEqual(Digest(path, *store, "a", kNow - 21 * kDayMs, kNow),
             Compute(*store, "a", kNow - 21 * kDayMs, kNow));
}

}  // namespace
}  // namespace modelpulse::storage
