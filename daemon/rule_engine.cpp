#include "daemon/rule_engine.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "rules/rules.h"

namespace modelpulse::daemon {
namespace {

using nlohmann::json;

constexpr const char* kAlertStateSpace = "alerts";
// Recorded series stay readable this long, enough for a rule comparing with a day-old baseline.
constexpr Millis kRecordedRetention{26LL * 3600 * 1000};

json OptionalMs(const std::optional<int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

std::optional<int64_t> MsFrom(const json& value) {
  if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  return std::nullopt;
}

json SnapshotToJson(const rules::AlertStateSnapshot& s) {
  const rules::Alert& a = s.alert;
  return {{"group", s.group},
          {"rule", s.rule},
          {"rule_labels", s.rule_labels},
          {"saved_at_ms", s.saved_at_ms},
          {"alert",
           {{"labels", a.labels},
            {"annotations", a.annotations},
            {"value", a.value},
            {"state", std::string(rules::AlertStateName(a.state))},
            {"active_at_ms", a.active_at_ms},
            {"fired_at_ms", OptionalMs(a.fired_at_ms)},
            {"resolved_at_ms", OptionalMs(a.resolved_at_ms)},
            {"last_sent_at_ms", OptionalMs(a.last_sent_at_ms)},
            {"valid_until_ms", OptionalMs(a.valid_until_ms)},
            {"keep_firing_since_ms", OptionalMs(a.keep_firing_since_ms)}}}};
}

rules::AlertStateSnapshot SnapshotFromJson(const json& j) {
  rules::AlertStateSnapshot s;
  s.group = j.at("group").get<std::string>();
  s.rule = j.at("rule").get<std::string>();
  s.rule_labels = j.at("rule_labels").get<Labels>();
  s.saved_at_ms = j.at("saved_at_ms").get<int64_t>();
  const json& a = j.at("alert");
  s.alert.labels = a.at("labels").get<Labels>();
  s.alert.annotations = a.at("annotations").get<Labels>();
  s.alert.value = a.at("value").is_number() ? a.at("value").get<double>() : 0.0;
  const std::string state = a.at("state").get<std::string>();
  s.alert.state = state == "firing"    ? rules::AlertState::kFiring
                  : state == "pending" ? rules::AlertState::kPending
                                       : rules::AlertState::kInactive;
  s.alert.active_at_ms = a.at("active_at_ms").get<int64_t>();
  s.alert.fired_at_ms = MsFrom(a.at("fired_at_ms"));
  s.alert.resolved_at_ms = MsFrom(a.at("resolved_at_ms"));
  s.alert.last_sent_at_ms = MsFrom(a.at("last_sent_at_ms"));
  s.alert.valid_until_ms = MsFrom(a.at("valid_until_ms"));
  s.alert.keep_firing_since_ms = MsFrom(a.at("keep_firing_since_ms"));
  return s;
}

// Alert states as one JSON document per group in the store's state table.
class StoredAlertStates final : public rules::AlertStateStore {
 public:
  explicit StoredAlertStates(storage::Store& store) : store_(store) {}

  Status SaveAlertStates(std::string_view group,
                         const std::vector<rules::AlertStateSnapshot>& alerts) override {
    if (alerts.empty()) {
      return store_.DeleteState(kAlertStateSpace, group);
    }
    json doc = json::array();
    for (const rules::AlertStateSnapshot& snapshot : alerts) {
      doc.push_back(SnapshotToJson(snapshot));
    }
    return store_.PutState(kAlertStateSpace, group,
                           doc.dump(-1, ' ', false, json::error_handler_t::replace));
  }

  Result<std::vector<rules::AlertStateSnapshot>> LoadAlertStates() override {
    auto docs = store_.GetStates(kAlertStateSpace);
    if (!docs) {
      return Fail(docs.error());
    }
    std::vector<rules::AlertStateSnapshot> out;
    for (const auto& [group, text] : *docs) {
      try {
        for (const json& item : json::parse(text)) {
          out.push_back(SnapshotFromJson(item));
        }
      } catch (const json::exception& e) {
        // A damaged document costs that group its pending times, not the daemon its start.
        spdlog::warn("ignoring unreadable saved alert state of group \"{}\": {}", group, e.what());
      }
    }
    return out;
  }

 private:
  storage::Store& store_;
};

rules::AlertingOptions AlertingOptionsFrom(const RuleEngineOptions& options) {
  rules::AlertingOptions alerting;
  alerting.external_labels = options.external_labels;
  alerting.external_url = options.external_url;
  alerting.evaluation_interval = options.evaluation_interval;
  return alerting;
}

struct LoadedGroup {
  rules::RuleGroup group;
  std::string file;
  int64_t next_due_ms = 0;
  uint64_t evaluations = 0;
  uint64_t failures = 0;
  double last_duration_seconds = 0;
  int64_t last_evaluation_ms = 0;
  std::map<std::string, std::string> last_errors;  // by rule, to log each new error once
};

Result<std::vector<LoadedGroup>> LoadGroups(const RuleEngineOptions& options, const Clock& clock) {
  std::vector<LoadedGroup> groups;
  for (const std::string& file : options.rule_files) {
    auto parsed = rules::LoadRuleFile(file);
    if (!parsed) {
      return Fail(parsed.error());
    }
    for (rules::RuleGroupDef& def : parsed->groups) {
      groups.push_back(
          LoadedGroup{rules::RuleGroup(std::move(def), AlertingOptionsFrom(options), clock), file});
    }
  }
  return groups;
}

class RuleEngineImpl final : public RuleEngine {
 public:
  RuleEngineImpl(RuleEngineOptions options, const rules::SampleSource& source,
                 storage::Store& store, const Clock& clock, std::vector<LoadedGroup> groups)
      : options_(std::move(options)),
        clock_(clock),
        states_(store),
        overlay_(source, kRecordedRetention),
        groups_(std::move(groups)) {}

  void RestoreSaved() {
    auto saved = states_.LoadAlertStates();
    if (!saved) {
      spdlog::warn("cannot read saved alert states: {}", saved.error().ToString());
      return;
    }
    const int64_t now = clock_.NowUnixMillis();
    for (LoadedGroup& group : groups_) {
      group.group.Restore(*saved, now);
    }
    if (!saved->empty()) {
      spdlog::info("restored {} saved alert state(s)", saved->size());
    }
  }

  Status Reload(const RuleEngineOptions& options) override {
    auto groups = LoadGroups(options, clock_);
    if (!groups) {
      return Fail(groups.error());
    }
    std::lock_guard lock(mu_);
    const int64_t now = clock_.NowUnixMillis();
    std::vector<rules::AlertStateSnapshot> carried;
    for (const LoadedGroup& old : groups_) {
      auto snapshot = old.group.Snapshot(now);
      carried.insert(carried.end(), snapshot.begin(), snapshot.end());
    }
    for (LoadedGroup& group : *groups) {
      group.group.Restore(carried, now);
    }
    groups_ = std::move(*groups);
    options_ = options;
    wake_.notify_all();
    spdlog::info("rules reloaded: {} group(s) from {} file(s)", groups_.size(),
                 options.rule_files.size());
    return {};
  }

  void Run(std::stop_token stop) override {
    std::unique_lock lock(mu_);
    std::stop_callback wake_on_stop(stop, [this] { wake_.notify_all(); });
    while (!stop.stop_requested()) {
      const int64_t now = clock_.NowUnixMillis();
      const int64_t next_due = EvaluateDueLocked(now);
      wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(next_due - now, 10)),
                     [&] { return stop.stop_requested(); });
    }
  }

