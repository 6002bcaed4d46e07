#include "daemon/status_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>

#include "common/alert_event.h"
#include "daemon/html.h"
#include "daemon/report.h"
#include "rules/slo_tracker.h"
#include "storage/probe_digest.h"

namespace modelpulse::daemon {
namespace {

constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kSettleMs = 15 * 60'000;
constexpr int64_t kStateFreshMs = 3'600'000;  // the static page's "current" state

int64_t DayOf(int64_t ms) { return ms - ((ms % kDayMs) + kDayMs) % kDayMs; }

std::string Iso(int64_t ms) {
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string LabelOr(const Labels& labels, const std::string& name) {
  auto it = labels.find(name);
  return it == labels.end() || it->second.empty() ? "-" : it->second;
}

bool IsFault(const rules::SloSpec& spec, Outcome outcome) {
  return std::find(spec.provider_fault_outcomes.begin(), spec.provider_fault_outcomes.end(),
                   outcome) != spec.provider_fault_outcomes.end();
}

StatusDay Classify(const storage::DayCounts& counts, const rules::SloSpec& availability) {
  int64_t events = counts.probes;
  for (auto [outcome, n] : {std::pair{Outcome::kThrottled, counts.throttled},
                            std::pair{Outcome::kOverloaded, counts.overloaded},
                            std::pair{Outcome::kQuotaExhausted, counts.quota_exhausted},
                            std::pair{Outcome::kAuth, counts.auth}}) {
    if (!IsFault(availability, outcome)) {
      events -= n;
    }
  }
  return {counts.day_ms, counts.ok, std::max<int64_t>(0, events - counts.ok)};
}

std::string WindowText(const rules::SloSpec& spec) {
  return spec.window_kind == rules::SloSpec::WindowKind::kCalendarMonth
             ? "calendar month"
             : fmt::format("{}d", spec.window.count() / kDayMs);
}

// Bars: green at the objective or better, amber within ten error budgets of it, red below;
// grey without probes. The colour is a class so the page's CSS names the palette once.
const char* BarClass(const StatusDay& day, double objective) {
  const int64_t events = day.good + day.bad;
  if (events == 0) {
    return "n";
  }
  const double availability = static_cast<double>(day.good) / static_cast<double>(events);
  if (availability >= objective) {
    return "g";
  }
  return availability >= 1 - 10 * (1 - objective) ? "a" : "r";
}

// The "YYYY-MM-DD" of each day, formatted once per page rather than once per bar (gmtime_r is
// most of a bar's cost otherwise).
class DayNames {
 public:
  const std::string& Of(int64_t day_ms) {
    auto [it, added] = names_.try_emplace(day_ms);
    if (added) {
      it->second = Iso(day_ms).substr(0, 10);
    }
    return it->second;
  }

 private:
  std::map<int64_t, std::string> names_;
};

void AppendTarget(std::string& out, const StatusTarget& target, DayNames& names) {
  int64_t good = 0;
  int64_t events = 0;
  for (const StatusDay& day : target.days) {
    good += day.good;
    events += day.good + day.bad;
  }
  const std::string uptime =
      events > 0
          ? fmt::format("{:.3f}%", 100.0 * static_cast<double>(good) / static_cast<double>(events))
          : "no data";
  out += fmt::format(
      "<div class=\"t\" id=\"t-{0}\"><div class=\"h\"><span class=\"s {1}\">{1}</span> "
      "<b>{2}</b> <span class=\"m\">{0}</span><span class=\"u\" title=\"{4} good of {5} probes "
      "over {6} days\">{3}</span></div>",
      HtmlEscape(target.name), HtmlEscape(target.state),
      HtmlEscape(LabelOr(target.labels, "cloud")), uptime, good, events, target.days.size());
  const int width = static_cast<int>(target.days.size()) * 4;
  out += fmt::format(
      "<svg class=\"b\" viewBox=\"0 0 {} 20\" preserveAspectRatio=\"none\" role=\"img\" "
      "aria-label=\"daily availability, {} days\">",
      width, target.days.size());
  auto into = std::back_inserter(out);
  for (size_t i = 0; i < target.days.size(); ++i) {
    const StatusDay& day = target.days[i];
    const int64_t n = day.good + day.bad;
    fmt::format_to(into, "<rect x=\"{}\" class=\"{}\"><title>{} ", i * 4,
                   BarClass(day, target.objective), names.Of(day.day_ms));
    if (n == 0) {
      out += "no probes</title></rect>";
    } else {
      fmt::format_to(into, "{:.3f}% ({} bad of {})</title></rect>",
                     100.0 * static_cast<double>(day.good) / static_cast<double>(n), day.bad, n);
    }
  }
  out += "</svg><div class=\"f\">";
  if (target.last_probe_ms > 0) {
    out += fmt::format("last probe {} ({})", Iso(target.last_probe_ms),
                       HtmlEscape(target.last_outcome));
  } else {
    out += "no recent probe";
  }
  out += "</div></div>\n";
}

}  // namespace

const rules::SloSpec& AvailabilitySloFor(const std::vector<rules::SloSpec>& slos,
                                         const Labels& labels) {
  static const rules::SloSpec kDefault;
  for (const rules::SloSpec& slo : slos) {
    if (slo.kind == rules::SloSpec::Kind::kAvailability && rules::SloSelects(slo, labels)) {
      return slo;
    }
  }
  return kDefault;
}

StatusSlo StatusSloOf(const rules::SloSpec& spec, int64_t events, int64_t bad) {
  StatusSlo out{spec.name,        std::string(rules::SloKindName(spec.kind)),
                WindowText(spec), spec.ObjectiveRatio(),
                events,           bad,
                std::nullopt};
  const double budget = spec.ErrorBudget();
  if (events > 0 && budget > 0) {
    out.budget_left = 1 - static_cast<double>(bad) / (static_cast<double>(events) * budget);
  }
  return out;
}

Result<std::map<int64_t, std::vector<StatusDay>>> StatusDays::ReadAll(
    const storage::Archive& archive,
    const std::vector<std::pair<int64_t, const rules::SloSpec*>>& targets, int64_t now_ms) {
  const int64_t today = DayOf(now_ms);
  const int64_t first = today - (kStatusDays - 1) * kDayMs;
  const auto settled = [&](int64_t day) { return day + kDayMs + kSettleMs <= now_ms; };
  std::lock_guard lock(mu_);
  // The first day not cached yet of each target; everything from the earliest is read.
  int64_t read_from = today;
  std::vector<int64_t> ids;
  for (const auto& [id, availability] : targets) {
    // Days that left the window are dropped, so the cache stays at kStatusDays per target.
    settled_.erase(settled_.lower_bound({id, INT64_MIN}), settled_.lower_bound({id, first}));
    int64_t from = first;
    while (from < today && settled(from) && settled_.count({id, from}) > 0) {
      from += kDayMs;
    }
    read_from = std::min(read_from, from);
    ids.push_back(id);
  }
  auto fresh = archive.DailyCounts(ids, read_from, today + kDayMs);
  if (!fresh) {
    return Fail(fresh.error());
  }
  std::map<int64_t, std::vector<StatusDay>> out;
  for (const auto& [id, availability] : targets) {
    std::map<int64_t, const storage::DayCounts*> read;
    if (auto it = fresh->find(id); it != fresh->end()) {
      for (const storage::DayCounts& day : it->second) {
        read[day.day_ms] = &day;
      }
    }
    std::vector<StatusDay>& days = out[id];
    days.reserve(kStatusDays);
    for (int64_t day = first; day <= today; day += kDayMs) {
      storage::DayCounts counts{day};
      if (day >= read_from) {
        if (auto it = read.find(day); it != read.end()) {
          counts = *it->second;
        }
        if (settled(day)) {
          settled_[{id, day}] = counts;
        }
      } else if (auto cached = settled_.find({id, day}); cached != settled_.end()) {
        counts = cached->second;
      }
      days.push_back(Classify(counts, *availability));
    }
  }
  return out;
}

Result<std::vector<StatusDay>> StatusDays::Read(const storage::Archive& archive, int64_t target_id,
                                                const rules::SloSpec& availability,
                                                int64_t now_ms) {
  auto all = ReadAll(archive, {{target_id, &availability}}, now_ms);
  if (!all) {
    return Fail(all.error());
  }
  return std::move((*all)[target_id]);
}

std::string RenderStatusPage(const StatusPage& page) {
  std::string out;
  out.reserve(4096 + page.targets.size() * kStatusDays * 80);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>modelpulse status</title><style>"
      "body{font-family:system-ui,sans-serif;margin:0 auto;padding:1em;max-width:60em;color:#222}"
      "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}h3{font-size:1em;margin:1em 0 .3em}"
      ".t{margin:.2em 0 .9em}.h{display:flex;flex-wrap:wrap;gap:.4em;align-items:baseline}"
      ".m{color:#666;font-size:.85em}.u{margin-left:auto;font-variant-numeric:tabular-nums}"
      ".s{padding:0 .4em;border-radius:.3em;color:#fff;font-size:.85em}"
      ".s.up{background:#2e9e44}.s.down{background:#d33}.s.unknown{background:#888}"
      ".b{display:block;width:100%;height:28px}.b rect{width:3px;height:20px}"
      ".b .g{fill:#2e9e44}.b .a{fill:#e3a008}.b .r{fill:#d33}.b .n{fill:#ccc}"
      ".f{color:#666;font-size:.75em}table{border-collapse:collapse;width:100%}"
      "th,td{border-bottom:1px solid #ddd;padding:.25em .4em;text-align:right;font-size:.9em}"
      "th:first-child,td:first-child{text-align:left}.w{overflow-x:auto}"
      // A phone keeps the columns that answer "how much budget is left".
      "@media(max-width:40em){.x{display:none}body{padding:.6em}}"
      "</style></head><body>\n";
  out += fmt::format(
      "<h1>modelpulse status</h1><p class=\"m\">As of <time>{}</time>; bars: daily availability "
      "over the last {} days (UTC), oldest left.</p>\n",
      Iso(page.now_ms), kStatusDays);

  out += "<h2>Current incidents</h2>\n";
  if (page.incidents.empty()) {
    out += "<p id=\"no-incidents\">No incidents.</p>\n";
  } else {
    out += "<ul id=\"incidents\">";
    for (const StatusIncident& incident : page.incidents) {
      std::string labels;
      for (const auto& [name, value] : incident.labels) {
        if (name != "alertname") {
          labels += (labels.empty() ? "" : ", ") + name + "=" + value;
        }
      }
      out += fmt::format("<li><b>{}</b> since {} ({:.0f} min) <span class=\"m\">{}</span></li>",
                         HtmlEscape(incident.alertname), Iso(incident.starts_ms),
                         static_cast<double>(page.now_ms - incident.starts_ms) / 60'000,
                         HtmlEscape(labels));
    }
    out += "</ul>\n";
  }

  out += "<h2>Models and clouds</h2>\n";
  // By model, then cloud: the order people compare clouds of one model in.
  std::vector<const StatusTarget*> order;
  order.reserve(page.targets.size());
  for (const StatusTarget& target : page.targets) {
    order.push_back(&target);
  }
  std::stable_sort(order.begin(), order.end(), [](const StatusTarget* a, const StatusTarget* b) {
    return std::tuple(LabelOr(a->labels, "model"), LabelOr(a->labels, "cloud"), a->name) <
           std::tuple(LabelOr(b->labels, "model"), LabelOr(b->labels, "cloud"), b->name);
  });
  std::string model;
  DayNames names;
  for (const StatusTarget* target : order) {
    const std::string this_model = LabelOr(target->labels, "model");
    if (this_model != model || target == order.front()) {
      out += "<h3>" + HtmlEscape(this_model) + "</h3>\n";
      model = this_model;
    }
    AppendTarget(out, *target, names);
  }
  if (page.targets.empty()) {
    out += "<p>No targets.</p>\n";
  }

  if (!page.slos.empty()) {
    out +=
        "<h2>SLO error budget</h2>\n<div class=\"w\"><table id=\"slos\"><tr><th>slo</th>"
        "<th class=\"x\">kind</th><th>objective</th><th class=\"x\">window</th>"
        "<th class=\"x\">events</th><th class=\"x\">bad</th>"
        "<th>budget left</th></tr>";
    for (const StatusSlo& slo : page.slos) {
      out += fmt::format(
          "<tr><td>{}</td><td class=\"x\">{}</td><td>{:g}%</td><td class=\"x\">{}</td>"
          "<td class=\"x\">{}</td><td class=\"x\">{}</td>"
          "<td>{}</td></tr>",
          HtmlEscape(slo.name), HtmlEscape(slo.kind), slo.objective * 100, HtmlEscape(slo.window),
          slo.events, slo.bad,
          slo.budget_left ? fmt::format("{:.1f}%", *slo.budget_left * 100) : "-");
    }
    out += "</table></div>\n";
    if (!page.note.empty()) {
      out += "<p class=\"m\">" + HtmlEscape(page.note) + "</p>\n";
    }
  }
  return out + "</body></html>\n";
}

Result<StatusPage> BuildStaticStatusPage(const std::string& storage_path,
                                         const std::vector<rules::SloSpec>& slos, int64_t now_ms) {
  auto archive = storage::Archive::OpenReadOnly(storage_path);
  if (!archive) {
    return Fail(archive.error());
  }
  auto targets = (*archive)->ListTargets();
  if (!targets) {
    return Fail(targets.error());
  }
  StatusPage page;
  page.now_ms = now_ms;
  std::vector<std::pair<int64_t, const rules::SloSpec*>> refs;
  for (const storage::StoredTarget& stored : *targets) {
    refs.emplace_back(stored.id, &AvailabilitySloFor(slos, stored.labels));
  }
  StatusDays cache;
  auto days = cache.ReadAll(**archive, refs, now_ms);
  if (!days) {
    return Fail(days.error());
  }
  for (size_t t = 0; t < targets->size(); ++t) {
    const storage::StoredTarget& stored = (*targets)[t];
    StatusTarget target;
    target.name = stored.name;
    target.labels = stored.labels;
    target.objective = refs[t].second->ObjectiveRatio();
    target.days = std::move((*days)[stored.id]);
    auto scanned = (*archive)->ScanProbes(stored.id, now_ms - kStateFreshMs, now_ms + 1,
                                          [&](const storage::ProbeSummary& probe) {
                                            target.last_probe_ms = probe.start_ms;
                                            target.last_outcome = OutcomeName(probe.outcome);
                                          });
    if (!scanned) {
      return Fail(scanned.error());
    }
    if (target.last_probe_ms > 0) {
      target.state = target.last_outcome == OutcomeName(Outcome::kOk) ? "up" : "down";
    }
    page.targets.push_back(std::move(target));
  }
  // Per SLO: events and bad events from the daily summaries of whole days since the day its
  // window starts, counted as the report counts them (SloEventsOf).
  std::vector<std::pair<int64_t, int64_t>> slo_counts(slos.size(), {0, 0});
  for (size_t i = 0; i < slos.size(); ++i) {
    const rules::SloSpec& spec = slos[i];
    const int64_t from = DayOf(rules::SloTracker::WindowStart(spec, now_ms));
    for (const storage::StoredTarget& stored : *targets) {
      if (!rules::SloSelects(spec, stored.labels)) {
        continue;
      }
      auto digests = (*archive)->DigestDays(stored.id, from, DayOf(now_ms) + kDayMs);
      if (!digests) {
        return Fail(digests.error());
      }
      for (const storage::DayDigest& day : *digests) {
        const auto [events, bad] = SloEventsOf(spec, day.digest);
        slo_counts[i].first += events;
        slo_counts[i].second += bad;
      }
    }
  }
  for (size_t i = 0; i < slos.size(); ++i) {
    page.slos.push_back(StatusSloOf(slos[i], slo_counts[i].first, slo_counts[i].second));
  }
  if (!slos.empty()) {
    page.note =
        "Static page: SLO figures from the probe summaries since the UTC day each window starts "
        "(latency SLOs within the summaries' 1 % of their threshold).";
  }
  // Still firing: the latest stored event of each interval is not a resolution.
  auto events = (*archive)->AlertEvents(now_ms - kStatusDays * kDayMs, now_ms + 1);
  if (!events) {
    return Fail(events.error());
  }
  std::map<std::pair<Labels, int64_t>, std::pair<int64_t, bool>> latest;  // -> (created, resolved)
  for (const storage::StoredAlertEvent& stored : *events) {
    auto event = DecodeAlertEvent(stored.body);
    if (!event) {
      continue;
    }
    auto& [created, resolved] = latest[{event->labels, event->starts_at_ms}];
    if (stored.created_ms >= created) {
      created = stored.created_ms;
      resolved = event->resolved;
    }
  }
  for (const auto& [key, value] : latest) {
    if (!value.second) {
      page.incidents.push_back({LabelOr(key.first, "alertname"), key.first, key.second});
    }
  }
  std::sort(
      page.incidents.begin(), page.incidents.end(),
      [](const StatusIncident& a, const StatusIncident& b) { return a.starts_ms < b.starts_ms; });
  return page;
}

}  // namespace modelpulse::daemon
