#ifndef MODELPULSE_COMMON_STATE_STORE_H_
#define MODELPULSE_COMMON_STATE_STORE_H_

// Small documents that must survive a restart, such as alert states. storage::Store keeps them;
// rules/ persists its alert states through this interface without including storage/.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace modelpulse {

// Values are replaced whole per (space, key) and written synchronously: when PutState returns,
// the value is committed. kInternal/kIo on a database error.
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual Status PutState(std::string_view space, std::string_view key, std::string_view value) = 0;
  virtual Status DeleteState(std::string_view space, std::string_view key) = 0;
  // Every (key, value) of one namespace, ordered by key.
  virtual Result<std::vector<std::pair<std::string, std::string>>> GetStates(
      std::string_view space) const = 0;
};

// The rule engine's half of the notification outbox. A state change and the notifications it
// causes are committed together, so a crash (kill -9 included) can lose neither one alone: what
// was decided is delivered after a restart, and nothing is re-decided.
class AlertOutboxWriter {
 public:
  virtual ~AlertOutboxWriter() = default;
  // In one transaction: replaces (space, key) with `value` (deletes it when nullopt) and appends
  // each of `events` (opaque documents, common/alert_event.h) to the outbox. Both or neither.
  virtual Status CommitStateWithEvents(std::string_view space, std::string_view key,
                                       std::optional<std::string_view> value,
                                       const std::vector<std::string>& events) = 0;
};

// An alert event as committed by AlertOutboxWriter, in commit order.
struct OutboxEvent {
  int64_t id = 0;  // increasing, never reused
  int64_t created_ms = 0;
  std::string body;
};

// One message due to one destination (a receiver or an Alertmanager).
struct OutboxDelivery {
  int64_t id = 0;  // assigned by the store, increasing, never reused: the sending order
  std::string destination;
  std::string group_key;
  std::string idempotency_key;  // chosen once, so retries and restarts repeat it
  std::string body;
  int64_t created_ms = 0;
  int64_t attempts = 0;
  int64_t next_attempt_ms = 0;
};

// Everything one step of delivery changes, applied in one transaction.
struct OutboxChange {
  int64_t consume_events_through = 0;  // delete events with id <= this; 0: none
  std::vector<OutboxDelivery> insert;  // ids ignored
  std::vector<OutboxDelivery> update;  // attempts and next_attempt_ms, by id
  std::vector<int64_t> remove;         // delivery ids
  // Documents of the StateStore namespace `state_space`: a value replaces, nullopt deletes.
  std::string state_space;
  std::vector<std::pair<std::string, std::optional<std::string>>> states;

  bool empty() const {
    return consume_events_through == 0 && insert.empty() && update.empty() && remove.empty() &&
           states.empty();
  }
};

// alerting/'s half of the outbox, implemented by storage.
class NotificationOutbox {
 public:
  virtual ~NotificationOutbox() = default;
  // Up to `limit` events, oldest first.
  virtual Result<std::vector<OutboxEvent>> ReadEvents(size_t limit) = 0;
  // Every pending delivery, by id.
  virtual Result<std::vector<OutboxDelivery>> ReadDeliveries() = 0;
  // Applies `change` atomically; returns the ids given to change.insert, in order.
  virtual Result<std::vector<int64_t>> ApplyOutboxChange(const OutboxChange& change) = 0;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_STATE_STORE_H_
