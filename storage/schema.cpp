#include "storage/internal/schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>

#include "common/probe.h"
#include "common/probe_series.h"
#include "storage/internal/first_seen.h"
#include "storage/internal/outbox.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/rollup.h"
#include "storage/internal/sqlite.h"
#include "storage/internal/summary.h"

namespace modelpulse::storage {
namespace {

// Migration N (1-based) takes the schema from version N-1 to N. Append only: a released
// migration is never edited, since databases in the field already ran it. Later issues add
// the notification outbox and more as further entries.
constexpr std::array<std::string_view, 14> kMigrations = {
    // 1: targets, label sets and the probe rows.
    R"sql(
CREATE TABLE targets (
  id     INTEGER PRIMARY KEY,
  name   TEXT NOT NULL UNIQUE,
  labels TEXT NOT NULL DEFAULT ''   -- label_codec.h encoding; labels of the latest probe
);
-- Each distinct label set once; a probe row points at its set, so labels that change over time
-- still round-trip per probe for the cost of one small integer a row.
CREATE TABLE label_sets (
  id     INTEGER PRIMARY KEY,
  labels TEXT NOT NULL UNIQUE
);
-- Clustered on (target, time): a range read for one series is one contiguous B-tree walk
-- (DESIGN.md section 5: about 90 ns a row, against 15x that for a rowid table plus an index).
-- seq tells apart probes of one target that started in the same millisecond.
CREATE TABLE probes (
  target_id      INTEGER NOT NULL,
  start_ms       INTEGER NOT NULL,
  seq            INTEGER NOT NULL,
  label_set_id   INTEGER NOT NULL,
  outcome        INTEGER NOT NULL,  -- common/probe.h Outcome value
  http_status    INTEGER NOT NULL,
  total_s        REAL NOT NULL,
  dns_s          REAL,
  connect_s      REAL,
  tls_s          REAL,
  first_byte_s   REAL,
  ttft_s         REAL,
  first_answer_s REAL,
  last_token_s   REAL,
  input_tokens   INTEGER,
  output_tokens  INTEGER,
  itl_s          REAL,
  tokens_per_s   REAL,
  chunk_count    INTEGER NOT NULL,
  req_limit      REAL,
  req_remaining  REAL,
  req_reset_s    REAL,
  tok_limit      REAL,
  tok_remaining  REAL,
  tok_reset_s    REAL,
  retry_after_s  REAL,
  request_id     TEXT NOT NULL,
  error          TEXT NOT NULL,
  PRIMARY KEY (target_id, start_ms, seq)
) WITHOUT ROWID;
)sql",
    // 2: small named documents that must survive a restart (the rule engine's alert states).
    R"sql(
CREATE TABLE state (
  namespace  TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      BLOB NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
)sql",
    // 3: hourly rollups per target, field (common/probe_series.h ProbeField), hour and label
    // set, so a rule over hours to 30 days reads a few rows per hour instead of every probe
    // (DESIGN.md section 5). Kept in the writer's transactions; backfilled below for the rows
    // already stored. sum,
    // min and max may be NULL where SQLite had to store a NaN (Inf - Inf).
    R"sql(
CREATE TABLE rollups (
  target_id    INTEGER NOT NULL,
  field        INTEGER NOT NULL,
  bucket_ms    INTEGER NOT NULL,
  label_set_id INTEGER NOT NULL,
  count        INTEGER NOT NULL,
  sum          REAL,
  min          REAL,
  max          REAL,
  PRIMARY KEY (target_id, field, bucket_ms, label_set_id)
) WITHOUT ROWID;
)sql",
    // 4: outcome names beside their numbers, for people reading the database with sqlite3:
    //   SELECT outcome_name, count(*) FROM probes_named GROUP BY outcome_name;
    // The rows come from common/probe.h (AfterMigration); an Outcome added later needs a
    // migration that inserts it (tests/storage/store_test.cpp checks every one has its row).
    R"sql(
CREATE TABLE outcomes (
  id   INTEGER PRIMARY KEY,  -- probes.outcome
  name TEXT NOT NULL UNIQUE  -- the outcome label on /metrics
);
CREATE VIEW probes_named AS
  SELECT t.name AS target, o.name AS outcome_name, p.*
  FROM probes AS p
  JOIN targets AS t ON t.id = p.target_id
  LEFT JOIN outcomes AS o ON o.id = p.outcome;
)sql",
    // 5: the notification outbox. alert_events holds what the rule engine decided to send,
    // committed with the alert state that caused it; notifications holds the messages built
    // from them per destination until delivered. AUTOINCREMENT: an id is never reused, so id
    // order is sending order across restarts.
    R"sql(
