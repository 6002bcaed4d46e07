#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "common/heartbeat.h"
#include "storage/internal/outbox.h"
#include "storage/internal/probe_reader.h"
#include "storage/internal/probe_writer.h"
#include "storage/internal/schema.h"
#include "storage/internal/sqlite.h"
#include "storage/storage.h"

namespace modelpulse::storage {
namespace {

// Long enough to ride out a retention transaction or a checkpoint by another connection (ours or
// an operator's sqlite3 shell), short enough that a stuck lock surfaces as an error.
constexpr int kBusyTimeoutMs = 5000;

Error OpenError(const std::string& path, const Error& cause) {
  return Error::Io("cannot open database \"" + path + "\": " + cause.message);
}

Status ConfigureWriteConnection(sqlite3* db, const std::string& path) {
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  auto mode = Prepare(db, "PRAGMA journal_mode=WAL");
  if (!mode) {
    return Fail(OpenError(path, mode.error()));
  }
  if (sqlite3_step(mode->get()) != SQLITE_ROW || ColumnText(mode->get(), 0) != "wal") {
    return Fail(OpenError(path, SqliteError(db, "cannot switch to WAL mode")));
  }
  // synchronous=NORMAL in WAL mode syncs the WAL only at checkpoints, not at every commit. A
  // committed transaction is in the WAL file (the OS page cache) as soon as COMMIT returns, so a
  // process crash, kill -9 included, never loses it; only a power loss or kernel crash can take
  // back the last transactions, and even then the database stays consistent. That is the trade
  // DESIGN.md section 5 asks for, at a fraction of the cost of an fsync per batch.
  if (auto status = Exec(db, "PRAGMA synchronous=NORMAL", Error::Code::kIo); !status) {
    return Fail(OpenError(path, status.error()));
  }
  // Rows of many targets interleave, so one batch dirties a few pages per target (a leaf split
  // mid-tree rewrites its siblings too): about a thousand WAL frames for 512 rows across 200
  // targets. The default of 1000 pages would checkpoint, with two fsyncs, after almost every
  // batch; 4000 pages (16 MB of WAL) measured about 1.4x the rows per second under load.
  if (auto status = Exec(db, "PRAGMA wal_autocheckpoint=4000", Error::Code::kIo); !status) {
    return Fail(OpenError(path, status.error()));
  }
  return {};
}

// Refuses a damaged file at start, where the operator can act on it, instead of failing every
// batch later. quick_check(1) skips the index-content cross-check of integrity_check and stops
// at the first problem; see bench/README.md for its cost on a large database.
Status CheckIntegrity(sqlite3* db, const std::string& path) {
  auto statement = Prepare(db, "PRAGMA quick_check(1)");
  if (!statement) {
    return Fail(OpenError(path, statement.error()));
  }
  if (sqlite3_step(statement->get()) != SQLITE_ROW) {
    return Fail(OpenError(path, SqliteError(db, "integrity check failed", Error::Code::kIo)));
  }
  const std::string verdict = ColumnText(statement->get(), 0);
  if (verdict != "ok") {
    return Fail(Error::Io(fmt::format("database \"{}\" is corrupt (quick_check: {}); {}", path,
                                      verdict, WhatToDoAbout(SQLITE_CORRUPT))));
  }
  return {};
}

// quick_check of a file too large to check before the daemon starts: on a read-only connection
// and a thread of its own, so probes are written meanwhile; interrupted when the store closes.
class BackgroundIntegrityCheck {
 public:
  using Integrity = StorageStats::Integrity;

