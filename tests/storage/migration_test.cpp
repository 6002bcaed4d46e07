// Migration 8 (the dense probe table) on a database written by the schema-7 release: every probe
// is still there, every field equal to what the new writer would have stored, and the `probes`
// and `probes_named` views keep the old columns. Migration 10 (the shapes out of the rows) on a
// schema-9 database: every value of every view, rollup and summary row unchanged.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "storage/internal/probe_codec.h"
#include "storage/internal/rollup.h"
#include "storage/storage.h"
#include "tests/storage/legacy_schema.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::TempDir;

constexpr int64_t kNow = 1'800'000'000'000;

// Thousands of probes over four targets: every outcome, each optional field sometimes missing,
// sub-millisecond and long times, same-millisecond probes, label sets changing, a NaN and an
// infinity where the old REAL columns took them, request ids on successes and failures.
std::vector<ProbeResult> VariedHistory() {
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  auto maybe = [&](double p, double v) {
    return unit(rng) < p ? std::nullopt : std::optional<double>(v);
  };
  std::vector<ProbeResult> out;
  const char* targets[] = {"gpt@openai", "gpt@azure", "claude@bedrock", "gemini@vertex"};
  for (const char* target : targets) {
    int64_t t = kNow - 20LL * 24 * 3600 * 1000;
    for (int i = 0; i < 900; ++i) {
      ProbeResult p = testing::FullProbe(target, t);
      if (i % 300 > 200) {
        p.labels["tier"] = "canary";
      }
      p.outcome =
          unit(rng) < 0.7 ? Outcome::kOk : static_cast<Outcome>(1 + static_cast<int>(rng() % 10));
      p.http_status = p.outcome == Outcome::kOk ? 200 : (unit(rng) < 0.2 ? 0 : 429 + (i % 100));
      p.dns_seconds = maybe(0.3, unit(rng) * 0.01);
      p.connect_seconds = maybe(0.3, unit(rng) * 0.05);
      p.tls_seconds = maybe(0.4, unit(rng) * 0.08);
      p.first_byte_seconds = maybe(0.1, 0.05 + unit(rng));
      p.ttft_seconds = maybe(0.25, 0.06 + unit(rng) * 3);
      p.first_answer_token_seconds =
          unit(rng) < 0.5 ? p.ttft_seconds : maybe(0.3, 0.1 + unit(rng) * 20);
      p.last_token_seconds = maybe(0.25, 1 + unit(rng) * 60);
      p.total_seconds = unit(rng) * (unit(rng) < 0.05 ? 600 : 10);
      p.input_tokens = unit(rng) < 0.2 ? std::nullopt : std::optional<int64_t>(rng() % 5000);
      p.output_tokens = unit(rng) < 0.2 ? std::nullopt : std::optional<int64_t>(rng() % 4000);
      p.inter_token_latency_seconds = maybe(0.3, unit(rng) * 0.1);
      p.output_tokens_per_second = maybe(0.3, unit(rng) * 300);
      p.chunk_count = static_cast<int64_t>(rng() % 500);
      p.requests = {maybe(0.3, 10000), maybe(0.3, std::floor(unit(rng) * 10000)),
                    maybe(0.3, unit(rng) * 60)};
      p.tokens = {maybe(0.3, 2e6), maybe(0.3, unit(rng) < 0.1 ? unit(rng) * 1e6 : 1999000),
                  maybe(0.3, unit(rng) * 0.05)};
      p.retry_after_seconds = maybe(0.8, std::floor(unit(rng) * 30));
      p.request_id = unit(rng) < 0.1 ? "" : "req_" + std::to_string(rng());
      p.error = p.outcome == Outcome::kOk ? "" : "HTTP " + std::to_string(p.http_status) + ": no";
      if (i == 17) {
        p.tokens.remaining = std::numeric_limits<double>::quiet_NaN();
        p.ttft_seconds = std::numeric_limits<double>::infinity();
      }
      out.push_back(p);
      // Sometimes the same millisecond, otherwise 1 s to 10 min later.
      t += unit(rng) < 0.05 ? 0 : 1000 + static_cast<int64_t>(unit(rng) * 600'000);
    }
  }
  return out;
}

bool SameDouble(const std::optional<double>& a, const std::optional<double>& b) {
  return a == b;  // exact: the reader must give back what AsStored says, to the bit
}

void CheckField(const ProbeResult& got, const ProbeResult& want) {
  CHECK(got.target == want.target);
  CHECK(got.labels == want.labels);
  CHECK(got.start_unix_ms == want.start_unix_ms);
  CHECK(SameDouble(got.dns_seconds, want.dns_seconds));
  CHECK(SameDouble(got.connect_seconds, want.connect_seconds));
  CHECK(SameDouble(got.tls_seconds, want.tls_seconds));
  CHECK(SameDouble(got.first_byte_seconds, want.first_byte_seconds));
  CHECK(SameDouble(got.ttft_seconds, want.ttft_seconds));
  CHECK(SameDouble(got.first_answer_token_seconds, want.first_answer_token_seconds));
  CHECK(SameDouble(got.last_token_seconds, want.last_token_seconds));
  CHECK(got.total_seconds == want.total_seconds);
  CHECK(got.http_status == want.http_status);
  CHECK(got.outcome == want.outcome);
  CHECK(got.input_tokens == want.input_tokens);
  CHECK(got.output_tokens == want.output_tokens);
  CHECK(SameDouble(got.inter_token_latency_seconds, want.inter_token_latency_seconds));
  CHECK(SameDouble(got.output_tokens_per_second, want.output_tokens_per_second));
  CHECK(got.chunk_count == want.chunk_count);
  CHECK(SameDouble(got.requests.limit, want.requests.limit));
  CHECK(SameDouble(got.requests.remaining, want.requests.remaining));
  CHECK(SameDouble(got.requests.reset_seconds, want.requests.reset_seconds));
  CHECK(SameDouble(got.tokens.limit, want.tokens.limit));
  CHECK(SameDouble(got.tokens.remaining, want.tokens.remaining));
  CHECK(SameDouble(got.tokens.reset_seconds, want.tokens.reset_seconds));
  CHECK(SameDouble(got.retry_after_seconds, want.retry_after_seconds));
  CHECK(got.request_id == want.request_id);
  CHECK(got.error == want.error);
}

// Within half a unit of the stored resolution, and present exactly when the original was finite.
void CheckClose(const std::optional<double>& stored, const std::optional<double>& original,
                double unit) {
  if (!original || !std::isfinite(*original)) {
    CHECK(!stored);
    return;
  }
  REQUIRE(stored);
  CHECK(std::fabs(*stored - *original) <= unit / 2 * (1 + 1e-9));
}

using Key = std::tuple<int64_t, int64_t, int64_t>;

std::vector<Key> Keys(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT target_id, start_ms, seq FROM probes ORDER BY 1, 2, 3", -1,
                             &s, nullptr) == SQLITE_OK);
  std::vector<Key> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    out.emplace_back(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                     sqlite3_column_int64(s, 2));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