CREATE TABLE alert_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  created_ms INTEGER NOT NULL,
  body       BLOB NOT NULL
);
CREATE TABLE notifications (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  destination     TEXT NOT NULL,
  group_key       TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  body            BLOB NOT NULL,
  created_ms      INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL
);
)sql",
    // 6: the series rules write (recording outputs, ALERTS, ALERTS_FOR_STATE), so that they
    // outlive the process and are read over long windows like the probe series
    // (storage/recorded_store.h). One row per distinct label set (__name__ included), one
    // row per sample clustered on (series, time), and hourly rollups for long windows. A
    // value that is NaN (a stale marker among them) is stored as its 8 bytes in a BLOB, since
    // SQLite turns a REAL NaN into NULL and the marker must stay a marker.
    R"sql(
CREATE TABLE recorded_series (
  id     INTEGER PRIMARY KEY,
  labels TEXT NOT NULL UNIQUE  -- label_codec.h encoding, __name__ included
);
CREATE TABLE recorded_samples (
  series_id INTEGER NOT NULL,
  t_ms      INTEGER NOT NULL,
  value     NOT NULL,          -- REAL, or an 8-byte BLOB for a NaN
  PRIMARY KEY (series_id, t_ms)
) WITHOUT ROWID;
-- count: samples that are not stale markers; nans: those of them that are NaN (sum, min and
-- max leave them out, and a reader falls back to the samples where nans > 0).
CREATE TABLE recorded_rollups (
  series_id INTEGER NOT NULL,
  bucket_ms INTEGER NOT NULL,
  count     INTEGER NOT NULL,
  nans      INTEGER NOT NULL,
  sum       REAL,
  min       REAL,
  max       REAL,
  PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;
)sql",
    // 7: alert history for reports (issue 10): one row per alert and firing interval, keyed by
    // the alert's labels (label_codec.h encoding) and start, holding its latest event
    // (common/alert_event.h). alert_events is a queue the notifier empties; this table is the
    // record `modelpulse report` turns into incidents. Backfilled from the queue below.
    R"sql(
CREATE TABLE alert_history (
  labels     TEXT NOT NULL,
  starts_ms  INTEGER NOT NULL,
  ends_ms    INTEGER NOT NULL,  -- resolved: when it resolved; firing: the last event's valid-until
  resolved   INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  body       BLOB NOT NULL,
  PRIMARY KEY (labels, starts_ms)
) WITHOUT ROWID;
CREATE INDEX alert_history_by_end ON alert_history (ends_ms);
)sql",
    // 8: the dense probe table (storage/internal/probe_codec.h says how a probe is encoded):
    // integer times, first answer and total as offsets, evidence text only on failed probes.
    // AfterMigration copies every row and then replaces the old table by the `probes` view
    // (kProbesView), which has the old table's columns in the old units, so SQL written against
    // the old table (README, scripts) reads the same.
    R"sql(