  BackgroundIntegrityCheck(DbHandle db, std::string path, const Clock& clock)
      : db_(std::move(db)), path_(std::move(path)), clock_(clock) {
    // SQLite calls this every 10,000 virtual-machine steps; non-zero interrupts the check.
    sqlite3_progress_handler(
        db_.get(), 10000,
        [](void* stop) { return static_cast<std::atomic<bool>*>(stop)->load() ? 1 : 0; }, &stop_);
    thread_ = std::jthread([this] { Run(); });
  }
  BackgroundIntegrityCheck(const BackgroundIntegrityCheck&) = delete;
  BackgroundIntegrityCheck& operator=(const BackgroundIntegrityCheck&) = delete;
  ~BackgroundIntegrityCheck() {
    stop_ = true;
    thread_.join();
  }

  Integrity state() const { return state_.load(); }
  double seconds() const { return seconds_.load(); }

 private:
  void Run() {
    const auto start = clock_.MonotonicNow();
    Status status = CheckIntegrity(db_.get(), path_);
    seconds_ = std::chrono::duration<double>(clock_.MonotonicNow() - start).count();
    if (stop_) {
      return;  // interrupted by the store closing: no verdict
    }
    if (status) {
      spdlog::info("storage: background quick_check of \"{}\": ok in {:.1f} s", path_,
                   seconds_.load());
      state_ = Integrity::kOk;
    } else {
      spdlog::error("storage: background quick_check: {}", status.error().message);
      state_ = Integrity::kCorrupt;
    }
  }

  DbHandle db_;
  const std::string path_;
  const Clock& clock_;
  std::atomic<bool> stop_{false};
  std::atomic<Integrity> state_{Integrity::kChecking};
  std::atomic<double> seconds_{0};
  std::jthread thread_;  // last: started once every other member exists
};

// Which file a path names now. SQLite keeps writing to the file it opened, so a database
// deleted or replaced under the daemon would swallow every later row without an error.
struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileIdentity&) const = default;
};

std::optional<FileIdentity> IdentityOf(const std::string& path) {
  struct stat status {};
  if (stat(path.c_str(), &status) != 0) {
    return std::nullopt;
  }
  return FileIdentity{status.st_dev, status.st_ino};
}

// ProbeHistory's reads answered by a ProbeReader: what the store and the read-only history of
// Store::OpenHistoryReadOnly share.
template <typename Base>
class ReaderHistory : public Base {
 public:
  Result<std::vector<ProbeResult>> ReadProbes(std::string_view target, int64_t from_ms,
                                              int64_t to_ms) const override {
    return reader_->Read(target, from_ms, to_ms);
  }
  Result<std::vector<std::pair<std::string, Labels>>> Targets() const override {
    return reader_->Targets();
  }
  Result<std::vector<StoredTarget>> ListTargets() const override { return reader_->ListTargets(); }
  Result<std::vector<FieldPoint>> ReadField(int64_t target_id, ProbeField field, int64_t from_ms,
                                            int64_t to_ms) const override {
    return reader_->ReadField(target_id, field, from_ms, to_ms);
  }
  Result<std::vector<std::vector<FieldPoint>>> ReadFieldIn(
      int64_t target_id, ProbeField field,
      const std::vector<std::pair<int64_t, int64_t>>& intervals) const override {
    return reader_->ReadFieldIn(target_id, field, intervals);
  }
  Result<std::vector<FieldRollup>> ReadRollups(int64_t target_id, ProbeField field, int64_t from_ms,
                                               int64_t to_ms) const override {
    return reader_->ReadRollups(target_id, field, from_ms, to_ms);
  }
  Result<std::vector<RollupValues>> ReadRollupValues(int64_t target_id, ProbeField field,
                                                     int64_t from_ms,
                                                     int64_t to_ms) const override {
    return reader_->ReadRollupValues(target_id, field, from_ms, to_ms);
  }
  Status ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                           const std::function<void(const CounterPoint&)>& each) const override {
    return reader_->ScanCounterInputs(target_id, from_ms, to_ms, each);
  }
  Result<std::vector<CounterFirstSeen>> FirstSeenCounters(int64_t target_id) const override {
    return reader_->FirstSeenCounters(target_id);
  }
  Result<Labels> LabelSet(int64_t label_set_id) const override {
    return reader_->LabelSetOf(label_set_id);
  }

 protected:
  explicit ReaderHistory(std::unique_ptr<ProbeReader> reader) : reader_(std::move(reader)) {}

 private:
  std::unique_ptr<ProbeReader> reader_;  // thread-safe on its own
};

