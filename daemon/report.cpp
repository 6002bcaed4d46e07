#include "daemon/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>

#include "common/alert_event.h"
#include "common/sample_source.h"
#include "daemon/html.h"
#include "storage/archive.h"

namespace modelpulse::daemon {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kEvidenceLeadMs = 15 * kMinuteMs;
// What a group (model, cloud) sums from its targets.
struct Group {
  ReportRow row;
  storage::DDSketch ttft, total;
  double tps_sum = 0;
  int64_t tps_count = 0;
};

// Prometheus's quantile (type 7: interpolated between the values of ranks floor(q(n-1)) and
// the next) with each of those values read from the sketch: each is within the sketch's 1 % of
// the exact one, so their weighted mean is within 1 % of the exact quantile.
std::optional<double> SketchQuantile(const storage::DDSketch& sketch, double q) {
  const int64_t n = sketch.Count();
  if (n == 0) {
    return std::nullopt;
  }
  const double rank = q * static_cast<double>(n - 1);
  const auto lower = static_cast<int64_t>(std::floor(rank));
  const double weight = rank - std::floor(rank);
  const double low = sketch.ValueAtRank(lower).value_or(0);
  if (weight == 0 || lower + 1 >= n) {
    return low;
  }
  return low * (1 - weight) + sketch.ValueAtRank(lower + 1).value_or(low) * weight;
}

Percentiles OfSketch(const storage::DDSketch& sketch) {
  return {SketchQuantile(sketch, 0.5), SketchQuantile(sketch, 0.95), SketchQuantile(sketch, 0.99)};
}

std::string LabelOr(const Labels& labels, const std::string& name) {
  auto it = labels.find(name);
  return it == labels.end() || it->second.empty() ? "-" : it->second;
}

const rules::SloSpec* AvailabilitySloOf(const std::vector<rules::SloSpec>& slos,
                                        const Labels& labels) {
  for (const rules::SloSpec& slo : slos) {
    if (slo.kind == rules::SloSpec::Kind::kAvailability && rules::SloSelects(slo, labels)) {
      return &slo;
    }
  }
  return nullptr;
}

// Firing intervals from the stored events: one per (labels, starts_at).
std::vector<Incident> IncidentsOf(const std::vector<storage::StoredAlertEvent>& events,
                                  int64_t from_ms, int64_t to_ms) {
  std::map<std::pair<Labels, int64_t>, Incident> by_key;
  for (const storage::StoredAlertEvent& stored : events) {
    auto event = DecodeAlertEvent(stored.body);
    if (!event) {
      continue;  // an undecodable row is not evidence
    }
    Incident& incident = by_key[{event->labels, event->starts_at_ms}];
    incident.labels = event->labels;
    incident.alertname = LabelOr(event->labels, "alertname");
    incident.starts_ms = event->starts_at_ms;
    if (event->resolved) {
      incident.ends_ms = event->ends_at_ms;
      incident.ongoing = false;
    } else if (incident.ends_ms == 0 || incident.ongoing) {
      incident.ongoing = true;
    }
  }
  std::vector<Incident> out;
  for (auto& [key, incident] : by_key) {
    if (incident.ongoing) {
      incident.ends_ms = to_ms;
    }
    if (incident.ends_ms <= from_ms || incident.starts_ms >= to_ms) {
      continue;
    }
    incident.starts_ms = std::max(incident.starts_ms, from_ms);
    incident.ends_ms = std::min(incident.ends_ms, to_ms);
    out.push_back(std::move(incident));
  }
  std::sort(out.begin(), out.end(),
            [](const Incident& a, const Incident& b) { return a.starts_ms < b.starts_ms; });
  return out;
}

bool IncidentConcerns(const Incident& incident, const storage::StoredTarget& target,
                      const std::vector<rules::SloSpec>& slos) {
  if (auto it = incident.labels.find("target"); it != incident.labels.end()) {
    return it->second == target.name;
  }
  if (auto it = incident.labels.find("slo"); it != incident.labels.end()) {
    for (const rules::SloSpec& slo : slos) {
      if (slo.name == it->second) {
        return rules::SloSelects(slo, target.labels);
      }
    }
    return false;
  }
  bool any = false;
  for (const char* name : {"model", "cloud", "provider", "region"}) {
    if (auto it = incident.labels.find(name); it != incident.labels.end()) {
      any = true;
      if (LabelOr(target.labels, name) != it->second) {
        return false;
      }
    }
  }
  return any;
}

void FinishGroup(Group& group) {
  ReportRow& row = group.row;
  const int64_t events = row.good + row.bad;
  if (events > 0) {
    row.availability = static_cast<double>(row.good) / static_cast<double>(events);
  }
  row.first_token = OfSketch(group.ttft);
  row.total = OfSketch(group.total);
  if (group.tps_count > 0) {
    row.tokens_per_second = group.tps_sum / static_cast<double>(group.tps_count);
  }
}

std::string Iso(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string Pct(const std::optional<double>& ratio, int decimals = 3) {
  return ratio ? fmt::format("{:.{}f}%", *ratio * 100, decimals) : "-";
}

std::string Share(int64_t part, int64_t whole) {
  return whole > 0 ? fmt::format("{:.2f}%",
                                 100.0 * static_cast<double>(part) / static_cast<double>(whole))
                   : "-";
}

std::string Secs(const std::optional<double>& v) { return v ? fmt::format("{:.3f}", *v) : "-"; }

std::string Minutes(int64_t ms) { return fmt::format("{:.1f}", static_cast<double>(ms) / 60000); }

nlohmann::json OptJson(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json PercentilesJson(const Percentiles& p) {
  return {{"p50", OptJson(p.p50)}, {"p95", OptJson(p.p95)}, {"p99", OptJson(p.p99)}};
}

nlohmann::json IncidentJson(const Incident& incident) {
  nlohmann::json probes = nlohmann::json::array();
  for (const FailedProbe& probe : incident.failed_probes) {
    probes.push_back({{"time", Iso(probe.start_ms)},
                      {"outcome", probe.outcome},
                      {"request_id", probe.request_id},
                      {"error", probe.error}});
  }
  return {{"alertname", incident.alertname},
          {"labels", incident.labels},
          {"starts_at", Iso(incident.starts_ms)},
          {"ends_at", Iso(incident.ends_ms)},
          {"ongoing", incident.ongoing},
          {"duration_seconds", static_cast<double>(incident.ends_ms - incident.starts_ms) / 1000},
          {"failed_probes", probes}};
}

nlohmann::json RowJson(const ReportRow& row) {
  nlohmann::json out = {
      {"name", row.name},
      {"probes", row.probes},
      {"good", row.good},
      {"bad", row.bad},
      {"excluded", row.excluded},
      {"availability", OptJson(row.availability)},
      {"downtime_minutes", row.downtime_minutes},
      {"throttled", row.throttled},
      {"overloaded", row.overloaded},
      {"throttled_share", row.probes > 0 ? nlohmann::json(static_cast<double>(row.throttled) /
                                                          static_cast<double>(row.probes))
                                         : nlohmann::json(nullptr)},
      {"overloaded_share", row.probes > 0 ? nlohmann::json(static_cast<double>(row.overloaded) /
                                                           static_cast<double>(row.probes))
                                          : nlohmann::json(nullptr)},
      {"first_token_seconds", PercentilesJson(row.first_token)},
      {"total_seconds", PercentilesJson(row.total)},
      {"tokens_per_second", OptJson(row.tokens_per_second)}};
  if (!row.labels.empty()) {
    out["labels"] = row.labels;
    nlohmann::json incidents = nlohmann::json::array();
    for (const Incident& incident : row.incidents) {
      incidents.push_back(IncidentJson(incident));
    }
    out["incidents"] = incidents;
    nlohmann::json days = nlohmann::json::array();
    for (const DayFigures& day : row.days) {
      days.push_back({{"day", Iso(day.day_ms).substr(0, 10)},
                      {"good", day.good},
                      {"bad", day.bad},
                      {"first_token_p95", OptJson(day.first_token_p95)}});
    }
    out["days"] = days;
  }
  return out;
}

std::string WindowText(const rules::SloSpec& slo) {
  return slo.window_kind == rules::SloSpec::WindowKind::kCalendarMonth
             ? "calendar month"
             : fmt::format("{}d", slo.window.count() / 86'400'000);
}

// A grid of cells as an aligned text table, a markdown table or CSV.
enum class Grid { kTable, kMarkdown, kCsv };

std::string CsvCell(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) {
    return text;
  }
  std::string out = "\"";
  for (char c : text) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

std::string RenderGrid(const std::vector<std::vector<std::string>>& rows, Grid kind) {
  std::string out;
  if (rows.empty()) {
    return out;
  }
  if (kind == Grid::kCsv) {
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) {
        out += (i == 0 ? "" : ",") + CsvCell(row[i]);
      }
      out += "\n";
    }
    return out;
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string cell = fmt::format("{:<{}}", row[i], width[i]);
      out += kind == Grid::kMarkdown ? "| " + cell + " " : (i == 0 ? "" : "  ") + cell;
    }
    out += kind == Grid::kMarkdown ? "|\n" : "\n";
    if (r == 0) {
      for (size_t i = 0; i < row.size(); ++i) {
        out += kind == Grid::kMarkdown ? "| " + std::string(width[i], '-') + " "
                                       : (i == 0 ? "" : "  ") + std::string(width[i], '-');
      }
      out += kind == Grid::kMarkdown ? "|\n" : "\n";
    }
  }
  return out;
}