CREATE TABLE probe_rows (
  target_id                  INTEGER NOT NULL,
  start_ms                   INTEGER NOT NULL,
  seq                        INTEGER NOT NULL,
  label_set_id               INTEGER NOT NULL,
  outcome                    INTEGER NOT NULL,
  http_status                INTEGER NOT NULL,
  dns_us                     INTEGER,
  connect_us                 INTEGER,
  tls_us                     INTEGER,
  first_byte_ms              INTEGER,
  ttft_ms                    INTEGER,
  first_answer_after_ttft_ms INTEGER,  -- first answer minus COALESCE(ttft, 0)
  last_token_ms              INTEGER,
  total_after_last_token_ms  INTEGER,  -- total minus COALESCE(last token, 0)
  input_tokens               INTEGER,
  output_tokens              INTEGER,
  itl_us                     INTEGER,
  tokens_per_ks              INTEGER,  -- output tokens per second times 1000
  chunk_count                INTEGER NOT NULL,
  req_limit                  REAL,
  req_remaining              REAL,
  req_reset_ms               INTEGER,
  tok_limit                  REAL,
  tok_remaining              REAL,
  tok_reset_ms               INTEGER,
  retry_after_ms             INTEGER,
  request_id                 TEXT,     -- failed probes only
  error                      TEXT,     -- NULL when empty
  PRIMARY KEY (target_id, start_ms, seq)
) WITHOUT ROWID;
)sql",
    // 9: per-target probe summaries (issue 10 item 4; storage/probe_digest.h says what a digest
    // holds, storage/internal/summary.h how they are kept). One row per target, span and bucket
    // with probes: span_ms is 3600000 (the UTC hour starting at bucket_ms) or 86400000 (the UTC
    // day). Why this shape:
    //  - one table for both spans, keyed (target_id, span_ms, bucket_ms): a report reads one
    //    target's whole days (or whole hours) as one contiguous range of the key;
    //  - exact counts as one column per outcome (common/probe.h order), so they can be summed
    //    with sqlite3, and a count of 0 costs SQLite only its header byte; an outcome added later
    //    adds its column here with DEFAULT 0;
    //  - first_token and total: DDSketch blobs (storage/ddsketch.h, 1 % relative error) of ttft
    //    and total seconds of ok probes, NULL when empty; merging an hour's gives the day's;
    //  - tokens_per_s_sum/count over ok probes (a mean, exactly mergeable);
    //  - down_minutes: the minutes of the bucket that held probes but no ok probe, each with the
    //    bitmask (1 << outcome) of the outcomes seen in it, as varint pairs (offset in minutes
    //    from the previous entry, mask); NULL for a healthy bucket. A minute is downtime for an
    //    availability SLO exactly when its mask lies inside the SLO's bad set.
    // Kept with a longer retention than the rows (StorageOptions::summary_retention, 2 years by
    // default), so reports over old periods need no raw rows. Backfilled from the rows below.
    R"sql(
CREATE TABLE probe_summaries (
  target_id          INTEGER NOT NULL,
  span_ms            INTEGER NOT NULL,
  bucket_ms          INTEGER NOT NULL,
  probes             INTEGER NOT NULL,
  ok                 INTEGER NOT NULL,
  throttled          INTEGER NOT NULL,
  quota_exhausted    INTEGER NOT NULL,
  overloaded         INTEGER NOT NULL,
  timeout            INTEGER NOT NULL,
  network            INTEGER NOT NULL,
  auth               INTEGER NOT NULL,
  client_error       INTEGER NOT NULL,
  server_error       INTEGER NOT NULL,
  invalid_response   INTEGER NOT NULL,
  content_mismatch   INTEGER NOT NULL,
  first_token        BLOB,
  total              BLOB,
  tokens_per_s_sum   REAL NOT NULL,
  tokens_per_s_count INTEGER NOT NULL,
  down_minutes       BLOB,
  PRIMARY KEY (target_id, span_ms, bucket_ms)
) WITHOUT ROWID;
)sql",
    // 10: the denser probe table (issue 10 item 4: at most 80 bytes a probe as written). The
    // values a target answers the same way probe after probe (HTTP status, prompt tokens,
    // request and token limits; 4 header bytes and about 8 value bytes of every row) move to
    // probe_shapes, one row per distinct combination per target, numbered from 0 per target in
    // order of first appearance; a probe row keeps its shape's number, which costs a header
    // byte and nearly always no value byte (0 and 1 are free in a SQLite record). Shapes are
    // never deleted: a few rows per target, and the writer remembers their numbers
    // (storage/internal/probe_codec.h ShapeIds). The rows are copied in key order into the new
    // table with every other column as it was: no value changes, so rollups and summaries stay
    // as they are. The old table's pages become free pages of the file (new rows reuse them;
    // VACUUM returns them). About 4.5 s a million rows (bench/README.md). The `probes` view
    // keeps its columns and values, joining the shape of each row.
    R"sql(
DROP VIEW probes_named;
DROP VIEW probes;
CREATE TABLE probe_shapes (
  target_id    INTEGER NOT NULL,
  shape        INTEGER NOT NULL,  -- 0, 1, ... per target
  http_status  INTEGER NOT NULL,
  input_tokens INTEGER,
  req_limit    REAL,
  tok_limit    REAL,
  PRIMARY KEY (target_id, shape)
) WITHOUT ROWID;
INSERT INTO probe_shapes (target_id, shape, http_status, input_tokens, req_limit, tok_limit)
  SELECT target_id, ROW_NUMBER() OVER (PARTITION BY target_id ORDER BY MIN(start_ms), MIN(seq)) - 1,
    http_status, input_tokens, req_limit, tok_limit
  FROM probe_rows GROUP BY target_id, http_status, input_tokens, req_limit, tok_limit;