// Store::OpenHistoryReadOnly's history: the reader alone, no writer, state or outbox.
class ReadOnlyHistory final : public ReaderHistory<ProbeHistory> {
 public:
  explicit ReadOnlyHistory(std::unique_ptr<ProbeReader> reader)
      : ReaderHistory(std::move(reader)) {}
};

class SqliteStore final : public ReaderHistory<Store> {
 public:
  // `check_db`: a read-only connection for a background integrity check, or null when the file
  // was checked at open.
  SqliteStore(const StorageOptions& options, const Clock& clock, FileIdentity identity,
              std::unique_ptr<ProbeWriter> writer, std::unique_ptr<ProbeReader> reader,
              DbHandle state_db, DbHandle check_db)
      : ReaderHistory(std::move(reader)),
        options_(options),
        clock_(clock),
        identity_(identity),
        integrity_check_(check_db ? std::make_unique<BackgroundIntegrityCheck>(std::move(check_db),
                                                                               options.path, clock)
                                  : nullptr),
        state_db_(std::move(state_db)),
        writer_(std::move(writer)) {
    options_.batch_size = std::max<size_t>(options_.batch_size, 1);
    options_.retention_batch_rows = std::max<size_t>(options_.retention_batch_rows, 1);
    thread_ = std::jthread([this] { Run(); });
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  ~SqliteStore() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_all();
    thread_.join();
    // Everything into the database file and the WAL emptied: SQLite does this itself when the
    // last connection closes, but the daemon's last one may be a read-only reader (the status
    // page's), which cannot, and a stopped daemon's file is then incomplete without its -wal
    // (a copy misses rows; a reader who may not write the directory cannot open it).
    std::lock_guard db_lock(db_mu_);
    if (auto status = writer_->Checkpoint(SQLITE_CHECKPOINT_TRUNCATE); !status) {
      if (status.error().code == Error::Code::kUnavailable) {
        spdlog::info(
            "storage: a reader holds the database (a report or query beside the "
            "daemon), so its WAL stays until the next start");
      } else {
        spdlog::warn("storage: at stop: {}", status.error().ToString());
      }
    }
  }

