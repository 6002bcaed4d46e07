#ifndef MODELPULSE_STORAGE_INTERNAL_SQLITE_H_
#define MODELPULSE_STORAGE_INTERNAL_SQLITE_H_

// Private to storage/: thin RAII over the SQLite C API. Nothing here knows about probes.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace modelpulse::storage {

struct SqliteCloser {
  // close_v2 defers the close until the last statement is finalized, so destruction order of a
  // connection and its statements cannot leak or crash.
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using DbHandle = std::unique_ptr<sqlite3, SqliteCloser>;
using StatementHandle = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// What the operator should do about an SQLite result code, or empty when there is nothing to
// add ("locking protocol (15)" alone does not tell anyone that a directory is read-only).
std::string_view WhatToDoAbout(int sqlite_code);

// "<what>: <sqlite message> (code N); <what to do>" with the given error code.
Error SqliteError(sqlite3* db, std::string_view what, Error::Code code = Error::Code::kInternal);

// Opens `path` with `flags` (SQLITE_OPEN_*). Fails with kIo naming the path.
Result<DbHandle> OpenDatabase(const std::string& path, int flags);

// Opens `path` for reading only (a reader beside the daemon: `report`, `query`), NOMUTEX, with a
// busy timeout, and reads its header; kNotFound, naming the flag, when the file does not exist
// (SQLite would report "unable to open"). A WAL database needs <file>-shm beside it; a user who may
// read the file but not write its directory cannot create it, so when it is missing the database is
// not in use and is opened immutable (no locks, no shared memory). With a <file>-wal left
// behind (a daemon that did not stop cleanly) that would miss its rows, so that fails, saying
// what to do.
Result<DbHandle> OpenDatabaseReadOnly(const std::string& path);

// Runs one or more SQL statements that return no rows the caller needs.
Status Exec(sqlite3* db, std::string_view sql, Error::Code code = Error::Code::kInternal);

// Prepares a statement meant to be reused for the life of the connection.
Result<StatementHandle> Prepare(sqlite3* db, std::string_view sql);

// Runs a statement that yields exactly one row with one integer column (a PRAGMA, a COUNT).
Result<int64_t> QueryInt(sqlite3* db, std::string_view sql);

// Resets a reused statement and clears its bindings when the scope ends, so that an early return
// never leaves a statement holding a read transaction open.
class ScopedReset {
 public:
  explicit ScopedReset(sqlite3_stmt* statement) : statement_(statement) {}
  ~ScopedReset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  sqlite3_stmt* statement_;
};

// Binding helpers; indexes are 1-based as in SQLite. A nullopt binds NULL.
void BindText(sqlite3_stmt* statement, int index, std::string_view text);
void BindOptional(sqlite3_stmt* statement, int index, const std::optional<double>& value);
void BindOptional(sqlite3_stmt* statement, int index, const std::optional<int64_t>& value);

// Column helpers; indexes are 0-based as in SQLite. NULL reads as nullopt.
std::string ColumnText(sqlite3_stmt* statement, int index);
std::optional<double> ColumnOptionalDouble(sqlite3_stmt* statement, int index);
std::optional<int64_t> ColumnOptionalInt(sqlite3_stmt* statement, int index);

// BEGIN IMMEDIATE on construction via Begin(); rolls back on destruction unless committed.
// IMMEDIATE takes the write lock up front, so a busy database fails at BEGIN (after
// busy_timeout) rather than half way through a batch.
class Transaction {
 public:
  static Result<Transaction> Begin(sqlite3* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;  // null once committed or rolled back
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_SQLITE_H_
