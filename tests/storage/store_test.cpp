#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/internal/probe_codec.h"
#include "storage/internal/sqlite.h"
#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::FullProbe;
using testing::TempDir;

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr int64_t kNow = 1'800'000'000'000;  // a fixed "now" for the ManualClock

// Options under which the writer commits only on Flush, a full batch, or shutdown.
StorageOptions QuietOptions(const std::string& path) {
  StorageOptions options;
  options.path = path;
  options.batch_size = 1000;
  options.flush_interval = Millis(3600 * 1000);
  options.retention_interval = Millis(3600 * 1000);
  return options;
}

std::unique_ptr<Store> OpenOrDie(const StorageOptions& options, const Clock& clock) {
  auto store = Store::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

// The background integrity check runs on a real thread over a real file: waits (10 s at most)
// until it has a verdict, and returns it.
StorageStats::Integrity WaitForIntegrityVerdict(const Store& store) {
  for (int i = 0; i < 1000 && store.Stats().integrity == StorageStats::Integrity::kChecking; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return store.Stats().integrity;
}

std::vector<ProbeResult> ReadAll(const Store& store, const std::string& target) {
  auto rows = store.ReadProbes(target, INT64_MIN, INT64_MAX);
  REQUIRE_MESSAGE(rows.has_value(), (rows ? std::string() : rows.error().ToString()));
  return *rows;
}

// Probe counts through SQLite itself, not through the code under test.
int64_t QueryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  const int64_t value = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

// `got` against `original` as the store keeps it (storage/internal/probe_codec.h: integer times,
// request ids only on failed probes).
void CheckSame(const ProbeResult& got, const ProbeResult& original) {
  const ProbeResult want = AsStored(original);
  CHECK(got.target == want.target);
  CHECK(got.labels == want.labels);
  CHECK(got.start_unix_ms == want.start_unix_ms);
  CHECK(got.dns_seconds == want.dns_seconds);
  CHECK(got.connect_seconds == want.connect_seconds);
  CHECK(got.tls_seconds == want.tls_seconds);
  CHECK(got.first_byte_seconds == want.first_byte_seconds);
  CHECK(got.ttft_seconds == want.ttft_seconds);
  CHECK(got.first_answer_token_seconds == want.first_answer_token_seconds);
  CHECK(got.last_token_seconds == want.last_token_seconds);
  CHECK(got.total_seconds == want.total_seconds);
  CHECK(got.http_status == want.http_status);
  CHECK(got.outcome == want.outcome);
  CHECK(got.input_tokens == want.input_tokens);
  CHECK(got.output_tokens == want.output_tokens);
  CHECK(got.inter_token_latency_seconds == want.inter_token_latency_seconds);
  CHECK(got.output_tokens_per_second == want.output_tokens_per_second);
  CHECK(got.chunk_count == want.chunk_count);
  CHECK(got.requests.limit == want.requests.limit);
  CHECK(got.requests.remaining == want.requests.remaining);
  CHECK(got.requests.reset_seconds == want.requests.reset_seconds);
  CHECK(got.tokens.limit == want.tokens.limit);
  CHECK(got.tokens.remaining == want.tokens.remaining);
  CHECK(got.tokens.reset_seconds == want.tokens.reset_seconds);
  CHECK(got.retry_after_seconds == want.retry_after_seconds);
  CHECK(got.request_id == want.request_id);
  CHECK(got.error == want.error);
}

// Polls `condition` until it holds or a generous deadline passes: for work the writer thread does
// once the injected clock has made it due.
template <typename Condition>
bool Eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

TEST_CASE("every ProbeResult field round-trips, nullopt and odd labels included") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(QuietOptions(dir.File("p.db")), clock);

  ProbeResult full = FullProbe("gpt-4o-mini@openai", kNow - 1000);
  // Every byte the codec escapes, a literal "\\0", a real NUL, control bytes and invalid UTF-8.
  full.labels["odd"] = std::string("a=b,c\\d\\0\"'\n\t\x01\xff end") + std::string(1, '\0') + "x\\";
  full.labels["emoji"] = "\xF0\x9F\x99\x82 \xE6\xBC\xA2";
  full.labels["we=ird,name\\"] = "";
  full.labels[""] = "=";
  full.outcome = Outcome::kContentMismatch;
  full.error = "content mismatch: answer \"Nope\" does not match (?i)\\bok\\b";

  ProbeResult sparse;
  sparse.target = "claude@anthropic";
  sparse.start_unix_ms = kNow - 500;
  sparse.total_seconds = 20.0;
  sparse.outcome = Outcome::kTimeout;
  sparse.error = "first token timeout after 20s";

  ProbeResult empty_labels = sparse;
  empty_labels.target = "no-labels";

  for (Outcome outcome : kAllOutcomes) {
    ProbeResult each = FullProbe("outcomes", kNow + static_cast<int>(outcome));
    each.outcome = outcome;
    store->Append(each);
  }
  store->Append(full);
  store->Append(sparse);
  store->Append(empty_labels);
  REQUIRE(store->Flush().has_value());

  auto got_full = ReadAll(*store, full.target);
  REQUIRE(got_full.size() == 1);
  CheckSame(got_full[0], full);
  auto got_sparse = ReadAll(*store, sparse.target);
  REQUIRE(got_sparse.size() == 1);
  CheckSame(got_sparse[0], sparse);
  CHECK_FALSE(got_sparse[0].dns_seconds.has_value());
  CHECK_FALSE(got_sparse[0].input_tokens.has_value());
  CHECK_FALSE(got_sparse[0].requests.limit.has_value());
  auto got_empty = ReadAll(*store, empty_labels.target);
  REQUIRE(got_empty.size() == 1);
  CHECK(got_empty[0].labels.empty());
  auto outcomes = ReadAll(*store, "outcomes");
  REQUIRE(outcomes.size() == kAllOutcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) {
    CHECK(outcomes[i].outcome == kAllOutcomes[i]);
  }

  // And through a fresh process's view: reopen and read again.
  store.reset();
  auto reopened = OpenOrDie(QuietOptions(dir.File("p.db")), clock);
  auto again = ReadAll(*reopened, full.target);
  REQUIRE(again.size() == 1);
  CheckSame(again[0], full);
}

TEST_CASE("range reads include from_ms, exclude to_ms and keep targets apart") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(QuietOptions(dir.File("r.db")), clock);
  for (int64_t t : {3000, 1000, 2000}) {  // out of order on purpose
    store->Append(FullProbe("a", t));
    store->Append(FullProbe("b", t + 1));
  }
  REQUIRE(store->Flush().has_value());

  auto first = store->ReadProbes("a", 1000, 3000);
  REQUIRE(first.has_value());
  REQUIRE(first->size() == 2);
  CHECK((*first)[0].start_unix_ms == 1000);
  CHECK((*first)[1].start_unix_ms == 2000);

  auto shifted = store->ReadProbes("a", 1001, 3001);
  REQUIRE(shifted.has_value());
  REQUIRE(shifted->size() == 2);
  CHECK((*shifted)[0].start_unix_ms == 2000);
  CHECK((*shifted)[1].start_unix_ms == 3000);

  CHECK(store->ReadProbes("a", 3000, 3000)->empty());
  CHECK(store->ReadProbes("a", 4000, 1000)->empty());
  CHECK(store->ReadProbes("unknown", INT64_MIN, INT64_MAX)->empty());
  auto b = store->ReadProbes("b", 0, 10000);
  REQUIRE(b.has_value());
  CHECK(b->size() == 3);
  for (const ProbeResult& p : *b) {
    CHECK(p.target == "b");
  }
}

