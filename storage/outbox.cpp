#include "storage/internal/outbox.h"

#include "common/alert_event.h"
#include "storage/internal/label_codec.h"
#include "storage/internal/sqlite.h"

namespace modelpulse::storage {
namespace {

void BindBlob(sqlite3_stmt* statement, int index, std::string_view value) {
  sqlite3_bind_blob(statement, index, value.data(), static_cast<int>(value.size()),
                    SQLITE_TRANSIENT);
}

std::string ColumnBlob(sqlite3_stmt* statement, int index) {
  const auto* blob = static_cast<const char*>(sqlite3_column_blob(statement, index));
  const int size = sqlite3_column_bytes(statement, index);
  return std::string(blob == nullptr ? "" : blob, static_cast<size_t>(size));
}

Status StepDone(sqlite3* db, sqlite3_stmt* statement, std::string_view what) {
  if (sqlite3_step(statement) != SQLITE_DONE) {
    return Fail(SqliteError(db, what, Error::Code::kIo));
  }
  return {};
}

Status WriteState(sqlite3* db, int64_t now_ms, std::string_view space, std::string_view key,
                  std::optional<std::string_view> value) {
  auto statement = value
                       ? Prepare(db,
                                 "INSERT OR REPLACE INTO state(namespace, key, value, updated_ms) "
                                 "VALUES (?, ?, ?, ?)")
                       : Prepare(db, "DELETE FROM state WHERE namespace = ? AND key = ?");
  if (!statement) {
    return Fail(statement.error());
  }
  BindText(statement->get(), 1, space);
  BindText(statement->get(), 2, key);
  if (value) {
    BindBlob(statement->get(), 3, *value);
    sqlite3_bind_int64(statement->get(), 4, now_ms);
  }
  return StepDone(db, statement->get(), "cannot save state");
}

}  // namespace

Status CommitStateWithEvents(sqlite3* db, int64_t now_ms, std::string_view space,
                             std::string_view key, std::optional<std::string_view> value,
                             const std::vector<std::string>& events) {
  auto transaction = Transaction::Begin(db);
  if (!transaction) {
    return Fail(transaction.error());
  }
  if (auto status = WriteState(db, now_ms, space, key, value); !status) {
    return status;
  }
  auto insert = Prepare(db, "INSERT INTO alert_events(created_ms, body) VALUES (?, ?)");
  if (!insert) {
    return Fail(insert.error());
  }
  for (const std::string& event : events) {
    ScopedReset reset(insert->get());
    sqlite3_bind_int64(insert->get(), 1, now_ms);
    BindBlob(insert->get(), 2, event);
    if (auto status = StepDone(db, insert->get(), "cannot queue alert event"); !status) {
      return status;
    }
    if (auto status = RecordAlertHistory(db, now_ms, event); !status) {
      return status;
    }
  }
  return transaction->Commit();
}

Status RecordAlertHistory(sqlite3* db, int64_t now_ms, std::string_view event) {
  auto decoded = DecodeAlertEvent(event);
  if (!decoded) {
    return {};  // not ours to judge: the outbox delivers it as it is; history keeps only events
  }
  auto upsert = Prepare(db, R"sql(
INSERT INTO alert_history (labels, starts_ms, ends_ms, resolved, updated_ms, body)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (labels, starts_ms) DO UPDATE SET
  ends_ms = excluded.ends_ms, resolved = excluded.resolved, updated_ms = excluded.updated_ms,
  body = excluded.body
WHERE alert_history.resolved = 0)sql");
  if (!upsert) {
    return Fail(upsert.error());
  }
  sqlite3_stmt* s = upsert->get();
  BindText(s, 1, EncodeLabels(decoded->labels));
  sqlite3_bind_int64(s, 2, decoded->starts_at_ms);
  sqlite3_bind_int64(s, 3, decoded->ends_at_ms);
  sqlite3_bind_int(s, 4, decoded->resolved ? 1 : 0);
  sqlite3_bind_int64(s, 5, now_ms);
  BindBlob(s, 6, event);
  return StepDone(db, s, "cannot record alert history");
}

Result<std::vector<OutboxEvent>> ReadOutboxEvents(sqlite3* db, size_t limit) {
  auto statement = Prepare(db, "SELECT id, created_ms, body FROM alert_events ORDER BY id LIMIT ?");
  if (!statement) {
    return Fail(statement.error());
  }
  sqlite3_bind_int64(statement->get(), 1, static_cast<int64_t>(limit));
  std::vector<OutboxEvent> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(statement->get())) == SQLITE_ROW) {
    out.push_back({sqlite3_column_int64(statement->get(), 0),
                   sqlite3_column_int64(statement->get(), 1), ColumnBlob(statement->get(), 2)});
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "cannot read alert events", Error::Code::kIo));
  }
  return out;
}