CREATE TABLE probe_rows_10 (
  target_id                  INTEGER NOT NULL,
  start_ms                   INTEGER NOT NULL,
  seq                        INTEGER NOT NULL,
  label_set_id               INTEGER NOT NULL,
  shape                      INTEGER NOT NULL,  -- probe_shapes (target_id, shape)
  outcome                    INTEGER NOT NULL,
  dns_us                     INTEGER,
  connect_us                 INTEGER,
  tls_us                     INTEGER,
  first_byte_ms              INTEGER,
  ttft_ms                    INTEGER,
  first_answer_after_ttft_ms INTEGER,  -- first answer minus COALESCE(ttft, 0)
  last_token_ms              INTEGER,
  total_after_last_token_ms  INTEGER,  -- total minus COALESCE(last token, 0)
  output_tokens              INTEGER,
  itl_us                     INTEGER,
  tokens_per_ks              INTEGER,  -- output tokens per second times 1000
  chunk_count                INTEGER NOT NULL,
  req_remaining              REAL,
  req_reset_ms               INTEGER,
  tok_remaining              REAL,
  tok_reset_ms               INTEGER,
  retry_after_ms             INTEGER,
  request_id                 TEXT,     -- failed probes only
  error                      TEXT,     -- NULL when empty
  PRIMARY KEY (target_id, start_ms, seq)
) WITHOUT ROWID;
-- CROSS JOIN keeps probe_rows the outer loop, so rows arrive in key order; a target's shapes
-- are one leaf of probe_shapes. IS: a missing value matches a missing value, as GROUP BY did.
INSERT INTO probe_rows_10 (target_id, start_ms, seq, label_set_id, shape, outcome,
  dns_us, connect_us, tls_us, first_byte_ms, ttft_ms, first_answer_after_ttft_ms, last_token_ms,
  total_after_last_token_ms, output_tokens, itl_us, tokens_per_ks, chunk_count,
  req_remaining, req_reset_ms, tok_remaining, tok_reset_ms, retry_after_ms, request_id, error)
  SELECT r.target_id, r.start_ms, r.seq, r.label_set_id, s.shape, r.outcome,
    r.dns_us, r.connect_us, r.tls_us, r.first_byte_ms, r.ttft_ms, r.first_answer_after_ttft_ms,
    r.last_token_ms, r.total_after_last_token_ms, r.output_tokens, r.itl_us, r.tokens_per_ks,
    r.chunk_count, r.req_remaining, r.req_reset_ms, r.tok_remaining, r.tok_reset_ms,
    r.retry_after_ms, r.request_id, r.error
  FROM probe_rows AS r CROSS JOIN probe_shapes AS s
  WHERE s.target_id = r.target_id AND s.http_status = r.http_status
    AND s.input_tokens IS r.input_tokens AND s.req_limit IS r.req_limit
    AND s.tok_limit IS r.tok_limit
  ORDER BY r.target_id, r.start_ms, r.seq;
DROP TABLE probe_rows;
-- Legacy rename: the modern one re-parses every view first, and a view of the user's own over
-- `probes` (README shows SQL against it) names a view that does not exist until below.
PRAGMA legacy_alter_table = ON;
ALTER TABLE probe_rows_10 RENAME TO probe_rows;
PRAGMA legacy_alter_table = OFF;
-- The old table's columns in the old units, as migration 8's view had them. LEFT JOIN on
-- probe_shapes' key: SQLite leaves the join out of a query that reads no shape column.
CREATE VIEW probes AS
  SELECT r.target_id, r.start_ms, r.seq, r.label_set_id, r.outcome, s.http_status,
    (r.total_after_last_token_ms + COALESCE(r.last_token_ms, 0)) / 1e3 AS total_s,
    r.dns_us / 1e6 AS dns_s,
    r.connect_us / 1e6 AS connect_s,
    r.tls_us / 1e6 AS tls_s,
    r.first_byte_ms / 1e3 AS first_byte_s,
    r.ttft_ms / 1e3 AS ttft_s,
    (r.first_answer_after_ttft_ms + COALESCE(r.ttft_ms, 0)) / 1e3 AS first_answer_s,
    r.last_token_ms / 1e3 AS last_token_s,
    s.input_tokens, r.output_tokens,
    r.itl_us / 1e6 AS itl_s,
    r.tokens_per_ks / 1e3 AS tokens_per_s,
    r.chunk_count, s.req_limit, r.req_remaining,
    r.req_reset_ms / 1e3 AS req_reset_s,
    s.tok_limit, r.tok_remaining,
    r.tok_reset_ms / 1e3 AS tok_reset_s,
    r.retry_after_ms / 1e3 AS retry_after_s,
    COALESCE(r.request_id, '') AS request_id,
    COALESCE(r.error, '') AS error
  FROM probe_rows AS r
  LEFT JOIN probe_shapes AS s ON s.target_id = r.target_id AND s.shape = r.shape;
