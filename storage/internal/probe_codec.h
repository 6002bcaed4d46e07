#ifndef MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_
#define MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_

// Private to storage/: how a probe is stored in probe_rows (migrations 8 and 10), the dense table
// behind the `probes` view. Times are integers (milliseconds for the long phases, microseconds
// for the short ones and the inter-token latency), first answer and total are stored as offsets
// from ttft and last token (usually 0 and a few ms: one byte or none), and request id and error
// are kept only on failed probes, where they are evidence. A SQLite record costs one header byte
// a column plus 0-8 bytes a value, so these brought a typical record from about 190 bytes to 74.
//
// Migration 10 moved the values a target answers the same way probe after probe (HTTP status,
// prompt tokens, request and token limits: 4 header bytes and about 8 value bytes a row) into
// probe_shapes, one row per distinct combination per target, numbered from 0 per target; the
// probe row keeps that number (`shape`, nearly always 0 or 1: a header byte, no value byte). A
// typical record is 63 bytes, the probe table 75 bytes a probe as the writer leaves its pages
// (87 before; bench/README.md, "Bytes per probe").

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>

#include "common/common.h"
#include "common/probe_series.h"
#include "storage/internal/sqlite.h"

namespace modelpulse::storage {

// INSERT INTO probe_rows with ?1 target_id, ?2 start_ms, ?3 label_set_id, ?4 shape (ShapeIds);
// seq is parameter kProbeRowSeqParam when bound, else the next free number for (target_id,
// start_ms). The other values are bound by BindProbeRow.
extern const std::string_view kInsertProbeRowSql;
inline constexpr int kProbeRowSeqParam = 25;

// Binds the columns of `probe` after the first four parameters of kInsertProbeRowSql.
void BindProbeRow(sqlite3_stmt* statement, const ProbeResult& probe);

// A probe's shape: the values kept in probe_shapes rather than in its row, as stored (a NaN
// limit is none, as SQLite would store it).
struct ProbeShape {
  int http_status = 0;
  std::optional<int64_t> input_tokens;
  std::optional<double> requests_limit;
  std::optional<double> tokens_limit;
  auto Tie() const { return std::tie(http_status, input_tokens, requests_limit, tokens_limit); }
  bool operator<(const ProbeShape& other) const { return Tie() < other.Tie(); }
};
ProbeShape ShapeOf(const ProbeResult& probe);

// The per-target shape numbers of probe_shapes: finds a shape's number, adding the shape when
// the target has not had it. Remembers the numbers it saw; shapes are never deleted (a few rows
// per target, kept when the target's rows go), so a remembered number stays valid unless the
// transaction that added it rolls back: call Forget() then.
class ShapeIds {
 public:
  Result<int64_t> Id(sqlite3* db, int64_t target_id, const ProbeShape& shape);
  void Forget() { ids_.clear(); }

 private:
  StatementHandle find_;
  StatementHandle insert_;
  std::map<std::pair<int64_t, ProbeShape>, int64_t> ids_;
};

// `probe` as it reads back after a write: times rounded to their stored units, request id
// dropped on a successful probe, non-finite times as none. The writer folds this into the
// rollups so that they equal a rebuild from the stored rows.
ProbeResult AsStored(const ProbeResult& probe);

// A ProbeNumber (common/probe_series.h) read from probe_rows itself: its column, the column it is
// an offset from (empty if none) and its units per second (1: stored as is). For the scans too
// hot to pay for the `probes` view's arithmetic; NumberFromColumns performs the same operations
// as the view, so it gives the same doubles. Columns are qualified for kStoredNumbersFrom: `r.`
// for probe_rows, `s.` for probe_shapes (HTTP status and the limits). SQLite drops the LEFT
// JOIN from a query that names no `s.` column (probe_shapes is unique on the join's key), so a
// scan of row columns alone costs what it did before migration 10.
inline constexpr std::string_view kStoredNumbersFrom =
    "probe_rows AS r LEFT JOIN probe_shapes AS s ON s.target_id = r.target_id AND s.shape = "
    "r.shape";
struct StoredNumber {
  std::string_view column;
  std::string_view base;
  double scale = 1;
};
StoredNumber StoredNumberOf(ProbeNumber number);

// The number from the row's `column` and `base` values (`statement` columns `index` and
// `index` + 1); none when the column is NULL.
std::optional<double> NumberFromColumns(sqlite3_stmt* statement, int index,
                                        const StoredNumber& number);

// Migration 8's copy: every row of the legacy `probes` table into migration 8's probe_rows,
// encoded as the writer of schemas 8 and 9 did (migration 10 then moves the shapes out).
// Leaves the legacy table in place.
Status CopyLegacyProbes(sqlite3* db);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_