std::vector<std::vector<std::string>> RowsGrid(const std::string& what,
                                               const std::vector<ReportRow>& rows) {
  std::vector<std::vector<std::string>> grid = {
      {what, "probes", "availability", "downtime_min", "throttled", "overloaded", "ttft_p50",
       "ttft_p95", "ttft_p99", "total_p50", "total_p95", "total_p99", "tokens_per_s", "incidents"}};
  for (const ReportRow& row : rows) {
    grid.push_back({row.name, std::to_string(row.probes), Pct(row.availability),
                    std::to_string(row.downtime_minutes), Share(row.throttled, row.probes),
                    Share(row.overloaded, row.probes), Secs(row.first_token.p50),
                    Secs(row.first_token.p95), Secs(row.first_token.p99), Secs(row.total.p50),
                    Secs(row.total.p95), Secs(row.total.p99),
                    row.tokens_per_second ? fmt::format("{:.1f}", *row.tokens_per_second) : "-",
                    std::to_string(row.incidents.size())});
  }
  return grid;
}

std::vector<std::vector<std::string>> SloGrid(const std::vector<SloResult>& slos) {
  std::vector<std::vector<std::string>> grid = {{"slo", "kind", "objective", "window", "sli", "met",
                                                 "budget_consumed", "events", "bad", "targets"}};
  for (const SloResult& slo : slos) {
    std::string targets;
    for (const std::string& t : slo.targets) {
      targets += (targets.empty() ? "" : " ") + t;
    }
    grid.push_back({slo.spec.name, std::string(rules::SloKindName(slo.spec.kind)),
                    fmt::format("{}%", slo.spec.objective_percent), WindowText(slo.spec),
                    Pct(slo.sli), slo.sli ? (slo.met ? "yes" : "NO") : "-",
                    Pct(slo.budget_consumed, 1), std::to_string(slo.events),
                    std::to_string(slo.bad), targets});
  }
  return grid;
}

