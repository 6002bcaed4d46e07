#ifndef MODELPULSE_DAEMON_REPORT_H_
#define MODELPULSE_DAEMON_REPORT_H_

// `modelpulse report`: SLA evidence for a period, from the stored probes and alert events
// (issue 10 item 5). Reads the database through storage::Archive (read-only, beside a running
// daemon) and the SLOs of the config: whole days and hours from the probe summaries (migration
// 9, kept two years by default), the rows only for the partial hours at the period's edges and
// for the failed probes behind incidents.
//
// Definitions (also printed in the markdown and JSON output):
//  - availability of a target: good / (good + bad) under the availability definition of
//    rules/slo.h, with the provider_fault_outcomes of the first availability SLO selecting the
//    target (the default set when none does);
//  - downtime minutes: UTC minutes that hold at least one probe of the target and in which
//    every probe was bad (a provider-fault failure); minutes without probes are not counted, so
//    at probe intervals over a minute it is a lower bound. Exact: the summaries keep, per minute
//    without an ok probe, the set of outcomes seen in it;
//  - throttled / overloaded share: probes with that outcome / all probes;
//  - first-token and total percentiles: over successful probes, Prometheus's quantile
//    interpolation between ranks, each rank's value read from DDSketches (storage/ddsketch.h)
//    merged from the hourly and daily probe summaries: within 1 % relative error of the exact
//    value, for targets and for model and cloud groups alike;
//  - latency SLO events and bad events: successful probes with the phase, bad above the
//    threshold, counted from the same sketches: exact except for probes within 1 % of the
//    threshold, which may be counted on either side;
//  - tokens/s: mean output tokens per second of successful probes;
//  - incidents: firing intervals of alerts from the alert_events table that overlap the period;
//    an alert belongs to a target when its `target` label names it, or its `slo` label names an
//    SLO selecting it, or (without either) its model/cloud/provider/region labels all equal the
//    target's; the failed probes behind an incident are the target's bad probes from 15 minutes
//    before it started until it ended (or the period's end).

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/common.h"
#include "rules/slo.h"

namespace modelpulse::storage {
struct ProbeDigest;  // storage/probe_digest.h
}  // namespace modelpulse::storage

namespace modelpulse::daemon {

struct ReportOptions {
  std::string storage_path;
  std::vector<rules::SloSpec> slos;
  int64_t from_ms = 0;               // inclusive
  int64_t to_ms = 0;                 // exclusive
  std::ostream* progress = nullptr;  // "target i/n" lines while reading; null: none
};

struct Percentiles {
  std::optional<double> p50, p95, p99;
};

struct FailedProbe {
  int64_t start_ms = 0;
  std::string outcome;
  std::string request_id;
  std::string error;
};

struct Incident {
  std::string alertname;
  Labels labels;
  int64_t starts_ms = 0;
  int64_t ends_ms = 0;  // clipped to the period's end while still firing
  bool ongoing = false;
  std::vector<FailedProbe> failed_probes;  // per target, in ReportRow::incidents only
};

// One UTC day of one target (the HTML report's timelines).
struct DayFigures {
  int64_t day_ms = 0;  // 00:00 UTC
  int64_t good = 0;
  int64_t bad = 0;
  std::optional<double> first_token_p95;  // over the day's successful probes, within 1 %
};

struct ReportRow {
  std::string name;  // target, model or cloud
  Labels labels;     // targets only
  int64_t probes = 0;
  int64_t good = 0;
  int64_t bad = 0;
  int64_t excluded = 0;
  std::optional<double> availability;
  int64_t downtime_minutes = 0;
  int64_t throttled = 0;
  int64_t overloaded = 0;
  Percentiles first_token;
  Percentiles total;
  std::optional<double> tokens_per_second;
  std::vector<Incident> incidents;
  std::vector<DayFigures> days;  // targets only, days with probes, oldest first
};

struct SloResult {
  rules::SloSpec spec;
  int64_t events = 0;
  int64_t bad = 0;
  std::optional<double> sli;
  bool met = false;
  std::optional<double> budget_consumed;  // bad / (events x budget); 1 = all of it
  std::vector<std::string> targets;
};

struct Report {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::vector<ReportRow> targets;
  std::vector<ReportRow> models;
  std::vector<ReportRow> clouds;
  std::vector<SloResult> slos;
};

Result<Report> BuildReport(const ReportOptions& options);

// Events and bad events of `slo` among the probes `digest` summarises: exact for availability
// and throttle-free SLOs; a latency SLO's from the sketch of its phase, exact but for probes
// within the sketch's 1 % of the threshold, which may land on either side.
std::pair<int64_t, int64_t> SloEventsOf(const rules::SloSpec& slo,
                                        const storage::ProbeDigest& digest);
// format: table, markdown, csv, json or html (one self-contained file: inline SVG timelines of
// daily availability and first-token p95 per target, no scripts or external assets).
// kInvalidArgument for another.
Result<std::string> FormatReport(const Report& report, const std::string& format);

// [first day of the month, first day of the next) in UTC for "2026-10". kInvalidArgument else.
Result<std::pair<int64_t, int64_t>> MonthRange(const std::string& month);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_REPORT_H_
