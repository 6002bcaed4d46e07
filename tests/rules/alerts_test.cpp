// The alert state machine driven by hand-made result vectors (§2), and group evaluation over a
// real PromQL engine with an in-memory source.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

#include "rules/internal/go_compat.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

constexpr int64_t kMin = 60000;

RuleDef AlertDef(std::string name, Millis for_duration, Millis keep = Millis(0)) {
  RuleDef def;
  def.kind = RuleDef::Kind::kAlerting;
  def.name = std::move(name);
  def.expr_text = "probe_success == 0";
  def.for_duration = for_duration;
  def.keep_firing_for = keep;
  def.labels = {{"severity", "page"}};
  def.annotations = {{"summary", "{{ $labels.target }} down ({{ $value }})"}};
  return def;
}

Vector Failing(std::initializer_list<std::string> targets, double value = 0) {
  Vector v;
  for (const auto& t : targets) {
    v.push_back({{{"__name__", "probe_success"}, {"target", t}}, value, 0});
  }
  return v;
}

const Labels kAlertA = {{"alertname", "ProbeFailing"}, {"severity", "page"}, {"target", "a"}};

std::optional<Alert> Find(const AlertingRule& rule, const Labels& labels) {
  for (const Alert& a : rule.Alerts()) {
    if (a.labels == labels) {
      return a;
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("pending becomes firing once `for` has elapsed, then resolves") {
  // §2.2's data: failing at 2m..6m, `for: 3m`: pending 2m-4m, firing 5m-6m, resolved at 7m.
  AlertingRule rule(AlertDef("ProbeFailing", Millis(3 * kMin)), AlertingOptions{});
  for (int m = 0; m <= 7; ++m) {
    const bool failing = m >= 2 && m <= 6;
    auto out = rule.Update(failing ? Failing({"a"}) : Vector{}, m * kMin);
    REQUIRE(out);
    auto a = Find(rule, kAlertA);
    if (m < 2) {
      CHECK(!a);
    } else if (m <= 4) {
      REQUIRE(a);
      CHECK(a->state == AlertState::kPending);
      CHECK(a->active_at_ms == 2 * kMin);
      CHECK(rule.FiringAlerts().empty());
    } else if (m <= 6) {
      REQUIRE(a);
      CHECK(a->state == AlertState::kFiring);
      CHECK(a->fired_at_ms == 5 * kMin);
      CHECK(rule.FiringAlerts().size() == 1);
    } else {
      REQUIRE(a);  // kept for re-sending
      CHECK(a->state == AlertState::kInactive);
      CHECK(a->resolved_at_ms == 7 * kMin);
      CHECK(rule.FiringAlerts().empty());
      CHECK(out->samples.empty());
    }
  }
}

TEST_CASE("ALERTS and ALERTS_FOR_STATE samples") {
  AlertingRule rule(AlertDef("ProbeFailing", Millis(3 * kMin)), AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 2 * kMin));
  auto out = rule.Update(Failing({"a"}), 5 * kMin);
  REQUIRE(out);
  REQUIRE(out->samples.size() == 2);
  CHECK(out->active_count == 1);
  Labels alerts = kAlertA;
  alerts["__name__"] = "ALERTS";
  alerts["alertstate"] = "firing";
  Labels for_state = kAlertA;
  for_state["__name__"] = "ALERTS_FOR_STATE";
  CHECK(out->samples[0].labels == alerts);
  CHECK(out->samples[0].value == 1.0);
  CHECK(out->samples[1].labels == for_state);
  CHECK(out->samples[1].value == 120.0);
}

TEST_CASE("a pending alert that disappears once starts `for` again") {
  AlertingRule rule(AlertDef("ProbeFailing", Millis(2 * kMin)), AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 0));
  REQUIRE(rule.Update(Failing({"a"}), kMin));
  REQUIRE(rule.Update(Vector{}, 2 * kMin));
  CHECK(!Find(rule, kAlertA));
  REQUIRE(rule.Update(Failing({"a"}), 3 * kMin));
  CHECK(Find(rule, kAlertA)->active_at_ms == 3 * kMin);
  REQUIRE(rule.Update(Failing({"a"}), 4 * kMin));
  CHECK(Find(rule, kAlertA)->state == AlertState::kPending);
  REQUIRE(rule.Update(Failing({"a"}), 5 * kMin));
  CHECK(Find(rule, kAlertA)->state == AlertState::kFiring);
}

TEST_CASE("keep_firing_for keeps a firing alert for exactly its duration") {
  // §2.3: firing 2m..6m, missing from 7m, still firing 7m-9m, resolved at 10m.
  AlertingRule rule(AlertDef("ProbeFailing", Millis(0), Millis(3 * kMin)), AlertingOptions{});
  for (int m = 2; m <= 10; ++m) {
    REQUIRE(rule.Update(m <= 6 ? Failing({"a"}) : Vector{}, m * kMin));
    auto a = Find(rule, kAlertA);
    REQUIRE(a);
    if (m <= 9) {
      CHECK(a->state == AlertState::kFiring);
      CHECK(a->fired_at_ms == 2 * kMin);
      CHECK(rule.FiringAlerts().size() == 1);
    } else {
      CHECK(a->state == AlertState::kInactive);
      CHECK(a->resolved_at_ms == 10 * kMin);
    }
  }
}

TEST_CASE("keep_firing_for: coming back in time changes nothing else") {
  AlertingRule rule(AlertDef("ProbeFailing", Millis(0), Millis(3 * kMin)), AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 0));
  REQUIRE(rule.Update(Vector{}, kMin));
  CHECK(Find(rule, kAlertA)->keep_firing_since_ms == kMin);
  REQUIRE(rule.Update(Failing({"a"}), 2 * kMin));
  auto a = Find(rule, kAlertA);
  CHECK(!a->keep_firing_since_ms);
  CHECK(a->fired_at_ms == 0);
  CHECK(a->active_at_ms == 0);
}