std::vector<std::vector<std::string>> IncidentGrid(const std::vector<ReportRow>& targets) {
  std::vector<std::vector<std::string>> grid = {
      {"target", "alert", "starts_at", "ends_at", "minutes", "failed_probes", "request_ids"}};
  for (const ReportRow& row : targets) {
    for (const Incident& incident : row.incidents) {
      std::string ids;
      size_t shown = 0;
      for (const FailedProbe& probe : incident.failed_probes) {
        if (probe.request_id.empty()) {
          continue;
        }
        if (++shown > 5) {
          ids += " ...";
          break;
        }
        ids += (ids.empty() ? "" : " ") + probe.request_id;
      }
      grid.push_back({row.name, incident.alertname, Iso(incident.starts_ms),
                      incident.ongoing ? "firing" : Iso(incident.ends_ms),
                      Minutes(incident.ends_ms - incident.starts_ms),
                      std::to_string(incident.failed_probes.size()), ids.empty() ? "-" : ids});
    }
  }
  return grid;
}

constexpr const char* kDefinitions =
    "availability = good / (good + bad) probes (quota_exhausted and auth failures are ours, "
    "not the provider's, unless an SLO's provider_fault_outcomes says otherwise); downtime = UTC "
    "minutes in which every probe failed; percentiles over successful probes, within 1% "
    "relative error (from hourly and daily sketches); latency SLO counts exact except for probes "
    "within 1% of the threshold; incidents = alert firing intervals, with the target's failed "
    "probes from 15 minutes before each started.";

