#ifndef MODELPULSE_STORAGE_INTERNAL_FIRST_SEEN_H_
#define MODELPULSE_STORAGE_INTERNAL_FIRST_SEEN_H_

// Private to storage/: when each counter-family series (common/probe_series.h
// ProbeCounterFamilies) of each target and label set was first moved by a stored probe, in the
// table counter_first_seen (migration 12). The discovery endpoints list a counter series from
// that probe on (ProbeSeriesSource::SeriesIn); without the table, the first listing after every
// start had to scan the counter inputs of every stored probe (3.9 s for 20 targets x 30 days,
// about 40 s for 200). The writer keeps it in the same transaction as the rows, retention in the
// same transaction as its deletes (a series whose every probe is gone loses its row, one whose
// first probes are gone gets the start of its oldest remaining one), and the migration backfills
// it, so it always equals a scan of the stored rows.
//
// One row per (target, label set, group): a group is the series one probe creates together, so
// that a row never depends on the bucket bounds: one outcome's modelpulse_probes_total, or all of
// one histogram (its _bucket series, _sum and _count, which a single observation creates).

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "common/probe_series.h"
#include "common/result.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/sqlite.h"
#include "storage/storage.h"

namespace modelpulse::storage {

// A group of counter slots as the table names it: `name` is stored in counter_first_seen.series
// ('modelpulse_probes_total{outcome="ok"}', or a histogram family's name), covering slots
// [first_slot, last_slot) of ProbeCounterSlots().
struct CounterGroup {
  std::string name;
  size_t first_slot = 0;
  size_t last_slot = 0;
};
const std::vector<CounterGroup>& CounterGroups();

// Calls each(group index) for every group one probe moves (ForEachProbeIncrement's slots, a
// group once).
void ForEachCounterGroup(const ProbeNumbers& numbers, const std::function<void(size_t)>& each);

// The counter families' inputs of one target's rows of probe_rows (the outcome and every
// histogram's input, decoded as the `probes` view decodes them), on any connection: the reader's
// ScanCounterInputs, the migration's backfill and retention's repair share it.
class CounterInputsStatement {
 public:
  static Result<CounterInputsStatement> Prepare(sqlite3* db);
  // Calls `each` for the rows with from_ms <= start_ms < to_ms in primary-key order until it
  // returns false.
  Status Scan(sqlite3* db, int64_t target_id, int64_t from_ms, int64_t to_ms,
              const std::function<bool(const CounterPoint&)>& each) const;

 private:
  StatementHandle statement_;
  std::vector<ProbeNumber> inputs_;   // the columns it reads, after start and label set
  std::vector<StoredNumber> stored_;  // how each is stored, two columns each
};

// (target_id, label_set_id, group) -> first_ms.
using FirstSeenCells = std::map<std::tuple<int64_t, int64_t, size_t>, int64_t>;

// Folds one probe into `cells`.
void AddFirstSeen(FirstSeenCells& cells, int64_t target_id, int64_t label_set_id,
                  const ProbeNumbers& numbers, int64_t start_ms);

// The writer's side: adds a batch's cells to the table (the earlier time wins), skipping those
// its cache says are stored already. Not thread-safe: the writer serialises every call.
class FirstSeenWriter {
 public:
  static Result<FirstSeenWriter> Create(sqlite3* db);
  Status Upsert(sqlite3* db, const FirstSeenCells& cells);
  // Forgets what is stored: after a rollback, or once retention changed the table.
  void ClearCache() { stored_.clear(); }

 private:
  StatementHandle upsert_;
  FirstSeenCells stored_;  // at least as late as the table's time for each key
};

// Replaces the whole table by a scan of every stored row (migration 12's backfill).
Status RebuildFirstSeen(sqlite3* db);

// After retention deleted the oldest rows of `target_id`: every row of the table whose probe
// may be gone (first_ms at or before the oldest remaining row) gets the time of its group's
// oldest remaining probe, found by scanning from there, or goes when there is none. Returns
// whether the table changed.
Result<bool> TrimFirstSeen(sqlite3* db, int64_t target_id);

// The table's rows of one target.
Result<std::vector<CounterFirstSeen>> ReadFirstSeen(sqlite3* db, int64_t target_id);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_FIRST_SEEN_H_
