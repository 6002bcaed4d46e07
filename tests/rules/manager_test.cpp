// rules::AlertStatesIn: alert states round trip through a StateStore as one JSON document per
// group, and a damaged document costs only its own group. RuleManager: its snapshot does not wait
// for evaluations, and it beats its heartbeat per group.
#include "rules/manager.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/heartbeat.h"

namespace modelpulse::rules {
namespace {

class MemoryStateStore final : public StateStore {
 public:
  Status PutState(std::string_view space, std::string_view key, std::string_view value) override {
    values_[{std::string(space), std::string(key)}] = std::string(value);
    return {};
  }
  Status DeleteState(std::string_view space, std::string_view key) override {
    values_.erase({std::string(space), std::string(key)});
    return {};
  }
  Result<std::vector<std::pair<std::string, std::string>>> GetStates(
      std::string_view space) const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [key, value] : values_) {
      if (key.first == space) {
        out.emplace_back(key.second, value);
      }
    }
    return out;
  }
  std::map<std::pair<std::string, std::string>, std::string> values_;
};

AlertStateSnapshot Firing(const std::string& group) {
  AlertStateSnapshot s;
  s.group = group;
  s.rule = "ModelEndpointDown";
  s.rule_labels = {{"severity", "page"}};
  s.saved_at_ms = 1'700'000'060'000;
  s.alert.labels = {{"alertname", "ModelEndpointDown"}, {"target", "a@openai"}};
  s.alert.annotations = {{"summary", "down"}};
  s.alert.value = 0.5;
  s.alert.state = AlertState::kFiring;
  s.alert.active_at_ms = 1'700'000'000'000;
  s.alert.fired_at_ms = 1'700'000'030'000;
  s.alert.last_sent_at_ms = 1'700'000'045'000;
  s.alert.valid_until_ms = 1'700'000'105'000;
  return s;
}

TEST_CASE("alert states round trip through a state store, one document per group") {
  MemoryStateStore store;
  auto states = AlertStatesIn(store);
  REQUIRE(states->SaveAlertStates("g1", {Firing("g1")}).has_value());
  REQUIRE(states->SaveAlertStates("g2", {Firing("g2")}).has_value());
  CHECK(store.values_.size() == 2);
  CHECK(store.values_.count({"alerts", "g1"}) == 1);

  auto loaded = states->LoadAlertStates();
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->size() == 2);
  const AlertStateSnapshot& s = loaded->front();
  const AlertStateSnapshot want = Firing("g1");
  CHECK(s.group == want.group);
  CHECK(s.rule == want.rule);
  CHECK(s.rule_labels == want.rule_labels);
  CHECK(s.saved_at_ms == want.saved_at_ms);
  CHECK(s.alert.labels == want.alert.labels);
  CHECK(s.alert.annotations == want.alert.annotations);
  CHECK(s.alert.value == want.alert.value);
  CHECK(s.alert.state == AlertState::kFiring);
  CHECK(s.alert.active_at_ms == want.alert.active_at_ms);
  CHECK(s.alert.fired_at_ms == want.alert.fired_at_ms);
  CHECK_FALSE(s.alert.resolved_at_ms.has_value());
  CHECK(s.alert.last_sent_at_ms == want.alert.last_sent_at_ms);
  CHECK(s.alert.valid_until_ms == want.alert.valid_until_ms);
  CHECK_FALSE(s.alert.keep_firing_since_ms.has_value());

  // No alerts left: the group's document goes.
  REQUIRE(states->SaveAlertStates("g2", {}).has_value());
  CHECK(store.values_.count({"alerts", "g2"}) == 0);
}

TEST_CASE("an unreadable saved document is skipped, the other groups load") {
  MemoryStateStore store;
  auto states = AlertStatesIn(store);
  REQUIRE(states->SaveAlertStates("good", {Firing("good")}).has_value());
  store.values_[{"alerts", "bad"}] = "{not json";
  auto loaded = states->LoadAlertStates();
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->size() == 1);
  CHECK(loaded->front().group == "good");
}

// Storage whose selection asks for the manager's snapshot on another thread, as /metrics does
// while a rule group runs. The snapshot used to need the mutex the evaluation holds, so a slow
// group made scrapes as slow (2.6 s of rules gave a 2.5 s scrape) and this test hung.
class SnapshotDuringEvaluation final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    std::thread scrape([this] { during = manager->Snapshot(); });
    scrape.join();
    ++selects;
    return std::vector<Series>{{{{"__name__", "x"}}, {{0, 1}}}};
  }
  RuleManager* manager = nullptr;
  mutable RulesStatus during;
  mutable int selects = 0;
};

TEST_CASE("the rules snapshot never waits for a running evaluation") {
  char dir_template[] = "/tmp/modelpulse-manager-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::filesystem::path dir = dir_template;
  std::ofstream(dir / "r.yaml") << "groups:\n  - name: g\n    rules:\n      - record: y\n"
                                   "        expr: x * 2\n";
  MemoryStateStore store;
  auto states = AlertStatesIn(store);
  ManualClock clock(1'700'000'000'000);
  SnapshotDuringEvaluation source;
  RuleManagerOptions options;
  options.rule_files = {(dir / "r.yaml").string()};
  auto manager = RuleManager::Create(options, source, *states, clock);
  std::filesystem::remove_all(dir);
  REQUIRE(manager.has_value());
  source.manager = manager->get();
  // Published at creation: the group is listed before its first evaluation.
  REQUIRE((*manager)->Snapshot().groups.size() == 1);
  CHECK((*manager)->Snapshot().groups[0].evaluations == 0);
  (*manager)->EvaluateDue(clock.NowUnixMillis());
  CHECK(source.selects == 1);
  // Seen mid-evaluation: the figures of before it.
  REQUIRE(source.during.groups.size() == 1);
  CHECK(source.during.groups[0].evaluations == 0);
  CHECK((*manager)->Snapshot().groups[0].evaluations == 1);
  CHECK((*manager)->Snapshot().groups[0].last_evaluation_ms == clock.NowUnixMillis());
}