TEST_CASE("probes of one target in the same millisecond are all stored, in append order") {
  TempDir dir;
  ManualClock clock(kNow);
  const auto options = QuietOptions(dir.File("same.db"));
  {
    auto store = OpenOrDie(options, clock);
    for (const char* id : {"first", "second"}) {
      ProbeResult p = FullProbe("t", 5000);
      p.outcome = Outcome::kServerError;  // request ids are kept on failed probes
      p.request_id = id;
      store->Append(p);
    }
    REQUIRE(store->Flush().has_value());
  }
  // A restarted writer continues the numbering from the database.
  auto store = OpenOrDie(options, clock);
  ProbeResult third = FullProbe("t", 5000);
  third.outcome = Outcome::kThrottled;
  third.request_id = "third";
  store->Append(third);
  REQUIRE(store->Flush().has_value());
  auto rows = ReadAll(*store, "t");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].request_id == "first");
  CHECK(rows[1].request_id == "second");
  CHECK(rows[2].request_id == "third");
}

TEST_CASE("reopening a database is a no-op migration and a newer schema is refused") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("m.db");
  {
    auto store = OpenOrDie(QuietOptions(path), clock);
    store->Append(FullProbe("t", 1));
    REQUIRE(store->Flush().has_value());
  }
  const int64_t version = QueryInt(path, "PRAGMA user_version");
  CHECK(version >= 1);
  const int64_t objects = QueryInt(path, "SELECT COUNT(*) FROM sqlite_master");
  CHECK(QueryInt(path,
                 "SELECT COUNT(*) FROM sqlite_master WHERE name = 'probe_rows' AND "
                 "sql LIKE '%WITHOUT ROWID%'") == 1);
  {
    auto store = OpenOrDie(QuietOptions(path), clock);
    CHECK(ReadAll(*store, "t").size() == 1);
  }
  CHECK(QueryInt(path, "PRAGMA user_version") == version);
  CHECK(QueryInt(path, "SELECT COUNT(*) FROM sqlite_master") == objects);

  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const std::string bump = "PRAGMA user_version = " + std::to_string(version + 1);
  REQUIRE(sqlite3_exec(db, bump.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto newer = Store::Open(QuietOptions(path), clock);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().code == Error::Code::kInternal);
  CHECK(newer.error().message.find("newer") != std::string::npos);
  CHECK(newer.error().message.find(path) != std::string::npos);
}

