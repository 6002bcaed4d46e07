#ifndef MODELPULSE_TESTS_STORAGE_LEGACY_SCHEMA_H_
#define MODELPULSE_TESTS_STORAGE_LEGACY_SCHEMA_H_

// A database as releases before migration 8 wrote it: the schema made by the real migrations up
// to a given version, and probe rows written with that release's INSERT into the REAL-column
// `probes` table, so migration tests start from what is in the field.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "common/common.h"
#include "storage/internal/label_codec.h"
#include "storage/internal/schema.h"

namespace modelpulse::storage::testing {

// The writer's statement before migration 8, verbatim.
inline constexpr const char* kLegacyInsertProbe = R"sql(
INSERT INTO probes (target_id, start_ms, seq, label_set_id, outcome, http_status, total_s,
  dns_s, connect_s, tls_s, first_byte_s, ttft_s, first_answer_s, last_token_s,
  input_tokens, output_tokens, itl_s, tokens_per_s, chunk_count,
  req_limit, req_remaining, req_reset_s, tok_limit, tok_remaining, tok_reset_s,
  retry_after_s, request_id, error)
VALUES (?1, ?2,
  (SELECT COALESCE(MAX(seq) + 1, 0) FROM probes WHERE target_id = ?1 AND start_ms = ?2),
  ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
  ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27))sql";

inline void BindLegacy(sqlite3_stmt* s, int index, const std::optional<double>& v) {
  if (v) {
    sqlite3_bind_double(s, index, *v);
  } else {
    sqlite3_bind_null(s, index);
  }
}

inline void BindLegacy(sqlite3_stmt* s, int index, const std::optional<int64_t>& v) {
  if (v) {
    sqlite3_bind_int64(s, index, *v);
  } else {
    sqlite3_bind_null(s, index);
  }
}

inline int64_t LegacyId(sqlite3* db, const std::string& insert, const std::string& select,
                        const std::string& key, const std::string& labels) {
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, insert.c_str(), -1, &s, nullptr) == SQLITE_OK);
  sqlite3_bind_text(s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, labels.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(s) == SQLITE_DONE);
  sqlite3_finalize(s);
  REQUIRE(sqlite3_prepare_v2(db, select.c_str(), -1, &s, nullptr) == SQLITE_OK);
  sqlite3_bind_text(s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const int64_t id = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return id;
}

// Creates `path` at schema `version` (1-7) and writes `probes` as that release did. The
// target's labels are those of its last probe in `probes`.
inline void WriteLegacyDatabase(const std::string& path, int version,
                                const std::vector<ProbeResult>& probes) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(MigrateTo(db, version).has_value());
  REQUIRE(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, kLegacyInsertProbe, -1, &s, nullptr) == SQLITE_OK);
  for (const ProbeResult& p : probes) {
    const std::string labels = EncodeLabels(p.labels);
    const int64_t target = LegacyId(db,
                                    "INSERT INTO targets (name, labels) VALUES (?1, ?2) "
                                    "ON CONFLICT (name) DO UPDATE SET labels = excluded.labels",
                                    "SELECT id FROM targets WHERE name = ?1", p.target, labels);
    const int64_t set = LegacyId(db, "INSERT OR IGNORE INTO label_sets (labels) VALUES (?1)",
                                 "SELECT id FROM label_sets WHERE labels = ?1", labels, "");
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    sqlite3_bind_int64(s, 1, target);
    sqlite3_bind_int64(s, 2, p.start_unix_ms);
    sqlite3_bind_int64(s, 3, set);
    sqlite3_bind_int(s, 4, static_cast<int>(p.outcome));
    sqlite3_bind_int(s, 5, p.http_status);
    sqlite3_bind_double(s, 6, p.total_seconds);
    BindLegacy(s, 7, p.dns_seconds);
    BindLegacy(s, 8, p.connect_seconds);
    BindLegacy(s, 9, p.tls_seconds);
    BindLegacy(s, 10, p.first_byte_seconds);
    BindLegacy(s, 11, p.ttft_seconds);
    BindLegacy(s, 12, p.first_answer_token_seconds);
    BindLegacy(s, 13, p.last_token_seconds);
    BindLegacy(s, 14, p.input_tokens);
    BindLegacy(s, 15, p.output_tokens);
    BindLegacy(s, 16, p.inter_token_latency_seconds);
    BindLegacy(s, 17, p.output_tokens_per_second);
    sqlite3_bind_int64(s, 18, p.chunk_count);
    BindLegacy(s, 19, p.requests.limit);
    BindLegacy(s, 20, p.requests.remaining);
    BindLegacy(s, 21, p.requests.reset_seconds);
    BindLegacy(s, 22, p.tokens.limit);
    BindLegacy(s, 23, p.tokens.remaining);
    BindLegacy(s, 24, p.tokens.reset_seconds);
    BindLegacy(s, 25, p.retry_after_seconds);
    sqlite3_bind_text(s, 26, p.request_id.data(), static_cast<int>(p.request_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 27, p.error.data(), static_cast<int>(p.error.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(s) == SQLITE_DONE);
  }
  sqlite3_finalize(s);
  REQUIRE(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

}  // namespace modelpulse::storage::testing

#endif  // MODELPULSE_TESTS_STORAGE_LEGACY_SCHEMA_H_
