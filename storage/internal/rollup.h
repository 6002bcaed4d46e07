#ifndef MODELPULSE_STORAGE_INTERNAL_ROLLUP_H_
#define MODELPULSE_STORAGE_INTERNAL_ROLLUP_H_

// Private to storage/: how probe fields are computed from their columns, and the hourly rollup
// table (migration 3) that the writer maintains in the same transaction as the rows.

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/common.h"
#include "common/result.h"
#include "storage/storage.h"

namespace modelpulse::storage {

// The probe columns fields are computed from: one per ProbeNumber, in its order.
inline constexpr std::array<std::string_view, kProbeNumberCount> kFieldColumnNames = {
    "outcome",       "http_status", "total_s",        "dns_s",     "connect_s",    "tls_s",
    "first_byte_s",  "ttft_s",      "first_answer_s", "itl_s",     "tokens_per_s", "output_tokens",
    "req_remaining", "req_limit",   "tok_remaining",  "tok_limit", "retry_after_s"};
using ColumnValues = std::array<std::optional<double>, kFieldColumnNames.size()>;
// Where the probe summaries' inputs are in ColumnValues.
inline constexpr size_t kTotalColumn = 2;
inline constexpr size_t kTtftColumn = 7;
inline constexpr size_t kTokensPerSecondColumn = 10;
static_assert(kFieldColumnNames[kTotalColumn] == "total_s" &&
              kFieldColumnNames[kTtftColumn] == "ttft_s" &&
              kFieldColumnNames[kTokensPerSecondColumn] == "tokens_per_s");

// The (one or two) columns a field is computed from, as indexes into kFieldColumnNames; b is -1
// when the field needs one column (common/probe_series.h says which).
struct FieldColumns {
  int a = 0;
  int b = -1;
};
FieldColumns ColumnsOf(ProbeField field);

// The field from its columns' values: common/probe_series.h's ProbeSeriesValue, with NaN as none
// (SQLite stores NaN as NULL). Used by the narrow read, the writer's rollups, the backfill and
// ProbeFieldValue alike.
std::optional<double> FieldFromColumns(ProbeField field, std::optional<double> a,
                                       std::optional<double> b);

// The columns of a probe record as they are stored.
ColumnValues ColumnsOfProbe(const ProbeResult& probe);

// The fields whose values each rollup also keeps, every one (table rollup_values, migration
// 14), so that quantile_over_time reads an hour as one row instead of one row a probe: the probe
// summaries' inputs (total time, time to first token, tokens per second), the ones whose
// quantiles the shipped rules take. 2 or 3 bytes a value (AppendEncodedValue); the other fields'
// rollups have no row there.
constexpr bool KeepsValues(ProbeField field) {
  return field == ProbeField::kTotal || field == ProbeField::kTtft ||
         field == ProbeField::kOutputTokensPerSecond;
}
// A rollup's values as stored, in the order they were added: a run of self-delimiting values,
// so that appending two runs (SQLite's ||) is the run of both.
void AppendEncodedValue(std::string& out, double v);
// The values of an encoded run, bit for bit as added; nullopt for a malformed run.
std::optional<std::vector<double>> DecodeValues(const void* data, size_t bytes);

// count/sum/min/max and the first and last row time for one key, folded row by row, and the
// values themselves where the field keeps them.
struct RollupCell {
  int64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  int64_t second_ms = INT64_MAX;  // FieldRollup's: INT64_MAX one row, first_ms on a tie
  double first_value = 0;
  bool keeps_values = false;
  std::string values;  // encoded, when keeps_values
  void Add(int64_t t_ms, double v);
};

// The rollups as a migration finds them: migrations 3 and 8 rebuild them before migration 13
// adds first_ms and last_ms and migration 14 first_value, second_ms and table rollup_values;
// everything later writes them all.
enum class RollupColumns { kSchema3, kCurrent };

// (target_id, field, bucket_ms, label_set_id) -> cell, ordered as the table's key.
using RollupCells = std::map<std::tuple<int64_t, int, int64_t, int64_t>, RollupCell>;

inline int64_t BucketOf(int64_t t_ms) {
  const int64_t q = t_ms / kRollupBucketMs;
  return (t_ms % kRollupBucketMs < 0 ? q - 1 : q) * kRollupBucketMs;
}

// Folds every field of one row into `cells`.
void AddRow(RollupCells& cells, int64_t target_id, int64_t start_ms, int64_t label_set_id,
            const ColumnValues& columns);

// Adds `cells` to the table (upsert: counts and sums add, min and max combine, values append).
Status UpsertRollups(sqlite3* db, const RollupCells& cells,
                     RollupColumns schema = RollupColumns::kCurrent);

// Rebuilds the rollups of rows with target_id in [first_target, last_target] and start_ms in
// [from_ms, to_ms) from the rows themselves, after deleting the rollups of the buckets that
// range covers. The backfill (all targets, all time) and retention's repair use it.
Status RebuildRollups(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                      int64_t to_ms, RollupColumns schema = RollupColumns::kCurrent);

// Migration 14's backfill, from the rows: every stored rollup's exact first and last row times,
// first value and second row time, and the values of the fields that keep them.
Status FillSchema14Rollups(sqlite3* db);

// Keeps the rollups of `target_id` consistent after its oldest rows were deleted: drops every
// bucket before the bucket of its oldest remaining row and rebuilds that bucket.
Status TrimRollups(sqlite3* db, int64_t target_id);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_ROLLUP_H_