TEST_CASE("outcome names are readable in SQL through the outcomes table and probes_named") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("named.db");
  {
    auto store = OpenOrDie(QuietOptions(path), clock);
    for (int i = 0; i < 3; ++i) {
      ProbeResult throttled = FullProbe("t", kNow + i);
      throttled.outcome = Outcome::kThrottled;
      store->Append(throttled);
    }
    store->Append(FullProbe("t", kNow + 10));
    REQUIRE(store->Flush().has_value());
  }
  // Every outcome has its row, under the name /metrics gives it.
  CHECK(QueryInt(path, "SELECT COUNT(*) FROM outcomes") ==
        static_cast<int64_t>(kAllOutcomes.size()));
  for (Outcome outcome : kAllOutcomes) {
    CHECK(QueryInt(path, "SELECT COUNT(*) FROM outcomes WHERE id = " +
                             std::to_string(static_cast<int>(outcome)) + " AND name = '" +
                             std::string(OutcomeName(outcome)) + "'") == 1);
  }
  CHECK(QueryInt(path,
                 "SELECT COUNT(*) FROM probes_named WHERE target = 't' AND "
                 "outcome_name = 'throttled'") == 3);
  CHECK(QueryInt(path, "SELECT COUNT(*) FROM probes_named WHERE outcome_name = 'ok'") == 1);
}

TEST_CASE("a failing migration is an Internal error and changes nothing") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("conflict.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  // A version-0 database that already has a table the first migration creates.
  REQUIRE(sqlite3_exec(db, "CREATE TABLE probes (x)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto store = Store::Open(QuietOptions(path), clock);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == Error::Code::kInternal);
  CHECK(store.error().message.find("migration 1") != std::string::npos);
  CHECK(QueryInt(path, "PRAGMA user_version") == 0);
  CHECK(QueryInt(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'targets'") == 0);
}

TEST_CASE("the database is in WAL mode") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("wal.db");
  auto store = OpenOrDie(QuietOptions(path), clock);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0))) == "wal");
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST_CASE("retention deletes exactly the rows older than now - retention, in small batches") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("ret.db"));
  options.retention = Millis(kDayMs);
  options.retention_batch_rows = 3;
  auto store = OpenOrDie(options, clock);
  const int64_t cutoff = kNow - kDayMs;
  for (const char* target : {"a", "b"}) {
    for (int i = 0; i < 7; ++i) {
      store->Append(FullProbe(target, cutoff - 1 - i * 60000));  // old
    }
    store->Append(FullProbe(target, cutoff));  // exactly at the cutoff: kept
    for (int i = 1; i <= 3; ++i) {
      store->Append(FullProbe(target, cutoff + i * 60000));
    }
  }
  store->Append(FullProbe("only-old", cutoff - 5));
  REQUIRE(store->Flush().has_value());
  REQUIRE(store->Targets()->size() == 3);

  auto deleted = store->ApplyRetention();
  REQUIRE(deleted.has_value());
  CHECK(*deleted == 15);
  const StorageStats stats = store->Stats();
  CHECK(stats.rows_deleted_by_retention == 15);
  CHECK(stats.retention_batches == 5);  // ceil(15 / 3)
  for (const char* target : {"a", "b"}) {
    auto rows = ReadAll(*store, target);
    REQUIRE(rows.size() == 4);
    CHECK(rows.front().start_unix_ms == cutoff);
  }
  // A target whose every row went is no longer listed.
  auto targets = store->Targets();
  REQUIRE(targets.has_value());
  REQUIRE(targets->size() == 2);
  CHECK((*targets)[0].first == "a");
  CHECK((*targets)[1].first == "b");

  CHECK(*store->ApplyRetention() == 0);
  clock.Advance(60000 + 1);  // the cutoff row and the first newer one age out
  CHECK(*store->ApplyRetention() == 4);
  CHECK(ReadAll(*store, "a").size() == 2);
}