std::string HtmlTable(const std::vector<std::vector<std::string>>& grid) {
  std::string out = "<table>";
  for (size_t r = 0; r < grid.size(); ++r) {
    out += "<tr>";
    for (const std::string& cell : grid[r]) {
      out += (r == 0 ? "<th>" : "<td>") + HtmlEscape(cell) + (r == 0 ? "</th>" : "</td>");
    }
    out += "</tr>";
  }
  return out + "</table>\n";
}

// One target's days as inline SVG: availability bars (green at the objective or better, red
// below) and the first-token p95 as a line, both with a tooltip (<title>) per day.
std::string DaysSvg(const ReportRow& row, double objective) {
  if (row.days.empty()) {
    return "";
  }
  constexpr int kBar = 10;
  constexpr int kHeight = 40;
  const int width = static_cast<int>(row.days.size()) * kBar;
  double max_p95 = 0;
  for (const DayFigures& day : row.days) {
    max_p95 = std::max(max_p95, day.first_token_p95.value_or(0));
  }
  std::string bars;
  std::string line;
  for (size_t i = 0; i < row.days.size(); ++i) {
    const DayFigures& day = row.days[i];
    const int64_t events = day.good + day.bad;
    const double availability =
        events > 0 ? static_cast<double>(day.good) / static_cast<double>(events) : 1.0;
    const int height = std::max(2, static_cast<int>(std::lround(availability * kHeight)));
    bars += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}: {} "
        "({} bad of {})</title></rect>",
        static_cast<int>(i) * kBar, kHeight - height, kBar - 1, height,
        availability >= objective ? "#2e9e44" : "#d33", Iso(day.day_ms).substr(0, 10),
        Pct(events > 0 ? std::optional<double>(availability) : std::nullopt), day.bad, events);
    if (day.first_token_p95 && max_p95 > 0) {
      line +=
          fmt::format("{}{},{} ", line.empty() ? "M" : "L", static_cast<int>(i) * kBar + kBar / 2,
                      kHeight * 2 + 4 -
                          static_cast<int>(std::lround(*day.first_token_p95 / max_p95 * kHeight)));
    }
  }
  return fmt::format(
      "<svg width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" role=\"img\">{2}"
      "<path d=\"{3}\" fill=\"none\" stroke=\"#246\" stroke-width=\"1.5\"><title>first-token "
      "p95 per day, top = {4:.3f} s</title></path></svg>",
      width, kHeight * 2 + 6, bars, line, max_p95);
}

