// Hourly rollups (migration 3) and the narrow read path, checked against ReadProbes: the rollups
// must always equal a brute-force fold of the rows that are stored, after writes, after a backfill
// and after retention.
#include "storage/internal/rollup.h"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "storage/storage.h"
#include "tests/storage/legacy_schema.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::FullProbe;
using testing::TempDir;

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kNow = 1'800'000'000'000;  // a whole hour

StorageOptions Options(const std::string& path) {
  StorageOptions options;
  options.path = path;
  options.batch_size = 7;  // many small transactions, so rollups are upserted across batches
  options.flush_interval = Millis(3600 * 1000);
  options.retention_interval = Millis(3600 * 1000);
  options.retention = Millis(0);
  return options;
}

std::unique_ptr<Store> OpenOrDie(const StorageOptions& options, const Clock& clock) {
  auto store = Store::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

// Varied probes: every outcome, phases present or not, label changes, several per millisecond.
std::vector<ProbeResult> VariedProbes(const std::string& target, int64_t from_ms, int n,
                                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<ProbeResult> out;
  int64_t t = from_ms;
  for (int i = 0; i < n; ++i) {
    ProbeResult p = FullProbe(target, t);
    p.outcome = static_cast<Outcome>(rng() % 5);
    p.ttft_seconds = unit(rng) < 0.2 ? std::nullopt : std::optional<double>(unit(rng));
    p.dns_seconds = unit(rng) < 0.5 ? std::nullopt : std::optional<double>(unit(rng) * 0.01);
    p.output_tokens_per_second = 10 + 50 * unit(rng);
    p.requests.remaining = std::floor(unit(rng) * 10000);
    if (unit(rng) < 0.1) {
      p.requests.limit = 0.0;  // no ratio
    }
    p.http_status = p.outcome == Outcome::kOk ? 200 : 429;
    if (i > n / 2) {
      p.labels["tier"] = "canary";  // a second label set for the same target
    }
    out.push_back(p);
    t += static_cast<int64_t>(unit(rng) * 400'000);  // sometimes the same ms, up to ~7 min apart
  }
  return out;
}

struct Cell {
  int64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  int64_t second_ms = INT64_MAX;  // FieldRollup's: first_ms again on a tie
  double first_value = 0;
  std::vector<double> values;  // sorted
};

// (bucket, labels) -> fold of ReadProbes through ProbeFieldValue.
std::map<std::pair<int64_t, Labels>, Cell> BruteForce(const Store& store, const std::string& name,
                                                      ProbeField field) {
  std::map<std::pair<int64_t, Labels>, Cell> out;
  auto rows = store.ReadProbes(name, INT64_MIN, INT64_MAX);
  REQUIRE(rows.has_value());
  for (const ProbeResult& p : *rows) {
    auto v = ProbeFieldValue(p, field);
    if (!v) {
      continue;
    }
    Cell& c = out[{p.start_unix_ms / kHourMs * kHourMs, p.labels}];
    c.min = c.count == 0 ? *v : std::min(c.min, *v);
    c.max = c.count == 0 ? *v : std::max(c.max, *v);
    const int64_t t = p.start_unix_ms;
    if (c.count == 0 || t < c.first_ms) {
      c.second_ms = c.count == 0 ? INT64_MAX : c.first_ms;
      c.first_value = *v;
    } else {
      c.second_ms = std::min(c.second_ms, t);
    }
    c.first_ms = c.count == 0 ? p.start_unix_ms : std::min(c.first_ms, p.start_unix_ms);
    c.last_ms = c.count == 0 ? p.start_unix_ms : std::max(c.last_ms, p.start_unix_ms);
    c.sum += *v;
    ++c.count;
    c.values.insert(std::upper_bound(c.values.begin(), c.values.end(), *v), *v);
  }
  return out;
}

int64_t TargetId(const Store& store, const std::string& name) {
  auto targets = store.ListTargets();
  REQUIRE(targets.has_value());
  for (const StoredTarget& t : *targets) {
    if (t.name == name) {
      return t.id;
    }
  }
  FAIL("no target " << name);
  return -1;
}

void CheckRollupsMatchRows(const Store& store, const std::string& name) {
  const int64_t id = TargetId(store, name);
  for (int f = 0; f < kProbeFieldCount; ++f) {
    const auto field = static_cast<ProbeField>(f);
    CAPTURE(f);
    auto want = BruteForce(store, name, field);
    auto got = store.ReadRollups(id, field, INT64_MIN / 2, INT64_MAX / 2);
    REQUIRE(got.has_value());
    REQUIRE(got->size() == want.size());
    for (const FieldRollup& r : *got) {
      auto labels = store.LabelSet(r.label_set_id);
      REQUIRE(labels.has_value());
      auto it = want.find({r.bucket_ms, *labels});
      REQUIRE(it != want.end());
      CHECK(r.count == it->second.count);
      // Exact, as the writer and the rebuilds keep them, and as migration 14 sets them where
      // migration 13 left bounds (the hour's probes of any field).
      CHECK(r.first_ms == it->second.first_ms);
      CHECK(r.last_ms == it->second.last_ms);
      CHECK(r.second_ms == it->second.second_ms);
      if (it->second.second_ms == it->second.first_ms) {
        CHECK_FALSE(r.first_value.has_value());  // a tie: which row is first is not kept
      } else {
        REQUIRE(r.first_value.has_value());
        CHECK(*r.first_value == it->second.first_value);
      }
      CHECK(r.min == it->second.min);
      CHECK(r.max == it->second.max);
      // Exact up to rounding order: the rows were added batch by batch.
      CHECK(r.sum == doctest::Approx(it->second.sum).epsilon(1e-12));
    }
    // The values kept beside the rollups: the rows' values of the hour and label set, each
    // once, for the fields that keep them; none for the others.
    auto kept = store.ReadRollupValues(id, field, INT64_MIN / 2, INT64_MAX / 2);
    REQUIRE(kept.has_value());
    REQUIRE(kept->size() == want.size());
    for (RollupValues& r : *kept) {
      auto labels = store.LabelSet(r.label_set_id);
      REQUIRE(labels.has_value());
      auto it = want.find({r.bucket_ms, *labels});
      REQUIRE(it != want.end());
      CHECK(r.count == it->second.count);
      if (KeepsValues(field)) {
        std::sort(r.values.begin(), r.values.end());
        CHECK(r.values == it->second.values);
      } else {
        CHECK(r.values.empty());
      }
    }
  }
}

TEST_CASE("kept rollup values round-trip bit for bit, and two runs appended read as one") {
  const std::vector<double> values = {0,
                                      0.001,
                                      0.1,
                                      1.5,
                                      1234.567,
                                      -0.25,
                                      -0.0,
                                      1.0 / 3,
                                      1e300,
                                      std::numeric_limits<double>::denorm_min(),
                                      std::numeric_limits<double>::infinity(),
                                      -std::numeric_limits<double>::infinity(),
                                      std::numeric_limits<double>::quiet_NaN(),
                                      8.9e12,
                                      -9.1e12};
  std::string first;
  std::string second;
  for (size_t i = 0; i < values.size(); ++i) {
    AppendEncodedValue(i < 7 ? first : second, values[i]);
  }
  // Whole thousandths (what the probe rows store) take 1 to 3 bytes; the rest 9.
  std::string small;
  AppendEncodedValue(small, 1.5);
  CHECK(small.size() == 2);
  std::string odd;
  AppendEncodedValue(odd, 1.0 / 3);
  CHECK(odd.size() == 9);
  const std::string both = first + second;
  auto decoded = DecodeValues(both.data(), both.size());
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->size() == values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    CAPTURE(i);
    CHECK(std::bit_cast<uint64_t>((*decoded)[i]) == std::bit_cast<uint64_t>(values[i]));
  }
  // A run cut anywhere inside a value is refused, not misread.
  for (size_t cut = 1; cut < odd.size(); ++cut) {
    CHECK_FALSE(DecodeValues(odd.data(), cut).has_value());
  }
  const std::string unfinished = "\x80";
  CHECK_FALSE(DecodeValues(unfinished.data(), unfinished.size()).has_value());
  CHECK(DecodeValues("", 0).value().empty());
}

TEST_CASE("rollups follow every committed batch and equal a fold of the rows") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(Options(dir.File("r.db")), clock);
  for (const auto& p : VariedProbes("a", kNow - 20 * kHourMs + 1234, 300, 1)) {
    store->Append(p);
  }
  for (const auto& p : VariedProbes("b", kNow - 5 * kHourMs, 100, 2)) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  CheckRollupsMatchRows(*store, "a");
  CheckRollupsMatchRows(*store, "b");

  // Late rows into old buckets add to them.
  for (const auto& p : VariedProbes("a", kNow - 19 * kHourMs, 40, 3)) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  CheckRollupsMatchRows(*store, "a");
}