std::vector<std::string> Columns(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, ("PRAGMA table_info(" + table + ")").c_str(), -1, &s, nullptr) ==
          SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// Every row of `sql` as text, each value with its SQLite type, so two snapshots are equal only
// when every value is, to the bit (a REAL as its 17 significant digits).
std::vector<std::string> Snapshot(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  std::vector<std::string> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      switch (sqlite3_column_type(s, i)) {
        case SQLITE_NULL:
          row += "null|";
          break;
        case SQLITE_INTEGER:
          row += "i" + std::to_string(sqlite3_column_int64(s, i)) + "|";
          break;
        case SQLITE_FLOAT: {
          char buffer[40];
          std::snprintf(buffer, sizeof buffer, "r%.17g|", sqlite3_column_double(s, i));
          row += buffer;
          break;
        }
        default:
          row += "t" +
                 std::string(static_cast<const char*>(sqlite3_column_blob(s, i)),
                             static_cast<size_t>(sqlite3_column_bytes(s, i))) +
                 "|";
      }
    }
    out.push_back(std::move(row));
  }
  sqlite3_finalize(s);
  return out;
}

struct Snapshots {
  std::vector<std::string> probes;
  std::vector<std::string> named;
  std::vector<std::string> rollups;
  std::vector<std::string> summaries;
};