TEST_CASE("resolved alerts are kept 15 minutes, then forgotten, a comeback is a new alert") {
  AlertingRule rule(AlertDef("ProbeFailing", Millis(0)), AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 0));
  REQUIRE(rule.Update(Vector{}, kMin));
  REQUIRE(rule.Update(Vector{}, 16 * kMin));  // 15m after: not yet (strictly more)
  CHECK(Find(rule, kAlertA));
  REQUIRE(rule.Update(Vector{}, 16 * kMin + 1));
  CHECK(!Find(rule, kAlertA));

  AlertingRule again(AlertDef("ProbeFailing", Millis(2 * kMin)), AlertingOptions{});
  REQUIRE(again.Update(Failing({"a"}), 0));
  REQUIRE(again.Update(Failing({"a"}), 2 * kMin));
  REQUIRE(again.Update(Vector{}, 3 * kMin));
  REQUIRE(again.Update(Failing({"a"}), 4 * kMin));
  auto a = Find(again, kAlertA);
  CHECK(a->state == AlertState::kPending);
  CHECK(a->active_at_ms == 4 * kMin);
  CHECK(!a->resolved_at_ms);
}

TEST_CASE("identity is the label set: a changed label value is another alert") {
  RuleDef def = AlertDef("ProbeFailing", Millis(2 * kMin));
  def.labels["bucket"] = "{{ if gt $value 5.0 }}high{{ else }}low{{ end }}";
  AlertingRule rule(def, AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}, 2), 0));
  REQUIRE(rule.Update(Failing({"a"}, 2), 2 * kMin));
  REQUIRE(rule.FiringAlerts().size() == 1);
  CHECK(rule.FiringAlerts()[0].labels.at("bucket") == "low");
  REQUIRE(rule.Update(Failing({"a"}, 7), 3 * kMin));
  CHECK(rule.FiringAlerts().empty());
  bool high_pending = false;
  for (const Alert& a : rule.Alerts()) {
    if (a.labels.at("bucket") == "high") {
      high_pending = a.state == AlertState::kPending && a.active_at_ms == 3 * kMin;
    } else {
      CHECK(a.state == AlertState::kInactive);
    }
  }
  CHECK(high_pending);
  // Annotations and value are refreshed, not identity.
  REQUIRE(rule.Update(Failing({"a"}, 8), 4 * kMin));
  for (const Alert& a : rule.Alerts()) {
    if (a.labels.at("bucket") == "high") {
      CHECK(a.value == 8.0);
      CHECK(a.annotations.at("summary") == "a down (8)");
    }
  }
}

TEST_CASE("duplicate label sets fail the evaluation and change nothing") {
  RuleDef def = AlertDef("Dup", Millis(0));
  def.labels["target"] = "same";
  AlertingRule rule(def, AlertingOptions{});
  auto out = rule.Update(Failing({"a", "b"}), 0);
  REQUIRE(!out);
  CHECK(out.error().message ==
        "vector contains metrics with the same labelset after applying alert labels");
  CHECK(rule.Alerts().empty());
}

