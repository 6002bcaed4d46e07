#include "storage/internal/probe_writer.h"

#include <limits>
#include <utility>

#include "storage/internal/label_codec.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/rollup.h"
#include "storage/internal/summary.h"

namespace modelpulse::storage {
namespace {

// The IN (subquery) with LIMIT bounds each transaction without relying on SQLite's optional
// DELETE ... LIMIT; both sides are seeks into the primary key.
constexpr std::string_view kDeleteOld = R"sql(
DELETE FROM probe_rows WHERE (target_id, start_ms, seq) IN (
  SELECT target_id, start_ms, seq FROM probe_rows
  WHERE target_id = ?1 AND start_ms < ?2 ORDER BY start_ms, seq LIMIT ?3))sql";

Error StepError(sqlite3* db, std::string_view what) {
  return SqliteError(db, what, Error::Code::kIo);
}

}  // namespace

Result<std::unique_ptr<ProbeWriter>> ProbeWriter::Create(DbHandle db) {
  auto first_seen = FirstSeenWriter::Create(db.get());
  if (!first_seen) {
    return Fail(first_seen.error());
  }
  auto writer = std::make_unique<ProbeWriter>(std::move(db), std::move(*first_seen));
  sqlite3* raw = writer->db_.get();
  struct Entry {
    StatementHandle* slot;
    std::string_view sql;
  };
  const Entry entries[] = {
      {&writer->insert_probe_, kInsertProbeRowSql},
      {&writer->find_target_,
       "SELECT id, labels, (SELECT MAX(start_ms) FROM probe_rows WHERE target_id = targets.id) "
       "FROM targets WHERE name = ?1"},
      {&writer->insert_target_, "INSERT INTO targets (name, labels) VALUES (?1, ?2)"},
      {&writer->update_target_labels_, "UPDATE targets SET labels = ?2 WHERE id = ?1"},
      {&writer->find_label_set_, "SELECT id FROM label_sets WHERE labels = ?1"},
      {&writer->insert_label_set_, "INSERT INTO label_sets (labels) VALUES (?1)"},
      {&writer->list_targets_, "SELECT id FROM targets ORDER BY id"},
      {&writer->delete_old_, kDeleteOld},
  };
  for (const Entry& entry : entries) {
    auto statement = Prepare(raw, entry.sql);
    if (!statement) {
      return Fail(statement.error());
    }
    *entry.slot = std::move(*statement);
  }
  return writer;
}

Result<ProbeWriter::TargetState*> ProbeWriter::Target(const ProbeResult& row,
                                                      const std::string& encoded_labels) {
  if (auto it = targets_.find(row.target); it != targets_.end()) {
    return &it->second;
  }
  TargetState state;
  sqlite3_stmt* find = find_target_.get();
  {
    ScopedReset reset(find);
    BindText(find, 1, row.target);
    const int rc = sqlite3_step(find);
    if (rc == SQLITE_ROW) {
      state.id = sqlite3_column_int64(find, 0);
      state.labels = ColumnText(find, 1);
      state.latest_ms = ColumnOptionalInt(find, 2).value_or(std::numeric_limits<int64_t>::min());
    } else if (rc != SQLITE_DONE) {
      return Fail(StepError(db_.get(), "looking up target"));
    } else {
      sqlite3_stmt* insert = insert_target_.get();
      ScopedReset reset_insert(insert);
      BindText(insert, 1, row.target);
      BindText(insert, 2, encoded_labels);
      if (sqlite3_step(insert) != SQLITE_DONE) {
        return Fail(StepError(db_.get(), "inserting target"));
      }
      state.id = sqlite3_last_insert_rowid(db_.get());
      state.labels = encoded_labels;
      state.latest_ms = std::numeric_limits<int64_t>::min();
    }
  }
  return &targets_.emplace(row.target, std::move(state)).first->second;
}

