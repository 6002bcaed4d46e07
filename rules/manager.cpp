#include "rules/manager.h"

#include <spdlog/spdlog.h>

#include <cctype>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/duration.h"
#include "common/heartbeat.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

using nlohmann::json;

// Without a RecordedSeriesWriter, recorded series stay readable this long, enough for a rule
// comparing with a day-old baseline.
constexpr Millis kRecordedRetention{26LL * 3600 * 1000};
// With one, memory only needs to hold what the store has not taken yet (a failed write): the
// source reads the stored series, and the overlay merges the two by time.
constexpr Millis kRecordedMemoryWithStore{3600LL * 1000};

AlertingOptions AlertingOptionsFrom(const RuleManagerOptions& options) {
  AlertingOptions alerting;
  alerting.external_labels = options.external_labels;
  alerting.external_url = options.external_url;
  alerting.evaluation_interval = options.evaluation_interval;
  return alerting;
}

struct LoadedGroup {
  RuleGroup group;
  std::string file;
  int64_t next_due_ms = 0;
  uint64_t evaluations = 0;
  uint64_t failures = 0;
  double last_duration_seconds = 0;
  int64_t last_evaluation_ms = 0;
  std::map<std::string, std::string> last_errors;  // by rule, to log each new error once
};

Result<std::vector<LoadedGroup>> LoadGroups(const RuleManagerOptions& options, const Clock& clock) {
  std::vector<LoadedGroup> groups;
  for (const std::string& file : options.rule_files) {
    auto parsed = LoadRuleFile(file);
    if (!parsed) {
      return Fail(parsed.error());
    }
    for (RuleGroupDef& def : parsed->groups) {
      groups.push_back(
          LoadedGroup{RuleGroup(std::move(def), AlertingOptionsFrom(options), clock), file});
    }
  }
  if (!options.generated_rules.empty()) {
    auto parsed = ParseRuleFile(options.generated_rules, options.generated_rules_name);
    if (!parsed) {
      return Fail(parsed.error());
    }
    for (RuleGroupDef& def : parsed->groups) {
      groups.push_back(LoadedGroup{RuleGroup(std::move(def), AlertingOptionsFrom(options), clock),
                                   options.generated_rules_name});
    }
  }
  return groups;
}

class RuleManagerImpl final : public RuleManager {
 public:
  RuleManagerImpl(RuleManagerOptions options, const SampleSource& source, AlertStateStore& states,
                  const Clock& clock, std::vector<LoadedGroup> groups)
      : options_(std::move(options)),
        heartbeat_(options_.heartbeat),
        clock_(clock),
        states_(states),
        recorded_(options_.recorded),
        overlay_(source, recorded_ != nullptr ? kRecordedMemoryWithStore : kRecordedRetention),
        groups_(std::move(groups)) {
    overlay_.SetWriter(recorded_);
  }

  void PublishNow() {
    std::lock_guard lock(mu_);
    PublishStatus();
  }

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