TEST_CASE("limit: more active alerts than allowed clears the rule's state") {
  AlertingRule rule(AlertDef("ProbeFailing", Millis(0)), AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 0, 1));
  auto out = rule.Update(Failing({"a", "b"}), kMin, 1);
  REQUIRE(!out);
  CHECK(out.error().message == "exceeded limit of 1 with 2 alerts");
  CHECK(rule.Alerts().empty());
}

TEST_CASE("template errors and empty label expansions") {
  RuleDef def = AlertDef("ProbeFailing", Millis(0));
  def.labels["gone"] = "{{ $labels.nope }}";
  def.annotations["bad"] = "{{ humanize \"x\" }}";
  AlertingRule rule(def, AlertingOptions{});
  REQUIRE(rule.Update(Failing({"a"}), 0));
  auto a = rule.FiringAlerts().at(0);
  CHECK(a.labels.count("gone") == 0);
  CHECK(a.annotations.at("bad").rfind("<error expanding template: ", 0) == 0);
}

TEST_CASE(
    "sending: immediately when firing, every 2m with 1m/1m, resolved re-sent until forgotten") {
  AlertingOptions options;  // resend delay 1m
  AlertingRule rule(AlertDef("ProbeFailing", Millis(kMin)), options);
  REQUIRE(rule.Update(Failing({"a"}), 0));
  CHECK(rule.TakeAlertsToSend(0, Millis(kMin)).empty());  // pending is never sent
  std::vector<int64_t> sent;
  std::vector<int64_t> changed;  // the sends that are news, not resends
  for (int m = 1; m <= 5; ++m) {
    REQUIRE(rule.Update(Failing({"a"}), m * kMin));
    for (const auto& n : rule.TakeAlertsToSend(m * kMin, Millis(kMin))) {
      sent.push_back(m);
      if (n.changed) {
        changed.push_back(m);
      }
      CHECK(n.starts_at_ms == kMin);  // FiredAt, not ActiveAt
      CHECK(n.ends_at_ms == m * kMin + 4 * kMin);
      CHECK(!n.resolved);
      CHECK(n.labels == kAlertA);
    }
  }
  CHECK(sent == std::vector<int64_t>{1, 3, 5});
  CHECK(changed == std::vector<int64_t>{1});
  REQUIRE(rule.Update(Vector{}, 6 * kMin));
  auto resolved = rule.TakeAlertsToSend(6 * kMin, Millis(kMin));
  REQUIRE(resolved.size() == 1);
  CHECK(resolved[0].resolved);
  CHECK(resolved[0].changed);
  CHECK(resolved[0].ends_at_ms == 6 * kMin);
  REQUIRE(rule.Update(Vector{}, 7 * kMin));
  CHECK(rule.TakeAlertsToSend(7 * kMin, Millis(kMin)).empty());
  REQUIRE(rule.Update(Vector{}, 8 * kMin));
  const auto resent = rule.TakeAlertsToSend(8 * kMin, Millis(kMin));
  REQUIRE(resent.size() == 1);
  CHECK_FALSE(resent[0].changed);
}

TEST_CASE("RESTART: a pending alert keeps its active-since time and fires on schedule") {
  const int64_t t0 = 1'700'000'000'000;
  MemoryAlertStateStore store;
  RuleGroupDef group_def;
  group_def.name = "availability";
  group_def.rules.push_back(AlertDef("ProbeFailing", Millis(10 * kMin)));
  {
    AlertingRule before(group_def.rules[0], AlertingOptions{});
    for (int m = 0; m <= 5; ++m) {  // pending for half its `for`
      REQUIRE(before.Update(Failing({"a"}), t0 + m * kMin));
    }
    REQUIRE(Find(before, kAlertA)->state == AlertState::kPending);
    REQUIRE(store.SaveAlertStates("availability", before.Snapshot("availability", t0 + 5 * kMin)));
  }
  // The process restarts 2 minutes later with fresh objects.
  const int64_t restart = t0 + 7 * kMin;
  auto loaded = store.LoadAlertStates();
  REQUIRE(loaded);
  AlertingRule after(group_def.rules[0], AlertingOptions{});
  after.Restore(*loaded, "availability", restart);
  auto a = Find(after, kAlertA);
  REQUIRE(a);
  CHECK(a->state == AlertState::kPending);
  CHECK(a->active_at_ms == t0);
  REQUIRE(after.Update(Failing({"a"}), t0 + 9 * kMin));
  CHECK(Find(after, kAlertA)->state == AlertState::kPending);
  REQUIRE(after.Update(Failing({"a"}), t0 + 10 * kMin));
  a = Find(after, kAlertA);
  CHECK(a->state == AlertState::kFiring);
  CHECK(a->fired_at_ms == t0 + 10 * kMin);
  CHECK(a->active_at_ms == t0);

  // Another group's or another rule's snapshots are not taken.
  AlertingRule other(AlertDef("Other", Millis(10 * kMin)), AlertingOptions{});
  other.Restore(*loaded, "availability", restart);
  CHECK(other.Alerts().empty());
}