Snapshots TakeSnapshots(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  Snapshots out{
      Snapshot(db, "SELECT * FROM probes ORDER BY target_id, start_ms, seq"),
      Snapshot(db, "SELECT * FROM probes_named ORDER BY target_id, start_ms, seq"),
      Snapshot(db,
               "SELECT target_id, field, bucket_ms, label_set_id, count, sum, min, max "
               "FROM rollups ORDER BY target_id, field, bucket_ms, label_set_id"),
      Snapshot(db, "SELECT * FROM probe_summaries ORDER BY target_id, span_ms, bucket_ms")};
  sqlite3_close(db);
  return out;
}

TEST_CASE("migration 8 keeps every probe of a schema-7 database, field by field") {
  TempDir dir;
  const std::string path = dir.File("old.db");
  const std::vector<ProbeResult> probes = VariedHistory();
  testing::WriteLegacyDatabase(path, 7, probes);
  const std::vector<Key> keys_before = Keys(path);
  const std::vector<std::string> probes_columns = Columns(path, "probes");
  const std::vector<std::string> named_columns = Columns(path, "probes_named");
  REQUIRE(keys_before.size() == probes.size());

  ManualClock clock(kNow);
  StorageOptions options;
  options.path = path;
  options.retention = Millis(0);
  auto opened = Store::Open(options, clock);
  REQUIRE(opened.has_value());
  auto& store = **opened;

  // Every row, under the same key (seq included).
  CHECK(Keys(path) == keys_before);
  CHECK(Columns(path, "probes") == probes_columns);
  CHECK(Columns(path, "probes_named") == named_columns);

  std::map<std::string, std::vector<const ProbeResult*>> by_target;
  for (const ProbeResult& p : probes) {
    by_target[p.target].push_back(&p);
  }
  size_t compared = 0;
  size_t failed_with_id = 0;
  for (const auto& [target, originals] : by_target) {
    auto rows = store.ReadProbes(target, INT64_MIN, INT64_MAX);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == originals.size());
    for (size_t i = 0; i < originals.size(); ++i) {
      const ProbeResult& original = *originals[i];
      const ProbeResult& got = (*rows)[i];
      CAPTURE(target);
      CAPTURE(i);
      CheckField(got, AsStored(original));
      // What AsStored changes, bounded: times to 1 ms (long phases, rates) or 1 us (short
      // phases, inter-token latency); request ids only on failed probes.
      CheckClose(got.dns_seconds, original.dns_seconds, 1e-6);
      CheckClose(got.connect_seconds, original.connect_seconds, 1e-6);
      CheckClose(got.tls_seconds, original.tls_seconds, 1e-6);
      CheckClose(got.inter_token_latency_seconds, original.inter_token_latency_seconds, 1e-6);
      CheckClose(got.first_byte_seconds, original.first_byte_seconds, 1e-3);
      CheckClose(got.ttft_seconds, original.ttft_seconds, 1e-3);
      CheckClose(got.first_answer_token_seconds, original.first_answer_token_seconds, 1e-3);
      CheckClose(got.last_token_seconds, original.last_token_seconds, 1e-3);
      CheckClose(got.total_seconds, original.total_seconds, 1e-3);
      CheckClose(got.output_tokens_per_second, original.output_tokens_per_second, 1e-3);
      CheckClose(got.requests.reset_seconds, original.requests.reset_seconds, 1e-3);
      CheckClose(got.tokens.reset_seconds, original.tokens.reset_seconds, 1e-3);
      CheckClose(got.retry_after_seconds, original.retry_after_seconds, 1e-3);
      if (original.outcome != Outcome::kOk) {
        CHECK(got.request_id == original.request_id);
        failed_with_id += original.request_id.empty() ? 0 : 1;
      } else {
        CHECK(got.request_id.empty());
      }
      CHECK(got.error == original.error);
      ++compared;
    }
  }
  CHECK(compared == probes.size());
  CHECK(failed_with_id > 500);

  // A second open finds nothing to migrate and the same rows.
  opened->reset();
  auto again = Store::Open(options, clock);
  REQUIRE(again.has_value());
  CHECK(Keys(path) == keys_before);
}

