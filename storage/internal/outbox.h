#ifndef MODELPULSE_STORAGE_INTERNAL_OUTBOX_H_
#define MODELPULSE_STORAGE_INTERNAL_OUTBOX_H_

// Private to storage/: the notification outbox's SQL (tables alert_events and notifications,
// schema migration 4) behind common/state_store.h's AlertOutboxWriter and NotificationOutbox.
// Each function runs on the caller's connection; the caller serialises use of it.

#include <sqlite3.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/state_store.h"

namespace modelpulse::storage {

Status CommitStateWithEvents(sqlite3* db, int64_t now_ms, std::string_view space,
                             std::string_view key, std::optional<std::string_view> value,
                             const std::vector<std::string>& events);
// Records one alert event in alert_history (migration 7): one row per alert and firing
// interval, keyed by its labels and start, holding the latest event. The outbox's alert_events
// is a queue the notifier empties; this is what a report reads months later.
Status RecordAlertHistory(sqlite3* db, int64_t now_ms, std::string_view event);
Result<std::vector<OutboxEvent>> ReadOutboxEvents(sqlite3* db, size_t limit);
Result<std::vector<OutboxDelivery>> ReadOutboxDeliveries(sqlite3* db);
Result<std::vector<int64_t>> ApplyOutboxChange(sqlite3* db, int64_t now_ms,
                                               const OutboxChange& change);

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_OUTBOX_H_
