#include "storage/recorded_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "storage/internal/label_codec.h"
#include "storage/internal/rollup.h"
#include "storage/internal/schema.h"
#include "storage/internal/sqlite.h"

namespace modelpulse::storage {
namespace {

constexpr int kBusyTimeoutMs = 5000;

// Below this a range is read from the samples: the rollups pay off only once whole hours fit.
constexpr int64_t kRollupMinRangeMs = 2 * kRollupBucketMs;

void BindValue(sqlite3_stmt* s, int index, double v) {
  if (std::isnan(v)) {
    // The bits, so a stale marker stays one (a REAL NaN would come back as NULL).
    const uint64_t bits = std::bit_cast<uint64_t>(v);
    sqlite3_bind_blob(s, index, &bits, sizeof bits, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_double(s, index, v);
  }
}

double ColumnValue(sqlite3_stmt* s, int index) {
  if (sqlite3_column_type(s, index) == SQLITE_BLOB &&
      sqlite3_column_bytes(s, index) == sizeof(uint64_t)) {
    uint64_t bits = 0;
    std::memcpy(&bits, sqlite3_column_blob(s, index), sizeof bits);
    return std::bit_cast<double>(bits);
  }
  return sqlite3_column_double(s, index);
}

// What an hour of one series holds, as the rollup table keeps it.
struct Cell {
  int64_t count = 0;  // samples that are not stale markers
  int64_t nans = 0;   // of them, NaN
  double sum = 0;
  double min = 0;
  double max = 0;
  int64_t finite = 0;  // samples in sum/min/max
  void Add(double v) {
    if (IsStaleNaN(v)) {
      return;
    }
    ++count;
    if (std::isnan(v)) {
      ++nans;
      return;
    }
    min = finite == 0 ? v : std::min(min, v);
    max = finite == 0 ? v : std::max(max, v);
    sum += v;
    ++finite;
  }
};

bool Matches(const std::vector<LabelMatcher>& matchers, const Labels& labels) {
  // Only the cheap matchers narrow here; the caller re-applies the regular expressions.
  for (const LabelMatcher& m : matchers) {
    auto it = labels.find(m.name);
    const std::string_view value = it == labels.end() ? std::string_view() : it->second;
    if (m.type == LabelMatcher::Type::kEqual && value != m.value) {
      return false;
    }
    if (m.type == LabelMatcher::Type::kNotEqual && value == m.value) {
      return false;
    }
  }
  return true;
}

class SqliteRecordedStore final : public RecordedStore {
 public:
  SqliteRecordedStore(const RecordedStoreOptions& options, const Clock& clock, DbHandle write_db,
                      DbHandle read_db, std::map<int64_t, Labels> series)
      : options_(options),
        clock_(clock),
        write_db_(std::move(write_db)),
        read_db_(std::move(read_db)),
        series_(std::move(series)) {
    for (const auto& [id, labels] : series_) {
      ids_[labels] = id;
    }
    last_retention_ms_ = clock_.NowUnixMillis();
  }

  Status AppendRecorded(const std::vector<RecordedPoint>& points) override {
    if (points.empty()) {
      return {};
    }
    std::lock_guard write_lock(write_mu_);
    if (auto status = WriteLocked(points); !status) {
      return status;
    }
    if (options_.retention_interval.count() > 0 &&
        clock_.NowUnixMillis() - last_retention_ms_ >= options_.retention_interval.count()) {
      if (auto deleted = RetentionLocked(); !deleted) {
        return Fail(deleted.error());
      }
    }
    return {};
  }

  Result<uint64_t> ApplyRetention() override {
    std::lock_guard write_lock(write_mu_);
    return RetentionLocked();
  }

  size_t SeriesCount() const override {
    std::lock_guard lock(series_mu_);
    return series_.size();
  }

  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    std::vector<Series> out;
    std::lock_guard read_lock(read_mu_);
    for (auto& [id, labels] : Candidates(matchers)) {
      auto samples = ReadSamples(id, from_ms, to_ms);
      if (!samples) {
        return Fail(samples.error());
      }
      if (!samples->empty()) {
        out.push_back({std::move(labels), std::move(*samples)});
      }
    }
    return out;
  }

  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override {
    std::vector<SeriesAggregate> out;
    std::lock_guard read_lock(read_mu_);
    for (auto& [id, labels] : Candidates(matchers)) {
      std::optional<double> value;
      if (aggregate != RangeAggregate::kQuantile && to_ms - from_ms >= kRollupMinRangeMs) {
        auto pushed = FromRollups(id, from_ms, to_ms, aggregate);
        if (!pushed) {
          return Fail(pushed.error());
        }
        if (pushed->first) {
          value = pushed->second;
          if (!value) {
            continue;  // no samples in range
          }
        }
      }
      if (!value) {
        auto samples = ReadSamples(id, from_ms, to_ms);
        if (!samples) {
          return Fail(samples.error());
        }
        std::erase_if(*samples, [](const Sample& s) { return IsStaleNaN(s.v); });
        if (samples->empty()) {
          continue;
        }
        value = AggregateSamples(aggregate, q, *samples);
      }
      out.push_back({std::move(labels), *value});
    }
    return out;
  }

 private:
  std::vector<std::pair<int64_t, Labels>> Candidates(
      const std::vector<LabelMatcher>& matchers) const {
    std::vector<std::pair<int64_t, Labels>> out;
    std::lock_guard lock(series_mu_);
    for (const auto& [id, labels] : series_) {
      if (Matches(matchers, labels)) {
        out.emplace_back(id, labels);
      }
    }
    return out;
  }

  // REQUIRES: read_mu_ held.
  Result<std::vector<Sample>> ReadSamples(int64_t id, int64_t from_ms, int64_t to_ms) const {
    if (!read_samples_) {
      auto prepared = Prepare(read_db_.get(),
                              "SELECT t_ms, value FROM recorded_samples WHERE series_id = ?1 AND "
                              "t_ms BETWEEN ?2 AND ?3 ORDER BY t_ms");
      if (!prepared) {
        return Fail(prepared.error());
      }
      read_samples_ = std::move(*prepared);
    }
    sqlite3_stmt* s = read_samples_.get();
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, from_ms);
    sqlite3_bind_int64(s, 3, to_ms);
    std::vector<Sample> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      out.push_back({sqlite3_column_int64(s, 0), ColumnValue(s, 1)});
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(read_db_.get(), "reading recorded samples", Error::Code::kIo));
    }
    return out;
  }

  // {false, _}: the rollups cannot answer (a NaN or an infinite sum in range); {true, nullopt}:
  // no samples in range; {true, v}: the aggregate. REQUIRES: read_mu_ held.
  Result<std::pair<bool, std::optional<double>>> FromRollups(int64_t id, int64_t from_ms,
                                                             int64_t to_ms,
                                                             RangeAggregate aggregate) const {
    // Whole hours inside the closed [from_ms, to_ms]: [first, end).
    const int64_t first =
        BucketOf(from_ms) == from_ms ? from_ms : BucketOf(from_ms) + kRollupBucketMs;
    const int64_t end = BucketOf(to_ms + 1);
    if (end <= first) {
      return std::pair<bool, std::optional<double>>{false, std::nullopt};
    }
    if (!read_rollups_) {
      auto prepared = Prepare(read_db_.get(),
                              "SELECT count, nans, sum, min, max FROM recorded_rollups WHERE "
                              "series_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3");
      if (!prepared) {
        return Fail(prepared.error());
      }
      read_rollups_ = std::move(*prepared);
    }
    Cell total;
    KahanSum sum;
    auto fold = [&](int64_t count, int64_t nans, std::optional<double> s, double lo, double hi) {
      const int64_t finite = count - nans;
      total.count += count;
      total.nans += nans;
      if (finite > 0) {
        total.min = total.finite == 0 ? lo : std::min(total.min, lo);
        total.max = total.finite == 0 ? hi : std::max(total.max, hi);
        total.finite += finite;
        sum.Add(s.value_or(std::nan("")));
      }
    };
    {
      sqlite3_stmt* s = read_rollups_.get();
      ScopedReset reset(s);
      sqlite3_bind_int64(s, 1, id);
      sqlite3_bind_int64(s, 2, first);
      sqlite3_bind_int64(s, 3, end);
      int rc = SQLITE_ROW;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        fold(sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), ColumnOptionalDouble(s, 2),
             sqlite3_column_double(s, 3), sqlite3_column_double(s, 4));
      }
      if (rc != SQLITE_DONE) {
        return Fail(SqliteError(read_db_.get(), "reading recorded rollups", Error::Code::kIo));
      }
    }
    for (const auto& [lo, hi] : {std::pair{from_ms, first - 1}, std::pair{end, to_ms}}) {
      if (hi < lo) {
        continue;
      }
      auto edge = ReadSamples(id, lo, hi);
      if (!edge) {
        return Fail(edge.error());
      }
      for (const Sample& sample : *edge) {
        Cell one;
        one.Add(sample.v);
        if (one.count > 0) {
          fold(one.count, one.nans, one.sum, one.min, one.max);
        }
      }
    }
    if (total.count == 0) {
      return std::pair<bool, std::optional<double>>{true, std::nullopt};
    }
    const double summed = sum.sum + sum.c;
    if (aggregate == RangeAggregate::kCount) {
      return std::pair<bool, std::optional<double>>{true, static_cast<double>(total.count)};
    }
    if (total.nans > 0 || !std::isfinite(summed)) {
      return std::pair<bool, std::optional<double>>{false, std::nullopt};
    }
    double value = 0;
    switch (aggregate) {
      case RangeAggregate::kSum:
        value = summed;
        break;
      case RangeAggregate::kAvg:
        value = summed / static_cast<double>(total.count);
        break;
      case RangeAggregate::kMin:
        value = total.min;
        break;
      case RangeAggregate::kMax:
        value = total.max;
        break;
      default:
        return std::pair<bool, std::optional<double>>{false, std::nullopt};
    }
    return std::pair<bool, std::optional<double>>{true, value};
  }

  // REQUIRES: write_mu_ held.
  Status WriteLocked(const std::vector<RecordedPoint>& points) {
    sqlite3* db = write_db_.get();
    auto transaction = Transaction::Begin(db);
    if (!transaction) {
      return Fail(transaction.error());
    }
    auto insert_series = Prepare(db, "INSERT INTO recorded_series (labels) VALUES (?1)");
    auto insert_sample = Prepare(
        db, "INSERT OR IGNORE INTO recorded_samples (series_id, t_ms, value) VALUES (?1, ?2, ?3)");
    auto replace_sample =
        Prepare(db, "UPDATE recorded_samples SET value = ?3 WHERE series_id = ?1 AND t_ms = ?2");
    for (const auto* statement : {&insert_series, &insert_sample, &replace_sample}) {
      if (!*statement) {
        return Fail(statement->error());
      }
    }
    std::map<Labels, int64_t> added;
    std::map<std::pair<int64_t, int64_t>, Cell> cells;  // (series, bucket) -> new samples
    std::set<std::pair<int64_t, int64_t>> rebuild;      // buckets with a replaced sample
    for (const RecordedPoint& point : points) {
      int64_t id = 0;
      if (auto known = IdOf(point.labels)) {
        id = *known;
      } else if (auto it = added.find(point.labels); it != added.end()) {
        id = it->second;
      } else {
        sqlite3_stmt* s = insert_series->get();
        ScopedReset reset(s);
        BindText(s, 1, EncodeLabels(point.labels));
        if (sqlite3_step(s) != SQLITE_DONE) {
          return Fail(SqliteError(db, "adding a recorded series", Error::Code::kIo));
        }
        id = sqlite3_last_insert_rowid(db);
        added.emplace(point.labels, id);
      }
      const std::pair<int64_t, int64_t> bucket{id, BucketOf(point.t_ms)};
      {
        sqlite3_stmt* s = insert_sample->get();
        ScopedReset reset(s);
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, point.t_ms);
        BindValue(s, 3, point.v);
        if (sqlite3_step(s) != SQLITE_DONE) {
          return Fail(SqliteError(db, "writing a recorded sample", Error::Code::kIo));
        }
      }
      if (sqlite3_changes(db) == 1) {
        cells[bucket].Add(point.v);
        continue;
      }
      // The same series and time again (a re-evaluation): the new value wins, and its hour is
      // recounted from the samples.
      sqlite3_stmt* s = replace_sample->get();
      ScopedReset reset(s);
      sqlite3_bind_int64(s, 1, id);
      sqlite3_bind_int64(s, 2, point.t_ms);
      BindValue(s, 3, point.v);
      if (sqlite3_step(s) != SQLITE_DONE) {
        return Fail(SqliteError(db, "replacing a recorded sample", Error::Code::kIo));
      }
      rebuild.insert(bucket);
    }
    if (auto status = UpsertCells(cells, rebuild); !status) {
      return status;
    }
    for (const auto& [series, bucket] : rebuild) {
      if (auto status = RebuildBucket(series, bucket); !status) {
        return status;
      }
    }
    if (auto status = transaction->Commit(); !status) {
      return status;
    }
    std::lock_guard lock(series_mu_);
    for (auto& [labels, id] : added) {
      series_.emplace(id, labels);
      ids_.emplace(labels, id);
    }
    return {};
  }

  std::optional<int64_t> IdOf(const Labels& labels) const {
    std::lock_guard lock(series_mu_);
    auto it = ids_.find(labels);
    return it == ids_.end() ? std::nullopt : std::optional<int64_t>(it->second);
  }

  Status UpsertCells(const std::map<std::pair<int64_t, int64_t>, Cell>& cells,
                     const std::set<std::pair<int64_t, int64_t>>& skip) {
    sqlite3* db = write_db_.get();
    auto upsert = Prepare(db, R"sql(
INSERT INTO recorded_rollups (series_id, bucket_ms, count, nans, sum, min, max)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (series_id, bucket_ms) DO UPDATE SET
  count = count + excluded.count, nans = nans + excluded.nans, sum = sum + excluded.sum,
  min = CASE WHEN count = nans THEN excluded.min WHEN excluded.count = excluded.nans THEN min
             ELSE min(min, excluded.min) END,
  max = CASE WHEN count = nans THEN excluded.max WHEN excluded.count = excluded.nans THEN max
             ELSE max(max, excluded.max) END)sql");
    if (!upsert) {
      return Fail(upsert.error());
    }
    sqlite3_stmt* s = upsert->get();
    for (const auto& [key, cell] : cells) {
      if (cell.count == 0 || skip.contains(key)) {
        continue;  // only stale markers, or recounted anyway
      }
      ScopedReset reset(s);
      sqlite3_bind_int64(s, 1, key.first);
      sqlite3_bind_int64(s, 2, key.second);
      sqlite3_bind_int64(s, 3, cell.count);
      sqlite3_bind_int64(s, 4, cell.nans);
      sqlite3_bind_double(s, 5, cell.sum);
      sqlite3_bind_double(s, 6, cell.min);
      sqlite3_bind_double(s, 7, cell.max);
      if (sqlite3_step(s) != SQLITE_DONE) {
        return Fail(SqliteError(db, "updating recorded rollups", Error::Code::kIo));
      }
    }
    return {};
  }

  // Recounts one hour of one series from its samples. REQUIRES: write_mu_ held, in a
  // transaction.
  Status RebuildBucket(int64_t id, int64_t bucket) {
    sqlite3* db = write_db_.get();
    auto remove =
        Prepare(db, "DELETE FROM recorded_rollups WHERE series_id = ?1 AND bucket_ms = ?2");
    auto rows = Prepare(db,
                        "SELECT value FROM recorded_samples WHERE series_id = ?1 AND t_ms >= ?2 "
                        "AND t_ms < ?3");
    if (!remove || !rows) {
      return Fail(!remove ? remove.error() : rows.error());
    }
    sqlite3_bind_int64(remove->get(), 1, id);
    sqlite3_bind_int64(remove->get(), 2, bucket);
    if (sqlite3_step(remove->get()) != SQLITE_DONE) {
      return Fail(SqliteError(db, "deleting recorded rollups", Error::Code::kIo));
    }
    sqlite3_bind_int64(rows->get(), 1, id);
    sqlite3_bind_int64(rows->get(), 2, bucket);
    sqlite3_bind_int64(rows->get(), 3, bucket + kRollupBucketMs);
    Cell cell;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(rows->get())) == SQLITE_ROW) {
      cell.Add(ColumnValue(rows->get(), 0));
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db, "reading recorded samples", Error::Code::kIo));
    }
    return UpsertCells({{{id, bucket}, cell}}, {});
  }

  // REQUIRES: write_mu_ held.
  Result<uint64_t> RetentionLocked() {
    last_retention_ms_ = clock_.NowUnixMillis();
    if (options_.retention.count() <= 0) {
      return 0;
    }
    const int64_t cutoff = last_retention_ms_ - options_.retention.count();
    sqlite3* db = write_db_.get();
    auto transaction = Transaction::Begin(db);
    if (!transaction) {
      return Fail(transaction.error());
    }
    auto samples = Prepare(db, "DELETE FROM recorded_samples WHERE series_id = ?1 AND t_ms < ?2");
    auto rollups =
        Prepare(db, "DELETE FROM recorded_rollups WHERE series_id = ?1 AND bucket_ms < ?2");
    auto series = Prepare(db,
                          "DELETE FROM recorded_series WHERE id = ?1 AND NOT EXISTS (SELECT 1 "
                          "FROM recorded_samples WHERE series_id = ?1)");
    for (const auto* statement : {&samples, &rollups, &series}) {
      if (!*statement) {
        return Fail(statement->error());
      }
    }
    std::vector<int64_t> ids;
    {
      std::lock_guard lock(series_mu_);
      for (const auto& [id, labels] : series_) {
        ids.push_back(id);
      }
    }
    uint64_t deleted = 0;
    std::vector<int64_t> gone;
    for (const int64_t id : ids) {
      {
        ScopedReset reset(samples->get());
        sqlite3_bind_int64(samples->get(), 1, id);
        sqlite3_bind_int64(samples->get(), 2, cutoff);
        if (sqlite3_step(samples->get()) != SQLITE_DONE) {
          return Fail(SqliteError(db, "deleting recorded samples", Error::Code::kIo));
        }
      }
      const int changed = sqlite3_changes(db);
      if (changed == 0) {
        continue;
      }
      deleted += static_cast<uint64_t>(changed);
      {
        ScopedReset reset(rollups->get());
        sqlite3_bind_int64(rollups->get(), 1, id);
        sqlite3_bind_int64(rollups->get(), 2, BucketOf(cutoff));
        if (sqlite3_step(rollups->get()) != SQLITE_DONE) {
          return Fail(SqliteError(db, "deleting recorded rollups", Error::Code::kIo));
        }
      }
      // The hour the cutoff falls in lost some of its samples.
      if (auto status = RebuildBucket(id, BucketOf(cutoff)); !status) {
        return Fail(status.error());
      }
      ScopedReset reset(series->get());
      sqlite3_bind_int64(series->get(), 1, id);
      if (sqlite3_step(series->get()) != SQLITE_DONE) {
        return Fail(SqliteError(db, "deleting a recorded series", Error::Code::kIo));
      }
      if (sqlite3_changes(db) == 1) {
        gone.push_back(id);
      }
    }
    if (auto status = transaction->Commit(); !status) {
      return Fail(status.error());
    }
    std::lock_guard lock(series_mu_);
    for (const int64_t id : gone) {
      ids_.erase(series_[id]);
      series_.erase(id);
    }
    return deleted;
  }

  const RecordedStoreOptions options_;
  const Clock& clock_;
  std::mutex write_mu_;
  DbHandle write_db_;              // Guarded by write_mu_.
  int64_t last_retention_ms_ = 0;  // Guarded by write_mu_.
  mutable std::mutex read_mu_;
  DbHandle read_db_;                      // Guarded by read_mu_.
  mutable StatementHandle read_samples_;  // Guarded by read_mu_.
  mutable StatementHandle read_rollups_;  // Guarded by read_mu_.
  mutable std::mutex series_mu_;
  std::map<int64_t, Labels> series_;  // Guarded by series_mu_. id -> labels
  std::map<Labels, int64_t> ids_;     // Guarded by series_mu_.
};