Result<std::vector<OutboxDelivery>> ReadOutboxDeliveries(sqlite3* db) {
  auto statement = Prepare(db,
                           "SELECT id, destination, group_key, idempotency_key, body, created_ms, "
                           "attempts, next_attempt_ms FROM notifications ORDER BY id");
  if (!statement) {
    return Fail(statement.error());
  }
  std::vector<OutboxDelivery> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(statement->get())) == SQLITE_ROW) {
    sqlite3_stmt* s = statement->get();
    out.push_back({sqlite3_column_int64(s, 0), ColumnText(s, 1), ColumnText(s, 2), ColumnText(s, 3),
                   ColumnBlob(s, 4), sqlite3_column_int64(s, 5), sqlite3_column_int64(s, 6),
                   sqlite3_column_int64(s, 7)});
  }
  if (rc != SQLITE_DONE) {
    return Fail(SqliteError(db, "cannot read notifications", Error::Code::kIo));
  }
  return out;
}

Result<std::vector<int64_t>> ApplyOutboxChange(sqlite3* db, int64_t now_ms,
                                               const OutboxChange& change) {
  auto transaction = Transaction::Begin(db);
  if (!transaction) {
    return Fail(transaction.error());
  }
  if (change.consume_events_through > 0) {
    auto consume = Prepare(db, "DELETE FROM alert_events WHERE id <= ?");
    if (!consume) {
      return Fail(consume.error());
    }
    sqlite3_bind_int64(consume->get(), 1, change.consume_events_through);
    if (auto status = StepDone(db, consume->get(), "cannot consume alert events"); !status) {
      return Fail(status.error());
    }
  }
  std::vector<int64_t> ids;
  if (!change.insert.empty()) {
    auto insert = Prepare(db,
                          "INSERT INTO notifications(destination, group_key, idempotency_key, "
                          "body, created_ms, attempts, next_attempt_ms) VALUES (?,?,?,?,?,?,?)");
    if (!insert) {
      return Fail(insert.error());
    }
    for (const OutboxDelivery& d : change.insert) {
      ScopedReset reset(insert->get());
      BindText(insert->get(), 1, d.destination);
      BindText(insert->get(), 2, d.group_key);
      BindText(insert->get(), 3, d.idempotency_key);
      BindBlob(insert->get(), 4, d.body);
      sqlite3_bind_int64(insert->get(), 5, d.created_ms);
      sqlite3_bind_int64(insert->get(), 6, d.attempts);
      sqlite3_bind_int64(insert->get(), 7, d.next_attempt_ms);
      if (auto status = StepDone(db, insert->get(), "cannot queue notification"); !status) {
        return Fail(status.error());
      }
      ids.push_back(sqlite3_last_insert_rowid(db));
    }
  }
  if (!change.update.empty()) {
    auto update =
        Prepare(db, "UPDATE notifications SET attempts = ?, next_attempt_ms = ? WHERE id = ?");
    if (!update) {
      return Fail(update.error());
    }
    for (const OutboxDelivery& d : change.update) {
      ScopedReset reset(update->get());
      sqlite3_bind_int64(update->get(), 1, d.attempts);
      sqlite3_bind_int64(update->get(), 2, d.next_attempt_ms);
      sqlite3_bind_int64(update->get(), 3, d.id);
      if (auto status = StepDone(db, update->get(), "cannot update notification"); !status) {
        return Fail(status.error());
      }
    }
  }
  if (!change.remove.empty()) {
    auto remove = Prepare(db, "DELETE FROM notifications WHERE id = ?");
    if (!remove) {
      return Fail(remove.error());
    }
    for (int64_t id : change.remove) {
      ScopedReset reset(remove->get());
      sqlite3_bind_int64(remove->get(), 1, id);
      if (auto status = StepDone(db, remove->get(), "cannot delete notification"); !status) {
        return Fail(status.error());
      }
    }
  }
  for (const auto& [key, value] : change.states) {
    std::optional<std::string_view> view;
    if (value) {
      view = *value;
    }
    if (auto status = WriteState(db, now_ms, change.state_space, key, view); !status) {
      return Fail(status.error());
    }
  }
  if (auto status = transaction->Commit(); !status) {
    return Fail(status.error());
  }
  return ids;
}

}  // namespace modelpulse::storage
