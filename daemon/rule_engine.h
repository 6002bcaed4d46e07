#ifndef MODELPULSE_DAEMON_RULE_ENGINE_H_
#define MODELPULSE_DAEMON_RULE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "common/common.h"
#include "rules/promql.h"
#include "storage/storage.h"

namespace modelpulse::daemon {

struct RuleEngineOptions {
  std::vector<std::string> rule_files;
  Millis evaluation_interval{15000};  // groups without an interval of their own
  Labels external_labels;             // $externalLabels in templates
  std::string external_url;
};

// What /metrics shows of the rules: ALERTS, ALERTS_FOR_STATE and per-group evaluation figures.
struct ActiveAlert {
  Labels labels;      // alertname and the alert's labels
  std::string state;  // "pending" or "firing"
  int64_t active_at_ms = 0;
};
struct RuleGroupStatus {
  std::string name;
  std::string file;
  size_t rules = 0;
  double last_duration_seconds = 0;
  int64_t last_evaluation_ms = 0;  // 0: not evaluated yet
  uint64_t evaluations = 0;
  uint64_t failures = 0;  // rule evaluations that failed
};
struct RulesStatus {
  std::vector<ActiveAlert> alerts;
  std::vector<RuleGroupStatus> groups;
};

// Evaluates Prometheus rule files over the probe series on its own thread, group by group on each
// group's interval. Alert states are saved to the store after every evaluation and restored on
// creation, so a restart neither re-pages nor forgets pending `for` time. Thread-safe.
class RuleEngine {
 public:
  // Loads every rule file (all must parse) and restores saved alert states. kParse with the
  // file's position when a rule file is invalid.
  static Result<std::unique_ptr<RuleEngine>> Create(const RuleEngineOptions& options,
                                                    const rules::SampleSource& source,
                                                    storage::Store& store, const Clock& clock);
  virtual ~RuleEngine() = default;

  // Replaces the rule files atomically: either every file parses and the new groups take over
  // (alert states of groups that stay are kept), or nothing changes and the error is returned.
  virtual Status Reload(const RuleEngineOptions& options) = 0;
  // Evaluates due groups until `stop` is requested.
  virtual void Run(std::stop_token stop) = 0;
  // One round of Run: evaluates every group due at `now_ms` and returns the earliest time a
  // group is due next. For benchmarks and tests that drive time themselves.
  virtual int64_t EvaluateDue(int64_t now_ms) = 0;
  virtual RulesStatus Snapshot() const = 0;
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_RULE_ENGINE_H_
