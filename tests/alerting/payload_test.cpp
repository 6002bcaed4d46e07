// Wire formats against what Alertmanager 0.25 and Prometheus 2.42 produce
// (../shared/prometheus-semantics.md §5.1-§5.3, captured from the real tools).

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "alerting/internal/payload.h"

namespace modelpulse::alerting {
namespace {

const Labels kLabels = {{"alertname", "ProbeFailing"}, {"severity", "page"}, {"target", "a"}};

TEST_CASE("fingerprint equals Alertmanager's for the reference label set") {
  CHECK(Fingerprint(kLabels) == "9547fb5a34ef568c");
  CHECK(Fingerprint({}) == "cbf29ce484222325");
}

TEST_CASE("times are written as Go's JSON encoder and go-openapi write them") {
  // 2026-11-26T03:02:50Z
  const int64_t t = 1795662170000;
  CHECK(GoTime(t) == "2026-11-26T03:02:50Z");
  CHECK(GoTime(t + 123) == "2026-11-26T03:02:50.123Z");
  CHECK(GoTime(t + 120) == "2026-11-26T03:02:50.12Z");
  CHECK(Rfc3339Millis(t) == "2026-11-26T03:02:50.000Z");
  CHECK(Rfc3339Millis(300000) == "1970-01-01T00:05:00.000Z");
}

TEST_CASE("webhook payload is byte-identical to Alertmanager's captured firing message") {
  AlertEvent alert;
  alert.labels = kLabels;
  alert.annotations = {{"summary", "a failing"}};
  alert.starts_at_ms = 1795662170000;
  alert.ends_at_ms = 1795662170000 + 240000;
  alert.generator_url = "http://sla-monitor.local/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1";
  WebhookMessage message{"hook", "{}:{alertname=\"ProbeFailing\"}",
                         {{"alertname", "ProbeFailing"}}, {alert}, "http://vm:19093", 0};
  const std::string expected =
      R"({"receiver":"hook","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"ProbeFailing","severity":"page","target":"a"},"annotations":{"summary":"a failing"},"startsAt":"2026-11-26T03:02:50Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://sla-monitor.local/graph?g0.expr=probe_success+%3D%3D+0\u0026g0.tab=1","fingerprint":"9547fb5a34ef568c"}],"groupLabels":{"alertname":"ProbeFailing"},"commonLabels":{"alertname":"ProbeFailing","severity":"page","target":"a"},"commonAnnotations":{"summary":"a failing"},"externalURL":"http://vm:19093","version":"4","groupKey":"{}:{alertname=\"ProbeFailing\"}","truncatedAlerts":0})";
  CHECK(WebhookPayload(message, alert.starts_at_ms + 1000) == expected);
}

TEST_CASE("webhook payload marks resolved alerts, keeps common pairs and truncates") {
  AlertEvent a;
  a.labels = {{"alertname", "X"}, {"target", "b"}, {"empty", ""}};
  a.annotations = {{"summary", "b"}};
  a.starts_at_ms = 1000;
  a.ends_at_ms = 5000;
  a.resolved = true;
  AlertEvent b = a;
  b.labels["target"] = "a";
  b.resolved = false;
  b.ends_at_ms = 100000;
  WebhookMessage message{"a.b", "k", {{"alertname", "X"}}, {a, b}, "http://x", 1};
  const auto doc = nlohmann::json::parse(WebhookPayload(message, 6000));
  CHECK(doc["receiver"] == "a\\.b");
  CHECK(doc["status"] == "firing");
  REQUIRE(doc["alerts"].size() == 1);
  // Sorted by labels: target="a" first, and it is the firing one.
  CHECK(doc["alerts"][0]["labels"]["target"] == "a");
  CHECK(doc["alerts"][0]["labels"].count("empty") == 0);
  CHECK(doc["truncatedAlerts"] == 1);

  message.max_alerts = 0;
  const auto both = nlohmann::json::parse(WebhookPayload(message, 6000));
  CHECK(both["alerts"][1]["status"] == "resolved");
  CHECK(both["alerts"][1]["endsAt"] == "1970-01-01T00:00:05Z");
  CHECK(both["commonLabels"] == nlohmann::json{{"alertname", "X"}});
  CHECK(both["commonAnnotations"] == nlohmann::json{{"summary", "b"}});
}

TEST_CASE("alertmanager payload matches Prometheus's body for the reference alert") {
  AlertEvent alert;
  alert.labels = kLabels;
  alert.labels["vantage"] = "eu1";
  alert.annotations = {{"summary", "a failing (value 0)"}};
  alert.starts_at_ms = 300000;
  alert.ends_at_ms = 540000;
  alert.generator_url = "http://mp:9099/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1";
  const std::string expected =
      R"json([{"labels":{"alertname":"ProbeFailing","severity":"page","target":"a","vantage":"eu1"},"annotations":{"summary":"a failing (value 0)"},"startsAt":"1970-01-01T00:05:00.000Z","endsAt":"1970-01-01T00:09:00.000Z","generatorURL":"http://mp:9099/graph?g0.expr=probe_success+%3D%3D+0\u0026g0.tab=1"}])json";
  CHECK(AlertmanagerPayload({alert}) == expected);
}

TEST_CASE("signature is HMAC-SHA256 of t.body in hex") {
  // echo -n '1700000000.{}' | openssl dgst -sha256 -hmac secret
  CHECK(SignatureHeader(Secret("secret"), 1700000000, "{}") ==
        "t=1700000000,v1=" + std::string("b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"));
}

TEST_CASE("label sets print as Alertmanager's group keys do") {
  CHECK(LabelSetString({{"alertname", "X"}, {"model", "m\"1"}}) ==
        "{alertname=\"X\", model=\"m\\\"1\"}");
  CHECK(LabelSetString({}) == "{}");
}

}  // namespace
}  // namespace modelpulse::alerting