TEST_CASE("a rollup's first value and second row time follow batches in any order, and ties") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(Options(dir.File("f.db")), clock);
  const int64_t hour = kNow - 10 * kHourMs;
  auto append = [&](int64_t t_ms, double ttft) {
    ProbeResult p = FullProbe("a", t_ms);
    p.ttft_seconds = ttft;
    store->Append(p);
    REQUIRE(store->Flush().has_value());  // each its own batch, so the upsert merges them
  };
  // Hour 1: rows arrive latest first, so each batch brings an earlier first row.
  append(hour + 30'000, 0.3);
  append(hour + 20'000, 0.2);
  append(hour + 10'000, 0.1);
  // Hour 2: a second row at the first row's instant (a tie) in a later batch; hour 3: a tie
  // within one batch, then an earlier row that breaks it.
  append(hour + kHourMs + 5'000, 0.5);
  append(hour + kHourMs + 5'000, 0.6);
  append(hour + kHourMs + 9'000, 0.7);
  for (const int64_t t : {hour + 2 * kHourMs + 8'000, hour + 2 * kHourMs + 8'000}) {
    store->Append(FullProbe("a", t));
  }
  REQUIRE(store->Flush().has_value());
  append(hour + 2 * kHourMs + 1'000, 0.9);
  CheckRollupsMatchRows(*store, "a");
  const int64_t id = TargetId(*store, "a");
  auto rollups = store->ReadRollups(id, ProbeField::kTtft, hour, hour + 3 * kHourMs);
  REQUIRE(rollups.has_value());
  REQUIRE(rollups->size() == 3);
  CHECK((*rollups)[0].first_value == 0.1);
  CHECK((*rollups)[0].second_ms == hour + 20'000);
  CHECK_FALSE((*rollups)[1].first_value.has_value());
  CHECK((*rollups)[1].second_ms == hour + kHourMs + 5'000);
  CHECK((*rollups)[2].first_value == 0.9);
  CHECK((*rollups)[2].second_ms == hour + 2 * kHourMs + 8'000);
}

TEST_CASE("ReadRollups returns only buckets wholly inside the range") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(Options(dir.File("w.db")), clock);
  for (int h = 0; h < 4; ++h) {
    store->Append(FullProbe("a", kNow + h * kHourMs + 10));
  }
  REQUIRE(store->Flush().has_value());
  const int64_t id = TargetId(*store, "a");
  auto count = [&](int64_t from, int64_t to) {
    auto rollups = store->ReadRollups(id, ProbeField::kSuccess, from, to);
    REQUIRE(rollups.has_value());
    return rollups->size();
  };
  CHECK(count(kNow, kNow + 4 * kHourMs) == 4);
  CHECK(count(kNow + 1, kNow + 4 * kHourMs) == 3);
  CHECK(count(kNow, kNow + 4 * kHourMs - 1) == 3);
  CHECK(count(kNow + 1, kNow + 2 * kHourMs) == 1);
  CHECK(count(kNow + 1, kNow + 2 * kHourMs - 1) == 0);
  CHECK(count(kNow + kHourMs, kNow + 2 * kHourMs) == 1);
}

TEST_CASE("the narrow read equals ReadProbes through ProbeFieldValue for every field") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(Options(dir.File("n.db")), clock);
  const auto probes = VariedProbes("a", kNow - 10 * kHourMs, 200, 4);
  for (const auto& p : probes) {
    store->Append(p);
  }
  store->Append(FullProbe("other", kNow - 5 * kHourMs));
  REQUIRE(store->Flush().has_value());
  const int64_t id = TargetId(*store, "a");
  const int64_t from = kNow - 8 * kHourMs;
  const int64_t to = kNow - 3 * kHourMs;
  auto rows = store->ReadProbes("a", from, to);
  REQUIRE(rows.has_value());
  REQUIRE(rows->size() > 20);
  for (int f = 0; f < kProbeFieldCount; ++f) {
    const auto field = static_cast<ProbeField>(f);
    CAPTURE(f);
    auto got = store->ReadField(id, field, from, to);
    REQUIRE(got.has_value());
    size_t i = 0;
    for (const ProbeResult& p : *rows) {
      auto v = ProbeFieldValue(p, field);
      if (!v) {
        continue;
      }
      REQUIRE(i < got->size());
      CHECK((*got)[i].t_ms == p.start_unix_ms);
      CHECK((*got)[i].value == *v);
      auto labels = store->LabelSet((*got)[i].label_set_id);
      REQUIRE(labels.has_value());
      CHECK(*labels == p.labels);
      ++i;
    }
    CHECK(i == got->size());
  }
  CHECK(store->ReadField(id, ProbeField::kTtft, to, from)->empty());
}

TEST_CASE("opening a version-2 database backfills the rollups of its rows") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("old.db");
  // What a database written by the schema-2 release looks like.
  testing::WriteLegacyDatabase(path, 2, VariedProbes("a", kNow - 30 * kHourMs, 400, 5));
  auto store = OpenOrDie(Options(path), clock);
  CheckRollupsMatchRows(*store, "a");
}

TEST_CASE("opening a version-10 database fills the rollups of probe_auth_failed (migration 11)") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("v10.db");
  std::vector<ProbeResult> probes = VariedProbes("a", kNow - 30 * kHourMs, 400, 7);
  for (size_t i = 0; i < probes.size(); i += 7) {
    probes[i].outcome = Outcome::kAuth;
  }
  {
    auto store = OpenOrDie(Options(path), clock);
    for (const ProbeResult& p : probes) {
      store->Append(p);
    }
    REQUIRE(store->Flush());
  }
  // As the schema-10 release left it: rows, and rollups of every field but the new one (and no
  // table of migration 12, no row times of migration 13).
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "DELETE FROM rollups WHERE field = 18; DROP TABLE counter_first_seen; "
                     "ALTER TABLE rollups DROP COLUMN first_ms; "
                     "ALTER TABLE rollups DROP COLUMN last_ms; DROP TABLE rollup_values; ALTER "
                     "TABLE rollups DROP COLUMN first_value; "
                     "ALTER TABLE rollups DROP COLUMN second_ms; "
                     "PRAGMA user_version = 10",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenOrDie(Options(path), clock);
  CheckRollupsMatchRows(*store, "a");
  double auth = 0;
  for (const auto& [key, cell] : BruteForce(*store, "a", ProbeField::kAuthFailed)) {
    auth += cell.sum;
  }
  CHECK(auth == 58);  // every 7th of 400
}

TEST_CASE("retention trims rollups and rebuilds the hour it cuts through") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = Options(dir.File("ret.db"));
  options.retention = Millis(10 * kHourMs + 25 * 60'000);  // cuts 25 minutes into an hour
  options.retention_batch_rows = 13;
  auto store = OpenOrDie(options, clock);
  for (const auto& p : VariedProbes("a", kNow - 20 * kHourMs, 400, 6)) {
    store->Append(p);
  }
  for (const auto& p : VariedProbes("b", kNow - 20 * kHourMs, 30, 7)) {
    store->Append(p);
  }
  REQUIRE(store->Flush().has_value());
  auto deleted = store->ApplyRetention();
  REQUIRE(deleted.has_value());
  CHECK(*deleted > 0);
  CheckRollupsMatchRows(*store, "a");
  auto rows = store->ReadProbes("a", INT64_MIN, INT64_MAX);
  REQUIRE(!rows->empty());
  CHECK(rows->front().start_unix_ms >= kNow - options.retention.count());
  // b's rows may all be gone; its rollups must be gone too.
  auto b_rows = store->ReadProbes("b", INT64_MIN, INT64_MAX);
  if (!b_rows->empty()) {
    CheckRollupsMatchRows(*store, "b");
  }
  clock.Advance(30 * kHourMs);  // everything ages out
  REQUIRE(store->ApplyRetention().has_value());
  CHECK(store->ListTargets()->empty());
  auto left = store->ReadRollups(1, ProbeField::kSuccess, INT64_MIN / 2, INT64_MAX / 2);
  REQUIRE(left.has_value());
  CHECK(left->empty());
}

}  // namespace
}  // namespace modelpulse::storage