// A schema-9 database as that release left it: its rows written by the schema-9 encoding (the
// one migration 8's copy still uses), its rollups and summaries rebuilt from them as migrations 8
// and 9 do. Migration 10 keeps every value the view, the rollups and the summaries give, and the
// reader gives back what AsStored says.
TEST_CASE("migration 10 keeps every probe of a schema-9 database, value by value") {
  TempDir dir;
  const std::string path = dir.File("nine.db");
  const std::vector<ProbeResult> probes = VariedHistory();
  testing::WriteLegacyDatabase(path, 7, probes);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(MigrateTo(db, 9).has_value());
    // A view of the user's own over `probes` (README shows SQL against it) survives.
    REQUIRE(sqlite3_exec(db,
                         "CREATE VIEW my_failures AS SELECT target_id, start_ms, http_status, "
                         "error FROM probes WHERE outcome != 0",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  const Snapshots before = TakeSnapshots(path);
  const std::vector<std::string> failures_before = [&] {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    auto rows = Snapshot(db, "SELECT * FROM my_failures ORDER BY target_id, start_ms");
    sqlite3_close(db);
    return rows;
  }();
  REQUIRE(!failures_before.empty());
  const std::vector<std::string> probes_columns = Columns(path, "probes");
  const std::vector<std::string> named_columns = Columns(path, "probes_named");
  REQUIRE(before.probes.size() == probes.size());
  REQUIRE(!before.rollups.empty());
  REQUIRE(!before.summaries.empty());
  CHECK(std::find(Columns(path, "probe_rows").begin(), Columns(path, "probe_rows").end(),
                  "req_limit") != Columns(path, "probe_rows").end());

  ManualClock clock(kNow);
  StorageOptions options;
  options.path = path;
  options.retention = Millis(0);
  auto opened = Store::Open(options, clock);
  REQUIRE(opened.has_value());
  auto& store = **opened;

  const Snapshots after = TakeSnapshots(path);
  CHECK(after.probes == before.probes);
  CHECK(after.named == before.named);
  CHECK(after.rollups == before.rollups);
  CHECK(after.summaries == before.summaries);
  CHECK(Columns(path, "probes") == probes_columns);
  CHECK(Columns(path, "probes_named") == named_columns);
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    CHECK(Snapshot(db, "SELECT * FROM my_failures ORDER BY target_id, start_ms") ==
          failures_before);
    sqlite3_close(db);
  }
  const std::vector<std::string> row_columns = Columns(path, "probe_rows");
  for (const char* moved : {"http_status", "input_tokens", "req_limit", "tok_limit"}) {
    CAPTURE(moved);
    CHECK(std::find(row_columns.begin(), row_columns.end(), moved) == row_columns.end());
  }

  std::map<std::string, std::vector<const ProbeResult*>> by_target;
  for (const ProbeResult& p : probes) {
    by_target[p.target].push_back(&p);
  }
  size_t compared = 0;
  for (const auto& [target, originals] : by_target) {
    auto rows = store.ReadProbes(target, INT64_MIN, INT64_MAX);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == originals.size());
    for (size_t i = 0; i < originals.size(); ++i) {
      CAPTURE(target);
      CAPTURE(i);
      CheckField((*rows)[i], AsStored(*originals[i]));
      ++compared;
    }
  }
  CHECK(compared == probes.size());

  // The writer goes on with the migrated shapes: the same probes again (a day later) add no
  // shape, and read back as AsStored says.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  const std::vector<std::string> shapes_before =
      Snapshot(db, "SELECT * FROM probe_shapes ORDER BY target_id, shape");
  // VariedHistory draws prompt tokens at random, so most of its probes have a shape of their own.
  CHECK(shapes_before.size() > 4);
  std::vector<ProbeResult> later = probes;
  for (ProbeResult& p : later) {
    p.start_unix_ms += 30LL * 24 * 3600 * 1000;
    store.Append(p);
  }
  REQUIRE(store.Flush().has_value());
  CHECK(Snapshot(db, "SELECT * FROM probe_shapes ORDER BY target_id, shape") == shapes_before);
  sqlite3_close(db);
  for (const auto& [target, originals] : by_target) {
    auto rows = store.ReadProbes(target, kNow + 5LL * 24 * 3600 * 1000, INT64_MAX);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == originals.size());
    for (size_t i = 0; i < originals.size(); ++i) {
      CAPTURE(target);
      CAPTURE(i);
      ProbeResult want = AsStored(*originals[i]);
      want.start_unix_ms += 30LL * 24 * 3600 * 1000;
      CheckField((*rows)[i], want);
    }
  }
}