TEST_CASE("RESTART: a firing alert is not re-paged, stale pending state is dropped") {
  MemoryAlertStateStore store;
  RuleDef def = AlertDef("ProbeFailing", Millis(kMin));
  AlertingRule before(def, AlertingOptions{});
  REQUIRE(before.Update(Failing({"a"}), 0));
  REQUIRE(before.Update(Failing({"a", "b"}), kMin));
  REQUIRE(before.TakeAlertsToSend(kMin, Millis(kMin)).size() == 1);
  REQUIRE(store.SaveAlertStates("g", before.Snapshot("g", kMin)));

  AlertingRule after(def, AlertingOptions{});
  after.Restore(*store.LoadAlertStates(), "g", 2 * kMin);
  REQUIRE(after.Update(Failing({"a", "b"}), 2 * kMin));
  // a keeps its last-sent time from before the restart: not re-sent yet. Only b, restored
  // pending since 1m, fires now and is sent.
  auto sends = after.TakeAlertsToSend(2 * kMin, Millis(kMin));
  REQUIRE(sends.size() == 1);
  CHECK(sends[0].labels.at("target") == "b");
  CHECK(after.FiringAlerts().size() == 2);
  for (const Alert& a : after.FiringAlerts()) {
    if (a.labels.at("target") == "a") {
      CHECK(a.fired_at_ms == kMin);  // same startsAt: Alertmanager sees the same alert
    }
  }

  AlertingRule late(def, AlertingOptions{});
  late.Restore(*store.LoadAlertStates(), "g", kMin + 2 * 3600000);  // beyond outage tolerance
  CHECK(late.Alerts().size() == 1);                                 // only the firing one
}

// ------------------------------------------------------------------------------ groups

namespace {

class MemorySource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    std::vector<Series> out;
    for (const Series& s : series) {
      bool ok = true;
      for (const auto& m : matchers) {
        auto it = s.labels.find(m.name);
        const std::string v = it == s.labels.end() ? "" : it->second;
        ok = ok && (m.type == LabelMatcher::Type::kEqual      ? v == m.value
                    : m.type == LabelMatcher::Type::kNotEqual ? v != m.value
                                                              : true);
      }
      if (!ok) {
        continue;
      }
      Series w{s.labels, {}};
      for (const Sample& smp : s.samples) {
        if (smp.t_ms >= from_ms && smp.t_ms <= to_ms) {
          w.samples.push_back(smp);
        }
      }
      if (!w.samples.empty()) {
        out.push_back(std::move(w));
      }
    }
    return out;
  }
  std::vector<Series> series;
};

}  // namespace

