#ifndef MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_
#define MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_

// Private to storage/: how a probe is stored in probe_rows (migration 8), the dense table behind
// the `probes` view. Times are integers (milliseconds for the long phases, microseconds for the
// short ones and the inter-token latency), first answer and total are stored as offsets from
// ttft and last token (usually 0 and a few ms: one byte or none), and request id and error are
// kept only on failed probes, where they are evidence. A SQLite record costs one header byte a
// column plus 0-8 bytes a value, so these bring a typical row from about 190 bytes to under 80.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/common.h"
#include "common/probe_series.h"

namespace modelpulse::storage {

// INSERT INTO probe_rows with ?1 target_id, ?2 start_ms, ?3 label_set_id; seq is the next free
// number for (target_id, start_ms). The other values are bound by BindProbeRow.
extern const std::string_view kInsertProbeRowSql;

// Binds the columns of `probe` after the first three parameters of kInsertProbeRowSql.
void BindProbeRow(sqlite3_stmt* statement, const ProbeResult& probe);

// `probe` as it reads back after a write: times rounded to their stored units, request id
// dropped on a successful probe, non-finite times as none. The writer folds this into the
// rollups so that they equal a rebuild from the stored rows.
ProbeResult AsStored(const ProbeResult& probe);

// A ProbeNumber (common/probe_series.h) read from probe_rows itself: its column, the column it is
// an offset from (empty if none) and its units per second (1: stored as is). For the scans too
// hot to pay for the `probes` view's arithmetic; NumberFromColumns performs the same operations
// as the view, so it gives the same doubles.
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

// Migration 8's copy: every row of the legacy `probes` table into probe_rows, encoded as the
// writer encodes. Leaves the legacy table in place.
Status CopyLegacyProbes(sqlite3* db);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_PROBE_CODEC_H_