// Alert states saved into a database another process holds locked: each save takes 5 s.
class SlowStates final : public AlertStateStore {
 public:
  SlowStates(ManualClock& clock, const Heartbeat& heartbeat)
      : clock_(clock), heartbeat_(heartbeat) {}
  Status SaveAlertStates(std::string_view, const std::vector<AlertStateSnapshot>&) override {
    clock_.Advance(std::chrono::seconds(5));
    stalled_during_saves.push_back(heartbeat_.StalledFor(clock_.MonotonicNow()));
    return {};
  }
  Result<std::vector<AlertStateSnapshot>> LoadAlertStates() override {
    return std::vector<AlertStateSnapshot>{};
  }
  std::vector<std::chrono::nanoseconds> stalled_during_saves;

 private:
  ManualClock& clock_;
  const Heartbeat& heartbeat_;
};

class NoSamples final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    return std::vector<Series>{};
  }
};

TEST_CASE("rule manager: its heartbeat starts over at each group, so a stuck save shows a stall") {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / "modelpulse_manager_heartbeat_test.yaml";
  std::ofstream(file) << "groups:\n"
                         "  - {name: a, rules: [{record: one, expr: vector(1)}]}\n"
                         "  - {name: b, rules: [{record: two, expr: vector(2)}]}\n";
  ManualClock clock(1'700'000'000'000);
  Heartbeat heartbeat(clock);
  SlowStates states(clock, heartbeat);
  NoSamples source;
  RuleManagerOptions options;
  options.rule_files = {file.string()};
  options.heartbeat = &heartbeat;
  auto manager = RuleManager::Create(options, source, states, clock);
  REQUIRE(manager.has_value());
  (*manager)->EvaluateDue(clock.NowUnixMillis());
  std::filesystem::remove(file);
  // Each group's save is measured from that group's own beat, not from the round's start.
  const std::vector<std::chrono::nanoseconds> expected(2, std::chrono::seconds(5));
  CHECK(states.stalled_during_saves == expected);
}

// The outbox half of a state store: records what one commit carried.
class RecordingOutbox final : public AlertOutboxWriter {
 public:
  Status CommitStateWithEvents(std::string_view space, std::string_view key,
                               std::optional<std::string_view> value,
                               const std::vector<std::string>& events) override {
    commits.push_back({std::string(space), std::string(key),
                       value ? std::optional<std::string>(std::string(*value)) : std::nullopt,
                       events});
    return {};
  }
  struct Commit {
    std::string space;
    std::string key;
    std::optional<std::string> value;
    std::vector<std::string> events;
  };
  std::vector<Commit> commits;
};

TEST_CASE("alert states and their events are handed over in one commit") {
  MemoryStateStore store;
  RecordingOutbox outbox;
  auto states = AlertStatesIn(store, &outbox);
  AlertEvent event;
  event.labels = {{"alertname", "ModelEndpointDown"}};
  event.starts_at_ms = 5;
  event.ends_at_ms = 9;
  REQUIRE(states->SaveAlertStatesWithEvents("g", {Firing("g")}, {event}));
  REQUIRE(outbox.commits.size() == 1);
  CHECK(outbox.commits[0].space == "alerts");
  CHECK(outbox.commits[0].key == "g");
  REQUIRE(outbox.commits[0].value);
  REQUIRE(outbox.commits[0].events.size() == 1);
  CHECK(DecodeAlertEvent(outbox.commits[0].events[0]).value() == event);
  CHECK(store.values_.empty());  // nothing written outside the commit

  // Without events, or without an outbox, states go to the state store as before.
  REQUIRE(states->SaveAlertStatesWithEvents("g", {Firing("g")}, {}));
  CHECK(outbox.commits.size() == 1);
  CHECK(store.values_.size() == 1);
  auto plain = AlertStatesIn(store);
  REQUIRE(plain->SaveAlertStatesWithEvents("h", {Firing("h")}, {event}));
  CHECK(store.values_.size() == 2);
  // The last alert gone: the document is deleted in the same commit as the resolution event.
  REQUIRE(states->SaveAlertStatesWithEvents("g", {}, {event}));
  CHECK_FALSE(outbox.commits.back().value.has_value());
}

TEST_CASE("generator URLs escape the expression as Go's url.QueryEscape") {
  CHECK(GeneratorUrl("http://mp:9099/", "probe_success == 0") ==
        "http://mp:9099/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1");
  CHECK(GeneratorUrl("http://mp", "rate(x{a=\"b\"}[5m])") ==
        "http://mp/graph?g0.expr=rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29&g0.tab=1");
}

}  // namespace
}  // namespace modelpulse::rules