CREATE VIEW probes_named AS
  SELECT t.name AS target, o.name AS outcome_name, p.*
  FROM probes AS p
  JOIN targets AS t ON t.id = p.target_id
  LEFT JOIN outcomes AS o ON o.id = p.outcome;
)sql",
    // 11: the hourly rollups of probe_auth_failed (field 18 in common/probe_series.h), the gauge
    // through which an availability SLO leaves auth failures out in PromQL (rules/slo.h
    // OutcomeGauges). The writer keeps them from now on; this fills them for the rows already
    // stored. The gauge is 1 for an auth probe (outcome 6) and 0 for any other, so an hour's
    // rollup per label set is its probe count, its auth count, and their min and max; the bucket
    // is the UTC hour floored as BucketOf floors it. OR IGNORE: a database older than schema 3
    // or 8 got every field's rollups, this one's included, from the backfill of those migrations
    // run by this binary (RebuildRollups folds the fields it knows), the same values.
    R"sql(
INSERT OR IGNORE INTO rollups (target_id, field, bucket_ms, label_set_id, count, sum, min, max)
  SELECT target_id, 18, start_ms - ((start_ms % 3600000) + 3600000) % 3600000 AS bucket,
    label_set_id, count(*), sum(outcome = 6), min(outcome = 6), max(outcome = 6)
  FROM probe_rows GROUP BY target_id, bucket, label_set_id;
)sql",
    // 12: when each counter-family series of each target and label set was first moved by a
    // stored probe (storage/internal/first_seen.h): the discovery endpoints list a counter
    // series from that probe on, and without this table the first listing after every start
    // scanned every stored probe (3.9 s for 20 targets x 30 days, about 40 s for 200). `series`
    // names a group of series one probe creates together: one outcome's counter
    // ('modelpulse_probes_total{outcome="ok"}') or a whole histogram (its family name: the
    // _bucket, _sum and _count series). Kept by the writer and by retention in their
    // transactions; backfilled from the rows below.
    R"sql(
CREATE TABLE counter_first_seen (
  target_id    INTEGER NOT NULL,
  label_set_id INTEGER NOT NULL,
  series       TEXT NOT NULL,
  first_ms     INTEGER NOT NULL,  -- start of the oldest stored probe that moved it
  PRIMARY KEY (target_id, label_set_id, series)
) WITHOUT ROWID;
)sql",
    // 13: each rollup's first and last row time, so that a read of a window's edge rows can skip
    // an hour whose rows all lie elsewhere: a range query's windows that end on the hour would
    // otherwise seek once per step and target for the row at that instant, which is almost never
    // there (storage/series_source.cpp, RangeReads). The writer keeps them exact per field; for
    // the rollups already stored, the backfill takes the first and last probe of the hour and
    // label set whatever the field, which bounds the field's rows all the same.
    R"sql(
ALTER TABLE rollups ADD COLUMN first_ms INTEGER;
ALTER TABLE rollups ADD COLUMN last_ms INTEGER;
CREATE TEMP TABLE rollup_bounds (
  target_id    INTEGER NOT NULL,
  bucket_ms    INTEGER NOT NULL,
  label_set_id INTEGER NOT NULL,
  first_ms     INTEGER NOT NULL,
  last_ms      INTEGER NOT NULL,
  PRIMARY KEY (target_id, bucket_ms, label_set_id)
) WITHOUT ROWID;
INSERT INTO rollup_bounds
  SELECT target_id, start_ms - ((start_ms % 3600000) + 3600000) % 3600000 AS bucket,
    label_set_id, min(start_ms), max(start_ms)
  FROM probe_rows GROUP BY target_id, bucket, label_set_id;
