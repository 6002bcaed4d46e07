// The Notifier over an in-memory outbox and a scripted transport, with the clock driven by the
// test: order, idempotency keys, back-off, max_age, shedding, restarts. The same outbox over a
// real SQLite file is tested in tests/storage/outbox_test.cpp.

#include <doctest/doctest.h>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <map>
#include <nlohmann/json.hpp>

#include "alerting/alerting.h"
#include "common/alert_event.h"

namespace modelpulse::alerting {
namespace {

using nlohmann::json;

class MemoryOutbox final : public NotificationOutbox, public StateStore {
 public:
  void AddEvent(const AlertEvent& event) {
    events_.push_back({++last_event_, 0, EncodeAlertEvent(event)});
  }
  Result<std::vector<OutboxEvent>> ReadEvents(size_t limit) override {
    std::vector<OutboxEvent> out(
        events_.begin(),
        events_.begin() + static_cast<std::ptrdiff_t>(std::min(limit, events_.size())));
    return out;
  }
  Result<std::vector<OutboxDelivery>> ReadDeliveries() override {
    std::vector<OutboxDelivery> out;
    for (const auto& [id, d] : deliveries_) {
      out.push_back(d);
    }
    return out;
  }
  Result<std::vector<int64_t>> ApplyOutboxChange(const OutboxChange& change) override {
    std::erase_if(events_,
                  [&](const OutboxEvent& e) { return e.id <= change.consume_events_through; });
    std::vector<int64_t> ids;
    for (OutboxDelivery d : change.insert) {
      d.id = ++last_delivery_;
      ids.push_back(d.id);
      deliveries_[d.id] = d;
    }
    for (const OutboxDelivery& d : change.update) {
      deliveries_[d.id].attempts = d.attempts;
      deliveries_[d.id].next_attempt_ms = d.next_attempt_ms;
    }
    for (int64_t id : change.remove) {
      deliveries_.erase(id);
    }
    for (const auto& [key, value] : change.states) {
      if (value) {
        states_[change.state_space + "/" + key] = *value;
      } else {
        states_.erase(change.state_space + "/" + key);
      }
    }
    return ids;
  }
  Status PutState(std::string_view space, std::string_view key, std::string_view value) override {
    states_[std::string(space) + "/" + std::string(key)] = std::string(value);
    return {};
  }
  Status DeleteState(std::string_view space, std::string_view key) override {
    states_.erase(std::string(space) + "/" + std::string(key));
    return {};
  }
  Result<std::vector<std::pair<std::string, std::string>>> GetStates(
      std::string_view space) const override {
    std::vector<std::pair<std::string, std::string>> out;
    const std::string prefix = std::string(space) + "/";
    for (const auto& [key, value] : states_) {
      if (key.starts_with(prefix)) {
        out.emplace_back(key.substr(prefix.size()), value);
      }
    }
    return out;
  }
  size_t pending() const { return deliveries_.size(); }