std::string RenderHtml(const Report& report) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>modelpulse report</title><style>"
      "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
      "table{border-collapse:collapse;margin:.5em 0 1.5em}"
      "th,td{border:1px solid #ccc;padding:.2em .5em;font-size:.85em;text-align:right}"
      "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
      ".t{margin:.3em 0 1em}</style></head><body>\n";
  out += "<h1>modelpulse report</h1><p>" +
         HtmlEscape(Iso(report.from_ms) + " to " + Iso(report.to_ms)) + "</p><p>" +
         HtmlEscape(kDefinitions) + "</p>\n";
  if (!report.slos.empty()) {
    out += "<h2>SLOs</h2>" + HtmlTable(SloGrid(report.slos));
  }
  out += "<h2>Targets</h2>" + HtmlTable(RowsGrid("target", report.targets));
  out += "<h2>By model</h2>" + HtmlTable(RowsGrid("model", report.models));
  out += "<h2>By cloud</h2>" + HtmlTable(RowsGrid("cloud", report.clouds));
  auto incidents = IncidentGrid(report.targets);
  if (incidents.size() > 1) {
    out += "<h2>Incidents</h2>" + HtmlTable(incidents);
  }
  out += "<h2>Daily availability and first-token p95</h2>\n";
  for (const ReportRow& row : report.targets) {
    double objective = rules::SloSpec().ObjectiveRatio();
    for (const SloResult& slo : report.slos) {
      if (slo.spec.kind == rules::SloSpec::Kind::kAvailability &&
          rules::SloSelects(slo.spec, row.labels)) {
        objective = slo.spec.ObjectiveRatio();
        break;
      }
    }
    out += "<div class=\"t\"><div>" + HtmlEscape(row.name) + "</div>" + DaysSvg(row, objective) +
           "</div>\n";
  }
  return out + "</body></html>\n";
}

}  // namespace

Result<std::pair<int64_t, int64_t>> MonthRange(const std::string& month) {
  int year = 0;
  int mon = 0;
  char tail = 0;
  if (std::sscanf(month.c_str(), "%4d-%2d%c", &year, &mon, &tail) != 2 || month.size() != 7 ||
      mon < 1 || mon > 12 || year < 1970) {
    return Fail(Error::InvalidArgument("invalid --month \"" + month + "\": use YYYY-MM"));
  }
  std::tm start{};
  start.tm_year = year - 1900;
  start.tm_mon = mon - 1;
  start.tm_mday = 1;
  std::tm end = start;
  end.tm_mon += 1;
  return std::pair<int64_t, int64_t>{static_cast<int64_t>(timegm(&start)) * 1000,
                                     static_cast<int64_t>(timegm(&end)) * 1000};
}

