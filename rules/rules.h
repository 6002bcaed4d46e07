#ifndef MODELPULSE_RULES_RULES_H_
#define MODELPULSE_RULES_RULES_H_

// The rules module's public surface: Prometheus rule files, alert templates, the alert state
// machine, group evaluation and the promtool-compatible rule unit tests. Semantics follow
// ../shared/prometheus-semantics.md §1-§3 as Prometheus/promtool 2.42 behaves. Light header: no
// yaml-cpp here. Nothing in this module throws across this API; failures are Result values.
// Depends on common/ only: samples come through SampleSource, alert states through
// AlertStateStore, time through Clock.
//
// Where things live: promql.h is the PromQL subset (internal/promql_lexer.h, promql_parser.h,
// promql_ast.h, promql_eval.h, promql_functions.h behind it); manager.h schedules rule groups and
// keeps alert states across restarts (group.cpp evaluates one group, alerts.cpp is the alert
// state machine, alert_state_codec.cpp the saved form); rule_file.cpp reads rule files;
// template*.cpp is the Go text/template subset (lexer, parser, value model and printf,
// executor); go_compat.cpp holds every number Go formats or computes unlike C++; unit_test.cpp
// runs promtool-format rule tests.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/alert_event.h"
#include "common/common.h"
#include "common/recorded_series.h"
#include "rules/promql.h"

namespace modelpulse::rules {

// ---------------------------------------------------------------------------------------------
// Rule files (§1.1, §1.2).

struct RuleDef {
  enum class Kind { kRecording, kAlerting };
  Kind kind = Kind::kRecording;
  std::string name;  // `record:` or `alert:`
  std::string expr_text;
  Query expr;  // parsed expr_text
  Millis for_duration{0};
  Millis keep_firing_for{0};
  Labels labels;         // label templates (alerting) or constant labels (recording)
  Labels annotations;    // templates; alerting rules only
  std::string location;  // "file:line:column" of the rule, 1-based
};

struct RuleGroupDef {
  std::string name;
  std::optional<Millis> interval;  // nullopt: the global evaluation interval
  int64_t limit = 0;               // 0: no limit
  std::vector<RuleDef> rules;
  std::string file;
};

struct RuleFileDef {
  std::string path;
  std::vector<RuleGroupDef> groups;
};

// Parses a rule file's text; `path` only names it in errors. On failure: kParse with
// location "path:line:column" (1-based) and Prometheus's message, e.g.
// `group "g", rule 2, "Foo": could not parse expression: ...`.
Result<RuleFileDef> ParseRuleFile(std::string_view text, std::string_view path);
// Reads and parses a file. kIo when it cannot be read.
Result<RuleFileDef> LoadRuleFile(const std::string& path);

// ---------------------------------------------------------------------------------------------
// Alert templates (§1.5): Go text/template subset with Prometheus's functions.

struct TemplateData {
  Labels labels;  // the result sample's labels
  double value = 0;
  Labels external_labels;
  std::string external_url;
};

// Runs an instant query for the template function `query`; returns its samples.
using TemplateQueryFunc = std::function<Result<Vector>(std::string_view expr)>;

// Expands `text` (without Prometheus's variable prelude: it is added here). `name` appears in
// error messages. Returns the text, or kInvalidArgument naming the template error.
Result<std::string> ExpandTemplate(std::string_view name, std::string_view text,
                                   const TemplateData& data,
                                   const TemplateQueryFunc& query = nullptr);
// Parses without executing: the load-time check of §1.2.
Status CheckTemplate(std::string_view name, std::string_view text);

// Notification templates (issue 8): a request body rendered from Alertmanager's webhook payload
// version "4", given as its JSON text, with the fields Alertmanager's template data names: .Status,
// .Receiver, .GroupLabels, .CommonLabels, .CommonAnnotations, .ExternalURL, .GroupKey,
// .TruncatedAlerts and .Alerts (each .Status, .Labels, .Annotations, .StartsAt, .EndsAt,
// .GeneratorURL, .Fingerprint), with .Alerts.Firing and .Alerts.Resolved. No Prometheus prelude
// ($labels, $value); the functions are the alert templates' plus toJson, which writes a value as
// JSON (a string quoted and escaped) so that a JSON body stays valid whatever a label holds.
Result<std::string> ExpandNotificationTemplate(std::string_view name, std::string_view text,
                                               std::string_view payload_json);
// Parses without executing: `check config`'s test of a template receiver's body.
Status CheckNotificationTemplate(std::string_view name, std::string_view text);

// Go's %v for a float64 (strconv.FormatFloat(v, 'g', -1, 64)), exactly as §1.6.
std::string FormatGoFloat(double v);

// ---------------------------------------------------------------------------------------------
// The alert state machine (§2).

enum class AlertState { kInactive, kPending, kFiring };
std::string_view AlertStateName(AlertState state);  // "inactive", "pending", "firing"

struct Alert {
  Labels labels;  // identity: sample labels - __name__ + rule labels + alertname
  Labels annotations;
  double value = 0;
  AlertState state = AlertState::kPending;
  int64_t active_at_ms = 0;
  std::optional<int64_t> fired_at_ms;
  std::optional<int64_t> resolved_at_ms;
  std::optional<int64_t> last_sent_at_ms;
  std::optional<int64_t> valid_until_ms;
  std::optional<int64_t> keep_firing_since_ms;
};

// What a sender gets (§2.6): startsAt = fired_at, endsAt = resolved_at or valid_until.
struct AlertNotification {
  Labels labels;  // without external labels: the sender adds them
  Labels annotations;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  bool resolved = false;
  // The first send of this firing or of its resolution; false for a resend (Prometheus resends
  // a firing alert every resend_delay and a resolved one for a while, so receivers that missed
  // it catch up).
  bool changed = false;
  std::string expr;  // for generatorURL
};

// Persisted form of one alert, so a restart neither re-pages nor forgets `for` time (§2.8).
struct AlertStateSnapshot {
  std::string group;
  std::string rule;    // alert name
  Labels rule_labels;  // the rule's raw labels: with `rule`, which rule of the group it belongs to
  Alert alert;
  int64_t saved_at_ms = 0;
};

// Storage of alert state; rules/manager.h's AlertStatesIn keeps it in the daemon's StateStore.
// Not thread-safe by contract: the caller serialises.
class AlertStateStore {
 public:
  virtual ~AlertStateStore() = default;
  // Replaces everything stored for `group` with `alerts`.
  virtual Status SaveAlertStates(std::string_view group,
                                 const std::vector<AlertStateSnapshot>& alerts) = 0;
  // Every stored snapshot (all groups).
  virtual Result<std::vector<AlertStateSnapshot>> LoadAlertStates() = 0;
  // Replaces the group's states and queues `events` (alerts due for sending) for delivery, both
  // or neither: delivery is at least once from the moment the state changes. Stores without an
  // outbox save the states and drop the events.
  virtual Status SaveAlertStatesWithEvents(std::string_view group,
                                           const std::vector<AlertStateSnapshot>& alerts,
                                           const std::vector<AlertEvent>& events) {
    (void)events;
    return SaveAlertStates(group, alerts);
  }
};

// In-memory AlertStateStore, for tests and for running without persistence.
class MemoryAlertStateStore final : public AlertStateStore {
 public:
  Status SaveAlertStates(std::string_view group,
                         const std::vector<AlertStateSnapshot>& alerts) override;
  Result<std::vector<AlertStateSnapshot>> LoadAlertStates() override;