  void Append(ProbeResult result) override {
    const auto now = clock_.MonotonicNow();
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= options_.max_queue) {
        ++stats_.rows_dropped;
        return;
      }
      queue_.push_back(Pending{std::move(result), now});
      ++accepted_;
      // Wake the writer when a batch is full, or when the queue stops being empty so that it
      // starts the flush_interval clock for this row.
      wake = queue_.size() == 1 || queue_.size() == options_.batch_size;
    }
    if (wake) {
      work_cv_.notify_one();
    }
  }

  Status Flush() override {
    std::unique_lock lock(mu_);
    const uint64_t target = accepted_;
    const uint64_t errors_before = stats_.write_errors;
    ++flush_waiters_;
    work_cv_.notify_one();
    done_cv_.wait(lock, [&] { return processed_ >= target; });
    --flush_waiters_;
    // The writer works in order, so any batch that failed while we waited held rows queued
    // before this call.
    if (stats_.write_errors > errors_before) {
      return Fail(last_error_);
    }
    return {};
  }

  Status PutState(std::string_view space, std::string_view key, std::string_view value) override {
    if (auto same = CheckSameFile(); !same) {
      return same;
    }
    std::lock_guard lock(state_mu_);
    auto statement = Prepare(state_db_.get(),
                             "INSERT OR REPLACE INTO state(namespace, key, value, updated_ms) "
                             "VALUES (?, ?, ?, ?)");
    if (!statement) {
      return Fail(statement.error());
    }
    BindText(statement->get(), 1, space);
    BindText(statement->get(), 2, key);
    sqlite3_bind_blob(statement->get(), 3, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(statement->get(), 4, clock_.NowUnixMillis());
    if (sqlite3_step(statement->get()) != SQLITE_DONE) {
      return Fail(SqliteError(state_db_.get(), "cannot save state", Error::Code::kIo));
    }
    return {};
  }

  Status DeleteState(std::string_view space, std::string_view key) override {
    if (auto same = CheckSameFile(); !same) {
      return same;
    }
    std::lock_guard lock(state_mu_);
    auto statement = Prepare(state_db_.get(), "DELETE FROM state WHERE namespace = ? AND key = ?");
    if (!statement) {
      return Fail(statement.error());
    }
    BindText(statement->get(), 1, space);
    BindText(statement->get(), 2, key);
    if (sqlite3_step(statement->get()) != SQLITE_DONE) {
      return Fail(SqliteError(state_db_.get(), "cannot delete state", Error::Code::kIo));
    }
    return {};
  }

  Result<std::vector<std::pair<std::string, std::string>>> GetStates(
      std::string_view space) const override {
    std::lock_guard lock(state_mu_);
    auto statement =
        Prepare(state_db_.get(), "SELECT key, value FROM state WHERE namespace = ? ORDER BY key");
    if (!statement) {
      return Fail(statement.error());
    }
    BindText(statement->get(), 1, space);
    std::vector<std::pair<std::string, std::string>> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(statement->get())) == SQLITE_ROW) {
      const auto* blob = static_cast<const char*>(sqlite3_column_blob(statement->get(), 1));
      const int size = sqlite3_column_bytes(statement->get(), 1);
      out.emplace_back(ColumnText(statement->get(), 0),
                       std::string(blob == nullptr ? "" : blob, static_cast<size_t>(size)));
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(state_db_.get(), "cannot read state", Error::Code::kIo));
    }
    return out;
  }

  Status CommitStateWithEvents(std::string_view space, std::string_view key,
                               std::optional<std::string_view> value,
                               const std::vector<std::string>& events) override {
    std::lock_guard lock(state_mu_);
    return storage::CommitStateWithEvents(state_db_.get(), clock_.NowUnixMillis(), space, key,
                                          value, events);
  }

  Result<std::vector<OutboxEvent>> ReadEvents(size_t limit) override {
    std::lock_guard lock(state_mu_);
    return ReadOutboxEvents(state_db_.get(), limit);
  }

  Result<std::vector<OutboxDelivery>> ReadDeliveries() override {
    std::lock_guard lock(state_mu_);
    return ReadOutboxDeliveries(state_db_.get());
  }

  Result<std::vector<int64_t>> ApplyOutboxChange(const OutboxChange& change) override {
    std::lock_guard lock(state_mu_);
    return storage::ApplyOutboxChange(state_db_.get(), clock_.NowUnixMillis(), change);
  }

  Result<uint64_t> ApplyRetention() override {
    if (options_.retention.count() <= 0) {
      return 0;
    }
    auto pass = StartRetention();
    if (!pass) {
      return Fail(pass.error());
    }
    uint64_t total = 0;
    while (!pass->Done()) {
      // Each step takes the write connection for one small transaction only, so the writer
      // thread's batches interleave with a long pass.
      auto deleted = RetentionStep(*pass);
      if (!deleted) {
        return Fail(deleted.error());
      }
      total += *deleted;
    }
    Checkpoint();
    return total;
  }

  StorageStats Stats() const override {
    std::lock_guard lock(mu_);
    StorageStats stats = stats_;
    stats.queue_depth = queue_.size();
    if (integrity_check_) {
      stats.integrity = integrity_check_->state();
      stats.integrity_check_seconds = integrity_check_->seconds();
    }
    return stats;
  }

 private:
  struct Pending {
    ProbeResult row;
    Clock::MonotonicTime queued_at;
  };

  // On the retention timer (every minute by default), whether or not rows were deleted.
  void Checkpoint() {
    std::lock_guard db_lock(db_mu_);
    if (auto status = writer_->Checkpoint(); !status) {
      spdlog::warn("storage: {}", status.error().ToString());
    }
  }

  Result<RetentionPass> StartRetention() {
    const int64_t now = clock_.NowUnixMillis();
    const int64_t cutoff = now - options_.retention.count();
    Result<uint64_t> summaries_deleted = 0;
    Result<RetentionPass> pass = RetentionPass{};
    {
      std::lock_guard db_lock(db_mu_);
      if (options_.summary_retention.count() > 0) {
        // Never before the rows go: a report reads summaries where it has no rows.
        const int64_t keep =
            std::max(options_.summary_retention.count(), options_.retention.count());
        summaries_deleted = writer_->DeleteOldSummaries(now - keep);
      }
      if (summaries_deleted) {
        pass = writer_->StartRetention(cutoff);
      }
    }
    if (!summaries_deleted) {
      return Fail(summaries_deleted.error());
    }
    std::lock_guard lock(mu_);
    stats_.summaries_deleted_by_retention += *summaries_deleted;
    return pass;
  }

  Result<uint64_t> RetentionStep(RetentionPass& pass) {
    Result<uint64_t> deleted = 0;
    {
      std::lock_guard db_lock(db_mu_);
      deleted = writer_->RetentionStep(pass, options_.retention_batch_rows);
    }
    std::lock_guard lock(mu_);
    if (!deleted) {
      ++stats_.write_errors;
      last_error_ = deleted.error();
    } else if (*deleted > 0) {
      stats_.rows_deleted_by_retention += *deleted;
      ++stats_.retention_batches;
    }
    return deleted;
  }

  // Fails once the path no longer names the file the store opened (deleted, or replaced by a
  // restore): writes would land in a file nobody will read again.
  Status CheckSameFile() const {
    if (IdentityOf(options_.path) == identity_) {
      return {};
    }
    return Fail(Error::Io(fmt::format(
        "database file \"{}\" was deleted or replaced while modelpulse ran; restart modelpulse "
        "to open the file now at that path (until then no probe is stored)",
        options_.path)));
  }

  void CommitBatch(std::vector<ProbeResult>& batch) {
    const auto started = clock_.MonotonicNow();
    Status status = CheckSameFile();
    if (status) {
      std::lock_guard db_lock(db_mu_);
      status = writer_->WriteBatch(batch);
    }
    const double seconds = std::chrono::duration<double>(clock_.MonotonicNow() - started).count();
    bool changed = false;  // log once per change of state or of error, not once per batch
    {
      std::lock_guard lock(mu_);
      processed_ += batch.size();
      if (status) {
        stats_.rows_written += batch.size();
        ++stats_.batches_written;
        stats_.last_batch_seconds = seconds;
        changed = !stats_.writable;
        stats_.writable = true;
      } else {
        // The rows are dropped rather than retried: a batch that failed once (disk full, I/O
        // error) would most likely fail again while the queue behind it overflows.
        ++stats_.write_errors;
        stats_.rows_failed += batch.size();
        changed = stats_.writable || last_error_.message != status.error().message;
        stats_.writable = false;
        last_error_ = status.error();
      }
    }
    if (!status) {
      if (changed) {
        spdlog::error("storage: dropped a batch of {} probes: {}", batch.size(),
                      status.error().ToString());
      } else {
        spdlog::debug("storage: dropped a batch of {} probes: {}", batch.size(),
                      status.error().ToString());
      }
    } else if (changed) {
      spdlog::info("storage: writes succeed again");
    }
    done_cv_.notify_all();
    batch.clear();
  }

  void Run() {
    const bool retention_enabled =
        options_.retention.count() > 0 && options_.retention_interval.count() > 0;
    auto next_retention = clock_.MonotonicNow() + options_.retention_interval;
    std::optional<RetentionPass> pass;
    std::vector<ProbeResult> batch;
    batch.reserve(std::min<size_t>(options_.batch_size, 4096));
    while (true) {
      bool retention_due = false;
      {
        std::unique_lock lock(mu_);
        while (true) {
          const auto now = clock_.MonotonicNow();
          const bool ready =
              !queue_.empty() &&
              (stopping_ || flush_waiters_ > 0 || queue_.size() >= options_.batch_size ||
               now >= queue_.front().queued_at + options_.flush_interval);
          retention_due =
              retention_enabled && !stopping_ && (pass.has_value() || now >= next_retention);
          if (ready) {
            const size_t take = std::min(queue_.size(), options_.batch_size);
            for (size_t i = 0; i < take; ++i) {
              batch.push_back(std::move(queue_.front().row));
              queue_.pop_front();
            }
            break;
          }
          if (stopping_) {
            return;  // the queue is empty: everything accepted is committed or counted
          }
          if (retention_due) {
            break;
          }
          auto deadline = retention_enabled ? next_retention : Clock::MonotonicTime::max();
          if (!queue_.empty()) {
            deadline = std::min(deadline, queue_.front().queued_at + options_.flush_interval);
          }
          IdleIfWatched(options_.heartbeat);
          if (deadline == Clock::MonotonicTime::max()) {
            work_cv_.wait(lock);  // nothing timed: sleep until Append, Flush or shutdown
          } else {
            clock_.WaitUntil(work_cv_, lock, deadline);
          }
        }
      }
      BeatIfWatched(options_.heartbeat);
      if (!batch.empty()) {
        CommitBatch(batch);
      }
      // One retention transaction per round at most, after the writes: a long pass never holds
      // back a full batch for more than one small delete.
      if (retention_due) {
        if (!pass) {
          auto started = StartRetention();
          if (started) {
            pass = std::move(*started);
          } else {
            spdlog::error("storage: retention failed: {}", started.error().ToString());
          }
        }
        if (pass) {
          auto deleted = RetentionStep(*pass);
          if (!deleted) {
            spdlog::error("storage: retention failed: {}", deleted.error().ToString());
          }
          if (!deleted || pass->Done()) {
            pass.reset();
            Checkpoint();
            next_retention = clock_.MonotonicNow() + options_.retention_interval;
          }
        } else {
          next_retention = clock_.MonotonicNow() + options_.retention_interval;
        }
      }
    }
  }

  StorageOptions options_;
  const Clock& clock_;
  const FileIdentity identity_;  // of the file opened, for CheckSameFile
  const std::unique_ptr<BackgroundIntegrityCheck> integrity_check_;  // null: checked at open

  // A connection of its own for state documents, so a synchronous save never waits behind the
  // probe writer's queue. Guarded by state_mu_.
  mutable std::mutex state_mu_;
  DbHandle state_db_;

  std::mutex db_mu_;                     // serialises use of the write connection
  std::unique_ptr<ProbeWriter> writer_;  // Guarded by db_mu_.

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // wakes the writer thread
  std::condition_variable done_cv_;  // wakes Flush callers after each batch
  std::deque<Pending> queue_;        // Guarded by mu_.
  uint64_t accepted_ = 0;            // Guarded by mu_. Rows ever queued.
  uint64_t processed_ = 0;           // Guarded by mu_. Rows committed or failed.
  size_t flush_waiters_ = 0;         // Guarded by mu_.
  bool stopping_ = false;            // Guarded by mu_.
  Error last_error_;                 // Guarded by mu_.
  StorageStats stats_;               // Guarded by mu_. queue_depth is filled in by Stats().

  std::jthread thread_;  // last: started once every other member exists
};

}  // namespace