namespace {

// One target's figures, computed on its own (so targets can be read in parallel) and merged
// into the groups and SLOs in target order afterwards.
struct TargetScan {
  ReportRow row;
  Group one;                                            // its sketches and tokens/s sums
  std::vector<std::pair<int64_t, int64_t>> slo_counts;  // per SLO: events, bad (0, 0 unselected)
};

Result<TargetScan> ScanTarget(const storage::Archive& archive, const storage::StoredTarget& target,
                              const ReportOptions& options,
                              const std::vector<Incident>& incidents) {
  static const rules::SloSpec default_availability;
  TargetScan scan;
  ReportRow& row = scan.row;
  row.name = target.name;
  row.labels = target.labels;
  for (const Incident& incident : incidents) {
    if (IncidentConcerns(incident, target, options.slos)) {
      row.incidents.push_back(incident);
    }
  }
  const rules::SloSpec* availability_slo = AvailabilitySloOf(options.slos, target.labels);
  const rules::SloSpec& availability =
      availability_slo != nullptr ? *availability_slo : default_availability;
  // An availability or throttle-free verdict depends on the outcome alone.
  const auto verdict_of = [](const rules::SloSpec& slo, Outcome outcome) {
    return rules::ClassifyProbe(slo, outcome, std::nullopt, 0);
  };
  storage::OutcomeMask bad_set = 0;
  for (Outcome outcome : kAllOutcomes) {
    if (verdict_of(availability, outcome) == rules::SloVerdict::kBad) {
      bad_set |= storage::MaskOf(outcome);
    }
  }
  // Whole days and hours from the summaries; rows only for the partial hours at the edges.
  auto days = archive.DigestDays(target.id, options.from_ms, options.to_ms);
  if (!days) {
    return Fail(days.error());
  }
  storage::ProbeDigest all;
  for (const storage::DayDigest& day : *days) {
    DayFigures figures{day.day_ms};
    for (Outcome outcome : kAllOutcomes) {
      const rules::SloVerdict verdict = verdict_of(availability, outcome);
      figures.good += verdict == rules::SloVerdict::kGood ? day.digest.Count(outcome) : 0;
      figures.bad += verdict == rules::SloVerdict::kBad ? day.digest.Count(outcome) : 0;
    }
    figures.first_token_p95 = SketchQuantile(day.digest.first_token, 0.95);
    row.days.push_back(figures);
    all.Merge(day.digest);
  }
  row.probes = all.probes;
  for (Outcome outcome : kAllOutcomes) {
    const rules::SloVerdict verdict = verdict_of(availability, outcome);
    const int64_t n = all.Count(outcome);
    row.good += verdict == rules::SloVerdict::kGood ? n : 0;
    row.bad += verdict == rules::SloVerdict::kBad ? n : 0;
    row.excluded += verdict == rules::SloVerdict::kExcluded ? n : 0;
  }
  row.throttled = all.Count(Outcome::kThrottled);
  row.overloaded = all.Count(Outcome::kOverloaded);
  // A minute without an ok probe is down when every outcome seen in it is a bad one: exactly
  // "every probe of the minute was bad".
  for (const auto& [minute, seen] : all.down_minutes) {
    row.downtime_minutes += (seen & ~bad_set) == 0;
  }
  scan.slo_counts.assign(options.slos.size(), {0, 0});
  for (size_t i = 0; i < options.slos.size(); ++i) {
    const rules::SloSpec& slo = options.slos[i];
    if (!rules::SloSelects(slo, target.labels)) {
      continue;
    }
    scan.slo_counts[i] = SloEventsOf(slo, all);
  }
  if (row.good + row.bad > 0) {
    row.availability = static_cast<double>(row.good) / static_cast<double>(row.good + row.bad);
  }
  row.first_token = OfSketch(all.first_token);
  row.total = OfSketch(all.total);
  if (all.tokens_per_s_count > 0) {
    row.tokens_per_second = all.tokens_per_s_sum / static_cast<double>(all.tokens_per_s_count);
  }
  scan.one.ttft = std::move(all.first_token);
  scan.one.total = std::move(all.total);
  scan.one.tps_sum = all.tokens_per_s_sum;
  scan.one.tps_count = all.tokens_per_s_count;
  // The evidence: the rows of each incident's window only (from 15 minutes before it started
  // until it ended), never the whole period.
  for (Incident& incident : row.incidents) {
    const int64_t from = std::max(options.from_ms, incident.starts_ms - kEvidenceLeadMs);
    const int64_t to = std::min(options.to_ms, incident.ends_ms + 1);
    if (from >= to) {
      continue;
    }
    auto scanned = archive.ScanProbes(target.id, from, to, [&](const storage::ProbeSummary& probe) {
      if (rules::ClassifyProbe(availability, probe.outcome, probe.ttft_s, probe.total_s) ==
          rules::SloVerdict::kBad) {
        incident.failed_probes.push_back({probe.start_ms, std::string(OutcomeName(probe.outcome)),
                                          probe.request_id, probe.error});
      }
    });
    if (!scanned) {
      return Fail(scanned.error());
    }
  }
  return scan;
}

}  // namespace

std::pair<int64_t, int64_t> SloEventsOf(const rules::SloSpec& slo,
                                        const storage::ProbeDigest& digest) {
  if (slo.kind == rules::SloSpec::Kind::kLatency) {
    // Successful probes with the phase, bad above the threshold.
    const storage::DDSketch& took =
        slo.phase == rules::SloSpec::Phase::kTotal ? digest.total : digest.first_token;
    return {took.Count(), took.Count() - took.CountAtMost(slo.threshold_seconds)};
  }
  int64_t events = 0;
  int64_t bad = 0;
  for (Outcome outcome : kAllOutcomes) {
    // An availability or throttle-free verdict depends on the outcome alone.
    const rules::SloVerdict verdict = rules::ClassifyProbe(slo, outcome, std::nullopt, 0);
    events += verdict != rules::SloVerdict::kExcluded ? digest.Count(outcome) : 0;
    bad += verdict == rules::SloVerdict::kBad ? digest.Count(outcome) : 0;
  }
  return {events, bad};
}