TEST_CASE("group: recording output feeds later rules, errors are per rule, stale markers") {
  auto file = ParseRuleFile(R"(groups:
  - name: g
    rules:
      - record: target:ttft:max
        expr: max_over_time(probe_ttft_seconds[5m])
      - record: broken
        expr: probe_ttft_seconds + on(model) group_left probe_ttft_seconds
      - alert: Slow
        expr: target:ttft:max > 2
        labels: {severity: warning}
        annotations: {summary: '{{ $labels.target }} {{ $value }}'}
)",
                            "inline.yaml");
  REQUIRE(file);
  MemorySource source;
  source.series.push_back(
      {{{"__name__", "probe_ttft_seconds"}, {"target", "a"}, {"model", "m"}}, {{0, 1}, {kMin, 3}}});
  source.series.push_back(
      {{{"__name__", "probe_ttft_seconds"}, {"target", "b"}, {"model", "m"}}, {{0, 1}, {kMin, 1}}});
  SeriesOverlay overlay(source);
  ManualClock clock(0);
  RuleGroup group(file->groups[0], AlertingOptions{}, clock);
  auto r0 = group.Evaluate(overlay, 0);
  CHECK(r0.error_count == 1);
  // Durations come from the injected monotonic clock, which did not move.
  CHECK(r0.duration_seconds == 0);
  CHECK(group.statuses()[0].last_duration_seconds == 0);
  REQUIRE(group.statuses().size() == 3);
  CHECK(!group.statuses()[0].last_error);
  CHECK(group.statuses()[1].last_error);
  CHECK(group.statuses()[0].last_sample_count == 2);
  CHECK(group.statuses()[2].last_eval_ms == 0);
  auto r1 = group.Evaluate(overlay, kMin);
  REQUIRE(r1.to_send.size() == 1);
  CHECK(r1.to_send[0].labels.at("target") == "a");
  CHECK(r1.to_send[0].annotations.at("summary") == "a 3");
  auto alerts = overlay.Select({{LabelMatcher::Type::kEqual, "__name__", "ALERTS"}}, 0, kMin);
  REQUIRE(alerts);
  REQUIRE(alerts->size() == 1);
  // The alert's series gets a stale marker when the alert goes away.
  source.series[0].samples.push_back({10 * kMin, 1});
  group.Evaluate(overlay, 10 * kMin);
  alerts = overlay.Select({{LabelMatcher::Type::kEqual, "__name__", "ALERTS"}}, 0, 10 * kMin);
  REQUIRE(alerts->size() == 1);
  CHECK(IsStaleNaN(alerts->at(0).samples.back().v));
  CHECK(alerts->at(0).samples.back().t_ms == 10 * kMin);

  // State survives through the group-level snapshot.
  MemoryAlertStateStore store;
  REQUIRE(group.SaveState(store, 10 * kMin));
  RuleGroup restored(file->groups[0], AlertingOptions{}, clock);
  restored.Restore(*store.LoadAlertStates(), 10 * kMin);
  REQUIRE(restored.alerting_rules().size() == 1);
  CHECK(restored.alerting_rules()[0]->Alerts().size() == 1);
}

namespace {

// Storage that takes `step` of the injected clock per selection, as a slow database would.
class SlowSource final : public SampleSource {
 public:
  SlowSource(const SampleSource& base, ManualClock& clock, std::chrono::milliseconds step)
      : base_(base), clock_(clock), step_(step) {}
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    ++selects;
    clock_.Advance(step_);
    return base_.Select(matchers, from_ms, to_ms);
  }
  mutable int selects = 0;

 private:
  const SampleSource& base_;
  ManualClock& clock_;
  std::chrono::milliseconds step_;
};

}  // namespace

TEST_CASE("group: past its deadline the running rule and the rest fail with a timeout") {
  auto file = ParseRuleFile(R"(groups:
  - name: g
    rules:
      - record: first
        expr: sum(x)
      - record: second
        expr: sum(x) * 2
      - alert: Third
        expr: x > 0
)",
                            "inline.yaml");
  REQUIRE(file);
  MemorySource memory;
  memory.series.push_back({{{"__name__", "x"}, {"i", "1"}}, {{0, 1}}});
  memory.series.push_back({{{"__name__", "x"}, {"i", "2"}}, {{0, 1}}});
  ManualClock clock(0);
  SlowSource slow(memory, clock, std::chrono::seconds(10));
  SeriesOverlay overlay(slow);
  AlertingOptions options;
  options.evaluation_timeout = Millis(15000);  // under the group's 60 s interval, so it rules
  RuleGroup group(file->groups[0], options, clock);
  const GroupEvalResult result = group.Evaluate(overlay, kMin);
  CHECK(result.timed_out);
  CHECK(result.error_count == 2);
  REQUIRE(group.statuses().size() == 3);
  CHECK_FALSE(group.statuses()[0].last_error);
  CHECK(group.statuses()[0].last_sample_count == 1);
  REQUIRE(group.statuses()[1].last_error);
  CHECK(group.statuses()[1].last_error->message == "query timed out in expression evaluation");
  REQUIRE(group.statuses()[2].last_error);
  // The third rule never reached storage: the deadline was already past.
  CHECK(slow.selects == 2);
  CHECK(result.to_send.empty());
  CHECK(result.duration_seconds == 20);

  // A stop request (SIGTERM) ends an evaluation the same way, before any rule runs.
  const GroupEvalResult stopped = group.Evaluate(overlay, 2 * kMin, [] { return true; });
  CHECK(stopped.timed_out);
  CHECK(stopped.error_count == 3);
  CHECK(slow.selects == 2);

  // The deadline is per evaluation: the next one starts with a fresh budget.
  options.evaluation_timeout = Millis(60000);
  RuleGroup roomy(file->groups[0], options, clock);
  const GroupEvalResult fine = roomy.Evaluate(overlay, 3 * kMin);
  CHECK_FALSE(fine.timed_out);
  CHECK(fine.error_count == 0);
}

}  // namespace modelpulse::rules
