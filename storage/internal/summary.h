#ifndef MODELPULSE_STORAGE_INTERNAL_SUMMARY_H_
#define MODELPULSE_STORAGE_INTERNAL_SUMMARY_H_

// Private to storage/: the per-target probe summaries (migration 9, table probe_summaries), one
// row per target, span (an hour or a UTC day) and bucket holding a storage/probe_digest.h digest.
// The writer keeps them in the same transaction as the rows; the migration backfills them;
// retention deletes raw rows without touching them and deletes them on their own, longer
// retention (StorageOptions::summary_retention), whole buckets at a time, so no retention pass
// ever needs to rebuild one.

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <tuple>

#include "common/common.h"
#include "common/result.h"
#include "storage/probe_digest.h"

namespace modelpulse::storage {

// What a summary takes from one stored probe (the values as stored, so the writer's summaries
// equal a rebuild from the rows).
struct SummaryProbe {
  int64_t target_id = 0;
  int64_t start_ms = 0;
  Outcome outcome = Outcome::kOk;
  std::optional<double> ttft_s;
  double total_s = 0;
  std::optional<double> tokens_per_s;
};

// The digests of the newest bucket per target and span as the writer last wrote them, so the
// next batch need not read and decode them again. The writer clears it when a batch rolls back.
using SummaryKey = std::tuple<int64_t, int64_t, int64_t>;  // target_id, span_ms, bucket_ms
using SummaryCache = std::map<SummaryKey, ProbeDigest>;

// Adds `probes` (already inserted in the open transaction, any order) to the hourly and daily
// summaries of their buckets. A minute that got a probe is re-derived from the stored rows of
// that minute unless the batch itself holds an ok probe for it, since a batch may hold only part
// of a minute. `cache` (may be null) holds digests as stored; it is updated to what is written.
Status UpdateSummaries(sqlite3* db, std::span<const SummaryProbe> probes,
                       SummaryCache* cache = nullptr);

// Rebuilds the summaries of targets [first_target, last_target] for the UTC days that
// [from_ms, to_ms) touches, from the stored rows: deletes those days' rows (both spans) and
// writes them again. The migration's backfill (everything) and bench/rules_bench's generator use
// it.
Status RebuildSummaries(sqlite3* db, int64_t first_target, int64_t last_target, int64_t from_ms,
                        int64_t to_ms);

// Deletes the summaries of buckets that end at or before `cutoff_ms`; returns how many.
Result<uint64_t> DeleteSummariesBefore(sqlite3* db, int64_t cutoff_ms);

// Calls `each` for the summaries of one target and span with from_ms <= bucket_ms and
// bucket_ms + span_ms <= to_ms, oldest first.
Status ReadSummaries(sqlite3* db, int64_t target_id, int64_t span_ms, int64_t from_ms,
                     int64_t to_ms, const std::function<void(int64_t, ProbeDigest&)>& each);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_SUMMARY_H_