Result<Report> BuildReport(const ReportOptions& options) {
  // One read-only connection per worker: SQLite steps rows on one core per connection, and a
  // month of a few hundred targets is tens of millions of rows.
  const size_t workers = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
  std::vector<std::unique_ptr<storage::Archive>> archives;
  for (size_t i = 0; i < workers; ++i) {
    auto archive = storage::Archive::OpenReadOnly(options.storage_path);
    if (!archive) {
      return Fail(archive.error());
    }
    archives.push_back(std::move(*archive));
  }
  auto targets = archives.front()->ListTargets();
  if (!targets) {
    return Fail(targets.error());
  }
  auto events = archives.front()->AlertEvents(options.from_ms, options.to_ms);
  if (!events) {
    return Fail(events.error());
  }
  const std::vector<Incident> incidents = IncidentsOf(*events, options.from_ms, options.to_ms);

  std::vector<std::optional<Result<TargetScan>>> scans(targets->size());
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::mutex progress_mu;
  {
    std::vector<std::jthread> threads;
    for (size_t w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        for (size_t i = next++; i < targets->size(); i = next++) {
          scans[i] = ScanTarget(*archives[w], (*targets)[i], options, incidents);
          const size_t finished = ++done;
          if (options.progress != nullptr) {
            std::lock_guard lock(progress_mu);
            *options.progress << fmt::format("\rreading targets: {}/{}\x1b[K", finished,
                                             targets->size())
                              << std::flush;
          }
        }
      });
    }
  }
  if (options.progress != nullptr && !targets->empty()) {
    *options.progress << "\r\x1b[K" << std::flush;
  }

  Report report;
  report.from_ms = options.from_ms;
  report.to_ms = options.to_ms;
  std::map<std::string, Group> models;
  std::map<std::string, Group> clouds;
  std::vector<SloResult> slos;
  for (const rules::SloSpec& spec : options.slos) {
    slos.push_back(SloResult{spec});
  }
  for (size_t t = 0; t < targets->size(); ++t) {
    Result<TargetScan>& scan = *scans[t];
    if (!scan) {
      return Fail(scan.error());
    }
    ReportRow& row = scan->row;
    for (size_t i = 0; i < slos.size(); ++i) {
      if (rules::SloSelects(slos[i].spec, row.labels)) {
        slos[i].targets.push_back(row.name);
        slos[i].events += scan->slo_counts[i].first;
        slos[i].bad += scan->slo_counts[i].second;
      }
    }
    for (auto* groups : {&models, &clouds}) {
      const std::string key = LabelOr(row.labels, groups == &models ? "model" : "cloud");
      Group& group = (*groups)[key];
      group.row.name = key;
      group.row.probes += row.probes;
      group.row.good += row.good;
      group.row.bad += row.bad;
      group.row.excluded += row.excluded;
      group.row.throttled += row.throttled;
      group.row.overloaded += row.overloaded;
      group.row.downtime_minutes += row.downtime_minutes;
      group.ttft.Merge(scan->one.ttft);
      group.total.Merge(scan->one.total);
      group.tps_sum += scan->one.tps_sum;
      group.tps_count += scan->one.tps_count;
      for (const Incident& incident : row.incidents) {
        // A group lists each incident once, without the per-target evidence.
        const bool seen = std::any_of(
            group.row.incidents.begin(), group.row.incidents.end(), [&](const Incident& i) {
              return i.labels == incident.labels && i.starts_ms == incident.starts_ms;
            });
        if (!seen) {
          Incident summary = incident;
          summary.failed_probes.clear();
          group.row.incidents.push_back(std::move(summary));
        }
      }
    }
    report.targets.push_back(std::move(row));
  }
  for (auto* groups : {&models, &clouds}) {
    for (auto& [name, group] : *groups) {
      FinishGroup(group);
      (groups == &models ? report.models : report.clouds).push_back(std::move(group.row));
    }
  }
  for (SloResult& slo : slos) {
    if (slo.events > 0) {
      slo.sli = 1.0 - static_cast<double>(slo.bad) / static_cast<double>(slo.events);
      slo.met = *slo.sli >= slo.spec.ObjectiveRatio();
      const double budget = slo.spec.ErrorBudget();
      if (budget > 0) {
        slo.budget_consumed =
            static_cast<double>(slo.bad) / (static_cast<double>(slo.events) * budget);
      }
    }
  }
  report.slos = std::move(slos);
  return report;
}