UPDATE rollups SET first_ms = b.first_ms, last_ms = b.last_ms
  FROM rollup_bounds AS b
  WHERE b.target_id = rollups.target_id AND b.bucket_ms = rollups.bucket_ms
    AND b.label_set_id = rollups.label_set_id;
DROP TABLE rollup_bounds;
)sql",
    // 14: the values of each rollup of the fields storage/internal/rollup.h KeepsValues names,
    // so that quantile_over_time over 30 days reads 720 rows a target instead of 172,800 (one
    // probe every 15 s). A table beside the rollups, not a column of theirs: the range queries
    // that read count and sum would otherwise step over the values too (their rows grow from
    // about 60 bytes to 600). And each rollup's first value and second row time: a range query
    // whose windows end a few seconds past the hour reads the rows of each hour's first seconds,
    // which are most often one row or none (storage/series_source.cpp, RangeReads). Kept by the
    // writer and retention in the rollups' transactions; filled from the rows for the rollups
    // already stored (AfterMigration), with exact row times where migration 13 left bounds.
    R"sql(
ALTER TABLE rollups ADD COLUMN first_value REAL;
ALTER TABLE rollups ADD COLUMN second_ms INTEGER;
CREATE TABLE rollup_values (
  target_id    INTEGER NOT NULL,
  field        INTEGER NOT NULL,
  bucket_ms    INTEGER NOT NULL,
  label_set_id INTEGER NOT NULL,
  vals         BLOB NOT NULL,  -- rollup.h AppendEncodedValue, one run per rollup
  PRIMARY KEY (target_id, field, bucket_ms, label_set_id)
) WITHOUT ROWID;
)sql",
};

// Migration 11 names them by number: released migrations never change, these ids neither.
static_assert(static_cast<int>(ProbeField::kAuthFailed) == 18 &&
              static_cast<int>(Outcome::kAuth) == 6);

// Migration 8's second half, after the copy: the old table's columns over probe_rows. Integer
// over a REAL constant is a double division, the one probe_codec.cpp's AsStored performs.
// Released: migration 10 replaces this view by one over its own probe_rows and probe_shapes.
constexpr std::string_view kProbesView = R"sql(
DROP VIEW probes_named;
DROP TABLE probes;
CREATE VIEW probes AS
  SELECT target_id, start_ms, seq, label_set_id, outcome, http_status,
    (total_after_last_token_ms + COALESCE(last_token_ms, 0)) / 1e3 AS total_s,
    dns_us / 1e6 AS dns_s,
    connect_us / 1e6 AS connect_s,
    tls_us / 1e6 AS tls_s,
    first_byte_ms / 1e3 AS first_byte_s,
    ttft_ms / 1e3 AS ttft_s,
    (first_answer_after_ttft_ms + COALESCE(ttft_ms, 0)) / 1e3 AS first_answer_s,
    last_token_ms / 1e3 AS last_token_s,
    input_tokens, output_tokens,
    itl_us / 1e6 AS itl_s,
    tokens_per_ks / 1e3 AS tokens_per_s,
    chunk_count, req_limit, req_remaining,
    req_reset_ms / 1e3 AS req_reset_s,
    tok_limit, tok_remaining,
    tok_reset_ms / 1e3 AS tok_reset_s,
    retry_after_ms / 1e3 AS retry_after_s,
    COALESCE(request_id, '') AS request_id,
    COALESCE(error, '') AS error
  FROM probe_rows;
CREATE VIEW probes_named AS
  SELECT t.name AS target, o.name AS outcome_name, p.*
  FROM probes AS p
  JOIN targets AS t ON t.id = p.target_id
  LEFT JOIN outcomes AS o ON o.id = p.outcome;
)sql";