 private:
  std::vector<OutboxEvent> events_;
  std::map<int64_t, OutboxDelivery> deliveries_;
  std::map<std::string, std::string> states_;
  int64_t last_event_ = 0;
  int64_t last_delivery_ = 0;
};

// Answers each POST with the next scripted status (0: a connection failure), then 200.
class ScriptedTransport final : public Transport {
 public:
  Result<int> Post(const HttpRequest& request) override {
    requests.push_back(request);
    if (script.empty()) {
      return 200;
    }
    const int status = script.front();
    script.erase(script.begin());
    if (status == 0) {
      return Fail(Error::Unavailable("connection refused"));
    }
    return status;
  }
  std::string Header(size_t i, const std::string& name) const {
    for (const auto& [n, v] : requests.at(i).headers) {
      if (n == name) {
        return v;
      }
    }
    return "";
  }
  std::vector<int> script;
  std::vector<HttpRequest> requests;
};

constexpr int64_t kStart = 1'800'000'000'000;

AlertEvent Alert(const std::string& name, bool resolved, int64_t now) {
  AlertEvent e;
  e.labels = {{"alertname", name}};
  e.annotations = {{"summary", name + " happened"}};
  e.starts_at_ms = kStart;
  e.resolved = resolved;
  e.ends_at_ms = resolved ? now : now + 240000;
  e.generator_url = "http://mp/graph";
  return e;
}

AlertingConfig WebhookConfig() {
  AlertingConfig config;
  config.external_url = "http://mp:9464";
  config.external_labels = {{"vantage", "test"}};
  ReceiverConfig r;
  r.name = "hook";
  r.webhook.url = Secret("http://127.0.0.1:1/hook?token=secret");
  r.group_by = {"alertname"};
  r.group_wait = Millis(0);
  r.group_interval = Millis(1000);
  r.max_age = Millis(600000);
  config.receivers.push_back(r);
  return config;
}

NotifierOptions TestOptions() {
  NotifierOptions options;
  options.seed = 42;
  options.initial_backoff = Millis(1000);
  options.max_backoff = Millis(8000);
  return options;
}

double MetricValue(const Notifier& notifier, const std::string& name, const std::string& result) {
  for (const auto& family : notifier.MetricsCollectable()->Collect()) {
    if (family.name != name) {
      continue;
    }
    for (const auto& metric : family.metric) {
      bool match = result.empty();
      for (const auto& label : metric.label) {
        match = match || (label.name == "result" && label.value == result);
      }
      if (match) {
        return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                              : metric.gauge.value;
      }
    }
  }
  return -1;
}

TEST_CASE("webhook notifications are retried in order with a stable idempotency key") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = {0, 0, 500};  // down twice, then a 500, then 200s
  auto notifier =
      Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(notifier);
  outbox.AddEvent(Alert("A", false, kStart));
  (*notifier)->Step();
  clock.Advance(1000);
  outbox.AddEvent(Alert("B", false, clock.NowUnixMillis()));
  (*notifier)->Step();
  CHECK(outbox.pending() == 2);
  for (int i = 0; i < 40 && outbox.pending() > 0; ++i) {
    clock.Advance(500);
    (*notifier)->Step();
  }
  CHECK(outbox.pending() == 0);
  // Three failed attempts of A, its success, then B: B never overtakes A.
  REQUIRE(transport.requests.size() == 5);
  const std::string key_a = transport.Header(0, "Idempotency-Key");
  CHECK(key_a.size() == 32);
  for (size_t i = 1; i < 4; ++i) {
    CHECK(transport.Header(i, "Idempotency-Key") == key_a);
    CHECK(transport.requests[i].body == transport.requests[0].body);
  }
  CHECK(transport.Header(4, "Idempotency-Key") != key_a);
  const json a = json::parse(transport.requests[0].body);
  const json b = json::parse(transport.requests[4].body);
  CHECK(a["groupLabels"]["alertname"] == "A");
  CHECK(b["groupLabels"]["alertname"] == "B");
  CHECK(a["alerts"][0]["labels"]["vantage"] == "test");
  CHECK(a["externalURL"] == "http://mp:9464");
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "retried") == 3);
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "sent") == 2);
}

TEST_CASE("a message older than max_age is given up and counted") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = std::vector<int>(100, 503);
  auto notifier =
      Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(notifier);
  outbox.AddEvent(Alert("A", false, kStart));
  (*notifier)->Step();
  for (int i = 0; i < 100 && outbox.pending() > 0; ++i) {
    clock.Advance(10000);
    (*notifier)->Step();
  }
  CHECK(outbox.pending() == 0);
  // The firing message and, once its endsAt passed unrenewed, the group's resolution.
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "given_up") == 2);
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "sent") == 0);
  // Nothing is attempted past max_age (10 minutes at 10 s steps: at most 61 tries each).
  CHECK(transport.requests.size() <= 122);
}

