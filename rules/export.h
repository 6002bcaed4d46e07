#ifndef MODELPULSE_RULES_EXPORT_H_
#define MODELPULSE_RULES_EXPORT_H_

// `modelpulse export rules`: the configured rules as a Prometheus, Thanos or Mimir rule file.
// Inside modelpulse a rule sees one sample per probe; a Prometheus scraping /metrics sees each
// last-probe gauge once per scrape. Rules over the counters and histograms (common/
// probe_series.h ProbeCounterFamilies) mean the same in both and pass through; a rule that reads
// a per-probe gauge over a range (avg_over_time(probe_success[5m]), ...) would change meaning,
// so it is refused with the reason. Later exporters (SLO burn-rate rules) add their groups and
// checks through ExportOptions.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace modelpulse::rules {

// Why a rule cannot run unchanged in a Prometheus that scrapes /metrics; nullopt when it can.
using TravelCheck = std::function<std::optional<std::string>(const RuleDef&)>;

// The built-in check: a per-probe gauge (common/probe_series.h ProbeSeriesNames) read over a
// range. Read at an instant a gauge is the last probe's value in both, and passes.
std::optional<std::string> PerProbeGaugeOverRange(const RuleDef& rule);

struct ExportOptions {
  // Checks beside PerProbeGaugeOverRange; the first reason given refuses the rule.
  std::vector<TravelCheck> checks;
  // Groups appended as they are (generated rules that travel by construction).
  std::vector<RuleGroupDef> extra_groups;
};

struct ExportRefusal {
  std::string location;  // "file:line:column"
  std::string rule;      // the record or alert name
  std::string reason;
};

struct RulesExport {
  std::string yaml;  // a rule file `promtool check rules` accepts (groups named as configured)
  size_t exported = 0;
  std::vector<ExportRefusal> refused;
};

// Every rule of `files` that travels, in file and group order. A rule that reads a series
// recorded by a refused rule is refused too. Groups left empty are dropped.
RulesExport ExportRules(const std::vector<RuleFileDef>& files, const ExportOptions& options = {});

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_EXPORT_H_