TEST_CASE("probes written after migration 8 read back as AsStored says") {
  TempDir dir;
  ManualClock clock(kNow);
  StorageOptions options;
  options.path = dir.File("new.db");
  options.retention = Millis(0);
  auto opened = Store::Open(options, clock);
  REQUIRE(opened.has_value());
  auto& store = **opened;
  const std::vector<ProbeResult> probes = VariedHistory();
  for (const ProbeResult& p : probes) {
    store.Append(p);
  }
  REQUIRE(store.Flush().has_value());
  std::map<std::string, std::vector<const ProbeResult*>> by_target;
  for (const ProbeResult& p : probes) {
    by_target[p.target].push_back(&p);
  }
  for (const auto& [target, originals] : by_target) {
    auto rows = store.ReadProbes(target, INT64_MIN, INT64_MAX);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == originals.size());
    for (size_t i = 0; i < originals.size(); ++i) {
      CAPTURE(i);
      CheckField((*rows)[i], AsStored(*originals[i]));
    }
  }
}

// The hot scans read probe_rows directly (StoredNumberOf); they must give exactly the view's
// doubles, column by column, for every row.
TEST_CASE("every number read from probe_rows directly equals the probes view's column") {
  TempDir dir;
  ManualClock clock(kNow);
  StorageOptions options;
  options.path = dir.File("n.db");
  options.retention = Millis(0);
  {
    auto opened = Store::Open(options, clock);
    REQUIRE(opened.has_value());
    for (const ProbeResult& p : VariedHistory()) {
      (*opened)->Append(p);
    }
    REQUIRE((*opened)->Flush().has_value());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  for (size_t n = 0; n < kProbeNumberCount; ++n) {
    const StoredNumber stored = StoredNumberOf(static_cast<ProbeNumber>(n));
    CAPTURE(n);
    const std::string sql =
        "SELECT v." + std::string(kFieldColumnNames[n]) + ", " + std::string(stored.column) + ", " +
        (stored.base.empty() ? std::string("NULL") : std::string(stored.base)) +
        " FROM probes AS v JOIN " + std::string(kStoredNumbersFrom) +
        " WHERE r.target_id = v.target_id AND r.start_ms = v.start_ms AND r.seq = v.seq";
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    int rows = 0;
    int present = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
      const std::optional<double> view = sqlite3_column_type(s, 0) == SQLITE_NULL
                                             ? std::nullopt
                                             : std::optional<double>(sqlite3_column_double(s, 0));
      const std::optional<double> direct = NumberFromColumns(s, 1, stored);
      CHECK(view == direct);
      ++rows;
      present += view ? 1 : 0;
    }
    sqlite3_finalize(s);
    CHECK(rows == 3600);
    CHECK(present > 0);
  }
  sqlite3_close(db);
}