  int64_t EvaluateDue(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return EvaluateDueLocked(now_ms);
  }

  RulesStatus Snapshot() const override {
    std::lock_guard lock(mu_);
    RulesStatus status;
    for (const LoadedGroup& group : groups_) {
      status.groups.push_back({group.group.def().name, group.file, group.group.def().rules.size(),
                               group.last_duration_seconds, group.last_evaluation_ms,
                               group.evaluations, group.failures});
      for (const rules::AlertingRule* rule : group.group.alerting_rules()) {
        for (const rules::Alert& alert : rule->Alerts()) {
          if (alert.state == rules::AlertState::kInactive) {
            continue;
          }
          status.alerts.push_back(
              {alert.labels, std::string(rules::AlertStateName(alert.state)), alert.active_at_ms});
        }
      }
    }
    return status;
  }

 private:
  // REQUIRES: mu_ is held.
  int64_t EvaluateDueLocked(int64_t now) {
    int64_t next_due = now + options_.evaluation_interval.count();
    for (LoadedGroup& group : groups_) {
      if (group.next_due_ms <= now) {
        Evaluate(group, now);
        group.next_due_ms = now + group.group.interval(options_.evaluation_interval).count();
      }
      next_due = std::min(next_due, group.next_due_ms);
    }
    return next_due;
  }

  // REQUIRES: mu_ is held.
  void Evaluate(LoadedGroup& group, int64_t now) {
    rules::GroupEvalResult result = group.group.Evaluate(overlay_, now);
    ++group.evaluations;
    group.failures += static_cast<uint64_t>(result.error_count);
    group.last_duration_seconds = result.duration_seconds;
    group.last_evaluation_ms = now;
    for (const rules::RuleEvalStatus& rule : group.group.statuses()) {
      std::string error = rule.last_error ? rule.last_error->ToString() : std::string();
      std::string& previous = group.last_errors[rule.name];
      if (error != previous && !error.empty()) {
        spdlog::warn("rule evaluation failed group=\"{}\" rule=\"{}\": {}", group.group.def().name,
                     rule.name, error);
      }
      previous = std::move(error);
    }
    for (const rules::AlertNotification& alert : result.to_send) {
      auto name = alert.labels.find("alertname");
      spdlog::info("alert {} {} labels={}", name == alert.labels.end() ? "" : name->second,
                   alert.resolved ? "resolved" : "firing", json(alert.labels).dump());
    }
    if (auto saved = group.group.SaveState(states_, now); !saved) {
      spdlog::warn("cannot save alert states of group \"{}\": {}", group.group.def().name,
                   saved.error().ToString());
    }
  }

  mutable std::mutex mu_;
  std::condition_variable wake_;
  RuleEngineOptions options_;  // Guarded by mu_.
  const Clock& clock_;
  StoredAlertStates states_;
  rules::SeriesOverlay overlay_;     // Guarded by mu_.
  std::vector<LoadedGroup> groups_;  // Guarded by mu_.
};

}  // namespace

Result<std::unique_ptr<RuleEngine>> RuleEngine::Create(const RuleEngineOptions& options,
                                                       const rules::SampleSource& source,
                                                       storage::Store& store, const Clock& clock) {
  auto groups = LoadGroups(options, clock);
  if (!groups) {
    return Fail(groups.error());
  }
  auto engine = std::make_unique<RuleEngineImpl>(options, source, store, clock, std::move(*groups));
  engine->RestoreSaved();
  return std::unique_ptr<RuleEngine>(std::move(engine));
}

}  // namespace modelpulse::daemon
