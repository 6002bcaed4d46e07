#ifndef MODELPULSE_COMMON_ALERT_EVENT_H_
#define MODELPULSE_COMMON_ALERT_EVENT_H_

// One alert as the rule engine hands it to delivery (../shared/prometheus-semantics.md §2.6):
// the unit rules/ writes into the notification outbox and alerting/ reads back. Shared here
// because rules/ and alerting/ may not include each other.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/labels.h"
#include "common/result.h"

namespace modelpulse {

struct AlertEvent {
  Labels labels;  // identity labels; external labels are added by the sender
  Labels annotations;
  int64_t starts_at_ms = 0;  // FiredAt
  int64_t ends_at_ms = 0;    // ResolvedAt when resolved, else ValidUntil
  bool resolved = false;
  std::string generator_url;

  friend bool operator==(const AlertEvent&, const AlertEvent&) = default;
};

// A JSON document; DecodeAlertEvent(EncodeAlertEvent(e)) == e.
std::string EncodeAlertEvent(const AlertEvent& event);
// kParse when `text` is not an encoded event.
Result<AlertEvent> DecodeAlertEvent(std::string_view text);

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_ALERT_EVENT_H_
