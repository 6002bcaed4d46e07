#include "rules/slo.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/go_quote.h"
#include "common/probe_series.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

constexpr OutcomeGauge kOutcomeGauges[] = {
    {Outcome::kThrottled, "probe_throttled"},
    {Outcome::kOverloaded, "probe_overloaded"},
    {Outcome::kQuotaExhausted, "probe_quota_exhausted"},
    {Outcome::kAuth, "probe_auth_failed"},
};

bool IsFault(const SloSpec& slo, Outcome outcome) {
  return std::find(slo.provider_fault_outcomes.begin(), slo.provider_fault_outcomes.end(),
                   outcome) != slo.provider_fault_outcomes.end();
}

// `{model="gpt-4o",cloud="azure"}`: the SLO's selector as a PromQL matcher list, with `extra`
// (another matcher) last when given.
std::string Selector(const SloSpec& slo, const std::string& extra = {}) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : slo.selector) {
    out += fmt::format("{}{}={}", first ? "" : ",", name, GoQuote(value));
    first = false;
  }
  if (!extra.empty()) {
    out += (first ? "" : ",") + extra;
  }
  return out + "}";
}

// The portable dialect: probes of the SLO's targets whose outcome is one of `outcomes` (all of
// them when empty) over `w`, from the counters. `or vector(0)`: a counter that never moved may
// not be exposed, and a missing count would hide its ratio.
std::string CounterCount(const SloSpec& slo, const std::vector<Outcome>& outcomes,
                         const std::string& w) {
  std::string matcher;
  for (Outcome outcome : outcomes) {
    matcher += (matcher.empty() ? "" : "|") + std::string(OutcomeName(outcome));
  }
  const std::string sel =
      Selector(slo, matcher.empty() ? std::string() : "outcome=~" + GoQuote(matcher));
  return fmt::format("sum(increase(modelpulse_probes_total{}[{}])) or vector(0)", sel, w);
}

std::vector<Outcome> FaultOutcomes(const SloSpec& slo) {
  std::vector<Outcome> out;
  for (Outcome outcome : kAllOutcomes) {
    if (outcome != Outcome::kOk && IsFault(slo, outcome)) {
      out.push_back(outcome);
    }
  }
  return out;
}

std::string PortableEventsExpr(const SloSpec& slo, const std::string& w) {
  if (slo.kind == SloSpec::Kind::kThrottleFree) {
    return CounterCount(slo, {}, w);
  }
  std::vector<Outcome> counted = FaultOutcomes(slo);
  counted.insert(counted.begin(), Outcome::kOk);
  return CounterCount(slo, counted, w);
}

std::string PortableErrorsExpr(const SloSpec& slo, const std::string& w) {
  if (slo.kind == SloSpec::Kind::kThrottleFree) {
    return CounterCount(slo, {Outcome::kThrottled}, w);
  }
  return CounterCount(slo, FaultOutcomes(slo), w);
}

// Latency, both dialects: the histogram of the SLO's phase (common/probe_series.h
// ProbeCounterFamilies), as Pyrra writes a latency SLO (prometheus-semantics.md §7.4): events
// are the increase of _count, good ones the increase of the bucket whose `le` is the threshold,
// errors the difference. The histograms observe successful probes only, and a probe lands in
// bucket `le` when its value is <= le, so this is ClassifyProbe's latency verdict exactly (a
// failure or a probe without the phase is excluded; good when took <= threshold); the config
// reader refuses a threshold that is not a bucket bound (rules/slo_config.cpp). The gauges have
// no form for "probes under a threshold" without a subquery, so the embedded dialect reads the
// histograms too; the embedded engine derives them from the stored probes.
std::string HistogramName(const SloSpec& slo) {
  return slo.phase == SloSpec::Phase::kTotal ? "modelpulse_probe_duration_seconds"
                                             : "modelpulse_probe_ttft_seconds";
}

std::string LatencyEventsExpr(const SloSpec& slo, const std::string& w) {
  return fmt::format("sum(increase({}_count{}[{}])) or vector(0)", HistogramName(slo),
                     Selector(slo), w);
}

std::string LatencyErrorsExpr(const SloSpec& slo, const std::string& w) {
  const std::string le = "le=" + GoQuote(FormatBucketBound(slo.threshold_seconds));
  return fmt::format(
      "(sum(increase({0}_count{1}[{3}])) - sum(increase({0}_bucket{2}[{3}]))) or vector(0)",
      HistogramName(slo), Selector(slo), Selector(slo, le), w);
}

