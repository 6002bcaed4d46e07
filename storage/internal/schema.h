#ifndef MODELPULSE_STORAGE_INTERNAL_SCHEMA_H_
#define MODELPULSE_STORAGE_INTERNAL_SCHEMA_H_

// Private to storage/: the schema and its migrations, tracked in PRAGMA user_version.

#include <sqlite3.h>

#include <string>

#include "common/result.h"
#include "storage/internal/sqlite.h"

namespace modelpulse::storage {

// The schema version this binary writes and reads.
int LatestSchemaVersion();

// Brings the database to LatestSchemaVersion(), one transaction per migration, so a failure
// leaves the database at the last version that fully applied. Returns the version found before
// migrating. Fails with kInternal when a migration fails or when the database is newer than this
// binary (an older binary must not write into a schema it does not know).
Result<int> Migrate(sqlite3* db);

// For the read-only openers, which must never migrate or create: the database at `path` opened
// read-only (OpenDatabaseReadOnly) when it is at LatestSchemaVersion(); else kIo naming the
// version found and what to do.
Result<DbHandle> OpenCurrentReadOnly(const std::string& path);

// Migrate, stopping at `target_version`: for tests that need a database as an older release
// wrote it.
Result<int> MigrateTo(sqlite3* db, int target_version);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_SCHEMA_H_
