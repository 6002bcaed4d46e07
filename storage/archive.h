#ifndef MODELPULSE_STORAGE_ARCHIVE_H_
#define MODELPULSE_STORAGE_ARCHIVE_H_

// A read-only view of a modelpulse database for reports (`modelpulse report`): opened with
// SQLITE_OPEN_READONLY, so it never creates, migrates or writes the file and runs beside the
// daemon that writes it (WAL readers do not block the writer).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/common.h"
#include "storage/probe_digest.h"
#include "storage/storage.h"

namespace modelpulse::storage {

// One probe as a report reads it: no labels; request id and error only for failures (the
// evidence a credit claim needs), empty for successful probes.
struct ProbeSummary {
  int64_t start_ms = 0;
  Outcome outcome = Outcome::kOk;
  double total_s = 0;
  std::optional<double> ttft_s;
  std::optional<double> tokens_per_s;
  std::string request_id;
  std::string error;
};

// One stored alert event (alert_history's latest event of an interval, or a queued one).
struct StoredAlertEvent {
  int64_t id = 0;  // the queue's id; 0 from alert_history
  int64_t created_ms = 0;
  std::string body;  // common/alert_event.h encoding
};

// One UTC day of one target from the daily probe summaries (status page; the hourly rollups in
// a database older than schema 9): probes, and how many had some of the outcomes.
struct DayCounts {
  int64_t day_ms = 0;  // 00:00 UTC
  int64_t probes = 0;
  int64_t ok = 0;
  int64_t throttled = 0;
  int64_t overloaded = 0;
  int64_t quota_exhausted = 0;
  int64_t auth = 0;
};

// What one target's probes of one UTC day (or of the part of it inside a period) come to.
struct DayDigest {
  int64_t day_ms = 0;  // 00:00 UTC
  ProbeDigest digest;
};

class Archive {
 public:
  // kNotFound when `path` is not an existing file (a read-only open never creates one), kIo
  // when it cannot be opened or is not a modelpulse database.
  static Result<std::unique_ptr<Archive>> OpenReadOnly(const std::string& path);
  virtual ~Archive() = default;
  virtual Result<std::vector<StoredTarget>> ListTargets() const = 0;
  // Calls `each` for every probe of the target with from_ms <= start_ms < to_ms, oldest first.
  virtual Status ScanProbes(int64_t target_id, int64_t from_ms, int64_t to_ms,
                            const std::function<void(const ProbeSummary&)>& each) const = 0;
  // One target's probes with from_ms <= start_ms < to_ms, digested per UTC day, oldest first
  // (days without probes left out). From the daily summaries for whole days, the hourly ones
  // for whole hours, and the rows only for the partial hours at the period's edges (or all of
  // it from the rows in a database older than schema 9). Equal to a fold of the rows
  // (DigestFolder) for as long as retention keeps them, and after.
  virtual Result<std::vector<DayDigest>> DigestDays(int64_t target_id, int64_t from_ms,
                                                    int64_t to_ms) const = 0;
  // The daily summaries of each target for the UTC days with from_ms <= day < to_ms (schema 9;
  // before it, the hourly rollups with from_ms <= bucket_ms < to_ms summed per day), oldest
  // first, by target id; days without probes are left out. Reads one row per target and day,
  // never a probe, in one statement for all the targets.
  virtual Result<std::map<int64_t, std::vector<DayCounts>>> DailyCounts(
      const std::vector<int64_t>& target_ids, int64_t from_ms, int64_t to_ms) const = 0;
  // The alert events behind the firing intervals that overlap [from_ms, to_ms): the latest
  // event of each interval from alert_history (schema 7), else the queued events created in
  // the period.
  virtual Result<std::vector<StoredAlertEvent>> AlertEvents(int64_t from_ms,
                                                            int64_t to_ms) const = 0;
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_ARCHIVE_H_