// The probe events of `w`, and the bad ones among them, as PromQL.
std::string EventsExpr(const SloSpec& slo, const std::string& w) {
  const std::string sel = Selector(slo);
  if (slo.kind == SloSpec::Kind::kThrottleFree) {
    return fmt::format("sum(count_over_time(probe_throttled{}[{}]))", sel, w);
  }
  std::string expr = fmt::format("sum(count_over_time(probe_success{}[{}]))", sel, w);
  for (const OutcomeGauge& excluded : kOutcomeGauges) {
    if (!IsFault(slo, excluded.outcome)) {
      expr += fmt::format(" - sum(sum_over_time({}{}[{}]))", excluded.series, sel, w);
    }
  }
  return expr;
}

std::string ErrorsExpr(const SloSpec& slo, const std::string& w) {
  const std::string sel = Selector(slo);
  if (slo.kind == SloSpec::Kind::kThrottleFree) {
    return fmt::format("sum(sum_over_time(probe_throttled{}[{}]))", sel, w);
  }
  return fmt::format("({}) - sum(sum_over_time(probe_success{}[{}]))", EventsExpr(slo, w), sel, w);
}

// YAML single-quoted scalar.
std::string Yq(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  return out + "'";
}

std::string Recording(const std::string& record, const std::string& expr, const SloSpec& slo,
                      const std::string& extra_label = {}) {
  std::string out = fmt::format("  - record: {}\n    expr: {}\n    labels:\n      slo: {}\n",
                                record, Yq(expr), Yq(slo.name));
  if (!extra_label.empty()) {
    out += extra_label;
  }
  return out;
}

// One window pair's condition: both ratios over `factor` x budget and enough evidence in the
// long window.
std::string PairCondition(const SloSpec& slo, const BurnWindow& w, const std::string& budget) {
  const std::string by = fmt::format("{{slo={}}}", GoQuote(slo.name));
  const std::string threshold = fmt::format("({} * {})", FormatGoFloat(w.factor), budget);
  return fmt::format(
      "(slo:sli_error:ratio_rate{0}{2} > {3} and slo:sli_error:ratio_rate{1}{2} > {3}"
      " and slo:sli_events:count{0}{2} >= {4} and slo:sli_errors:count{0}{2} >= {5})",
      w.long_window, w.short_window, by, threshold, slo.min_probes, slo.min_failed_probes);
}

}  // namespace

std::span<const OutcomeGauge> OutcomeGauges() { return kOutcomeGauges; }

std::vector<Outcome> SloSpec::DefaultProviderFaultOutcomes() {
  std::vector<Outcome> out;
  for (Outcome outcome : kAllOutcomes) {
    if (outcome != Outcome::kOk && outcome != Outcome::kQuotaExhausted &&
        outcome != Outcome::kAuth) {
      out.push_back(outcome);
    }
  }
  return out;
}

double SloSpec::ObjectiveRatio() const {
  return std::strtod(fmt::format("{}e-2", objective_percent).c_str(), nullptr);
}

std::string_view SloKindName(SloSpec::Kind kind) {
  switch (kind) {
    case SloSpec::Kind::kAvailability:
      return "availability";
    case SloSpec::Kind::kLatency:
      return "latency";
    case SloSpec::Kind::kThrottleFree:
      return "throttle_free";
  }
  return "availability";
}

SloVerdict ClassifyProbe(const SloSpec& slo, Outcome outcome, std::optional<double> first_token_s,
                         double total_s) {
  switch (slo.kind) {
    case SloSpec::Kind::kAvailability:
      if (outcome == Outcome::kOk) {
        return SloVerdict::kGood;
      }
      return IsFault(slo, outcome) ? SloVerdict::kBad : SloVerdict::kExcluded;
    case SloSpec::Kind::kThrottleFree:
      return outcome == Outcome::kThrottled ? SloVerdict::kBad : SloVerdict::kGood;
    case SloSpec::Kind::kLatency: {
      if (outcome != Outcome::kOk) {
        return SloVerdict::kExcluded;
      }
      const std::optional<double> took =
          slo.phase == SloSpec::Phase::kTotal ? std::optional<double>(total_s) : first_token_s;
      // NaN is not observed by the histograms (ProbeHistogramValue), so it is no event here.
      if (!took || std::isnan(*took)) {
        return SloVerdict::kExcluded;
      }
      return *took <= slo.threshold_seconds ? SloVerdict::kGood : SloVerdict::kBad;
    }
  }
  return SloVerdict::kExcluded;
}

bool SloSelects(const SloSpec& slo, const Labels& labels) {
  for (const auto& [name, value] : slo.selector) {
    auto it = labels.find(name);
    if (it == labels.end() ? !value.empty() : it->second != value) {
      return false;
    }
  }
  return true;
}

bool IsLatencyBucket(double threshold_seconds) {
  const auto buckets = ProbeLatencyBuckets();
  return std::find(buckets.begin(), buckets.end(), threshold_seconds) != buckets.end();
}

