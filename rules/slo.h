#ifndef MODELPULSE_RULES_SLO_H_
#define MODELPULSE_RULES_SLO_H_

// Service level objectives (issue 10): what one SLO says, how a probe counts for it, and the
// multiwindow, multi-burn-rate rules generated from it (../shared/prometheus-semantics.md §7).
// Light header; the `slos:` config reader is in rules/slo_config.h (it includes yaml-cpp).
//
// Definitions this file fixes (and the report and the generated rules share):
//  - availability: every probe is an event, except failures whose outcome is not the provider's
//    fault (they are left out, neither good nor bad); a failure in provider_fault_outcomes is
//    bad. Default provider_fault_outcomes: every failure outcome except quota_exhausted and auth
//    (billing and credentials are ours to fix), so throttled, overloaded, timeout, network,
//    client_error, server_error, invalid_response and content_mismatch count against the
//    provider.
//  - latency: events are the successful probes that have the phase (failures are
//    availability's business; a phase that did not happen or was not a number is left out);
//    good when the phase (first token, or total) took at most the threshold. These are exactly
//    the observations of the histograms modelpulse_probe_{ttft,duration}_seconds (successful
//    probes only) and their bucket `le` = threshold (value <= le), so the threshold must be one
//    of their bounds (ProbeLatencyBuckets; the config reader refuses any other).
//  - throttle_free: every probe is an event; a throttled one is bad.
//  - paging needs evidence: a window pair fires only when its long window holds at least
//    min_probes events and at least min_failed_probes bad ones (defaults 10 and 2), so a lone
//    failed probe never pages, whatever the probe interval.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/common.h"

namespace modelpulse::rules {

struct SloSpec {
  enum class Kind { kAvailability, kLatency, kThrottleFree };
  enum class Phase { kFirstToken, kTotal };
  enum class WindowKind { kRolling, kCalendarMonth };

  std::string name;  // unique; the `slo` label
  int line = 0;      // 1-based position in the config file, for messages
  int column = 0;
  Labels selector;  // equality matchers on probe labels (target, model, cloud, ...); all must hold
  Kind kind = Kind::kAvailability;
  Phase phase = Phase::kFirstToken;  // latency only
  double threshold_seconds = 0;      // latency only
  double objective_percent = 99.9;   // e.g. 99.9
  WindowKind window_kind = WindowKind::kRolling;
  Millis window{30LL * 24 * 3600 * 1000};  // rolling: 28d or 30d
  std::vector<Outcome> provider_fault_outcomes = DefaultProviderFaultOutcomes();
  int64_t min_probes = 10;
  int64_t min_failed_probes = 2;

  static std::vector<Outcome> DefaultProviderFaultOutcomes();
  // (100 - objective) / 100, as Sloth computes it (0.0009999999999999432 for 99.9).
  double ErrorBudget() const { return (100.0 - objective_percent) / 100.0; }
  // The objective as a ratio, rounded from its decimal form: 0.999 for 99.9 (99.9 / 100 is
  // 0.9990000000000001 in binary floating point).
  double ObjectiveRatio() const;
};

std::string_view SloKindName(SloSpec::Kind kind);  // "availability", "latency", "throttle_free"

// How one probe counts for an SLO.
enum class SloVerdict { kExcluded, kGood, kBad };
SloVerdict ClassifyProbe(const SloSpec& slo, Outcome outcome, std::optional<double> first_token_s,
                         double total_s);
// Whether a latency threshold is a bound of the latency histograms (ProbeLatencyBuckets), so
// rules can read its bucket.
bool IsLatencyBucket(double threshold_seconds);
// Whether a probe with these labels belongs to the SLO.
bool SloSelects(const SloSpec& slo, const Labels& labels);

// The burn-rate windows (§7.2): long and short window, factor, severity.
struct BurnWindow {
  const char* long_window;
  const char* short_window;
  double factor;
  const char* severity;  // "page" or "ticket"
};
const std::vector<BurnWindow>& BurnWindows();
// Every window a burn rate is recorded for: 5m 30m 1h 2h 6h 1d 3d.
const std::vector<const char*>& BurnRateWindowNames();

// The failure outcomes with a per-probe gauge of their own (common/probe_series.h), the ones
// PromQL over the gauges (the embedded dialect, SloTracker) can leave out of an availability
// SLI. Together they cover the default provider_fault_outcomes exactly; leaving out any other
// outcome is exact only in the portable dialect and the report.
struct OutcomeGauge {
  Outcome outcome;
  const char* series;
};
std::span<const OutcomeGauge> OutcomeGauges();

// Which series the generated rules read. kEmbedded: the per-probe gauges (probe_success...) over
// ranges, which the embedded engine answers from rollups for long windows but which mean
// something else in a Prometheus that samples them once per scrape. kPortable: the per-probe
// counters (modelpulse_probes_total{outcome}) through increase(), the same in both (issue 9),
// for `export rules`; there every outcome can be left out exactly.
enum class SloRuleDialect { kEmbedded, kPortable };

// The Prometheus rule file (YAML) of every SLO that has a PromQL form: one group per SLO named
// "slo:<name>", recording per window slo:sli_events:count<w>, slo:sli_errors:count<w> and
// slo:sli_error:ratio_rate<w> (Sloth's name), slo:objective:ratio and slo:error_budget:ratio,
// then the alert SLOErrorBudgetBurn with severity page (14.4x 1h&5m, 6x 6h&30m) and ticket (3x
// 1d&2h, 1x 3d&6h). Latency SLOs read their phase's histogram in both dialects (the gauges
// would need a subquery): events = increase of _count, errors = that minus the increase of the
// bucket le="<threshold>", the Pyrra form; a latency SLO whose threshold is not a bucket bound
// (only possible for a spec built in code) is left out and listed in a comment. In the embedded
// dialect an excluded outcome is left out only where it has a gauge (OutcomeGauges(): the
// default set exactly); any other failure counts as an error there (the embedded rules' one
// difference from the report and ClassifyProbe). Empty string when no SLO has rules.
std::string SloRuleFileYaml(const std::vector<SloSpec>& slos,
                            SloRuleDialect dialect = SloRuleDialect::kEmbedded);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_SLO_H_
