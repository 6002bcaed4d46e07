#include "storage/internal/sqlite.h"

#include <fmt/format.h>

#include <filesystem>
#include <utility>

namespace modelpulse::storage {

std::string_view WhatToDoAbout(int sqlite_code) {
  switch (sqlite_code & 0xff) {  // the primary code: extended codes refine it
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return "the user running modelpulse cannot write the database: give it write permission "
             "on the file and on its directory (SQLite creates <file>-wal and <file>-shm beside "
             "it), or point --storage.path elsewhere";
    case SQLITE_PROTOCOL:
      // What a WAL database reports when its directory does not let us create <file>-shm.
      return "SQLite cannot set up its lock files: give the user running modelpulse write "
             "permission on the database's directory (for <file>-wal and <file>-shm)";
    case SQLITE_CANTOPEN:
      return "check that the directory exists and the user running modelpulse may create and "
             "open files in it";
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return "the file is damaged or not a modelpulse database: restore it from a backup, or "
             "move it aside to start a new one (`sqlite3 <file> .recover` may save its rows)";
    case SQLITE_FULL:
      return "the disk is full: free space on the database's file system";
    case SQLITE_IOERR:
      return "the operating system reported an I/O error: check the disk and the file system";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another process holds the database locked: is a second modelpulse running on the "
             "same --storage.path?";
    default:
      return {};
  }
}

Error SqliteError(sqlite3* db, std::string_view what, Error::Code code) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  const int sqlite_code = db != nullptr ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
  const std::string_view advice = WhatToDoAbout(sqlite_code);
  return Error{code,
               advice.empty()
                   ? fmt::format("{}: {} (sqlite code {})", what, message, sqlite_code)
                   : fmt::format("{}: {} (sqlite code {}); {}", what, message, sqlite_code, advice),
               {}};
}

Result<DbHandle> OpenDatabase(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  // sqlite3_open_v2 hands back a handle even on failure (for the message); own it either way.
  DbHandle db(raw);
  if (rc != SQLITE_OK) {
    return Fail(
        SqliteError(db.get(), fmt::format("cannot open database \"{}\"", path), Error::Code::kIo));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  return db;
}

namespace {

// `path` as a file: URI (RFC 3986 percent-encoding of what SQLite's URI parser would read as
// syntax).
std::string FileUri(const std::string& path) {
  std::string uri = "file:";
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      uri += c;
    }
  }
  return uri;
}

// Opens read-only and reads the header, where a missing -shm shows (opening itself is lazy).
Result<DbHandle> OpenAndRead(const std::string& name, int flags) {
  auto db = OpenDatabase(name, flags);
  if (!db) {
    return Fail(db.error());
  }
  sqlite3_busy_timeout(db->get(), 5000);
  if (sqlite3_exec(db->get(), "SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    return Fail(SqliteError(db->get(), "cannot read database \"" + name + "\"", Error::Code::kIo));
  }
  return db;
}

}  // namespace

Result<DbHandle> OpenDatabaseReadOnly(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Fail(Error::NotFound(
        "database " + path + " does not exist (--storage.path names the daemon's database file)"));
  }
  auto db = OpenAndRead(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
  if (db || std::filesystem::exists(path + "-shm", ec)) {
    return db;
  }
  const auto wal_size = std::filesystem::file_size(path + "-wal", ec);
  if (!ec && wal_size > 0) {
    return Fail(Error::Io(fmt::format(
        "cannot read database \"{}\": its directory is not writable for this user and {}-wal "
        "holds rows not yet in the file (a daemon that did not stop cleanly); start and stop the "
        "daemon once, or read it as a user who may write the directory",
        path, path)));
  }
  return OpenAndRead(FileUri(path) + "?immutable=1",
                     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI);
}

Status Exec(sqlite3* db, std::string_view sql, Error::Code code) {
  const std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail(SqliteError(db, fmt::format("\"{}\" failed", sql.substr(0, 60)), code));
  }
  return {};
}

Result<StatementHandle> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StatementHandle statement(raw);
  if (rc != SQLITE_OK) {
    return Fail(SqliteError(db, fmt::format("cannot prepare \"{}\"", sql.substr(0, 60))));
  }
  return statement;
}

Result<int64_t> QueryInt(sqlite3* db, std::string_view sql) {
  auto statement = Prepare(db, sql);
  if (!statement) {
    return Fail(statement.error());
  }
  if (sqlite3_step(statement->get()) != SQLITE_ROW) {
    return Fail(SqliteError(db, fmt::format("\"{}\" returned no row", sql)));
  }
  return sqlite3_column_int64(statement->get(), 0);
}

void BindText(sqlite3_stmt* statement, int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies, so the caller's buffer may go away before step().
  sqlite3_bind_text64(statement, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void BindOptional(sqlite3_stmt* statement, int index, const std::optional<double>& value) {
  if (value) {
    sqlite3_bind_double(statement, index, *value);
  } else {
    sqlite3_bind_null(statement, index);
  }
}

void BindOptional(sqlite3_stmt* statement, int index, const std::optional<int64_t>& value) {
  if (value) {
    sqlite3_bind_int64(statement, index, *value);
  } else {
    sqlite3_bind_null(statement, index);
  }
}

std::string ColumnText(sqlite3_stmt* statement, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement, index));
  // Length from column_bytes, not strlen: stored text may contain NUL bytes.
  const int size = sqlite3_column_bytes(statement, index);
  return text == nullptr ? std::string() : std::string(text, static_cast<size_t>(size));
}

std::optional<double> ColumnOptionalDouble(sqlite3_stmt* statement, int index) {
  if (sqlite3_column_type(statement, index) == SQLITE_NULL) {
    return std::nullopt;
  }
  return sqlite3_column_double(statement, index);
}

std::optional<int64_t> ColumnOptionalInt(sqlite3_stmt* statement, int index) {
  if (sqlite3_column_type(statement, index) == SQLITE_NULL) {
    return std::nullopt;
  }
  return sqlite3_column_int64(statement, index);
}

Result<Transaction> Transaction::Begin(sqlite3* db) {
  if (auto status = Exec(db, "BEGIN IMMEDIATE", Error::Code::kIo); !status) {
    return Fail(status.error());
  }
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) {
    // A failed statement may already have rolled back; then this is a harmless error.
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Commit() {
  sqlite3* db = std::exchange(db_, nullptr);
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Error error = SqliteError(db, "commit failed", Error::Code::kIo);
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return Fail(std::move(error));
  }
  return {};
}

}  // namespace modelpulse::storage