const std::vector<BurnWindow>& BurnWindows() {
  static const std::vector<BurnWindow> windows = {
      {"1h", "5m", 14.4, "page"},
      {"6h", "30m", 6, "page"},
      {"1d", "2h", 3, "ticket"},
      {"3d", "6h", 1, "ticket"},
  };
  return windows;
}

const std::vector<const char*>& BurnRateWindowNames() {
  static const std::vector<const char*> names = {"5m", "30m", "1h", "2h", "6h", "1d", "3d"};
  return names;
}

std::string SloRuleFileYaml(const std::vector<SloSpec>& slos, SloRuleDialect dialect) {
  const bool portable = dialect == SloRuleDialect::kPortable;
  std::string groups;
  std::string skipped;
  bool any_latency = false;
  for (const SloSpec& slo : slos) {
    const bool latency = slo.kind == SloSpec::Kind::kLatency;
    if (latency && !IsLatencyBucket(slo.threshold_seconds)) {
      // The config reader refuses these; a spec built in code may still hold one.
      skipped += fmt::format("#   {} (latency: threshold {}s is not a histogram bucket)\n",
                             slo.name, FormatGoFloat(slo.threshold_seconds));
      continue;
    }
    any_latency = any_latency || latency;
    const std::string budget = FormatGoFloat(slo.ErrorBudget());
    std::string group = fmt::format("- name: {}\n  rules:\n", Yq("slo:" + slo.name));
    for (const char* w : BurnRateWindowNames()) {
      group += Recording(fmt::format("slo:sli_events:count{}", w),
                         latency    ? LatencyEventsExpr(slo, w)
                         : portable ? PortableEventsExpr(slo, w)
                                    : EventsExpr(slo, w),
                         slo);
      group += Recording(fmt::format("slo:sli_errors:count{}", w),
                         latency    ? LatencyErrorsExpr(slo, w)
                         : portable ? PortableErrorsExpr(slo, w)
                                    : ErrorsExpr(slo, w),
                         slo);
      const std::string by = fmt::format("{{slo={}}}", GoQuote(slo.name));
      group += Recording(
          fmt::format("slo:sli_error:ratio_rate{}", w),
          fmt::format("slo:sli_errors:count{0}{1} / slo:sli_events:count{0}{1}", w, by), slo);
    }
    group += Recording("slo:objective:ratio",
                       fmt::format("vector({})", FormatGoFloat(slo.ObjectiveRatio())), slo);
    group += Recording("slo:error_budget:ratio", fmt::format("vector({})", budget), slo);
    for (const char* severity : {"page", "ticket"}) {
      std::string expr;
      for (const BurnWindow& w : BurnWindows()) {
        if (std::string_view(w.severity) != severity) {
          continue;
        }
        expr += (expr.empty() ? "" : " or ") + PairCondition(slo, w, budget);
      }
      group += fmt::format(
          "  - alert: SLOErrorBudgetBurn\n    expr: {}\n    labels:\n      severity: {}\n"
          "      slo: {}\n      slo_kind: {}\n    annotations:\n"
          "      summary: {}\n      description: {}\n",
          Yq(expr), severity, Yq(slo.name), SloKindName(slo.kind),
          Yq("SLO {{ $labels.slo }} is burning its error budget"),
          Yq(fmt::format("{} of the {} SLO's probes were bad over its long window "
                         "({}% objective): above the {} burn-rate threshold.",
                         "{{ $value | humanizePercentage }}", SloKindName(slo.kind),
                         FormatGoFloat(slo.objective_percent), severity)));
    }
    groups += group;
  }
  if (groups.empty() && skipped.empty()) {
    return {};
  }
  std::string out =
      "# Generated by modelpulse from the config's slos: (multiwindow, multi-burn-rate alerts,\n"
      "# SRE workbook: page 14.4x over 1h and 5m or 6x over 6h and 30m; ticket 3x over 1d and 2h\n"
      "# or 1x over 3d and 6h). A window pair fires only with enough evidence in its long\n"
      "# window: at least min_probes probes and min_failed_probes failed ones.\n";
  out += portable
             ? "# Portable: over the counters modelpulse_probes_total{outcome}, for a Prometheus\n"
               "# that scrapes modelpulse as well as for modelpulse itself.\n"
             : "# Embedded: over the per-probe gauges, for modelpulse's own rule engine.\n";
  if (any_latency) {
    out += "# Latency: over the histograms of successful probes (bucket le = threshold).\n";
  }
  if (!skipped.empty()) {
    out += "# SLOs without rules:\n" + skipped;
  }
  return out + (groups.empty() ? std::string("groups: []\n") : "groups:\n" + groups);
}

}  // namespace modelpulse::rules
