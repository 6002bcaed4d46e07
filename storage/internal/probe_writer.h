#ifndef MODELPULSE_STORAGE_INTERNAL_PROBE_WRITER_H_
#define MODELPULSE_STORAGE_INTERNAL_PROBE_WRITER_H_

// Private to storage/: the write side of the database (probe batches and retention deletes) on
// its own connection with its prepared statements.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/common.h"
#include "storage/internal/first_seen.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/sqlite.h"
#include "storage/internal/summary.h"

namespace modelpulse::storage {

// Where a retention pass has got to: it walks the targets one after another, so every delete is
// a seek into the (target_id, start_ms) key instead of a scan of the whole table.
struct RetentionPass {
  int64_t cutoff_ms = 0;  // rows with start_ms < cutoff_ms go
  std::vector<int64_t> target_ids;
  size_t next_target = 0;

  bool Done() const { return next_target >= target_ids.size(); }
};

// Owns the write connection. Not thread-safe: the store serialises every call.
class ProbeWriter {
 public:
  // REQUIRES: the schema of `db` is at LatestSchemaVersion().
  static Result<std::unique_ptr<ProbeWriter>> Create(DbHandle db);
  // Use Create(); public only for make_unique.
  ProbeWriter(DbHandle db, FirstSeenWriter first_seen)
      : db_(std::move(db)), first_seen_(std::move(first_seen)) {}
  ProbeWriter(const ProbeWriter&) = delete;
  ProbeWriter& operator=(const ProbeWriter&) = delete;
  ~ProbeWriter() = default;

  // Stores `rows` in one transaction: all of them or, on error, none.
  Status WriteBatch(std::span<const ProbeResult> rows);

  // Starts a pass that deletes rows older than `cutoff_ms`.
  Result<RetentionPass> StartRetention(int64_t cutoff_ms);
  // Deletes the probe summaries of buckets that end at or before `cutoff_ms` (their own
  // retention; raw rows' retention leaves them alone). One statement: they are few.
  Result<uint64_t> DeleteOldSummaries(int64_t cutoff_ms);
  // Deletes at most `limit` rows of `pass` in one transaction and advances it; returns how many.
  Result<uint64_t> RetentionStep(RetentionPass& pass, size_t limit);

  // Copies what the WAL holds into the database file without waiting for readers or writers
  // (SQLite's PASSIVE checkpoint), so the WAL is reused rather than grown. The write connection
  // checkpoints itself every 4000 pages it commits; the state connection's commits (alert
  // states and the outbox, on every rule evaluation) never do, so without probe writes the WAL
  // would only grow. At a clean stop the store asks for SQLITE_CHECKPOINT_TRUNCATE instead,
  // which does not wait for readers either (the connection's busy timeout is dropped): kUnavailable
  // when one holds the WAL.
  Status Checkpoint(int mode = SQLITE_CHECKPOINT_PASSIVE);

 private:
  struct TargetState {
    int64_t id = 0;
    std::string labels;  // encoded, as in targets.labels
    int64_t latest_ms = 0;
  };

  Result<TargetState*> Target(const ProbeResult& row, const std::string& encoded_labels);
  Result<int64_t> LabelSet(const std::string& encoded_labels);
  Status InsertRow(const ProbeResult& row, int64_t target_id, int64_t label_set_id, int64_t shape);

  DbHandle db_;
  StatementHandle insert_probe_;
  StatementHandle find_target_;
  StatementHandle insert_target_;
  StatementHandle update_target_labels_;
  StatementHandle find_label_set_;
  StatementHandle insert_label_set_;
  StatementHandle list_targets_;
  StatementHandle delete_old_;
  // Caches of what is committed; cleared when a batch rolls back, since the ids they hold may
  // have been rolled back with it.
  std::unordered_map<std::string, TargetState> targets_;
  std::unordered_map<std::string, int64_t> label_sets_;
  ShapeIds shapes_;
  SummaryCache summaries_;
  // The counter series' first-seen times (migration 12), with its cache of what is stored.
  FirstSeenWriter first_seen_;
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_PROBE_WRITER_H_