TEST_CASE("the writer thread applies retention every retention_interval") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("periodic.db"));
  options.retention = Millis(kDayMs);
  options.retention_interval = Millis(5);
  auto store = OpenOrDie(options, clock);
  store->Append(FullProbe("t", kNow - 2 * kDayMs));
  store->Append(FullProbe("t", kNow));
  REQUIRE(store->Flush().has_value());
  // The interval runs on the injected clock, which has not moved: no pass yet.
  CHECK(store->Stats().rows_deleted_by_retention == 0);
  clock.Advance(std::chrono::milliseconds(5));
  // Due now; what is left to wait for is the writer thread, not time.
  CHECK(Eventually([&] { return store->Stats().rows_deleted_by_retention == 1; }));
  auto rows = ReadAll(*store, "t");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].start_unix_ms == kNow);
}

TEST_CASE("Targets lists every target with the labels of its latest probe") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(QuietOptions(dir.File("t.db")), clock);
  ProbeResult old_labels = FullProbe("x", 1000);
  old_labels.labels = {{"tier", "dev"}};
  ProbeResult new_labels = FullProbe("x", 2000);
  new_labels.labels = {{"tier", "prod"}, {"odd", "a,b=c\\"}};
  ProbeResult late_but_older = FullProbe("x", 1500);  // arrives last, started earlier
  late_but_older.labels = {{"tier", "stale"}};
  ProbeResult other = FullProbe("a-first", 10);
  store->Append(old_labels);
  store->Append(new_labels);
  store->Append(late_but_older);
  store->Append(other);
  REQUIRE(store->Flush().has_value());

  auto targets = store->Targets();
  REQUIRE(targets.has_value());
  REQUIRE(targets->size() == 2);
  CHECK((*targets)[0].first == "a-first");
  CHECK((*targets)[0].second == other.labels);
  CHECK((*targets)[1].first == "x");
  CHECK((*targets)[1].second == new_labels.labels);
  // Each probe keeps the labels it was written with.
  auto rows = ReadAll(*store, "x");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].labels == old_labels.labels);
  CHECK(rows[1].labels == late_but_older.labels);
  CHECK(rows[2].labels == new_labels.labels);
}

TEST_CASE("Flush commits everything queued before it in batches of at most batch_size") {
  TempDir dir;
  // A real clock: last_batch_seconds times real SQLite work. Retention is an hour away.
  SystemClock clock;
  auto options = QuietOptions(dir.File("f.db"));
  options.batch_size = 4;
  auto store = OpenOrDie(options, clock);
  for (int i = 0; i < 10; ++i) {
    store->Append(FullProbe("t", i));
  }
  REQUIRE(store->Flush().has_value());
  StorageStats stats = store->Stats();
  CHECK(stats.rows_written == 10);
  CHECK(stats.batches_written == 3);  // 4 + 4 + 2
  CHECK(stats.queue_depth == 0);
  CHECK(stats.write_errors == 0);
  CHECK(stats.last_batch_seconds > 0);
  CHECK(ReadAll(*store, "t").size() == 10);
  CHECK(store->Flush().has_value());  // nothing queued: returns at once
}

TEST_CASE("a partial batch is held until Flush, then committed") {
  TempDir dir;
  ManualClock clock(kNow);
  auto store = OpenOrDie(QuietOptions(dir.File("hold.db")), clock);
  for (int i = 0; i < 5; ++i) {
    store->Append(FullProbe("t", i));
  }
  // With an hour of flush_interval and a batch of 1000, nothing may be written yet.
  CHECK(store->Stats().queue_depth == 5);
  CHECK(store->Stats().rows_written == 0);
  REQUIRE(store->Flush().has_value());
  CHECK(store->Stats().rows_written == 5);
}