// The budget: at most 80 bytes a stored probe. An OpenAI-like fleet (every phase time,
// tokens, both rate limits, a request id on every probe, one in fifty throttled with an error),
// measured as storage_bench does: the probe table's pages (dbstat) per row, as written and after
// VACUUM.
TEST_CASE("a typical probe takes at most 80 bytes of the probe table") {
  TempDir dir;
  ManualClock clock(kNow);
  StorageOptions options;
  options.path = dir.File("size.db");
  options.retention = Millis(0);
  constexpr int kTargets = 20;
  constexpr int64_t kRows = 20'000;
  {
    auto opened = Store::Open(options, clock);
    REQUIRE(opened.has_value());
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int64_t i = 0; i < kRows; ++i) {
      ProbeResult p = testing::FullProbe("model-" + std::to_string(i % kTargets), 0);
      p.start_unix_ms = kNow - 30LL * 24 * 3600 * 1000 + (i / kTargets) * 60'000 + (i % kTargets);
      p.dns_seconds = 0.001 + 0.004 * unit(rng);
      p.connect_seconds = 0.005 + 0.02 * unit(rng);
      p.tls_seconds = 0.01 + 0.03 * unit(rng);
      p.first_byte_seconds = 0.1 + 0.3 * unit(rng);
      p.ttft_seconds = *p.first_byte_seconds + 0.05 * unit(rng);
      p.first_answer_token_seconds = p.ttft_seconds;
      p.last_token_seconds = *p.ttft_seconds + 0.2 + 0.3 * unit(rng);
      p.total_seconds = *p.last_token_seconds + 0.002;
      p.output_tokens = 8 + static_cast<int64_t>(unit(rng) * 8);
      p.inter_token_latency_seconds =
          (*p.last_token_seconds - *p.ttft_seconds) / static_cast<double>(*p.output_tokens - 1);
      p.output_tokens_per_second =
          static_cast<double>(*p.output_tokens) / (*p.last_token_seconds - *p.ttft_seconds);
      p.chunk_count = *p.output_tokens + 2;
      p.requests = {10000.0, static_cast<double>(9990 - i % 10), 0.006};
      p.tokens = {2000000.0, static_cast<double>(1999000 - i % 1000), 0.03 * unit(rng)};
      p.retry_after_seconds.reset();
      p.request_id = "chatcmpl-" + std::to_string(1000000000000000000LL + i * 7919) + "AbCdEfGhIj";
      if (i % 50 == 0) {
        p.outcome = Outcome::kThrottled;
        p.http_status = 429;
        p.retry_after_seconds = 2.0;
        p.error = "HTTP 429: Rate limit reached for gpt-4o-mini on requests per min";
      }
      (*opened)->Append(p);
    }
    REQUIRE((*opened)->Flush().has_value());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(options.path.c_str(), &db) == SQLITE_OK);
  auto table_bytes_per_probe = [db] {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT SUM(pgsize) FROM dbstat WHERE name = 'probe_rows'", -1,
                               &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const double bytes = static_cast<double>(sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
    return bytes / static_cast<double>(kRows);
  };
  // As written: pages as the writer's interleaved appends left them (about 10 % unused).
  const double written = table_bytes_per_probe();
  REQUIRE(sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr) == SQLITE_OK);
  const double per_probe = table_bytes_per_probe();
  sqlite3_close(db);
  MESSAGE("probe_rows bytes per probe as written: " << written << ", after VACUUM: " << per_probe);
  CHECK(per_probe > 40);  // the measurement measured something
  CHECK(per_probe <= 80);
  CHECK(written <= 80);
}

}  // namespace
}  // namespace modelpulse::storage
