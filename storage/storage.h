#ifndef MODELPULSE_STORAGE_STORAGE_H_
#define MODELPULSE_STORAGE_STORAGE_H_

// Probe history in one SQLite file (WAL). Depends on common/ only; knows nothing of providers
// or PromQL.
//
// Where things live: this header is the store (Store, with the narrow interfaces its users
// take: ProbeSink, ProbeHistory, StoreMaintenance, StateStore); storage/series_source.h is the
// read path rules evaluate over (recent memory plus rollup pushdown); storage/archive.h is the
// read-only view reports and the status page take, with the probe summaries' digests
// (storage/probe_digest.h, storage/ddsketch.h). Private, under internal/: schema.h (tables and
// migrations), probe_writer.h (batched inserts), probe_reader.h (range and field reads),
// rollup.h (hourly rollups), summary.h (hourly and daily probe summaries), label_codec.h (stored
// label sets), sqlite.h (the C API wrapped).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/common.h"
#include "common/probe_series.h"
#include "common/state_store.h"

namespace modelpulse {
class Heartbeat;  // common/heartbeat.h
}  // namespace modelpulse

namespace modelpulse::storage {

struct StorageOptions {
  std::string path;                           // the database file; created if missing
                                              // (a real file: ":memory:" is not supported)
  Millis retention{90LL * 24 * 3600 * 1000};  // rows older than this are deleted; <= 0
                                              // keeps everything
  // Hourly and daily probe summaries (what reports and the status page read) older than this
  // are deleted; never sooner than `retention` deletes the rows (a shorter value is raised to
  // it). <= 0, or retention <= 0: kept for ever.
  Millis summary_retention{2LL * 365 * 24 * 3600 * 1000};
  size_t batch_size = 512;             // rows per write transaction, at most
  Millis flush_interval{1000};         // a partial batch waits at most this long
  size_t retention_batch_rows = 2000;  // rows deleted per retention transaction
  Millis retention_interval{60000};    // how often retention runs; <= 0: only
                                       // on ApplyRetention()
  size_t max_queue = 100000;           // beyond this, Append drops and counts
  // Beaten by the writer thread on every round of work and set idle while it waits (the service
  // watchdog's view of the writer); null: none. REQUIRES: outlives the store.
  Heartbeat* heartbeat = nullptr;
  // Open runs SQLite's quick_check on files up to this size. It reads every page: on this
  // project's 2-core VM a 6.6 GB database (34.56 M probes) took 143 s with the file in the page
  // cache and 353 s from disk, longer than systemd waits for a start; 256 MiB is a few seconds.
  // A larger file opens at once and is checked in the background (StorageStats::integrity).
  uint64_t integrity_check_max_bytes = uint64_t{256} << 20;
};

struct StorageStats {
  size_t queue_depth = 0;
  uint64_t rows_written = 0;
  uint64_t rows_dropped = 0;  // queue full
  uint64_t batches_written = 0;
  uint64_t write_errors = 0;
  double last_batch_seconds = 0;
  uint64_t rows_deleted_by_retention = 0;
  uint64_t rows_failed = 0;        // rows of batches whose transaction failed (see write_errors)
  uint64_t retention_batches = 0;  // retention transactions that deleted at least one row
  uint64_t summaries_deleted_by_retention = 0;
  // False from a failed batch until the next one commits: the store cannot write (disk full,
  // its file deleted or replaced, permissions), so the daemon is not ready.
  bool writable = true;
  // SQLite's quick_check of the file: done at open up to integrity_check_max_bytes; a larger
  // file is kChecking until a background check, on a connection of its own, says kOk or
  // kCorrupt (then the daemon is not ready: every read may fail and rows may be lost).
  enum class Integrity { kOk, kChecking, kCorrupt };
  Integrity integrity = Integrity::kOk;
  double integrity_check_seconds = 0;  // how long the last check took
};

// The probe series' fields (common/probe_series.h ProbeField), with ids stored in the rollup table.
using modelpulse::kProbeFieldCount;
using modelpulse::ProbeField;

// The field's value in one probe; nullopt when the probe has none (a phase that did not happen).
// NaN counts as none, since SQLite stores NaN as NULL.
std::optional<double> ProbeFieldValue(const ProbeResult& probe, ProbeField field);

// Rollups cover whole hours of start time: [bucket_ms, bucket_ms + kRollupBucketMs).
inline constexpr int64_t kRollupBucketMs = 3'600'000;

// One stored value of one field: the probe's start time and the label set it was written with.
struct FieldPoint {
  int64_t t_ms = 0;
  int64_t label_set_id = 0;
  double value = 0;
};

// Count, sum, min and max of one field over the probes of one target, one label set and one
// hour. Exact for count, min and max; the sum is exact up to float rounding order (values are
// added as rows commit).
struct FieldRollup {
  int64_t bucket_ms = 0;
  int64_t label_set_id = 0;
  int64_t count = 0;
  double sum = 0;
  double min = 0;
  double max = 0;
  // No row of the rollup lies outside [first_ms, last_ms]: the first and last row's times, or
  // wider bounds where they are not known (rollups stored before schema 13 that its backfill
  // found no probe for: the whole time line).
  int64_t first_ms = INT64_MIN;
  int64_t last_ms = INT64_MAX;
  // The first row's value and the second row's time (INT64_MAX: one row; first_ms again when two
  // rows share the first time), so that a read of the hour's first instants needs no rows where
  // they hold one row at most. Unknown: nullopt and INT64_MIN.
  std::optional<double> first_value;
  int64_t second_ms = INT64_MIN;
};

// One hourly rollup's values (ProbeHistory::ReadRollupValues), in no particular order.
struct RollupValues {
  int64_t bucket_ms = 0;
  int64_t label_set_id = 0;
  int64_t count = 0;           // the rollup's, so a reader can tell kept values from none
  std::vector<double> values;  // empty where the field's values are not kept
};

// The numbers the counter families (common/probe_series.h ProbeCounterFamilies) are computed
// from, for one stored probe: outcome, and each histogram's input (none when absent).
struct CounterPoint {
  int64_t t_ms = 0;
  int64_t label_set_id = 0;
  ProbeNumbers numbers;  // only the counter families' inputs are filled
};

// When some counter-family series of one target and label set were first moved: the start of
// the oldest stored probe that moved slots [first_slot, last_slot) of ProbeCounterSlots() (one
// outcome's modelpulse_probes_total, or every series of one histogram, which one observation
// creates together).
struct CounterFirstSeen {
  int64_t label_set_id = 0;
  size_t first_slot = 0;
  size_t last_slot = 0;
  int64_t first_ms = 0;
};

struct StoredTarget {
  int64_t id = 0;
  std::string name;
  Labels labels;  // of the latest probe
};

// Where the prober's results go: a queue in front of the writer thread.
class ProbeSink {
 public:
  virtual ~ProbeSink() = default;
  // Queues one probe for the writer. Never blocks on disk.
  virtual void Append(ProbeResult result) = 0;
  // Blocks until everything queued before the call is committed. Returns the last write error
  // if a batch holding such rows failed.
  virtual Status Flush() = 0;
};

// The read paths: whole probes (the CLI, the restart warm-up) and one field at a time with its
// hourly rollups (rule evaluation over long windows).
class ProbeHistory {
 public:
  virtual ~ProbeHistory() = default;
  // Probes of one target with from_ms <= start_unix_ms < to_ms, oldest first (probes of the same
  // ms in append order), each with the labels it was written with. Empty for an unknown target.
  virtual Result<std::vector<ProbeResult>> ReadProbes(std::string_view target, int64_t from_ms,
                                                      int64_t to_ms) const = 0;
  // Every target that has stored probes, by name, with the labels of its latest probe (by start
  // time, not arrival).
  virtual Result<std::vector<std::pair<std::string, Labels>>> Targets() const = 0;
  // Like Targets(), with the ids the narrow reads below take.
  virtual Result<std::vector<StoredTarget>> ListTargets() const = 0;
  // The narrow read path for rule evaluation: (start time, label set, value) of one field of
  // one target with from_ms <= start_ms < to_ms, in primary-key order, skipping probes without
  // the field. Reads only the columns the field needs and copies no labels.
  virtual Result<std::vector<FieldPoint>> ReadField(int64_t target_id, ProbeField field,
                                                    int64_t from_ms, int64_t to_ms) const = 0;
  // ReadField over each of `intervals` ([from_ms, to_ms) pairs), one answer per interval, in one
  // read transaction: what a range query's steps read at their windows' edges. The default
  // calls ReadField once an interval.
  virtual Result<std::vector<std::vector<FieldPoint>>> ReadFieldIn(
      int64_t target_id, ProbeField field,
      const std::vector<std::pair<int64_t, int64_t>>& intervals) const;
  // The hourly rollups of one field of one target for the buckets wholly inside [from_ms,
  // to_ms): from_ms <= bucket_ms and bucket_ms + kRollupBucketMs <= to_ms; by bucket, then label
  // set. Maintained in the same transaction as the rows, so always consistent with ReadField.
  virtual Result<std::vector<FieldRollup>> ReadRollups(int64_t target_id, ProbeField field,
                                                       int64_t from_ms, int64_t to_ms) const = 0;
  // The values of one field of one target in the hourly rollups ReadRollups reads for the
  // same arguments, where storage keeps a field's values beside its rollups (the latency fields
  // quantiles are taken of): a multiset equal to ReadField's over those hours. A rollup whose
  // values.size() differs from its count has them not kept.
  virtual Result<std::vector<RollupValues>> ReadRollupValues(int64_t target_id, ProbeField field,
                                                             int64_t from_ms,
                                                             int64_t to_ms) const = 0;
  // Calls `each` with the counter families' inputs of every probe of one target with from_ms <=
  // start_ms < to_ms, in primary-key order, without collecting them (30 days of one target are
  // 170,000 rows): the rule engine derives the counters and histograms from them. `each` must not
  // call back into this history (the read connection is held meanwhile).
  virtual Status ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                                   const std::function<void(const CounterPoint&)>& each) const = 0;
  // When each counter-family series of one target's label sets was first moved, over its stored
  // probes: kept by the writer and retention in the same transactions as the rows (table
  // counter_first_seen), so it equals a scan of the rows without one. Empty for an unknown
  // target.
  virtual Result<std::vector<CounterFirstSeen>> FirstSeenCounters(int64_t target_id) const = 0;
  // The labels of a label set id from ReadField or ReadRollups. kNotFound-like kInternal when
  // the id is unknown.
  virtual Result<Labels> LabelSet(int64_t label_set_id) const = 0;
};