Result<int64_t> ProbeWriter::LabelSet(const std::string& encoded_labels) {
  if (auto it = label_sets_.find(encoded_labels); it != label_sets_.end()) {
    return it->second;
  }
  int64_t id = 0;
  sqlite3_stmt* find = find_label_set_.get();
  ScopedReset reset(find);
  BindText(find, 1, encoded_labels);
  const int rc = sqlite3_step(find);
  if (rc == SQLITE_ROW) {
    id = sqlite3_column_int64(find, 0);
  } else if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "looking up label set"));
  } else {
    sqlite3_stmt* insert = insert_label_set_.get();
    ScopedReset reset_insert(insert);
    BindText(insert, 1, encoded_labels);
    if (sqlite3_step(insert) != SQLITE_DONE) {
      return Fail(StepError(db_.get(), "inserting label set"));
    }
    id = sqlite3_last_insert_rowid(db_.get());
  }
  label_sets_.emplace(encoded_labels, id);
  return id;
}

Status ProbeWriter::InsertRow(const ProbeResult& row, int64_t target_id, int64_t label_set_id,
                              int64_t shape) {
  sqlite3_stmt* s = insert_probe_.get();
  ScopedReset reset(s);
  sqlite3_bind_int64(s, 1, target_id);
  sqlite3_bind_int64(s, 2, row.start_unix_ms);
  sqlite3_bind_int64(s, 3, label_set_id);
  sqlite3_bind_int64(s, 4, shape);
  BindProbeRow(s, row);
  if (sqlite3_step(s) != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "inserting probe"));
  }
  return {};
}

Status ProbeWriter::WriteBatch(std::span<const ProbeResult> rows) {
  auto transaction = Transaction::Begin(db_.get());
  if (!transaction) {
    return Fail(transaction.error());
  }
  // The caches may take ids from this transaction; forget them unless it commits.
  bool committed = false;
  struct CacheGuard {
    ProbeWriter* writer;
    const bool* committed;
    ~CacheGuard() {
      if (!*committed) {
        writer->targets_.clear();
        writer->label_sets_.clear();
        writer->shapes_.Forget();
        writer->summaries_.clear();
        writer->first_seen_.ClearCache();
      }
    }
  } guard{this, &committed};

  std::string encoded;
  // The rows' hourly rollups, added to the table in the same transaction (migration 3).
  RollupCells cells;
  // And the rows' hourly and daily summaries (migration 9).
  std::vector<SummaryProbe> summary_probes;
  summary_probes.reserve(rows.size());
  // And when each counter series was first moved (migration 12).
  FirstSeenCells first_seen;
  for (const ProbeResult& row : rows) {
    encoded = EncodeLabels(row.labels);
    auto target = Target(row, encoded);
    if (!target) {
      return Fail(target.error());
    }
    auto label_set = LabelSet(encoded);
    if (!label_set) {
      return Fail(label_set.error());
    }
    TargetState& state = **target;
    // targets.labels follows the newest probe by start time, not by arrival.
    if (row.start_unix_ms >= state.latest_ms) {
      state.latest_ms = row.start_unix_ms;
      if (state.labels != encoded) {
        sqlite3_stmt* update = update_target_labels_.get();
        ScopedReset reset(update);
        sqlite3_bind_int64(update, 1, state.id);
        BindText(update, 2, encoded);
        if (sqlite3_step(update) != SQLITE_DONE) {
          return Fail(StepError(db_.get(), "updating target labels"));
        }
        state.labels = encoded;
      }
    }
    auto shape = shapes_.Id(db_.get(), state.id, ShapeOf(row));
    if (!shape) {
      return Fail(shape.error());
    }
    if (auto status = InsertRow(row, state.id, *label_set, *shape); !status) {
      return Fail(status.error());
    }
    // The stored values, so that these rollups equal a rebuild from the rows.
    const ColumnValues stored = ColumnsOfProbe(AsStored(row));
    AddRow(cells, state.id, row.start_unix_ms, *label_set, stored);
    // The columns are the probe numbers in their order (rollup.h), as the reader decodes them.
    AddFirstSeen(first_seen, state.id, *label_set, stored, row.start_unix_ms);
    summary_probes.push_back({state.id, row.start_unix_ms, row.outcome, stored[kTtftColumn],
                              stored[kTotalColumn].value_or(0), stored[kTokensPerSecondColumn]});
  }
  if (auto status = UpsertRollups(db_.get(), cells); !status) {
    return Fail(status.error());
  }
  if (auto status = UpdateSummaries(db_.get(), summary_probes, &summaries_); !status) {
    return Fail(status.error());
  }
  if (auto status = first_seen_.Upsert(db_.get(), first_seen); !status) {
    return Fail(status.error());
  }
  if (auto status = transaction->Commit(); !status) {
    return Fail(status.error());
  }
  committed = true;
  return {};
}

