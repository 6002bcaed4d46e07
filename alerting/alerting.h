#ifndef MODELPULSE_ALERTING_ALERTING_H_
#define MODELPULSE_ALERTING_ALERTING_H_

// Alerts that reach people (issue 8): the rule engine's alert events (common/alert_event.h),
// committed to the outbox together with the state change that caused them, are delivered from
// here to Alertmanagers (POST /api/v2/alerts, as Prometheus sends: ../shared/
// prometheus-semantics.md §5.1) and to webhook receivers (Alertmanager's webhook payload version
// "4", §5.3, grouped, waited and repeated as Alertmanager does). Delivery is at least once, in
// order per destination, with an Idempotency-Key that survives retries and restarts, exponential
// back-off with jitter, a max_age after which a message is given up (counted, logged) and a
// bounded outbox that sheds its oldest messages (counted, logged).
//
// Depends on common/ only: the outbox through NotificationOutbox and StateStore
// (common/state_store.h, implemented by storage/), time through Clock, HTTP through Transport.
// config.h reads the `alerting:` section of the main file; internal/ holds the matchers,
// payloads, grouping, signature and the libcurl sender.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/common.h"
#include "common/secret.h"
#include "common/state_store.h"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace modelpulse::alerting {

// Where and how to POST. `url` may hold a secret in its query (chat webhooks): it is logged only
// through RedactedUrl().
struct HttpEndpoint {
  Secret url;
  Millis timeout{10000};  // the whole request; connecting gets at most this too
  std::string ca_file;    // empty: the system's trust store. TLS is always verified.
  Secret bearer_token;
  std::string basic_username;
  Secret basic_password;
  friend bool operator==(const HttpEndpoint&, const HttpEndpoint&) = default;
};

// scheme://host[:port]/path of `url`: no user information, query or fragment.
std::string RedactedUrl(const std::string& url);
// Go's time.Time JSON form for a UTC time: RFC 3339 with the fraction's trailing zeros trimmed
// ("2026-11-26T03:02:50Z", "...:50.12Z"), as Prometheus's and Alertmanager's APIs write times.
std::string GoTime(int64_t unix_ms);

struct AlertmanagerConfig {
  HttpEndpoint endpoint;  // the Alertmanager's base URL; /api/v2/alerts is appended
  Millis max_age{24LL * 3600 * 1000};
  friend bool operator==(const AlertmanagerConfig&, const AlertmanagerConfig&) = default;
};

struct ReceiverConfig {
  std::string name;
  HttpEndpoint webhook;  // `webhook:` or `template:`: where to POST
  // `template:` receivers: the body's template text (non-empty) and its file's name (in
  // errors), rendered from the webhook payload by NotifierOptions::render.
  std::string body_template;
  std::string body_template_name;
  std::string content_type = "application/json";
  Secret hmac_secret;                 // empty: no X-Modelpulse-Signature
  std::vector<std::string> matchers;  // Alertmanager syntax, each already validated
  std::vector<std::string> group_by;  // ["..."]: every label
  Millis group_wait{30000};
  Millis group_interval{300000};
  Millis repeat_interval{4LL * 3600 * 1000};
  bool send_resolved = true;
  int64_t max_alerts = 0;  // 0: no limit; beyond it alerts are cut and counted (truncatedAlerts)
  Millis max_age{24LL * 3600 * 1000};
  friend bool operator==(const ReceiverConfig&, const ReceiverConfig&) = default;
};

struct AlertingConfig {
  std::string external_url;  // generatorURL and the webhook's externalURL
  Labels external_labels;    // added to every alert that lacks them
  std::vector<AlertmanagerConfig> alertmanagers;
  std::vector<ReceiverConfig> receivers;
  // A reload replaces the notifier only when this differs (daemon).
  friend bool operator==(const AlertingConfig&, const AlertingConfig&) = default;
};

// Renders a template receiver's body from the webhook payload version "4" (its JSON text). The
// daemon wires the rules module's template engine here: alerting does not include rules.
using BodyRenderer = std::function<Result<std::string>(std::string_view name, std::string_view text,
                                                       std::string_view payload_json)>;

// The limits and timings of delivery that are not user configuration.
struct NotifierOptions {
  BodyRenderer render;  // null: template receivers' messages fail (counted, logged)
  // Messages kept per destination; beyond it the oldest is shed (counted and logged).
  size_t max_pending_per_destination = 10000;
  Millis initial_backoff{500};
  Millis max_backoff{60000};
  Millis poll_interval{200};                 // how often new alert events are looked for
  size_t alerts_per_alertmanager_post = 64;  // Prometheus 2.42's batch size
  uint64_t seed = 0;                         // jitter; 0: from std::random_device
};

// One HTTP POST; implementations must be thread-safe.
struct HttpRequest {
  const HttpEndpoint* endpoint = nullptr;
  std::string url;  // may differ from endpoint->url (Alertmanager's API path)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};
class Transport {
 public:
  virtual ~Transport() = default;
  // The HTTP status, or kUnavailable for a connection, TLS or timeout failure (message without
  // the URL's secret parts).
  virtual Result<int> Post(const HttpRequest& request) = 0;
};
// libcurl; REQUIRES: curl_global_init was called.
std::unique_ptr<Transport> CurlTransport();

struct DestinationStatus {
  std::string name;  // receiver name, or "alertmanager/<index>"
  size_t pending = 0;
  double oldest_pending_seconds = 0;
};

// Delivers the outbox. Run() sends on its own threads (one per destination, so a receiver that
// hangs delays only itself); Step() is one round on the caller's thread, for tests that drive the
// clock. Thread-safe.
class Notifier {
 public:
  // Reads the pending deliveries and the aggregation groups saved by an earlier run (or by the
  // notifier a reload replaces). Those of a destination no longer configured are given up:
  // removed from the outbox, counted as given_up under their old name, and logged.
  // REQUIRES: outbox, states, transport and clock outlive the notifier.
  static Result<std::unique_ptr<Notifier>> Create(AlertingConfig config, NotifierOptions options,
                                                  NotificationOutbox& outbox, StateStore& states,
                                                  Transport& transport, const Clock& clock);
  virtual ~Notifier() = default;

  // Delivers until `stop` is requested.
  virtual void Run(std::stop_token stop) = 0;
  // Consumes new events, flushes due groups and sends every due message synchronously.
  virtual void Step() = 0;
  virtual std::vector<DestinationStatus> Destinations() const = 0;
  // modelpulse_notifications_total, _queue_length, oldest pending age and the delivery latency.
  virtual std::shared_ptr<prometheus::Collectable> MetricsCollectable() const = 0;
};

}  // namespace modelpulse::alerting

#endif  // MODELPULSE_ALERTING_ALERTING_H_
