// The counter series' first-seen times that storage keeps beside the rows (migration 12, table
// counter_first_seen): after writes in any order, a restart, retention and the migration's
// backfill, they equal a scan of the stored rows, and so does what the discovery endpoints list
// from them (ProbeSeriesSource::SeriesIn).
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/probe_series.h"
#include "storage/series_source.h"
#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::TempDir;

constexpr int64_t kT0 = 1'800'000'000'000;
constexpr int64_t kMinute = 60'000;

StorageOptions Options(const std::string& path, Millis retention) {
  StorageOptions options;
  options.path = path;
  options.retention = retention;
  options.batch_size = 64;
  options.flush_interval = Millis(3600 * 1000);
  options.retention_interval = Millis(0);  // only on ApplyRetention()
  options.retention_batch_rows = 50;       // a pass of several transactions
  return options;
}

std::unique_ptr<Store> Open(const StorageOptions& options, const Clock& clock) {
  auto store = Store::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

// A probe of `target` at minute `minute` with label `tier` (changing it makes a new label set).
ProbeResult Probe(const std::string& target, int64_t minute, Outcome outcome,
                  const std::string& tier) {
  ProbeResult p = testing::FullProbe(target, kT0 + minute * kMinute);
  p.labels["tier"] = tier;
  p.outcome = outcome;
  if (outcome != Outcome::kOk) {
    p.http_status = 429;
    p.ttft_seconds.reset();
    p.output_tokens_per_second.reset();
  }
  return p;
}

// A history that exercises every rule: three targets, one of which changes its labels half
// way; outcomes drawn at random, with auth failures only in the first hour; ok probes without a
// first token (no ttft histogram) now and then; probes appended out of start order.
std::vector<ProbeResult> History() {
  std::vector<ProbeResult> out;
  std::mt19937 rng(7);
  for (const std::string target : {"a@x", "b@x", "c@y"}) {
    for (int64_t minute = 0; minute < 240; ++minute) {
      const auto draw = static_cast<unsigned>(rng() % 100);
      Outcome outcome = Outcome::kOk;
      if (draw < 8) {
        outcome = Outcome::kThrottled;
      } else if (draw < 10) {
        outcome = Outcome::kTimeout;
      } else if (draw < 12 && minute < 60) {
        outcome = Outcome::kAuth;
      }
      const std::string tier = target == "b@x" && minute >= 120 ? "canary" : "prod";
      ProbeResult p = Probe(target, minute, outcome, tier);
      if (outcome == Outcome::kOk && draw % 7 == 0) {
        p.ttft_seconds.reset();
      }
      out.push_back(std::move(p));
    }
  }
  // Batches hold probes in finish order, not start order: a later batch may hold an earlier
  // probe than the stored first one.
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

// (label set labels, slot) -> first time, over the given probes.
using Firsts = std::map<std::pair<Labels, size_t>, int64_t>;

// What a fresh scan of the stored rows gives: the discovery listing's input before the table.
Firsts Scanned(const Store& store) {
  // By label set id first: the scan must not call back into the store.
  std::map<std::pair<int64_t, size_t>, int64_t> by_id;
  auto targets = store.ListTargets();
  REQUIRE(targets.has_value());
  for (const StoredTarget& target : *targets) {
    REQUIRE(store
                .ScanCounterInputs(
                    target.id, INT64_MIN, INT64_MAX,
                    [&](const CounterPoint& p) {
                      ForEachProbeIncrement(p.numbers, [&](size_t slot, double) {
                        auto [it, inserted] = by_id.try_emplace({p.label_set_id, slot}, p.t_ms);
                        it->second = std::min(it->second, p.t_ms);
                      });
                    })
                .has_value());
  }
  Firsts out;
  for (const auto& [key, first] : by_id) {
    auto labels = store.LabelSet(key.first);
    REQUIRE(labels.has_value());
    out.emplace(std::make_pair(*labels, key.second), first);
  }
  return out;
}

// What the table gives.
Firsts Kept(const Store& store) {
  Firsts out;
  auto targets = store.ListTargets();
  REQUIRE(targets.has_value());
  for (const StoredTarget& target : *targets) {
    auto firsts = store.FirstSeenCounters(target.id);
    REQUIRE(firsts.has_value());
    for (const CounterFirstSeen& first : *firsts) {
      auto labels = store.LabelSet(first.label_set_id);
      REQUIRE(labels.has_value());
      for (size_t slot = first.first_slot; slot < first.last_slot; ++slot) {
        CHECK(out.emplace(std::make_pair(*labels, slot), first.first_ms).second);
      }
    }
  }
  return out;
}

// The counter series a listing over [from, to] must hold, from a scan: each exists from the
// probe that first moved it, and has a sample wherever its label set has a probe.
std::set<Labels> ExpectedListing(const Store& store, int64_t from, int64_t to) {
  const Firsts firsts = Scanned(store);
  std::set<Labels> probed;
  auto targets = store.ListTargets();
  REQUIRE(targets.has_value());
  for (const StoredTarget& target : *targets) {
    auto probes = store.ReadProbes(target.name, from, to + 1);
    REQUIRE(probes.has_value());
    for (const ProbeResult& p : *probes) {
      probed.insert(p.labels);
    }
  }
  const auto& slots = ProbeCounterSlots();
  std::set<Labels> out;
  for (const auto& [key, first] : firsts) {
    const auto& [labels, slot] = key;
    if (first > to || (first < from && probed.count(labels) == 0)) {
      continue;
    }
    Labels series = labels;
    series["__name__"] = slots[slot].name;
    if (*slots[slot].label_name != '\0') {
      series[slots[slot].label_name] = slots[slot].label_value;
    }
    out.insert(std::move(series));
  }
  return out;
}

// The counter series a freshly started source lists over [from, to] (the gauges left out).
std::set<Labels> Listed(const Store& store, int64_t from, int64_t to) {
  // A daemon that has just started: memory holds nothing yet.
  ProbeSeriesSource source(&store, Millis(3'600'000), kT0 + 1000 * kMinute);
  auto found =
      source.SeriesIn({{LabelMatcher::Type::kRegexMatch, "__name__", "modelpulse_.*"}}, from, to);
  REQUIRE(found.has_value());
  return {found->begin(), found->end()};
}

void CheckListings(const Store& store) {
  const int64_t windows[][2] = {
      {1, kT0 + 1000 * kMinute},                    // all of history, as Grafana asks
      {kT0, kT0 + 30 * kMinute},                    // the first half hour
      {kT0 + 90 * kMinute, kT0 + 150 * kMinute},    // across b@x's label change
      {kT0 + 200 * kMinute, kT0 + 239 * kMinute},   // the end
      {kT0 + 300 * kMinute, kT0 + 400 * kMinute}};  // after the last probe: nothing
  for (const auto& window : windows) {
    CAPTURE(window[0] - kT0);
    CHECK(Listed(store, window[0], window[1]) == ExpectedListing(store, window[0], window[1]));
  }
}

int64_t QueryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const int64_t value = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return value;
}

TEST_CASE("first seen: the writer keeps what a scan of the rows gives, across a restart") {
  TempDir dir;
  ManualClock clock(kT0 + 240 * kMinute);
  const StorageOptions options = Options(dir.File("f.db"), Millis(0));
  Firsts before;
  {
    auto store = Open(options, clock);
    for (const ProbeResult& p : History()) {
      store->Append(p);
    }
    REQUIRE(store->Flush().has_value());
    before = Scanned(*store);
    // Every outcome drawn, and the three histograms, for each of the four label sets.
    CHECK(before.size() > 4 * 3 * ProbeLatencyBuckets().size());
    CHECK(Kept(*store) == before);
    CheckListings(*store);
  }
  // A restart: the listing comes from the table as the last process left it.
  auto store = Open(options, clock);
  CHECK(Kept(*store) == before);
  CHECK(Scanned(*store) == before);
  CheckListings(*store);
  // An earlier probe arriving after the restart (the writer's cache is new) moves a time back.
  ProbeResult early = Probe("a@x", -5, Outcome::kOverloaded, "prod");
  store->Append(early);
  REQUIRE(store->Flush().has_value());
  const Firsts after = Scanned(*store);
  CHECK(after != before);
  CHECK(Kept(*store) == after);
  CheckListings(*store);
}

TEST_CASE("first seen: retention moves a series' time to its oldest remaining probe or drops it") {
  TempDir dir;
  ManualClock clock(kT0 + 240 * kMinute);
  const StorageOptions options = Options(dir.File("r.db"), Millis(180 * kMinute));
  auto store = Open(options, clock);
  for (const ProbeResult& p : History()) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  const std::string auth = std::string(OutcomeName(Outcome::kAuth));
  auto has_auth = [&](const Firsts& firsts) {
    return std::any_of(firsts.begin(), firsts.end(), [&](const auto& entry) {
      return ProbeCounterSlots()[entry.first.second].label_value == auth;
    });
  };
  REQUIRE(has_auth(Kept(*store)));

  // Rows before minute 60 go: the auth failures with them.
  auto deleted = store->ApplyRetention();
  REQUIRE(deleted.has_value());
  CHECK(*deleted == 3 * 60);
  Firsts kept = Kept(*store);
  CHECK(kept == Scanned(*store));
  CHECK_FALSE(has_auth(kept));
  for (const auto& [key, first] : kept) {
    CHECK(first >= kT0 + 60 * kMinute);
  }
  CheckListings(*store);
  // Listing all of history lists no series whose every probe is gone.
  for (const Labels& series : Listed(*store, 1, kT0 + 1000 * kMinute)) {
    auto outcome = series.find("outcome");
    CHECK((outcome == series.end() || outcome->second != auth));
  }

  // Then b@x's first label set goes whole (its last probe was at minute 119), and with it every
  // counter series of that set.
  clock.Advance(Millis(80 * kMinute));
  REQUIRE(store->ApplyRetention().has_value());
  kept = Kept(*store);
  CHECK(kept == Scanned(*store));
  for (const auto& [key, first] : kept) {
    CHECK_FALSE((key.first.at("target") == "b@x" && key.first.at("tier") == "prod"));
  }
  CheckListings(*store);

  // Writes after a trim are kept from the trimmed times (the writer forgot its cache).
  store->Append(Probe("c@y", 130, Outcome::kAuth, "prod"));
  REQUIRE(store->Flush().has_value());
  CHECK(Kept(*store) == Scanned(*store));
  CHECK(has_auth(Kept(*store)));

  // Everything goes: so does the table.
  clock.Advance(Millis(1000 * kMinute));
  REQUIRE(store->ApplyRetention().has_value());
  CHECK(QueryInt(options.path, "SELECT count(*) FROM counter_first_seen") == 0);
  CHECK(Listed(*store, 1, kT0 + 2000 * kMinute).empty());
}

TEST_CASE("first seen: migration 12 backfills the table from the stored rows") {
  TempDir dir;
  ManualClock clock(kT0 + 240 * kMinute);
  const StorageOptions options = Options(dir.File("m.db"), Millis(0));
  Firsts scanned;
  {
    auto store = Open(options, clock);
    for (const ProbeResult& p : History()) {
      store->Append(p);
    }
    REQUIRE(store->Flush().has_value());
    scanned = Scanned(*store);
  }
  // The database as the release before the table wrote it (schema 11).
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(options.path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db,
                         "DROP TABLE counter_first_seen; ALTER TABLE rollups DROP COLUMN first_ms; "
                         "ALTER TABLE rollups DROP COLUMN last_ms; DROP TABLE rollup_values; ALTER "
                         "TABLE rollups DROP COLUMN first_value; "
                         "ALTER TABLE rollups DROP COLUMN second_ms; "
                         "PRAGMA user_version = 11",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = Open(options, clock);
  CHECK(QueryInt(options.path, "PRAGMA user_version") == 14);
  CHECK(QueryInt(options.path, "SELECT count(*) FROM counter_first_seen") > 0);
  CHECK(Kept(*store) == scanned);
  CheckListings(*store);
}

}  // namespace
}  // namespace modelpulse::storage
