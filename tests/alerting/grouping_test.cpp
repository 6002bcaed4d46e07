#include <doctest/doctest.h>

#include "alerting/internal/grouping.h"

namespace modelpulse::alerting {
namespace {

// As the rule engine sends a firing alert at `now`: valid for 4 resend periods.
AlertEvent Firing(const std::string& target, int64_t starts, int64_t now) {
  AlertEvent e;
  e.labels = {{"alertname", "Down"}, {"target", target}};
  e.starts_at_ms = starts;
  e.ends_at_ms = now + 240000;
  return e;
}

AlertEvent Resolved(const std::string& target, int64_t starts, int64_t now) {
  AlertEvent e = Firing(target, starts, now);
  e.resolved = true;
  e.ends_at_ms = now;
  return e;
}

TEST_CASE("group labels and keys follow group_by and the route") {
  const Labels l = {{"alertname", "Down"}, {"model", "m"}, {"target", "t"}};
  CHECK(GroupLabels(l, {"alertname", "model", "absent"}) ==
        Labels{{"alertname", "Down"}, {"model", "m"}});
  CHECK(GroupLabels(l, {"..."}) == l);
  CHECK(GroupLabels(l, {}).empty());
  CHECK(GroupKey(RouteKey(""), {{"alertname", "Down"}}) == "{}:{alertname=\"Down\"}");
  CHECK(GroupKey(RouteKey("{severity=\"page\"}"), {}) == "{}/{severity=\"page\"}:{}");
}

TEST_CASE("a group waits group_wait, then notifies changes at group_interval and repeats") {
  const GroupTimings t{Millis(30000), Millis(300000), Millis(3600000), true};
  AggregationGroup g{"k", {}};
  AddAlert(g, Firing("a", 0, 0), t, 0);
  CHECK(g.next_flush_ms == 30000);
  auto first = Flush(g, t, 30000);
  CHECK(first.notify);
  CHECK(first.alerts.size() == 1);
  CHECK(g.next_flush_ms == 330000);

  // Same alert re-sent by the rule engine: nothing new at the next interval.
  AddAlert(g, Firing("a", 0, 200000), t, 200000);
  CHECK_FALSE(Flush(g, t, 330000).notify);

  // A second alert joins: notified at the next interval with both.
  AddAlert(g, Firing("b", 400000, 400000), t, 400000);
  AddAlert(g, Firing("a", 0, 600000), t, 600000);
  auto second = Flush(g, t, 630000);
  CHECK(second.notify);
  CHECK(second.alerts.size() == 2);

  // Unchanged until repeat_interval has passed since the last notification.
  AddAlert(g, Firing("a", 0, 900000), t, 900000);
  AddAlert(g, Firing("b", 400000, 900000), t, 900000);
  CHECK_FALSE(Flush(g, t, 930000).notify);
  AddAlert(g, Firing("a", 0, 4000000), t, 4000000);
  AddAlert(g, Firing("b", 400000, 4000000), t, 4000000);
  CHECK(Flush(g, t, 630000 + 3600000).notify);
}

TEST_CASE("a resolution is notified once and then forgotten") {
  const GroupTimings t{Millis(0), Millis(60000), Millis(3600000), true};
  AggregationGroup g{"k", {}};
  AddAlert(g, Firing("a", 0, 0), t, 0);
  CHECK(Flush(g, t, 0).notify);
  AddAlert(g, Resolved("a", 0, 50000), t, 50000);
  auto resolved = Flush(g, t, 60000);
  CHECK(resolved.notify);
  REQUIRE(resolved.alerts.size() == 1);
  CHECK(resolved.alerts[0].resolved);
  CHECK(resolved.group_empty);
}

TEST_CASE("without send_resolved the last resolution clears the log but sends nothing") {
  const GroupTimings t{Millis(0), Millis(60000), Millis(3600000), false};
  AggregationGroup g{"k", {}};
  AddAlert(g, Firing("a", 0, 0), t, 0);
  AddAlert(g, Firing("b", 0, 0), t, 0);
  CHECK(Flush(g, t, 0).notify);
  AddAlert(g, Resolved("a", 0, 50000), t, 50000);
  auto partial = Flush(g, t, 60000);
  CHECK_FALSE(partial.notify);
  AddAlert(g, Resolved("b", 0, 100000), t, 100000);
  auto all = Flush(g, t, 120000);
  CHECK_FALSE(all.notify);  // nothing left to say without resolved alerts
  CHECK(g.notified_firing.empty());
  CHECK(all.group_empty);
}

TEST_CASE("an alert that only resolved before the first flush is never sent") {
  const GroupTimings t{Millis(30000), Millis(60000), Millis(3600000), true};
  AggregationGroup g{"k", {}};
  AddAlert(g, Resolved("a", 0, 10), t, 10);
  auto outcome = Flush(g, t, 30010);
  CHECK_FALSE(outcome.notify);
  CHECK(outcome.group_empty);
}

TEST_CASE("groups survive encoding") {
  const GroupTimings t{Millis(0), Millis(60000), Millis(3600000), true};
  AggregationGroup g{"{}:{alertname=\"Down\"}", {{"alertname", "Down"}}};
  AddAlert(g, Firing("a", 5, 5), t, 5);
  (void)Flush(g, t, 5);
  AddAlert(g, Firing("b", 7, 7), t, 7);
  auto decoded = DecodeGroup(EncodeGroup(g));
  REQUIRE(decoded);
  CHECK(decoded->key == g.key);
  CHECK(decoded->alerts == g.alerts);
  CHECK(decoded->notified_firing == g.notified_firing);
  CHECK(decoded->next_flush_ms == g.next_flush_ms);
  CHECK_FALSE(DecodeGroup("{"));
}

TEST_CASE("backoff doubles up to the cap with jitter in the upper half") {
  const Millis initial(500);
  const Millis cap(60000);
  CHECK(BackoffMs(1, initial, cap, 0.0) == 250);
  CHECK(BackoffMs(1, initial, cap, 0.999) == 499);
  CHECK(BackoffMs(3, initial, cap, 0.0) == 1000);
  CHECK(BackoffMs(30, initial, cap, 0.0) == 30000);
  CHECK(BackoffMs(30, initial, cap, 0.5) == 45000);
}

}  // namespace
}  // namespace modelpulse::alerting
