#ifndef MODELPULSE_STORAGE_RECORDED_STORE_H_
#define MODELPULSE_STORAGE_RECORDED_STORE_H_

// The series rules write, stored (a public header of storage/, beside storage.h): recording
// outputs, ALERTS and ALERTS_FOR_STATE with their stale markers, kept for the storage retention
// with hourly rollups, and read back as a SampleSource by the rule engine, the HTTP API and
// `modelpulse query`. Tables: migration 6 in schema.cpp.

#include <cstdint>
#include <memory>
#include <string>

#include "common/common.h"
#include "common/recorded_series.h"
#include "common/sample_source.h"

namespace modelpulse::storage {

struct RecordedStoreOptions {
  std::string path;                           // the database Store::Open created and migrated
  Millis retention{90LL * 24 * 3600 * 1000};  // as StorageOptions::retention; <= 0 keeps all
  Millis retention_interval{60000};           // how often AppendRecorded runs retention;
                                              // <= 0: only on ApplyRetention()
};

// Thread-safe: the rule engine appends while API requests read. Its own two connections (one
// writes, one reads), so neither waits for the probe writer's batches beyond SQLite's lock.
class RecordedStore : public SampleSource, public RecordedSeriesWriter {
 public:
  // Opens the database (applying migrations if Store::Open has not). kIo when the file cannot
  // be opened, kInternal when its schema cannot be brought up to date.
  // REQUIRES: `clock` outlives the store.
  static Result<std::unique_ptr<RecordedStore>> Open(const RecordedStoreOptions& options,
                                                     const Clock& clock);
  // The stored series of the database at `path` for a reader beside the daemon (`modelpulse
  // query`): opened read-only, never created, migrated or written; fails as
  // Store::OpenHistoryReadOnly does. REQUIRES: `clock` outlives the source.
  static Result<std::unique_ptr<SampleSource>> OpenReadOnly(const std::string& path,
                                                            const Clock& clock);
  ~RecordedStore() override = default;

  // Select returns a superset (equality matchers narrow the read; the caller re-applies every
  // matcher), stale markers included as in the rule engine's memory. SelectAggregate reads
  // count, sum, avg, min and max over long ranges from the hourly rollups plus the samples at
  // the edges (exact; sum and avg up to float rounding order), and the rest from the samples.

  // Deletes samples older than clock now - retention, with the rollups of the hours they
  // leave, and the series left without samples; returns how many samples.
  virtual Result<uint64_t> ApplyRetention() = 0;
  // Distinct series stored.
  virtual size_t SeriesCount() const = 0;
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_RECORDED_STORE_H_