// Retention and the writer's figures, for the daemon's housekeeping and /metrics.
class StoreMaintenance {
 public:
  virtual ~StoreMaintenance() = default;
  // Deletes rows with start_unix_ms < clock now - retention, in transactions of at most
  // retention_batch_rows that interleave with the writer's batches; returns how many. Probe
  // summaries stay until summary_retention (whole buckets that end before now minus it go).
  virtual Result<uint64_t> ApplyRetention() = 0;
  virtual StorageStats Stats() const = 0;
};

// Owns the database and a writer thread that commits queued probes in batches. Thread-safe.
// Two connections: one for the writer thread and ApplyRetention (serialised), one for reads, so
// reads run beside writes. A batch whose transaction fails is dropped, counted in write_errors
// and rows_failed, and reported by the next Flush; so is every batch after the database file
// was deleted or replaced under the store (it checks the path's inode before each write). Each
// user holds only the interface it needs; the key-value state store (alert states) is
// common/state_store.h's StateStore, and the notification outbox its AlertOutboxWriter (rules)
// and NotificationOutbox (alerting).
class Store : public ProbeSink,
              public ProbeHistory,
              public StoreMaintenance,
              public StateStore,
              public AlertOutboxWriter,
              public NotificationOutbox {
 public:
  // Opens or creates the database, switches it to WAL, runs SQLite's quick_check and applies
  // pending migrations. Fails with kIo (message naming the path and what to do) when the file
  // cannot be opened, is not a database or is corrupt,
  // kInvalidArgument for an empty path, and kInternal when a migration fails (that migration is
  // rolled back) or the database is newer than this binary.
  // REQUIRES: `clock` outlives the store; it is read from the writer thread.
  static Result<std::unique_ptr<Store>> Open(const StorageOptions& options, const Clock& clock);
  // For a reader beside the daemon (`modelpulse query`): the probe history of the database at
  // `path`, opened read-only. Never created, migrated or written, so it works for a user who may
  // only read the file and never changes a file a running daemon of another version owns.
  // kNotFound when the file does not exist, kIo when it cannot be opened or its schema is not
  // this binary's (the message says which way and what to do).
  static Result<std::unique_ptr<ProbeHistory>> OpenHistoryReadOnly(const std::string& path);
  // Flushes what is queued, then stops the writer.
  ~Store() override = default;
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_STORAGE_H_