TEST_CASE("a partial batch is committed within flush_interval without a Flush") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("interval.db"));
  options.flush_interval = Millis(20);
  auto store = OpenOrDie(options, clock);
  for (int i = 0; i < 5; ++i) {
    store->Append(FullProbe("t", i));
  }
  // flush_interval runs on the injected clock, which has not moved: nothing is written yet.
  CHECK(store->Stats().rows_written == 0);
  clock.Advance(std::chrono::milliseconds(19));
  CHECK(store->Stats().rows_written == 0);
  clock.Advance(std::chrono::milliseconds(1));
  // Due now; what is left to wait for is the writer thread, not time.
  CHECK(Eventually([&] { return store->Stats().rows_written == 5; }));
}

TEST_CASE("closing the store commits what is queued") {
  TempDir dir;
  ManualClock clock(kNow);
  const auto options = QuietOptions(dir.File("close.db"));
  {
    auto store = OpenOrDie(options, clock);
    for (int i = 0; i < 7; ++i) {
      store->Append(FullProbe("t", i));
    }
  }
  CHECK(QueryInt(options.path, "SELECT COUNT(*) FROM probes") == 7);
}

TEST_CASE("a full queue drops and counts") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("drop.db"));
  options.max_queue = 3;
  auto store = OpenOrDie(options, clock);
  for (int i = 0; i < 5; ++i) {
    store->Append(FullProbe("t", i));
  }
  StorageStats stats = store->Stats();
  CHECK(stats.rows_dropped == 2);
  CHECK(stats.queue_depth == 3);
  REQUIRE(store->Flush().has_value());
  CHECK(store->Stats().rows_written == 3);
  CHECK(ReadAll(*store, "t").size() == 3);
}

TEST_CASE("reads run while the writer is busy") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("concurrent.db"));
  options.batch_size = 50;
  auto store = OpenOrDie(options, clock);
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      store->Append(FullProbe("t", i));
    }
  });
  size_t last = 0;
  bool monotonic = true;
  for (int i = 0; i < 50; ++i) {
    auto rows = store->ReadProbes("t", 0, 2000);
    REQUIRE(rows.has_value());
    monotonic = monotonic && rows->size() >= last;
    last = rows->size();
  }
  writer.join();
  REQUIRE(store->Flush().has_value());
  CHECK(monotonic);
  CHECK(ReadAll(*store, "t").size() == 2000);
}

TEST_CASE("a database in a missing directory is an Io error naming the path") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("no/such/dir/modelpulse.db");
  auto store = Store::Open(QuietOptions(path), clock);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == Error::Code::kIo);
  CHECK(store.error().message.find(path) != std::string::npos);
}

TEST_CASE("a file that is not a database is an Io error naming the path") {
  TempDir dir;
  ManualClock clock(kNow);
  const std::string path = dir.File("garbage.db");
  std::ofstream(path) << std::string(8192, 'x');
  auto store = Store::Open(QuietOptions(path), clock);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == Error::Code::kIo);
  CHECK(store.error().message.find(path) != std::string::npos);
}

TEST_CASE("a database with corrupt pages is refused at open with what to do") {
  TempDir dir;
  ManualClock clock(kNow);
  const auto options = QuietOptions(dir.File("corrupt.db"));
  {
    auto store = OpenOrDie(options, clock);
    for (int i = 0; i < 3000; ++i) {
      store->Append(FullProbe("t" + std::to_string(i % 7), i));
    }
    REQUIRE(store->Flush().has_value());
  }
  const auto size = std::filesystem::file_size(options.path);
  REQUIRE(size > 16 * 4096);
  {
    // Garbage over pages in the middle: the header and schema (page 1) stay intact, so SQLite
    // opens the file happily and only a check notices.
    std::fstream file(options.path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 2));
    const std::string garbage(8 * 4096, '\x5a');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto store = Store::Open(options, clock);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == Error::Code::kIo);
  CHECK(store.error().message.find(options.path) != std::string::npos);
  CHECK(store.error().message.find("restore it from a backup") != std::string::npos);
  // Over the size checked at start, the file opens at once (a check could take minutes) and a
  // background check finds the damage.
  auto large_options = options;
  large_options.integrity_check_max_bytes = 4096;
  auto opened = Store::Open(large_options, clock);
  REQUIRE(opened.has_value());
  CHECK(WaitForIntegrityVerdict(**opened) == StorageStats::Integrity::kCorrupt);
}