 private:
  std::map<std::string, std::vector<AlertStateSnapshot>, std::less<>> by_group_;
};

struct AlertingOptions {
  Labels external_labels;  // template $externalLabels only
  std::string external_url;
  Millis resend_delay{60000};
  // A group's interval when its file gives none (global evaluation_interval); sets ValidUntil.
  Millis evaluation_interval{60000};
  Millis resolved_retention{15 * 60000};
  // A snapshot older than this restores firing alerts but not pending ones (§2.8's
  // --rules.alert.for-outage-tolerance).
  Millis for_outage_tolerance{3600000};
  // The longest one group evaluation may take: min(the group's interval, this), as Prometheus's
  // --query.timeout (2m). Past it the running rule and the rules not yet evaluated fail with
  // "query timed out in expression evaluation", each counted as a failed rule evaluation.
  Millis evaluation_timeout{120000};
};

// One evaluation's output of an alerting rule: the ALERTS/ALERTS_FOR_STATE samples (labels
// include __name__) and how many alerts are pending or firing.
struct AlertRuleOutput {
  Vector samples;
  int64_t active_count = 0;
};

// One alerting rule's alerts. Owns its state; not thread-safe.
class AlertingRule {
 public:
  AlertingRule(RuleDef def, AlertingOptions options);

  // Applies one evaluation at `ts_ms` whose expression returned `result` (§2.2). `query` serves
  // the template function `query` (may be null). On failure (duplicate label sets, limit) the
  // state is unchanged, except that exceeding `limit` clears it as Prometheus does.
  Result<AlertRuleOutput> Update(const Vector& result, int64_t ts_ms, int64_t limit = 0,
                                 const TemplateQueryFunc& query = nullptr);
  // Alerts due for sending at `ts_ms` (§2.6); marks them sent and sets ValidUntil.
  std::vector<AlertNotification> TakeAlertsToSend(int64_t ts_ms, Millis group_interval);

  std::vector<Alert> Alerts() const;        // every tracked alert, resolved-but-kept ones included
  std::vector<Alert> FiringAlerts() const;  // firing and not resolved (promtool's `got`)
  std::vector<AlertStateSnapshot> Snapshot(std::string_view group, int64_t now_ms) const;
  // Replaces state with the snapshots that belong to this rule (same group, name, raw labels).
  void Restore(const std::vector<AlertStateSnapshot>& snapshots, std::string_view group,
               int64_t now_ms);
  const RuleDef& def() const { return def_; }

