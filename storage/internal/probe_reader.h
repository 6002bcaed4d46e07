#ifndef MODELPULSE_STORAGE_INTERNAL_PROBE_READER_H_
#define MODELPULSE_STORAGE_INTERNAL_PROBE_READER_H_

// Private to storage/: the read side, on its own connection so that reads run beside the writer
// (WAL gives each read a consistent snapshot without blocking the writer).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/common.h"
#include "storage/internal/first_seen.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/sqlite.h"
#include "storage/storage.h"

namespace modelpulse::storage {

// Owns the read connection. Thread-safe: calls are serialised on one mutex.
class ProbeReader {
 public:
  // REQUIRES: the schema of `db` is at LatestSchemaVersion().
  static Result<std::unique_ptr<ProbeReader>> Create(DbHandle db);
  // Use Create(); public only for make_unique.
  explicit ProbeReader(DbHandle db) : db_(std::move(db)) {}
  ProbeReader(const ProbeReader&) = delete;
  ProbeReader& operator=(const ProbeReader&) = delete;
  ~ProbeReader() = default;

  Result<std::vector<ProbeResult>> Read(std::string_view target, int64_t from_ms, int64_t to_ms);
  Result<std::vector<std::pair<std::string, Labels>>> Targets();
  Result<std::vector<StoredTarget>> ListTargets();
  Result<std::vector<FieldPoint>> ReadField(int64_t target_id, ProbeField field, int64_t from_ms,
                                            int64_t to_ms);
  Result<std::vector<std::vector<FieldPoint>>> ReadFieldIn(
      int64_t target_id, ProbeField field,
      const std::vector<std::pair<int64_t, int64_t>>& intervals);
  Result<std::vector<FieldRollup>> ReadRollups(int64_t target_id, ProbeField field, int64_t from_ms,
                                               int64_t to_ms);
  Result<std::vector<RollupValues>> ReadRollupValues(int64_t target_id, ProbeField field,
                                                     int64_t from_ms, int64_t to_ms);
  Status ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                           const std::function<void(const CounterPoint&)>& each);
  Result<std::vector<CounterFirstSeen>> FirstSeenCounters(int64_t target_id);
  Result<Labels> LabelSetOf(int64_t id);

 private:
  Result<const Labels*> LabelSet(int64_t id);  // REQUIRES: mu_ held
  // The narrow statement of `field`, prepared on first use. REQUIRES: mu_ held.
  Result<sqlite3_stmt*> FieldStatement(ProbeField field);
  // Appends the field's values of [from_ms, to_ms) to `out`. REQUIRES: mu_ held.
  Status StepField(sqlite3_stmt* s, ProbeField field, int64_t target_id, int64_t from_ms,
                   int64_t to_ms, std::vector<FieldPoint>& out);

  std::mutex mu_;
  DbHandle db_;                         // Guarded by mu_.
  StatementHandle read_probes_;         // Guarded by mu_.
  StatementHandle read_label_set_;      // Guarded by mu_.
  StatementHandle list_targets_;        // Guarded by mu_.
  StatementHandle list_target_ids_;     // Guarded by mu_.
  StatementHandle read_rollups_;        // Guarded by mu_.
  StatementHandle read_rollup_values_;  // Guarded by mu_.
  // Prepared on first use. Guarded by mu_.
  std::optional<CounterInputsStatement> read_counter_inputs_;
  // One narrow statement per ProbeField, prepared on first use. Guarded by mu_.
  std::array<StatementHandle, kProbeFieldCount> read_field_;
  // Label sets are never updated or deleted once written, so a decoded set stays valid.
  std::unordered_map<int64_t, Labels> label_sets_;  // Guarded by mu_.
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_PROBE_READER_H_