// The store over its connections, with the stored series' labels read through `read_db`.
// `write_db` is null for a read-only store.
Result<std::unique_ptr<SqliteRecordedStore>> LoadStore(const RecordedStoreOptions& options,
                                                       const Clock& clock, DbHandle write_db,
                                                       DbHandle read_db) {
  std::map<int64_t, Labels> series;
  auto rows = Prepare(read_db.get(), "SELECT id, labels FROM recorded_series");
  if (!rows) {
    return Fail(rows.error());
  }
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(rows->get())) == SQLITE_ROW) {
    auto labels = DecodeLabels(ColumnText(rows->get(), 1));
    if (!labels) {
      return Fail(Error::Internal("database \"" + options.path +
                                  "\": a recorded series' labels: " + labels.error().message));
    }
    series.emplace(sqlite3_column_int64(rows->get(), 0), std::move(*labels));
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(read_db.get(), "reading recorded series", Error::Code::kIo));
  }
  rows->reset();
  return std::make_unique<SqliteRecordedStore>(options, clock, std::move(write_db),
                                               std::move(read_db), std::move(series));
}

}  // namespace

Result<std::unique_ptr<RecordedStore>> RecordedStore::Open(const RecordedStoreOptions& options,
                                                           const Clock& clock) {
  if (options.path.empty()) {
    return Fail(Error::InvalidArgument("storage path is empty"));
  }
  auto write_db =
      OpenDatabase(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  if (!write_db) {
    return Fail(write_db.error());
  }
  sqlite3_busy_timeout(write_db->get(), kBusyTimeoutMs);
  // As the alert-state connection: no fsync per commit, and checkpoints left to the probe
  // writer's connection (one here would run on the rule engine's thread).
  if (auto status = Exec(write_db->get(),
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                         "PRAGMA wal_autocheckpoint=0",
                         Error::Code::kIo);
      !status) {
    return Fail(status.error());
  }
  if (auto migrated = Migrate(write_db->get()); !migrated) {
    return Fail(Error::Internal("database \"" + options.path + "\": " + migrated.error().message));
  }
  auto read_db = OpenDatabase(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!read_db) {
    return Fail(read_db.error());
  }
  sqlite3_busy_timeout(read_db->get(), kBusyTimeoutMs);
  if (auto status = Exec(read_db->get(), "PRAGMA query_only=1", Error::Code::kIo); !status) {
    return Fail(status.error());
  }
  auto store = LoadStore(options, clock, std::move(*write_db), std::move(*read_db));
  if (!store) {
    return Fail(store.error());
  }
  return std::unique_ptr<RecordedStore>(std::move(*store));
}

Result<std::unique_ptr<SampleSource>> RecordedStore::OpenReadOnly(const std::string& path,
                                                                  const Clock& clock) {
  auto db = OpenCurrentReadOnly(path);
  if (!db) {
    return Fail(db.error());
  }
  RecordedStoreOptions options;
  options.path = path;
  options.retention = Millis(0);
  auto store = LoadStore(options, clock, nullptr, std::move(*db));
  if (!store) {
    return Fail(store.error());
  }
  return std::unique_ptr<SampleSource>(std::move(*store));
}

}  // namespace modelpulse::storage