TEST_CASE("a large sound database opens at once and passes the background check") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("large.db"));
  {
    auto store = OpenOrDie(options, clock);
    for (int i = 0; i < 3000; ++i) {
      store->Append(FullProbe("t" + std::to_string(i % 7), i));
    }
    REQUIRE(store->Flush().has_value());
    CHECK(store->Stats().integrity == StorageStats::Integrity::kOk);  // checked at open
  }
  options.integrity_check_max_bytes = 4096;
  auto store = OpenOrDie(options, clock);
  CHECK(WaitForIntegrityVerdict(*store) == StorageStats::Integrity::kOk);
  // Writes go on beside the check, and closing the store ends it.
  store->Append(FullProbe("t", 5000));
  CHECK(store->Flush().has_value());
}

TEST_CASE("a database file deleted under the store fails every later write and is not writable") {
  TempDir dir;
  ManualClock clock(kNow);
  const auto options = QuietOptions(dir.File("deleted.db"));
  auto store = OpenOrDie(options, clock);
  store->Append(FullProbe("t", 1));
  REQUIRE(store->Flush().has_value());
  CHECK(store->Stats().writable);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(options.path + suffix);
  }
  store->Append(FullProbe("t", 2));
  store->Append(FullProbe("t", 3));
  auto flushed = store->Flush();
  REQUIRE_FALSE(flushed.has_value());
  CHECK(flushed.error().message.find("deleted or replaced") != std::string::npos);
  const StorageStats stats = store->Stats();
  CHECK_FALSE(stats.writable);
  CHECK(stats.rows_failed == 2);
  CHECK(stats.rows_written == 1);
  auto saved = store->PutState("alerts", "g", "{}");
  REQUIRE_FALSE(saved.has_value());
  CHECK(saved.error().message.find("deleted or replaced") != std::string::npos);
}

TEST_CASE("a database file replaced under the store is noticed too") {
  TempDir dir;
  ManualClock clock(kNow);
  const auto options = QuietOptions(dir.File("replaced.db"));
  const auto other = QuietOptions(dir.File("backup.db"));
  OpenOrDie(other, clock).reset();
  auto store = OpenOrDie(options, clock);
  std::filesystem::rename(other.path, options.path);
  store->Append(FullProbe("t", 1));
  auto flushed = store->Flush();
  REQUIRE_FALSE(flushed.has_value());
  CHECK(flushed.error().message.find(options.path) != std::string::npos);
  CHECK_FALSE(store->Stats().writable);
  CHECK(QueryInt(options.path, "SELECT COUNT(*) FROM probes") == 0);
}

TEST_CASE("SQLite failures at start say what the operator must do") {
  CHECK(WhatToDoAbout(SQLITE_READONLY).find("write permission") != std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_READONLY_DIRECTORY).find("write permission") !=
        std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_PROTOCOL).find("directory") != std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_FULL).find("disk is full") != std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_NOTADB).find("backup") != std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_BUSY).find("second modelpulse") != std::string_view::npos);
  CHECK(WhatToDoAbout(SQLITE_OK).empty());
}

TEST_CASE("an empty path is refused") {
  ManualClock clock(kNow);
  auto store = Store::Open(StorageOptions{}, clock);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code == Error::Code::kInvalidArgument);
}

TEST_CASE("without probe writes, retention's checkpoint keeps the state connection's WAL small") {
  TempDir dir;
  ManualClock clock(kNow);
  auto options = QuietOptions(dir.File("states.db"));
  options.retention = Millis(3600 * 1000);
  auto store = OpenOrDie(options, clock);
  const std::string wal = options.path + "-wal";
  const std::string document(2000, 's');
  const auto save_states = [&] {
    for (int i = 0; i < 500; ++i) {
      REQUIRE(store->PutState("alerts", "group-" + std::to_string(i % 20), document).has_value());
    }
  };
  save_states();
  const auto first = std::filesystem::file_size(wal);
  REQUIRE(store->ApplyRetention().has_value());  // no rows to delete; checkpoints
  save_states();
  const auto second = std::filesystem::file_size(wal);
  // Checkpointed frames are written over from the start; without the checkpoint the second
  // round of commits would have doubled the file.
  CHECK(second <= first + first / 10);
  CHECK(first > 500 * 2000);
}

}  // namespace
}  // namespace modelpulse::storage
