// `modelpulse report` (daemon/report.h) over a real SQLite file written by the store: a scenario
// with a known outage, a throttling window, our own failures and a partial minute, whose figures
// the test computes by hand (counts) or independently (percentiles, type-7 interpolation).

#include "daemon/report.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/alert_event.h"
#include "common/probe_series.h"
#include "rules/slo_tracker.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'790'812'800'000;  // 2026-10-01T00:00:00Z
constexpr int64_t kMin = 60'000;

double Type7(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double h = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= v.size()) {
    return v.back();
  }
  return v[lo] + (h - static_cast<double>(lo)) * (v[lo + 1] - v[lo]);
}

struct Scenario {
  fs::path dir;
  std::string db;
  std::vector<double> east_ttft, east_total, all_ttft;

  Scenario() {
    char tmpl[] = "/tmp/modelpulse-report-XXXXXX";
    dir = mkdtemp(tmpl);
    db = (dir / "m.db").string();
    ManualClock clock(kT0 + 3 * 3600 * 1000);
    storage::StorageOptions options;
    options.path = db;
    options.retention = Millis(0);
    auto store = storage::Store::Open(options, clock);
    REQUIRE(store);
    // m@east: every 15 s for 2 h. Minutes 10-19 down (server_error), 30-34 throttled, minute 50
    // quota_exhausted (ours), minute 60 half failed; ttft cycles 0.1..1.0 s on successes.
    for (int i = 0; i < 480; ++i) {
      ProbeResult p;
      p.target = "m@east";
      p.labels = {{"target", "m@east"}, {"model", "m"}, {"cloud", "east"}};
      p.start_unix_ms = kT0 + i * 15'000;
      const int minute = i / 4;
      if (minute >= 10 && minute < 20) {
        p.outcome = Outcome::kServerError;
        p.request_id = "req-" + std::to_string(i);
        p.error = "HTTP 500";
        p.total_seconds = 0.2;
      } else if (minute >= 30 && minute < 35) {
        p.outcome = Outcome::kThrottled;
        p.request_id = "thr-" + std::to_string(i);
        p.total_seconds = 0.1;
      } else if (minute == 50) {
        p.outcome = Outcome::kQuotaExhausted;
        p.total_seconds = 0.1;
      } else if (minute == 60 && i % 4 < 2) {
        p.outcome = Outcome::kTimeout;
        p.total_seconds = 60;
      } else {
        p.ttft_seconds = 0.1 * (1 + i % 10);
        p.total_seconds = *p.ttft_seconds + 1;
        p.output_tokens_per_second = 40 + i % 3;
        east_ttft.push_back(*p.ttft_seconds);
        all_ttft.push_back(*p.ttft_seconds);
        east_total.push_back(p.total_seconds);
      }
      (*store)->Append(p);
    }
    // m@west: every 60 s, all fine but one auth failure (ours) at minute 5.
    for (int i = 0; i < 120; ++i) {
      ProbeResult p;
      p.target = "m@west";
      p.labels = {{"target", "m@west"}, {"model", "m"}, {"cloud", "west"}};
      p.start_unix_ms = kT0 + i * kMin;
      if (i == 5) {
        p.outcome = Outcome::kAuth;
      } else {
        p.ttft_seconds = 0.5;
        p.total_seconds = 1.5;
        all_ttft.push_back(0.5);
      }
      (*store)->Append(p);
    }
    // A probe outside the period is not counted.
    ProbeResult late;
    late.target = "m@west";
    late.labels = {{"target", "m@west"}, {"model", "m"}, {"cloud", "west"}};
    late.start_unix_ms = kT0 + 2 * 3600 * 1000;
    late.outcome = Outcome::kServerError;
    (*store)->Append(late);
    REQUIRE((*store)->Flush());
    // The SLO's page: fired at 11m, resolved at 25m (a firing and a resolved event); a target
    // alert fired at 10m30s and still firing.
    AlertEvent page;
    page.labels = {{"alertname", "SLOErrorBudgetBurn"}, {"severity", "page"}, {"slo", "m-avail"}};
    page.starts_at_ms = kT0 + 11 * kMin;
    page.ends_at_ms = kT0 + 15 * kMin;
    AlertEvent resolved = page;
    resolved.resolved = true;
    resolved.ends_at_ms = kT0 + 25 * kMin;
    AlertEvent down;
    down.labels = {{"alertname", "ModelEndpointDown"}, {"target", "m@east"}};
    down.starts_at_ms = kT0 + 10 * kMin + 30'000;
    down.ends_at_ms = kT0 + 14 * kMin;
    REQUIRE((*store)->CommitStateWithEvents("alerts", "g", "{}",
                                            {EncodeAlertEvent(page), EncodeAlertEvent(down)}));
    REQUIRE((*store)->CommitStateWithEvents("alerts", "g", "{}", {EncodeAlertEvent(resolved)}));
  }
  ~Scenario() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

rules::SloSpec Availability() {
  rules::SloSpec slo;
  slo.name = "m-avail";
  slo.selector = {{"model", "m"}};
  slo.objective_percent = 99.9;
  return slo;
}

TEST_CASE("the report's figures match the scenario's") {
  Scenario scenario;
  ReportOptions options;
  options.storage_path = scenario.db;
  options.slos = {Availability()};
  options.from_ms = kT0;
  options.to_ms = kT0 + 2 * 3600 * 1000;
  auto report = BuildReport(options);
  REQUIRE_MESSAGE(report, (report ? "" : report.error().ToString()));
  REQUIRE(report->targets.size() == 2);
  const ReportRow& east = report->targets[0];
  CHECK(east.name == "m@east");
  CHECK(east.probes == 480);
  // bad: 40 server errors + 20 throttled + 2 timeouts; excluded: 4 quota_exhausted
  CHECK(east.bad == 62);
  CHECK(east.excluded == 4);
  CHECK(east.good == 414);
  REQUIRE(east.availability);
  CHECK(*east.availability == doctest::Approx(414.0 / 476.0).epsilon(1e-12));
  // minutes 10-19 and 30-34; not 50 (ours) nor 60 (half)
  CHECK(east.downtime_minutes == 15);
  CHECK(east.throttled == 20);
  CHECK(east.overloaded == 0);
  for (auto [q, got] : {std::pair{0.5, east.first_token.p50}, std::pair{0.95, east.first_token.p95},
                        std::pair{0.99, east.first_token.p99}}) {
    REQUIRE(got);
    // From the probe summaries' sketches (was exact before them): within their 1 %.
    const double want = Type7(scenario.east_ttft, q);
    CHECK(std::abs(*got - want) <= 0.01 * want + 1e-12);
  }
  REQUIRE(east.total.p95);
  const double want_total = Type7(scenario.east_total, 0.95);
  CHECK(std::abs(*east.total.p95 - want_total) <= 0.01 * want_total + 1e-12);
  REQUIRE(east.tokens_per_second);
  CHECK(*east.tokens_per_second > 40);
  CHECK(*east.tokens_per_second < 42);

  const ReportRow& west = report->targets[1];
  CHECK(west.probes == 120);  // the late probe is outside the period
  CHECK(west.excluded == 1);
  CHECK(west.bad == 0);
  CHECK(west.availability == 1.0);
  CHECK(west.downtime_minutes == 0);

  // Incidents: the page (via its SLO) concerns both targets, the target alert only east; the
  // page's evidence is east's 40 server errors from 15 minutes before it fired until 25m.
  REQUIRE(east.incidents.size() == 2);
  const Incident& target_alert = east.incidents[0];
  CHECK(target_alert.alertname == "ModelEndpointDown");
  CHECK(target_alert.ongoing);
  CHECK(target_alert.ends_ms == options.to_ms);
  CHECK(target_alert.failed_probes.size() == 62);
  const Incident& slo_page = east.incidents[1];
  CHECK(slo_page.alertname == "SLOErrorBudgetBurn");
  CHECK(!slo_page.ongoing);
  CHECK(slo_page.ends_ms - slo_page.starts_ms == 14 * kMin);
  REQUIRE(slo_page.failed_probes.size() == 40);
  CHECK(slo_page.failed_probes.front().request_id == "req-40");
  CHECK(slo_page.failed_probes.front().outcome == "server_error");
  REQUIRE(west.incidents.size() == 1);
  CHECK(west.incidents[0].failed_probes.empty());  // its auth failure is ours, not evidence

  REQUIRE(report->models.size() == 1);
  const ReportRow& model = report->models[0];
  CHECK(model.probes == 600);
  CHECK(model.good == 533);
  CHECK(model.bad == 62);
  CHECK(model.incidents.size() == 2);
  // Group percentiles come from the sketch: within its 1% relative error of the exact ones.
  for (auto [q, got] :
       {std::pair{0.5, model.first_token.p50}, std::pair{0.95, model.first_token.p95},
        std::pair{0.99, model.first_token.p99}}) {
    REQUIRE(got);
    // Interpolated between the sketch's values of the two ranks, as the exact type-7 quantile.
    const double want = Type7(scenario.all_ttft, q);
    CHECK(std::abs(*got - want) <= 0.01 * want + 1e-12);
  }
  REQUIRE(report->clouds.size() == 2);
  CHECK(report->clouds[0].name == "east");

  REQUIRE(report->slos.size() == 1);
  const SloResult& slo = report->slos[0];
  CHECK(slo.events == 595);
  CHECK(slo.bad == 62);
  CHECK(!slo.met);
  CHECK(*slo.sli == doctest::Approx(533.0 / 595.0).epsilon(1e-12));
  CHECK(*slo.budget_consumed == doctest::Approx(62.0 / (595 * 0.001)).epsilon(1e-9));

  auto json_text = FormatReport(*report, "json");
  REQUIRE(json_text);
  const auto json = nlohmann::json::parse(*json_text);
  CHECK(json["targets"][0]["downtime_minutes"] == 15);
  CHECK(json["targets"][0]["incidents"][1]["failed_probes"][0]["request_id"] == "req-40");
  CHECK(json["slos"][0]["met"] == false);
  // Days: east's 2 h fall on 2026-10-01; the HTML has one bar per day with its tooltip.
  REQUIRE(east.days.size() == 1);
  CHECK(east.days[0].good == 414);
  CHECK(east.days[0].bad == 62);
  // Within the sketch's 1 % (was exact before the summaries).
  const double want_day_p95 = Type7(scenario.east_ttft, 0.95);
  CHECK(std::abs(*east.days[0].first_token_p95 - want_day_p95) <= 0.01 * want_day_p95 + 1e-12);
  CHECK(json["targets"][0]["days"][0]["bad"] == 62);
  auto html = FormatReport(*report, "html");
  REQUIRE(html);
  CHECK(html->find("<title>2026-10-01: 86.975% (62 bad of 476)</title>") != std::string::npos);
  CHECK(html->find("<script") == std::string::npos);
  for (const char* format : {"table", "markdown", "csv"}) {
    auto text = FormatReport(*report, format);
    REQUIRE(text);
    CHECK(text->find("m@east") != std::string::npos);
  }
  CHECK(!FormatReport(*report, "pdf"));
}

TEST_CASE("a report over days whose rows retention deleted comes from the probe summaries") {
  char tmpl[] = "/tmp/modelpulse-report-XXXXXX";
  const fs::path dir = mkdtemp(tmpl);
  const std::string db = (dir / "m.db").string();
  ManualClock clock(kT0 + 3 * 3600 * 1000);
  storage::StorageOptions options;
  options.path = db;
  options.retention = Millis(90LL * 24 * 3600 * 1000);
  options.retention_interval = Millis(0);
  auto store = storage::Store::Open(options, clock);
  REQUIRE(store);
  // Every 15 s for 2 h: minutes 10-19 down (server errors), one auth failure (ours) at minute 40.
  std::vector<double> ttft;
  for (int i = 0; i < 480; ++i) {
    ProbeResult p;
    p.target = "m@east";
    p.labels = {{"target", "m@east"}, {"model", "m"}, {"cloud", "east"}};
    p.start_unix_ms = kT0 + i * 15'000;
    if (i / 4 >= 10 && i / 4 < 20) {
      p.outcome = Outcome::kServerError;
      p.total_seconds = 0.2;
    } else if (i == 160) {
      p.outcome = Outcome::kAuth;
    } else {
      p.ttft_seconds = 0.05 * (1 + i % 17);
      p.total_seconds = *p.ttft_seconds + 1;
      ttft.push_back(*p.ttft_seconds);
    }
    (*store)->Append(p);
  }
  REQUIRE((*store)->Flush());
  ReportOptions report_options;
  report_options.storage_path = db;
  report_options.from_ms = kT0;
  report_options.to_ms = kT0 + 24 * 3600 * 1000;
  auto before = BuildReport(report_options);
  REQUIRE(before);
  // 100 days on, the rows are gone and the summaries (2 years) are not.
  clock.Advance(100LL * 24 * 3600 * 1000);
  auto deleted = (*store)->ApplyRetention();
  REQUIRE(deleted);
  CHECK(*deleted == 480);
  auto after = BuildReport(report_options);
  REQUIRE(after);
  REQUIRE(after->targets.size() == 1);
  const ReportRow& row = after->targets[0];
  CHECK(row.probes == 480);
  CHECK(row.bad == 40);
  CHECK(row.excluded == 1);
  CHECK(row.good == 439);
  CHECK(row.downtime_minutes == 10);
  REQUIRE(row.first_token.p95);
  const double want = Type7(ttft, 0.95);
  CHECK(std::abs(*row.first_token.p95 - want) <= 0.01 * want + 1e-12);
  // The same figures as while the rows were there.
  CHECK(*FormatReport(*after, "json") == *FormatReport(*before, "json"));
  store->reset();
  fs::remove_all(dir);
}

TEST_CASE("a report refuses a database that does not exist, and creates none") {
  ReportOptions options;
  options.storage_path = "/tmp/modelpulse-no-such-dir/none.db";
  options.from_ms = 0;
  options.to_ms = 1;
  auto report = BuildReport(options);
  REQUIRE(!report);
  CHECK(report.error().code == Error::Code::kNotFound);
  CHECK(!fs::exists(options.storage_path));
}

TEST_CASE("--month is the calendar month in UTC") {
  auto range = MonthRange("2026-10");
  REQUIRE(range);
  CHECK(range->first == kT0);
  CHECK(range->second == kT0 + 31LL * 24 * 3600 * 1000);
  CHECK(MonthRange("2026-12")->second == 1'798'761'600'000);  // 2027-01-01
  CHECK(!MonthRange("2026-13"));
  CHECK(!MonthRange("2026-1"));
  CHECK(!MonthRange("oct"));
}

}  // namespace
}  // namespace modelpulse::daemon