// Work a migration needs beyond its SQL, in the same transaction.
Status AfterMigration(sqlite3* db, int version) {
  if (version == 3) {
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    return RebuildRollups(db, kMin, kMax, kMin, kMax, RollupColumns::kSchema3);
  }
  if (version == 4) {
    for (Outcome outcome : kAllOutcomes) {
      // Our own identifiers, so they need no binding.
      if (auto status = Exec(db, fmt::format("INSERT INTO outcomes (id, name) VALUES ({}, '{}')",
                                             static_cast<int>(outcome), OutcomeName(outcome)));
          !status) {
        return status;
      }
    }
  }
  if (version == 7) {
    auto queued = Prepare(db, "SELECT created_ms, body FROM alert_events ORDER BY id");
    if (!queued) {
      return Fail(queued.error());
    }
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(queued->get())) == SQLITE_ROW) {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(queued->get(), 1));
      const std::string body(data == nullptr ? "" : data,
                             static_cast<size_t>(sqlite3_column_bytes(queued->get(), 1)));
      if (auto status = RecordAlertHistory(db, sqlite3_column_int64(queued->get(), 0), body);
          !status) {
        return status;
      }
    }
    if (rc != SQLITE_DONE) {
      return Fail(SqliteError(db, "reading queued alert events", Error::Code::kIo));
    }
  }
  if (version == 8) {
    if (auto status = CopyLegacyProbes(db); !status) {
      return status;
    }
    if (auto status = Exec(db, kProbesView); !status) {
      return status;
    }
    // The rollups were folded from the unrounded values; rebuilt from the stored rows they
    // equal what retention's rebuilds and the writer (which folds AsStored rows) produce.
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    return RebuildRollups(db, kMin, kMax, kMin, kMax, RollupColumns::kSchema3);
  }
  if (version == 9) {
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    return RebuildSummaries(db, kMin, kMax, kMin, kMax);
  }
  if (version == 12) {
    return RebuildFirstSeen(db);
  }
  if (version == 14) {
    return FillSchema14Rollups(db);
  }
  return {};
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

Result<int> Migrate(sqlite3* db) { return MigrateTo(db, LatestSchemaVersion()); }

Result<DbHandle> OpenCurrentReadOnly(const std::string& path) {
  auto db = OpenDatabaseReadOnly(path);
  if (!db) {
    return Fail(db.error());
  }
  auto found = QueryInt(db->get(), "PRAGMA user_version");
  if (!found) {
    return Fail(found.error());
  }
  if (*found == LatestSchemaVersion()) {
    return std::move(*db);
  }
  if (*found > LatestSchemaVersion()) {
    return Fail(Error::Io(fmt::format(
        "database {} has schema version {}, newer than this modelpulse reads ({}): run the "
        "modelpulse that wrote it",
        path, *found, LatestSchemaVersion())));
  }
  return Fail(Error::Io(fmt::format(
      "database {} has schema version {}, older than this modelpulse reads ({}): it is opened "
      "read-only, so it is not migrated here; the daemon of this version migrates it at its next "
      "start",
      path, *found, LatestSchemaVersion())));
}

Result<int> MigrateTo(sqlite3* db, int target_version) {
  auto found = QueryInt(db, "PRAGMA user_version");
  if (!found) {
    return Fail(found.error());
  }
  const int initial = static_cast<int>(*found);
  if (initial > LatestSchemaVersion()) {
    return Fail(Error::Internal(
        fmt::format("database schema version {} is newer than this binary supports (version {}); "
                    "run a newer modelpulse or restore a backup",
                    initial, LatestSchemaVersion())));
  }
  for (int version = initial + 1; version <= std::min(target_version, LatestSchemaVersion());
       ++version) {
    auto transaction = Transaction::Begin(db);
    if (!transaction) {
      return Fail(Error::Internal("migration " + std::to_string(version) + ": " +
                                  transaction.error().message));
    }
    // Another process may have migrated between our read and the write lock: re-read under it.
    auto current = QueryInt(db, "PRAGMA user_version");
    if (!current) {
      return Fail(current.error());
    }
    if (*current >= version) {
      continue;
    }
    const auto& sql = kMigrations[static_cast<size_t>(version - 1)];
    if (auto status = Exec(db, sql); !status) {
      return Fail(
          Error::Internal(fmt::format("migration {}: {}", version, status.error().message)));
    }
    if (auto status = AfterMigration(db, version); !status) {
      return Fail(
          Error::Internal(fmt::format("migration {}: {}", version, status.error().message)));
    }
    // PRAGMA takes no bound parameters; the version is our own integer.
    if (auto status = Exec(db, fmt::format("PRAGMA user_version = {}", version)); !status) {
      return Fail(status.error());
    }
    if (auto status = transaction->Commit(); !status) {
      return Fail(
          Error::Internal(fmt::format("migration {}: {}", version, status.error().message)));
    }
  }
  return initial;
}

}  // namespace modelpulse::storage