TEST_CASE("a client error is not retried") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = {400};
  auto notifier =
      Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(notifier);
  outbox.AddEvent(Alert("A", false, kStart));
  (*notifier)->Step();
  CHECK(outbox.pending() == 0);
  CHECK(transport.requests.size() == 1);
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "failed") == 1);
}

TEST_CASE("a full outbox sheds its oldest message and counts it") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = std::vector<int>(100, 0);
  NotifierOptions options = TestOptions();
  options.max_pending_per_destination = 2;
  auto notifier = Notifier::Create(WebhookConfig(), options, outbox, outbox, transport, clock);
  REQUIRE(notifier);
  for (const char* name : {"A", "B", "C"}) {
    outbox.AddEvent(Alert(name, false, clock.NowUnixMillis()));
    (*notifier)->Step();
  }
  CHECK(outbox.pending() == 2);
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "shed") == 1);
  CHECK(MetricValue(**notifier, "modelpulse_notification_queue_length", "") == 2);
}

TEST_CASE("pending messages and groups survive a restart with the same key") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = {0};
  std::string key;
  {
    auto notifier =
        Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
    REQUIRE(notifier);
    outbox.AddEvent(Alert("A", false, kStart));
    (*notifier)->Step();
    REQUIRE(transport.requests.size() == 1);
    key = transport.Header(0, "Idempotency-Key");
  }
  CHECK(outbox.pending() == 1);
  clock.Advance(60000);
  auto restarted =
      Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(restarted);
  (*restarted)->Step();
  REQUIRE(transport.requests.size() == 2);
  CHECK(transport.Header(1, "Idempotency-Key") == key);
  // The group was restored: the same firing alert again is no news.
  outbox.AddEvent(Alert("A", false, clock.NowUnixMillis()));
  clock.Advance(2000);
  (*restarted)->Step();
  CHECK(transport.requests.size() == 2);
  // Its resolution is.
  outbox.AddEvent(Alert("A", true, clock.NowUnixMillis()));
  clock.Advance(2000);
  (*restarted)->Step();
  REQUIRE(transport.requests.size() == 3);
  CHECK(json::parse(transport.requests[2].body)["status"] == "resolved");
}

TEST_CASE("signed webhooks carry t and v1, receivers only get what their matchers select") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  AlertingConfig config = WebhookConfig();
  config.receivers[0].hmac_secret = Secret("s3cret");
  config.receivers[0].matchers = {"alertname=~\"A|B\""};
  auto notifier = Notifier::Create(config, TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(notifier);
  outbox.AddEvent(Alert("C", false, kStart));
  outbox.AddEvent(Alert("A", false, kStart));
  (*notifier)->Step();
  REQUIRE(transport.requests.size() == 1);
  const std::string signature = transport.Header(0, "X-Modelpulse-Signature");
  CHECK(signature.starts_with("t=1800000000,v1="));
  CHECK(signature.size() == std::string("t=1800000000,v1=").size() + 64);
  CHECK(json::parse(transport.requests[0].body)["groupKey"] ==
        "{}/{alertname=~\"A|B\"}:{alertname=\"A\"}");
}

TEST_CASE("alertmanagers get every event in batches at the api v2 path") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  AlertingConfig config;
  config.external_labels = {{"vantage", "test"}};
  AlertmanagerConfig am;
  am.endpoint.url = Secret("http://127.0.0.1:9093/");
  config.alertmanagers.push_back(am);
  NotifierOptions options = TestOptions();
  options.alerts_per_alertmanager_post = 2;
  auto notifier = Notifier::Create(config, options, outbox, outbox, transport, clock);
  REQUIRE(notifier);
  for (const char* name : {"A", "B", "C"}) {
    outbox.AddEvent(Alert(name, false, kStart));
  }
  (*notifier)->Step();
  REQUIRE(transport.requests.size() == 2);
  CHECK(transport.requests[0].url == "http://127.0.0.1:9093/api/v2/alerts");
  const json first = json::parse(transport.requests[0].body);
  REQUIRE(first.size() == 2);
  CHECK(first[0]["labels"]["alertname"] == "A");
  CHECK(first[0]["labels"]["vantage"] == "test");
  CHECK(first[0]["endsAt"] == "2027-01-15T08:04:00.000Z");
  CHECK(json::parse(transport.requests[1].body)[0]["labels"]["alertname"] == "C");
}