Result<std::vector<std::vector<FieldPoint>>> ProbeHistory::ReadFieldIn(
    int64_t target_id, ProbeField field,
    const std::vector<std::pair<int64_t, int64_t>>& intervals) const {
  std::vector<std::vector<FieldPoint>> out;
  out.reserve(intervals.size());
  for (const auto& [from_ms, to_ms] : intervals) {
    auto points = ReadField(target_id, field, from_ms, to_ms);
    if (!points) {
      return Fail(points.error());
    }
    out.push_back(std::move(*points));
  }
  return out;
}

Result<std::unique_ptr<ProbeHistory>> Store::OpenHistoryReadOnly(const std::string& path) {
  auto db = OpenCurrentReadOnly(path);
  if (!db) {
    return Fail(db.error());
  }
  auto reader = ProbeReader::Create(std::move(*db));
  if (!reader) {
    return Fail(reader.error());
  }
  return std::unique_ptr<ProbeHistory>(std::make_unique<ReadOnlyHistory>(std::move(*reader)));
}

Result<std::unique_ptr<Store>> Store::Open(const StorageOptions& options, const Clock& clock) {
  if (options.path.empty()) {
    return Fail(Error::InvalidArgument("storage path is empty"));
  }
  auto write_db =
      OpenDatabase(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  if (!write_db) {
    return Fail(write_db.error());
  }
  if (auto status = ConfigureWriteConnection(write_db->get(), options.path); !status) {
    return Fail(status.error());
  }
  std::error_code size_error;
  const auto size = std::filesystem::file_size(options.path, size_error);
  DbHandle check_db;
  if (!size_error && size > options.integrity_check_max_bytes) {
    auto opened = OpenDatabase(options.path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
    if (!opened) {
      return Fail(opened.error());
    }
    check_db = std::move(*opened);
    spdlog::info(
        "storage: database \"{}\" is {} MB, over the {} MB checked before start: checking it "
        "in the background (not ready if it is corrupt)",
        options.path, size >> 20, options.integrity_check_max_bytes >> 20);
  } else if (auto status = CheckIntegrity(write_db->get(), options.path); !status) {
    return Fail(status.error());
  }
  const auto identity = IdentityOf(options.path);
  if (!identity) {
    return Fail(Error::Io("database \"" + options.path + "\" vanished while it was opened"));
  }
  if (auto migrated = Migrate(write_db->get()); !migrated) {
    return Fail(Error::Internal("database \"" + options.path + "\": " + migrated.error().message));
  }

  auto read_db = OpenDatabase(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!read_db) {
    return Fail(read_db.error());
  }
  sqlite3_busy_timeout(read_db->get(), kBusyTimeoutMs);
  // A guard against a future bug rather than a permission: this connection must never write.
  if (auto status = Exec(read_db->get(), "PRAGMA query_only=1", Error::Code::kIo); !status) {
    return Fail(OpenError(options.path, status.error()));
  }

  auto writer = ProbeWriter::Create(std::move(*write_db));
  if (!writer) {
    return Fail(writer.error());
  }
  auto reader = ProbeReader::Create(std::move(*read_db));
  if (!reader) {
    return Fail(reader.error());
  }
  auto state_db = OpenDatabase(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!state_db) {
    return Fail(state_db.error());
  }
  sqlite3_busy_timeout(state_db->get(), kBusyTimeoutMs);
  // As for the probe rows (ConfigureWriteConnection): a committed state survives kill -9 without
  // an fsync per save; the rule engine saves every group on every evaluation. Checkpoints are
  // left to the writer's connection: one here would run on the rule engine's thread, which then
  // waits some 100 ms copying the probe writer's WAL pages (rules_bench saw every third cycle
  // take 3x as long).
  if (auto status = Exec(state_db->get(), "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0",
                         Error::Code::kIo);
      !status) {
    return Fail(OpenError(options.path, status.error()));
  }
  return std::make_unique<SqliteStore>(options, clock, *identity, std::move(*writer),
                                       std::move(*reader), std::move(*state_db),
                                       std::move(check_db));
}

}  // namespace modelpulse::storage