Status ProbeWriter::Checkpoint(int mode) {
  if (mode != SQLITE_CHECKPOINT_PASSIVE) {
    // Only at a stop, which must not wait for a reader beside the daemon (a long `report`): a
    // busy WAL is left to the next start, which replays it.
    sqlite3_busy_timeout(db_.get(), 0);
  }
  int wal_frames = 0;
  int copied_frames = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, mode, &wal_frames, &copied_frames);
  if (rc == SQLITE_BUSY) {
    return Fail(Error::Unavailable("a reader holds the database"));
  }
  if (rc != SQLITE_OK) {
    return Fail(StepError(db_.get(), "checkpointing the WAL"));
  }
  return {};
}

Result<RetentionPass> ProbeWriter::StartRetention(int64_t cutoff_ms) {
  RetentionPass pass;
  pass.cutoff_ms = cutoff_ms;
  sqlite3_stmt* list = list_targets_.get();
  ScopedReset reset(list);
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(list)) == SQLITE_ROW) {
    pass.target_ids.push_back(sqlite3_column_int64(list, 0));
  }
  if (rc != SQLITE_DONE) {
    return Fail(StepError(db_.get(), "listing targets for retention"));
  }
  return pass;
}

Result<uint64_t> ProbeWriter::DeleteOldSummaries(int64_t cutoff_ms) {
  auto deleted = DeleteSummariesBefore(db_.get(), cutoff_ms);
  if (!deleted || *deleted > 0) {
    summaries_.clear();  // it may hold a bucket that is gone now
  }
  return deleted;
}

Result<uint64_t> ProbeWriter::RetentionStep(RetentionPass& pass, size_t limit) {
  auto transaction = Transaction::Begin(db_.get());
  if (!transaction) {
    return Fail(transaction.error());
  }
  uint64_t deleted = 0;
  bool trimmed_first_seen = false;
  size_t next_target = pass.next_target;
  sqlite3_stmt* s = delete_old_.get();
  // Fills one transaction across targets, so a pass over many small targets is not many tiny
  // transactions; a target is finished once it yields fewer rows than were asked for.
  while (next_target < pass.target_ids.size() && deleted < limit) {
    const uint64_t want = limit - deleted;
    ScopedReset reset(s);
    sqlite3_bind_int64(s, 1, pass.target_ids[next_target]);
    sqlite3_bind_int64(s, 2, pass.cutoff_ms);
    sqlite3_bind_int64(s, 3, static_cast<int64_t>(want));
    if (sqlite3_step(s) != SQLITE_DONE) {
      return Fail(StepError(db_.get(), "deleting old probes"));
    }
    const auto changed = static_cast<uint64_t>(sqlite3_changes64(db_.get()));
    deleted += changed;
    if (changed > 0) {
      // In the same transaction, so a reader never sees rollups of rows that are gone.
      if (auto status = TrimRollups(db_.get(), pass.target_ids[next_target]); !status) {
        return Fail(status.error());
      }
      auto trimmed = TrimFirstSeen(db_.get(), pass.target_ids[next_target]);
      if (!trimmed) {
        return Fail(trimmed.error());
      }
      trimmed_first_seen = trimmed_first_seen || *trimmed;
    }
    if (changed < want) {
      ++next_target;
    }
  }
  if (auto status = transaction->Commit(); !status) {
    first_seen_.ClearCache();  // it may have been trimmed and rolled back: either way unknown
    return Fail(status.error());
  }
  if (trimmed_first_seen) {
    // The writer's cache would skip a probe now older than a repaired row's time.
    first_seen_.ClearCache();
  }
  pass.next_target = next_target;
  return deleted;
}

}  // namespace modelpulse::storage