 private:
  RuleDef def_;
  AlertingOptions options_;
  std::map<Labels, Alert> active_;
};

// ---------------------------------------------------------------------------------------------
// Group evaluation.

// A SampleSource over a base source plus the series written by rules (recording outputs,
// ALERTS, ALERTS_FOR_STATE, stale markers), so later rules and groups read them. Not
// thread-safe. `retention` bounds memory (0 keeps everything).
//
// With a writer (SetWriter), the overlay writes through: Commit() hands what was appended since
// the last Commit to the writer, and once stored those samples leave memory, since the base
// serves them from then on (the daemon's base is the probe series and the recorded store as
// one). Memory then holds only what could not be stored, and range aggregates over recorded
// series reach the base's pushdown (rollups) instead of a scan.
class SeriesOverlay final : public SampleSource {
 public:
  explicit SeriesOverlay(const SampleSource& base, Millis retention = Millis(0));
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override;
  // The base's pushdown unless a recorded series here matches (then Select and compute).
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override;
  Result<std::vector<SeriesSteps>> SelectAggregateSteps(const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate,
                                                        double q) const override;
  // REQUIRES: labels include __name__. Samples must arrive in time order per series.
  void Append(const Labels& labels, int64_t t_ms, double v);
  // REQUIRES: `writer` (may be null: memory only) outlives the overlay.
  void SetWriter(RecordedSeriesWriter* writer) { writer_ = writer; }
  // Stores what was appended since the last Commit (nothing without a writer). On failure the
  // samples stay in memory (for `retention`) and the writer's error is returned.
  Status Commit();

 private:
  // Whether a recorded series held here matches (then the base cannot answer alone).
  bool HoldsAny(const std::vector<LabelMatcher>& matchers) const;

  const SampleSource* base_;  // not owned, outlives this
  Millis retention_;
  std::map<Labels, std::vector<Sample>> series_;
  RecordedSeriesWriter* writer_ = nullptr;  // not owned; may be null
  std::vector<RecordedPoint> pending_;      // appended since the last Commit, with a writer
};

struct RuleEvalStatus {
  std::string name;
  int64_t last_eval_ms = -1;  // -1: never evaluated
  double last_duration_seconds = 0;
  std::optional<Error> last_error;
  int64_t last_sample_count = 0;
};

struct GroupEvalResult {
  std::vector<AlertNotification> to_send;
  // The last error of the overlay's writer in this evaluation (SeriesOverlay::Commit after
  // each rule); the outputs it concerns stay in memory only.
  std::optional<Error> store_error;
  int64_t error_count = 0;  // rules that failed in this evaluation
  double duration_seconds = 0;
  bool timed_out = false;  // the group's deadline passed (see evaluation_timeout)
};

// A rule group: rules evaluated in order at one timestamp. Owns its alerting rules' state.
// Not thread-safe. `clock` (monotonic time, for the evaluation durations it reports) must outlive
// the group.
class RuleGroup {
 public:
  RuleGroup(RuleGroupDef def, AlertingOptions options, const Clock& clock);
  RuleGroup(RuleGroup&&) = default;
  RuleGroup& operator=(RuleGroup&&) = default;

  // Evaluates every rule at `ts_ms`, reading through `overlay` and writing outputs into it.
  // A failing rule records its error in its status and does not stop the others. The group's
  // deadline (AlertingOptions::evaluation_timeout) or `stop` saying true ends the evaluation:
  // the rule running and those after it fail with a timeout.
  GroupEvalResult Evaluate(SeriesOverlay& overlay, int64_t ts_ms, const EvalCancel& stop = {});

  const RuleGroupDef& def() const { return def_; }
  Millis interval(Millis global_default) const;
  const std::vector<RuleEvalStatus>& statuses() const { return statuses_; }
  std::vector<const AlertingRule*> alerting_rules() const;
  std::vector<AlertStateSnapshot> Snapshot(int64_t now_ms) const;
  void Restore(const std::vector<AlertStateSnapshot>& snapshots, int64_t now_ms);
  // REQUIRES: a state store that outlives the call. Convenience over Snapshot/Save.
  Status SaveState(AlertStateStore& store, int64_t now_ms) const;

 private:
  RuleGroupDef def_;
  AlertingOptions options_;
  const Clock* clock_;  // not null; a pointer so that groups stay movable
  // Parallel to def_.rules: an AlertingRule for alerting rules, null for recording rules.
  std::vector<std::unique_ptr<AlertingRule>> alerting_;
  std::vector<RuleEvalStatus> statuses_;
  // Per rule: the output series of the previous evaluation, for stale markers.
  std::vector<std::vector<Labels>> previous_output_;
};

// ---------------------------------------------------------------------------------------------
// promtool-compatible commands (§3). Both write promtool's report to `out` and return the exit
// code: 0 success, 1 failure.

int RunRuleTests(const std::vector<std::string>& files, std::ostream& out);
int CheckRuleFiles(const std::vector<std::string>& files, std::ostream& out);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_RULES_H_
