#ifndef MODELPULSE_ALERTING_INTERNAL_PAYLOAD_H_
#define MODELPULSE_ALERTING_INTERNAL_PAYLOAD_H_

// Private to alerting/: what goes on the wire. Alertmanager's fingerprint and webhook payload
// version "4" (../shared/prometheus-semantics.md §5.2, §5.3) and Prometheus's POST
// /api/v2/alerts body (§5.1), byte for byte where Go's encoders fix the bytes; the request
// signature.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "alerting/alerting.h"
#include "common/alert_event.h"
#include "common/secret.h"

namespace modelpulse::alerting {

// FNV-1a 64 over the pairs sorted by name, each name and value followed by 0xFF; 16 hex digits.
std::string Fingerprint(const Labels& labels);
// go-openapi's strfmt.DateTime: always milliseconds ("2026-11-26T03:02:50.000Z").
std::string Rfc3339Millis(int64_t unix_ms);
inline constexpr std::string_view kGoZeroTime = "0001-01-01T00:00:00Z";
// model.LabelSet.String(): {a="b", c="d"}.
std::string LabelSetString(const Labels& labels);
// Go's regexp.QuoteMeta, which Alertmanager applies to the receiver name in the payload.
std::string QuoteMeta(std::string_view text);
// Go's json.Marshal escapes <, > and & inside strings; applied to a whole JSON text.
std::string GoJsonEscapeHtml(std::string json);

// One webhook notification of one aggregation group.
struct WebhookMessage {
  std::string receiver;
  std::string group_key;
  Labels group_labels;
  std::vector<AlertEvent> alerts;  // labels with external labels; any order
  std::string external_url;
  int64_t max_alerts = 0;  // 0: all
};
// The version "4" body at `now_ms` (an alert is resolved once its end is not after now), with
// alerts in Alertmanager's order (job, instance, then labels).
std::string WebhookPayload(const WebhookMessage& message, int64_t now_ms);

// Prometheus's body for POST /api/v2/alerts: a JSON array of postable alerts.
std::string AlertmanagerPayload(const std::vector<AlertEvent>& alerts);

// "t=<unix_s>,v1=<hex HMAC-SHA256 of "<unix_s>.<body>">".
std::string SignatureHeader(const Secret& secret, int64_t unix_s, std::string_view body);

}  // namespace modelpulse::alerting

#endif  // MODELPULSE_ALERTING_INTERNAL_PAYLOAD_H_