TEST_CASE("a template receiver posts what its renderer makes of the webhook payload") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  AlertingConfig config = WebhookConfig();
  config.receivers[0].body_template = "TEMPLATE";
  config.receivers[0].body_template_name = "chat.tmpl";
  config.receivers[0].content_type = "text/plain";
  NotifierOptions options = TestOptions();
  std::vector<std::string> payloads;
  options.render = [&](std::string_view name, std::string_view text,
                       std::string_view payload) -> Result<std::string> {
    payloads.emplace_back(payload);
    if (json::parse(payload)["status"] == "resolved") {
      return Fail(Error::InvalidArgument("template: chat.tmpl:1: boom"));
    }
    return std::string(name) + "|" + std::string(text) + "|" +
           json::parse(payload)["alerts"][0]["labels"]["alertname"].get<std::string>();
  };
  auto notifier = Notifier::Create(config, options, outbox, outbox, transport, clock);
  REQUIRE(notifier);
  outbox.AddEvent(Alert("A", false, kStart));
  (*notifier)->Step();
  REQUIRE(transport.requests.size() == 1);
  CHECK(transport.requests[0].body == "chat.tmpl|TEMPLATE|A");
  CHECK(transport.Header(0, "Content-Type") == "text/plain");
  // The renderer saw the webhook payload version 4, external labels included.
  REQUIRE(payloads.size() == 1);
  CHECK(json::parse(payloads[0])["version"] == "4");
  CHECK(json::parse(payloads[0])["alerts"][0]["labels"]["vantage"] == "test");
  // A body that fails to render is counted as failed and never queued.
  clock.Advance(2000);
  outbox.AddEvent(Alert("A", true, clock.NowUnixMillis()));
  (*notifier)->Step();
  clock.Advance(2000);
  (*notifier)->Step();
  CHECK(transport.requests.size() == 1);
  CHECK(outbox.pending() == 0);
  CHECK(MetricValue(**notifier, "modelpulse_notifications_total", "failed") == 1);
}

TEST_CASE("pending messages of a receiver no longer configured are given up and counted") {
  ManualClock clock(kStart);
  MemoryOutbox outbox;
  ScriptedTransport transport;
  transport.script = {0};
  {
    auto first = Notifier::Create(WebhookConfig(), TestOptions(), outbox, outbox, transport, clock);
    REQUIRE(first);
    outbox.AddEvent(Alert("A", false, kStart));
    (*first)->Step();
    CHECK(outbox.pending() == 1);
  }
  AlertingConfig renamed = WebhookConfig();
  renamed.receivers[0].name = "other";
  auto second = Notifier::Create(renamed, TestOptions(), outbox, outbox, transport, clock);
  REQUIRE(second);
  CHECK(outbox.pending() == 0);
  bool counted = false;
  for (const auto& family : (*second)->MetricsCollectable()->Collect()) {
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& label : metric.label) {
        labels[label.name] = label.value;
      }
      if (family.name == "modelpulse_notifications_total" && labels["receiver"] == "hook" &&
          labels["result"] == "given_up") {
        counted = metric.counter.value == 1;
      }
    }
  }
  CHECK(counted);
}

TEST_CASE("redacted URLs drop credentials, query and fragment") {
  CHECK(RedactedUrl("https://user:pw@hooks.example.com/services/x?token=abc#f") ==
        "https://hooks.example.com/services/x");
  CHECK(RedactedUrl("http://127.0.0.1:5001/hook") == "http://127.0.0.1:5001/hook");
}

}  // namespace
}  // namespace modelpulse::alerting