Result<std::string> FormatReport(const Report& report, const std::string& format) {
  const std::string period = fmt::format("{} to {}", Iso(report.from_ms), Iso(report.to_ms));
  if (format == "json") {
    nlohmann::json out;
    out["from"] = Iso(report.from_ms);
    out["to"] = Iso(report.to_ms);
    out["definitions"] = kDefinitions;
    for (const auto& [key, rows] :
         {std::pair{"targets", &report.targets}, std::pair{"models", &report.models},
          std::pair{"clouds", &report.clouds}}) {
      nlohmann::json list = nlohmann::json::array();
      for (const ReportRow& row : *rows) {
        list.push_back(RowJson(row));
      }
      out[key] = list;
    }
    nlohmann::json slos = nlohmann::json::array();
    for (const SloResult& slo : report.slos) {
      slos.push_back({{"name", slo.spec.name},
                      {"kind", std::string(rules::SloKindName(slo.spec.kind))},
                      {"objective", slo.spec.ObjectiveRatio()},
                      {"window", WindowText(slo.spec)},
                      {"events", slo.events},
                      {"bad", slo.bad},
                      {"sli", OptJson(slo.sli)},
                      {"met", slo.sli ? nlohmann::json(slo.met) : nlohmann::json(nullptr)},
                      {"budget_consumed", OptJson(slo.budget_consumed)},
                      {"targets", slo.targets}});
    }
    out["slos"] = slos;
    return out.dump(2) + "\n";
  }
  if (format == "html") {
    return RenderHtml(report);
  }
  Grid grid = Grid::kTable;
  if (format == "markdown") {
    grid = Grid::kMarkdown;
  } else if (format == "csv") {
    grid = Grid::kCsv;
  } else if (format != "table") {
    return Fail(Error::InvalidArgument("unknown report format \"" + format +
                                       "\" (valid: table, markdown, csv, json, html)"));
  }
  if (grid == Grid::kCsv) {
    // One CSV document: a `group` column tells targets, models and clouds apart.
    std::vector<std::vector<std::string>> all;
    for (const auto& [what, rows] :
         {std::pair{"target", &report.targets}, std::pair{"model", &report.models},
          std::pair{"cloud", &report.clouds}}) {
      auto part = RowsGrid("name", *rows);
      for (size_t i = 0; i < part.size(); ++i) {
        if (i == 0 && !all.empty()) {
          continue;
        }
        part[i].insert(part[i].begin(), i == 0 ? std::string("group") : std::string(what));
        all.push_back(std::move(part[i]));
      }
    }
    return RenderGrid(all, grid);
  }
  const bool md = grid == Grid::kMarkdown;
  const auto heading = [&](const std::string& title) {
    return md ? "\n## " + title + "\n\n" : "\n" + title + "\n";
  };
  std::string out = md ? "# modelpulse report, " + period + "\n\n" + kDefinitions + "\n"
                       : "modelpulse report, " + period + "\n";
  if (!report.slos.empty()) {
    out += heading("SLOs") + RenderGrid(SloGrid(report.slos), grid);
  }
  out += heading("Targets") + RenderGrid(RowsGrid("target", report.targets), grid);
  out += heading("By model") + RenderGrid(RowsGrid("model", report.models), grid);
  out += heading("By cloud") + RenderGrid(RowsGrid("cloud", report.clouds), grid);
  auto incidents = IncidentGrid(report.targets);
  if (incidents.size() > 1) {
    out += heading("Incidents") + RenderGrid(incidents, grid);
  }
  return out;
}

}  // namespace modelpulse::daemon