  Status Reload(const RuleManagerOptions& options) override {
    auto groups = LoadGroups(options, clock_);
    if (!groups) {
      return Fail(groups.error());
    }
    std::lock_guard lock(mu_);
    const int64_t now = clock_.NowUnixMillis();
    std::vector<AlertStateSnapshot> carried;
    for (const LoadedGroup& old : groups_) {
      auto snapshot = old.group.Snapshot(now);
      carried.insert(carried.end(), snapshot.begin(), snapshot.end());
    }
    for (LoadedGroup& group : *groups) {
      group.group.Restore(carried, now);
    }
    groups_ = std::move(*groups);
    options_ = options;
    PublishStatus();
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
      const int64_t next_due = EvaluateDueLocked(now, [&] { return stop.stop_requested(); });
      IdleIfWatched(heartbeat_);
      wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(next_due - now, 10)),
                     [&] { return stop.stop_requested(); });
    }
  }

  int64_t EvaluateDue(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    return EvaluateDueLocked(now_ms, {});
  }

  // Never waits for an evaluation: /metrics reads this while a slow group runs.
  RulesStatus Snapshot() const override {
    std::lock_guard lock(status_mu_);
    return published_;
  }

 private:
  // Copies what Snapshot shows into published_. REQUIRES: mu_ is held.
  void PublishStatus() {
    RulesStatus status;
    for (const LoadedGroup& group : groups_) {
      const RuleGroupDef& def = group.group.def();
      RuleGroupStatus& out = status.groups.emplace_back(
          RuleGroupStatus{def.name, group.file, def.rules.size(), group.last_duration_seconds,
                          group.last_evaluation_ms, group.evaluations, group.failures,
                          group.group.interval(options_.evaluation_interval), def.limit});
      const std::vector<const AlertingRule*> alerting = group.group.alerting_rules();
      size_t next_alerting = 0;
      for (size_t i = 0; i < def.rules.size(); ++i) {
        const RuleDef& rule = def.rules[i];
        RuleStatus& rs = out.rule_statuses.emplace_back();
        rs.alerting = rule.kind == RuleDef::Kind::kAlerting;
        rs.name = rule.name;
        rs.query = rule.expr_text;
        rs.duration = rule.for_duration;
        rs.keep_firing_for = rule.keep_firing_for;
        rs.labels = rule.labels;
        rs.annotations = rule.annotations;
        if (i < group.group.statuses().size()) {
          const RuleEvalStatus& eval = group.group.statuses()[i];
          rs.health = eval.last_eval_ms < 0 ? "unknown" : eval.last_error ? "err" : "ok";
          rs.last_error = eval.last_error ? eval.last_error->ToString() : std::string();
          rs.evaluation_seconds = eval.last_duration_seconds;
          rs.last_evaluation_ms = std::max<int64_t>(eval.last_eval_ms, 0);
        }
        if (!rs.alerting || next_alerting >= alerting.size()) {
          continue;
        }
        AlertState highest = AlertState::kInactive;
        for (const Alert& alert : alerting[next_alerting++]->Alerts()) {
          if (alert.state == AlertState::kInactive) {
            continue;
          }
          highest = std::max(highest, alert.state);
          ActiveAlert active{alert.labels, std::string(AlertStateName(alert.state)),
                             alert.active_at_ms, alert.annotations, alert.value};
          rs.alerts.push_back(active);
          status.alerts.push_back(std::move(active));
        }
        rs.state = std::string(AlertStateName(highest));
      }
    }
    std::lock_guard lock(status_mu_);
    published_ = std::move(status);
  }

  // REQUIRES: mu_ is held.
  int64_t EvaluateDueLocked(int64_t now, const EvalCancel& stop) {
    int64_t next_due = now + options_.evaluation_interval.count();
    for (LoadedGroup& group : groups_) {
      if (group.next_due_ms <= now) {
        BeatIfWatched(heartbeat_);
        Evaluate(group, now, stop);
        PublishStatus();
        group.next_due_ms = now + group.group.interval(options_.evaluation_interval).count();
      }
      next_due = std::min(next_due, group.next_due_ms);
    }
    return next_due;
  }

  // REQUIRES: mu_ is held.
  void Evaluate(LoadedGroup& group, int64_t now, const EvalCancel& stop) {
    GroupEvalResult result = group.group.Evaluate(overlay_, now, stop);
    if (result.timed_out) {
      spdlog::warn("rule group \"{}\" stopped after {:.3f}s: past its evaluation deadline",
                   group.group.def().name, result.duration_seconds);
    }
    if (result.store_error) {
      spdlog::warn("cannot store the outputs of rule group \"{}\" (kept in memory for {}): {}",
                   group.group.def().name, FormatPromDuration(kRecordedMemoryWithStore),
                   result.store_error->ToString());
    }
    ++group.evaluations;
    group.failures += static_cast<uint64_t>(result.error_count);
    group.last_duration_seconds = result.duration_seconds;
    group.last_evaluation_ms = now;
    for (const RuleEvalStatus& rule : group.group.statuses()) {
      std::string error = rule.last_error ? rule.last_error->ToString() : std::string();
      std::string& previous = group.last_errors[rule.name];
      if (error != previous && !error.empty()) {
        spdlog::warn("rule evaluation failed group=\"{}\" rule=\"{}\": {}", group.group.def().name,
                     rule.name, error);
      }
      previous = std::move(error);
    }
    std::vector<AlertEvent> events;
    events.reserve(result.to_send.size());
    for (const AlertNotification& alert : result.to_send) {
      auto name = alert.labels.find("alertname");
      auto summary = alert.annotations.find("summary");
      // One info line per change; the resends Prometheus's protocol asks for are debug.
      spdlog::log(alert.changed ? spdlog::level::info : spdlog::level::debug,
                  "alert {} {} labels={} summary={}",
                  name == alert.labels.end() ? "" : name->second,
                  alert.resolved ? "resolved" : "firing", json(alert.labels).dump(),
                  json(summary == alert.annotations.end() ? "" : summary->second).dump());
      events.push_back({alert.labels, alert.annotations, alert.starts_at_ms, alert.ends_at_ms,
                        alert.resolved, GeneratorUrl(options_.external_url, alert.expr)});
    }
    if (auto saved = states_.SaveAlertStatesWithEvents(group.group.def().name,
                                                       group.group.Snapshot(now), events);
        !saved) {
      spdlog::warn("cannot save alert states of group \"{}\": {}", group.group.def().name,
                   saved.error().ToString());
    }
  }

  // mu_ is held through every evaluation; status_mu_ only while published_ is copied, so a
  // snapshot never waits for a rule.
  mutable std::mutex mu_;
  mutable std::mutex status_mu_;
  RulesStatus published_;  // Guarded by status_mu_.
  std::condition_variable wake_;
  RuleManagerOptions options_;  // Guarded by mu_.
  Heartbeat* const heartbeat_;  // from Create's options; a reload keeps it
  const Clock& clock_;
  AlertStateStore& states_;
  RecordedSeriesWriter* const recorded_;  // from Create's options; may be null
  SeriesOverlay overlay_;                 // Guarded by mu_.
  std::vector<LoadedGroup> groups_;       // Guarded by mu_.
};

}  // namespace

std::string GeneratorUrl(std::string_view external_url, std::string_view expr) {
  // Go's url.QueryEscape: unreserved bytes stay, space becomes '+', the rest %XX.
  std::string escaped;
  for (const char c : expr) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      escaped += c;
    } else if (c == ' ') {
      escaped += '+';
    } else {
      constexpr std::string_view kHex = "0123456789ABCDEF";
      escaped += '%';
      escaped += kHex[byte >> 4];
      escaped += kHex[byte & 0xF];
    }
  }
  std::string_view base = external_url;
  while (!base.empty() && base.back() == '/') {
    base.remove_suffix(1);
  }
  return std::string(base) + "/graph?g0.expr=" + escaped + "&g0.tab=1";
}

Result<std::unique_ptr<RuleManager>> RuleManager::Create(const RuleManagerOptions& options,
                                                         const SampleSource& source,
                                                         AlertStateStore& states,
                                                         const Clock& clock) {
  auto groups = LoadGroups(options, clock);
  if (!groups) {
    return Fail(groups.error());
  }
  auto engine =
      std::make_unique<RuleManagerImpl>(options, source, states, clock, std::move(*groups));
  engine->RestoreSaved();
  engine->PublishNow();
  return std::unique_ptr<RuleManager>(std::move(engine));
}

}  // namespace modelpulse::rules