namespace modelpulse::daemon {
namespace {

// The modelpulse_slo_* figures (rules::SloTracker) over the same scenario, read through the
// daemon's own sample source (storage rollups for whole hours), against hand-counted values.
TEST_CASE("SLO budgets and burn rates match hand-computed values") {
  Scenario scenario;
  ManualClock clock(kT0 + 3 * 3600 * 1000);
  storage::StorageOptions options;
  options.path = scenario.db;
  options.retention = Millis(0);
  auto store = storage::Store::Open(options, clock);
  REQUIRE(store);
  storage::ProbeSeriesSource source(store->get(), Millis(0), INT64_MAX);
  rules::SloSpec latency;
  latency.name = "m-ttft";
  latency.selector = {{"model", "m"}};
  latency.kind = rules::SloSpec::Kind::kLatency;
  latency.threshold_seconds = 0.5;
  latency.objective_percent = 90;
  rules::SloSpec throttling;
  throttling.name = "east-throttling";
  throttling.selector = {{"cloud", "east"}};
  throttling.kind = rules::SloSpec::Kind::kThrottleFree;
  throttling.objective_percent = 99;
  rules::SloTracker tracker({Availability(), latency, throttling}, source);
  // 1 ms before 2h: the late probe at 2h is outside every window.
  const int64_t now = kT0 + 2 * 3600 * 1000 - 1;
  for (int round = 0; round < 2; ++round) {  // the second round reads latency hours cached
    auto computed = tracker.Compute(now);
    REQUIRE_MESSAGE(computed, (computed ? "" : computed.error().ToString()));
    REQUIRE(computed->size() == 3);
    const rules::SloStatus& a = (*computed)[0];
    const auto window = [](const rules::SloStatus& s, const std::string& name) {
      for (const rules::SloWindowFigures& w : s.burn) {
        if (w.window == name) {
          return w;
        }
      }
      FAIL("no window " << name);
      return rules::SloWindowFigures{};
    };
    // Availability as the rules and the report count it: 600 probes - 4 quota_exhausted - west's
    // auth failure (ours, left out through probe_auth_failed); bad: east's 62.
    CHECK(a.slo_window.events == 595);
    CHECK(a.slo_window.bad == 62);
    CHECK(window(a, "5m").events == 25);  // east 115m..119m45s, west 115m..119m
    CHECK(window(a, "5m").bad == 0);
    CHECK(!window(a, "5m").enough_evidence);
    CHECK(window(a, "30m").events == 150);
    CHECK(window(a, "1h").events == 300);
    CHECK(window(a, "1h").bad == 2);  // minute 60's two timeouts
    CHECK(window(a, "1h").enough_evidence);
    CHECK(window(a, "3d").events == 595);
    CHECK(*rules::SloStatus::BurnRate(a.spec, window(a, "1h")) ==
          doctest::Approx(2.0 / 300 / 0.001).epsilon(1e-9));
    CHECK(*rules::SloStatus::BurnRate(a.spec, a.slo_window) ==
          doctest::Approx(62.0 / 595 / 0.001).epsilon(1e-9));
    CHECK(a.window_start_ms == now - 30LL * 24 * 3600 * 1000);

    // Latency: successful probes; east's ttft cycles 0.1..1.0 s, west's is 0.5 s.
    int64_t events_1h = 60;  // west, minutes 60..119
    int64_t bad_1h = 0;
    int64_t events_all = 119;
    int64_t bad_all = 0;
    for (int i = 0; i < 480; ++i) {
      const int minute = i / 4;
      const bool ok = !(minute >= 10 && minute < 20) && !(minute >= 30 && minute < 35) &&
                      minute != 50 && !(minute == 60 && i % 4 < 2);
      if (!ok) {
        continue;
      }
      const bool slow = 0.1 * (1 + i % 10) > 0.5;
      ++events_all;
      bad_all += slow;
      if (minute >= 60) {
        ++events_1h;
        bad_1h += slow;
      }
    }
    const rules::SloStatus& l = (*computed)[1];
    CHECK(l.slo_window.events == events_all);
    CHECK(l.slo_window.bad == bad_all);
    CHECK(window(l, "1h").events == events_1h);
    CHECK(window(l, "1h").bad == bad_1h);
    const rules::SloStatus& t = (*computed)[2];
    CHECK(t.slo_window.events == 480);
    CHECK(t.slo_window.bad == 20);
    CHECK(window(t, "1h").bad == 0);
  }
}

// The counter value of the histogram series `name` (with `le` when given) summed over the
// SLO's series, at the last sample at or before `t_ms`: the number of observations up to then.
double CounterAt(const SampleSource& source, const std::string& name, const std::string& le,
                 int64_t t_ms) {
  std::vector<LabelMatcher> matchers = {{LabelMatcher::Type::kEqual, "__name__", name},
                                        {LabelMatcher::Type::kEqual, "model", "m"}};
  if (!le.empty()) {
    matchers.push_back({LabelMatcher::Type::kEqual, "le", le});
  }
  auto got = source.Select(matchers, kT0 - 1, t_ms);
  REQUIRE(got);
  double total = 0;
  for (const Series& series : *got) {
    if (!series.samples.empty()) {
      total += series.samples.back().v;
    }
  }
  return total;
}

// The generated latency rules count events as the increase of the phase histogram's _count and
// good ones as the increase of its bucket le="<threshold>" (rules/slo.h). The tracker behind
// modelpulse_slo_* counts the same probes: successful ones with the phase, good when <= the
// threshold (west's ttft and east's total sit exactly on a bound). Failed probes, whose total
// time is known (east's 500s, 429s and 60 s timeouts), are in neither.
TEST_CASE("latency SLO figures count exactly what the histograms behind the rules observe") {
  Scenario scenario;
  ManualClock clock(kT0 + 3 * 3600 * 1000);
  storage::StorageOptions options;
  options.path = scenario.db;
  options.retention = Millis(0);
  auto store = storage::Store::Open(options, clock);
  REQUIRE(store);
  storage::ProbeSeriesSource source(store->get(), Millis(0), INT64_MAX);
  rules::SloSpec ttft;
  ttft.name = "m-ttft";
  ttft.selector = {{"model", "m"}};
  ttft.kind = rules::SloSpec::Kind::kLatency;
  ttft.threshold_seconds = 0.5;
  rules::SloSpec total = ttft;
  total.name = "m-total";
  total.phase = rules::SloSpec::Phase::kTotal;
  total.threshold_seconds = 2;
  rules::SloTracker tracker({ttft, total}, source);
  const int64_t now = kT0 + 2 * 3600 * 1000 - 1;
  auto computed = tracker.Compute(now);
  REQUIRE_MESSAGE(computed, (computed ? "" : computed.error().ToString()));
  REQUIRE(computed->size() == 2);
  for (const auto& [status, family, le] :
       {std::tuple{(*computed)[0], "modelpulse_probe_ttft_seconds", "0.5"},
        std::tuple{(*computed)[1], "modelpulse_probe_duration_seconds", "2"}}) {
    CAPTURE(status.spec.name);
    const std::string count = std::string(family) + "_count";
    const std::string bucket = std::string(family) + "_bucket";
    REQUIRE(FormatBucketBound(status.spec.threshold_seconds) == le);
    // The whole history is inside the SLO window; the 1h window starts 1 ms before minute 60.
    const double events = CounterAt(source, count, "", now);
    CHECK(status.slo_window.events == static_cast<int64_t>(events));
    CHECK(status.slo_window.bad ==
          static_cast<int64_t>(events - CounterAt(source, bucket, le, now)));
    const int64_t from = now - 3600 * 1000;
    const double events_1h = events - CounterAt(source, count, "", from - 1);
    const double good_1h =
        CounterAt(source, bucket, le, now) - CounterAt(source, bucket, le, from - 1);
    for (const rules::SloWindowFigures& w : status.burn) {
      if (w.window == "1h") {
        CHECK(w.events == static_cast<int64_t>(events_1h));
        CHECK(w.bad == static_cast<int64_t>(events_1h - good_1h));
      }
    }
  }
  // By hand: 533 successful probes (east 480 - 66, west 119); east's totals are its ttft + 1,
  // at most 2 s; west's are 1.5 s.
  CHECK((*computed)[0].slo_window.events == 533);
  CHECK((*computed)[1].slo_window.events == 533);
  CHECK((*computed)[1].slo_window.bad == 0);
  // ClassifyProbe agrees on the bounds: a value equal to the threshold is good, a failure with
  // a fast total is no event, NaN is no event (the histograms do not observe it).
  CHECK(rules::ClassifyProbe(total, Outcome::kOk, std::nullopt, 2) == rules::SloVerdict::kGood);
  CHECK(rules::ClassifyProbe(total, Outcome::kThrottled, std::nullopt, 0.1) ==
        rules::SloVerdict::kExcluded);
  CHECK(rules::ClassifyProbe(ttft, Outcome::kOk, std::nan(""), 1) == rules::SloVerdict::kExcluded);
}

TEST_CASE("a calendar-month SLO window starts on the 1st, UTC") {
  rules::SloSpec slo;
  slo.window_kind = rules::SloSpec::WindowKind::kCalendarMonth;
  CHECK(rules::SloTracker::WindowStart(slo, kT0 + 17LL * 24 * 3600 * 1000 + 5) == kT0);
  CHECK(rules::SloTracker::WindowStart(slo, kT0) == kT0);
}

}  // namespace
}  // namespace modelpulse::daemon
