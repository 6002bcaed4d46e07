#ifndef MODELPULSE_RULES_MANAGER_H_
#define MODELPULSE_RULES_MANAGER_H_

// The rule manager: loads rule files, schedules their groups, keeps alert states across restarts
// (as Prometheus's rules/manager.go). Driven through interfaces only: samples (SampleSource),
// alert-state persistence (AlertStateStore, e.g. AlertStatesIn over the daemon's store) and time
// (Clock), so neither storage/ nor daemon/ is included here.

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "common/common.h"
#include "common/recorded_series.h"
#include "common/state_store.h"
#include "rules/promql.h"
#include "rules/rules.h"

namespace modelpulse {
class Heartbeat;  // common/heartbeat.h
}  // namespace modelpulse

namespace modelpulse::rules {

struct RuleManagerOptions {
  std::vector<std::string> rule_files;
  // A rule file held in memory (the groups generated from the config's SLOs, rules/slo.h),
  // loaded after rule_files under the name `generated_rules_name`; empty: none.
  std::string generated_rules;
  std::string generated_rules_name = "<slos>";
  Millis evaluation_interval{15000};  // groups without an interval of their own
  Labels external_labels;             // $externalLabels in templates
  std::string external_url;
  // Beaten before each group's evaluation and set idle while the loop waits (the service
  // watchdog's view of Run); null: none. Read by Create only. REQUIRES: outlives the manager.
  Heartbeat* heartbeat = nullptr;
  // Where every rule's outputs are stored as soon as it is evaluated, before the next rule runs
  // (storage's RecordedStore; see SeriesOverlay::SetWriter); null: memory only, for 26 hours. With
  // one, the SampleSource given to Create should serve what it stored (the daemon passes the probe
  // series and the recorded store as one), so a restart loses nothing and rules read recorded
  // series over any window the store keeps. Read by Create only. REQUIRES: outlives the manager.
  RecordedSeriesWriter* recorded = nullptr;
};

// What /metrics shows of the rules: alert states (as modelpulse_alerts and
// modelpulse_alerts_for_state) and per-group evaluation figures.
struct ActiveAlert {
  Labels labels;      // alertname and the alert's labels
  std::string state;  // "pending" or "firing"
  int64_t active_at_ms = 0;
  Labels annotations;  // as expanded at the last evaluation (GET /api/v1/alerts)
  double value = 0;
};
// One rule as GET /api/v1/rules shows it (Prometheus's rule API fields).
struct RuleStatus {
  bool alerting = false;
  std::string name;
  std::string query;   // the expression's text
  Millis duration{0};  // `for:`
  Millis keep_firing_for{0};
  Labels labels;                    // the rule's labels (templates for alerting rules)
  Labels annotations;               // templates; alerting rules only
  std::vector<ActiveAlert> alerts;  // pending and firing; alerting rules only
  std::string state;   // alerting rules: "inactive", "pending" or "firing" (the highest)
  std::string health;  // "unknown" (not evaluated yet), "ok" or "err"
  std::string last_error;
  double evaluation_seconds = 0;
  int64_t last_evaluation_ms = 0;  // 0: not evaluated yet
};
struct RuleGroupStatus {
  std::string name;
  std::string file;
  size_t rules = 0;
  double last_duration_seconds = 0;
  int64_t last_evaluation_ms = 0;  // 0: not evaluated yet
  uint64_t evaluations = 0;
  uint64_t failures = 0;  // rule evaluations that failed
  Millis interval{0};     // the group's own, or the global evaluation interval
  int64_t limit = 0;
  std::vector<RuleStatus> rule_statuses;  // in file order
};
struct RulesStatus {
  std::vector<ActiveAlert> alerts;
  std::vector<RuleGroupStatus> groups;
};

// Evaluates Prometheus rule files over a SampleSource on its own thread, group by group on each
// group's interval. Alert states are saved to `states` after every evaluation and restored on
// creation, so a restart neither re-pages nor forgets pending `for` time. Thread-safe.
class RuleManager {
 public:
  // Loads every rule file (all must parse) and restores saved alert states. kParse with the
  // file's position when a rule file is invalid.
  // REQUIRES: `source`, `states` and `clock` outlive the manager.
  static Result<std::unique_ptr<RuleManager>> Create(const RuleManagerOptions& options,
                                                     const SampleSource& source,
                                                     AlertStateStore& states, const Clock& clock);
  virtual ~RuleManager() = default;

  // Replaces the rule files atomically: either every file parses and the new groups take over
  // (alert states of groups that stay are kept), or nothing changes and the error is returned.
  virtual Status Reload(const RuleManagerOptions& options) = 0;
  // Evaluates due groups until `stop` is requested.
  virtual void Run(std::stop_token stop) = 0;
  // One round of Run: evaluates every group due at `now_ms` and returns the earliest time a
  // group is due next. For benchmarks and tests that drive time themselves.
  virtual int64_t EvaluateDue(int64_t now_ms) = 0;
  virtual RulesStatus Snapshot() const = 0;
};

// Alert states as one JSON document per group in the "alerts" space of `store` (the format the
// daemon's database holds). With an `outbox`, SaveAlertStatesWithEvents commits the states and
// the events through it in one transaction; without, events are dropped.
// REQUIRES: `store` and `outbox` outlive the result.
std::unique_ptr<AlertStateStore> AlertStatesIn(StateStore& store,
                                               AlertOutboxWriter* outbox = nullptr);

// Prometheus's link back to the expression: `external_url` + "/graph?g0.expr=" + the
// query-escaped expression + "&g0.tab=1" (§2.6).
std::string GeneratorUrl(std::string_view external_url, std::string_view expr);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_MANAGER_H_
