// The status page (daemon/status_page.h) over a real SQLite file written by the store: its daily
// availability (from the daily probe summaries) equals the JSON report's per-day figures (from the
// probes) for the same database, the page is self-contained, and settled days are cached.

#include "daemon/status_page.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/alert_event.h"
#include "daemon/report.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'790'812'800'000;  // 2026-10-01T00:00:00Z
constexpr int64_t kMin = 60'000;
constexpr int64_t kDay = 86'400'000;
constexpr int64_t kNow = kT0 + 3 * kDay + 12 * 3600'000;  // 2026-10-04T12:00Z

ProbeResult Probe(const std::string& target, const std::string& model, const std::string& cloud,
                  int64_t start_ms, Outcome outcome) {
  ProbeResult p;
  p.target = target;
  p.labels = {{"target", target}, {"model", model}, {"cloud", cloud}};
  p.start_unix_ms = start_ms;
  p.outcome = outcome;
  p.total_seconds = 1;
  if (outcome == Outcome::kOk) {
    p.ttft_seconds = 0.3;
  } else {
    p.request_id = "req-" + std::to_string(start_ms);
  }
  return p;
}

struct Scenario {
  fs::path dir;
  std::string db;
  ManualClock clock{kNow};
  std::unique_ptr<storage::Store> store;

  Scenario() {
    char tmpl[] = "/tmp/modelpulse-status-XXXXXX";
    dir = mkdtemp(tmpl);
    db = (dir / "m.db").string();
    storage::StorageOptions options;
    options.path = db;
    options.retention = Millis(0);
    auto opened = storage::Store::Open(options, clock);
    REQUIRE(opened);
    store = std::move(*opened);
    // m@east every 10 minutes from day 0 to now: day 1 down 02:00-04:00 (server errors), day 2
    // throttled 05:00-06:00 (the provider's fault under the default SLO), quota_exhausted
    // 07:00-07:30 and auth 08:00-08:20 (both ours, left out), a timeout each day at 12:00.
    for (int64_t t = kT0; t < kNow; t += 10 * kMin) {
      const int64_t day = (t - kT0) / kDay;
      const int64_t minute = (t - kT0) % kDay / kMin;
      Outcome outcome = Outcome::kOk;
      if (day == 1 && minute >= 120 && minute < 240) {
        outcome = Outcome::kServerError;
      } else if (day == 2 && minute >= 300 && minute < 360) {
        outcome = Outcome::kThrottled;
      } else if (day == 2 && minute >= 420 && minute < 450) {
        outcome = Outcome::kQuotaExhausted;
      } else if (day == 2 && minute >= 480 && minute < 500) {
        outcome = Outcome::kAuth;
      } else if (minute == 720) {
        outcome = Outcome::kTimeout;
      }
      store->Append(Probe("m@east", "m", "east", t, outcome));
    }
    // n@west every 30 minutes on day 0 only, overloaded for an hour.
    for (int64_t t = kT0; t < kT0 + kDay; t += 30 * kMin) {
      const int64_t minute = (t - kT0) / kMin;
      store->Append(Probe("n@west", "n", "west", t,
                          minute >= 600 && minute < 660 ? Outcome::kOverloaded : Outcome::kOk));
    }
    REQUIRE(store->Flush());
    AlertEvent down;
    down.labels = {{"alertname", "ModelEndpointDown"}, {"target", "m@east"}};
    down.starts_at_ms = kNow - 20 * kMin;
    REQUIRE(store->CommitStateWithEvents("alerts", "g", "{}", {EncodeAlertEvent(down)}));
  }
  ~Scenario() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string Day(int64_t ms) {
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

TEST_CASE("the status page's daily availability equals the JSON report's days") {
  Scenario scenario;
  rules::SloSpec slo;
  slo.name = "m-avail";
  slo.selector = {{"model", "m"}};
  auto page = BuildStaticStatusPage(scenario.db, {slo}, kNow);
  REQUIRE_MESSAGE(page, (page ? "" : page.error().ToString()));
  REQUIRE(page->targets.size() == 2);

  ReportOptions options;
  options.storage_path = scenario.db;
  options.slos = {slo};
  options.from_ms = kNow - kNow % kDay - (kStatusDays - 1) * kDay;
  options.to_ms = kNow;
  auto report = BuildReport(options);
  REQUIRE(report);
  auto json_text = FormatReport(*report, "json");
  REQUIRE(json_text);
  const auto json = nlohmann::json::parse(*json_text);
  const std::string html = RenderStatusPage(*page);

  size_t compared = 0;
  for (const auto& target : json["targets"]) {
    const auto it = std::find_if(page->targets.begin(), page->targets.end(),
                                 [&](const StatusTarget& t) { return t.name == target["name"]; });
    REQUIRE(it != page->targets.end());
    REQUIRE(it->days.size() == static_cast<size_t>(kStatusDays));
    CHECK(Day(it->days.back().day_ms) == "2026-10-04");  // today last
    for (const auto& day : target["days"]) {
      const auto status_day =
          std::find_if(it->days.begin(), it->days.end(),
                       [&](const StatusDay& d) { return Day(d.day_ms) == day["day"]; });
      REQUIRE(status_day != it->days.end());
      CHECK(status_day->good == day["good"].get<int64_t>());
      CHECK(status_day->bad == day["bad"].get<int64_t>());
      // And the tooltip shows the same numbers.
      const int64_t good = day["good"];
      const int64_t bad = day["bad"];
      const std::string tooltip = fmt::format(
          "<title>{} {:.3f}% ({} bad of {})</title>", day["day"].get<std::string>(),
          100.0 * static_cast<double>(good) / static_cast<double>(good + bad), bad, good + bad);
      CHECK_MESSAGE(html.find(tooltip) != std::string::npos, tooltip);
      ++compared;
    }
  }
  CHECK(compared == 5);  // east: 4 days, west: 1
  // Hand-computed: day 1 lost 12 of 144 probes and a timeout; on day 2 the 6 throttled probes
  // count as the provider's fault (the default), the 3 quota_exhausted and 2 auth ones are left
  // out.
  const StatusTarget& east = page->targets[0];
  CHECK(east.name == "m@east");
  const StatusDay& day1 = east.days[east.days.size() - 3];
  CHECK(day1.good == 131);
  CHECK(day1.bad == 13);
  const StatusDay& day2 = east.days[east.days.size() - 2];
  CHECK(day2.good == 132);
  CHECK(day2.bad == 7);
  CHECK(east.state == "up");
  CHECK(page->targets[1].state == "unknown");  // no probe in the last hour
  // The incident still firing, and the SLO budget over its 30 days (east only: model m).
  REQUIRE(page->incidents.size() == 1);
  CHECK(page->incidents[0].alertname == "ModelEndpointDown");
  REQUIRE(page->slos.size() == 1);
  CHECK(page->slos[0].events == 144 + 144 + 139 + 72);
  CHECK(page->slos[0].bad == 1 + 13 + 7 + 0);
  REQUIRE(page->slos[0].budget_left);
  CHECK(*page->slos[0].budget_left ==
        doctest::Approx(1 - 21.0 / (499 * slo.ErrorBudget())).epsilon(1e-9));

  // Self-contained, phone-readable, proxy-safe.
  CHECK(html.find("name=\"viewport\"") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("href=\"/") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("ModelEndpointDown") != std::string::npos);
}

TEST_CASE("settled days are read once and today on every page") {
  Scenario scenario;
  auto archive = storage::Archive::OpenReadOnly(scenario.db);
  REQUIRE(archive);
  auto targets = (*archive)->ListTargets();
  REQUIRE(targets);
  const int64_t east = targets->front().id;
  const rules::SloSpec availability;
  StatusDays days;
  auto first = days.Read(**archive, east, availability, kNow);
  REQUIRE(first);
  // A late failure on day 1 (settled) and one today: only today's shows through the cache.
  scenario.store->Append(Probe("m@east", "m", "east", kT0 + kDay + 5'000, Outcome::kServerError));
  scenario.store->Append(Probe("m@east", "m", "east", kNow - 5'000, Outcome::kServerError));
  REQUIRE(scenario.store->Flush());
  auto second = days.Read(**archive, east, availability, kNow + 1000);
  REQUIRE(second);
  CHECK((*second)[kStatusDays - 3].bad == (*first)[kStatusDays - 3].bad);
  CHECK((*second)[kStatusDays - 1].bad == (*first)[kStatusDays - 1].bad + 1);
  StatusDays uncached;
  auto fresh = uncached.Read(**archive, east, availability, kNow + 1000);
  REQUIRE(fresh);
  CHECK((*fresh)[kStatusDays - 3].bad == (*first)[kStatusDays - 3].bad + 1);
}

}  // namespace
TEST_CASE("the static page's SLO budgets, latency ones included, equal the report's") {
  Scenario scenario;
  rules::SloSpec availability;
  availability.name = "m-avail";
  availability.selector = {{"model", "m"}};
  rules::SloSpec slow_first_token = availability;  // every ok probe's first token is 0.3 s
  slow_first_token.name = "m-ttft";
  slow_first_token.kind = rules::SloSpec::Kind::kLatency;
  slow_first_token.threshold_seconds = 0.25;
  rules::SloSpec total = slow_first_token;  // every total is 1 s
  total.name = "m-total";
  total.phase = rules::SloSpec::Phase::kTotal;
  total.threshold_seconds = 2;
  rules::SloSpec throttle_free = availability;
  throttle_free.name = "m-throttle";
  throttle_free.kind = rules::SloSpec::Kind::kThrottleFree;
  const std::vector<rules::SloSpec> slos = {availability, slow_first_token, total, throttle_free};
  auto page = BuildStaticStatusPage(scenario.db, slos, kNow);
  REQUIRE_MESSAGE(page, (page ? "" : page.error().ToString()));
  REQUIRE(page->slos.size() == slos.size());

  ReportOptions options;
  options.storage_path = scenario.db;
  options.slos = slos;
  options.from_ms = kT0;  // the scenario's first probe; the windows reach further back
  options.to_ms = kNow;
  auto report = BuildReport(options);
  REQUIRE(report);
  for (size_t i = 0; i < slos.size(); ++i) {
    CAPTURE(slos[i].name);
    CHECK(page->slos[i].events == report->slos[i].events);
    CHECK(page->slos[i].bad == report->slos[i].bad);
    CHECK(page->slos[i].budget_left.has_value());
  }
  // Hand-computed: 478 ok probes of m@east (the 499 events of the availability SLO less its 21
  // bad ones), each 0.3 s to its first token and 1 s in all.
  CHECK(page->slos[1].events == 478);
  CHECK(page->slos[1].bad == 478);
  CHECK(page->slos[2].events == 478);
  CHECK(page->slos[2].bad == 0);
  CHECK(*page->slos[2].budget_left == doctest::Approx(1.0));
  CHECK(page->slos[3].bad == 6);  // day 2's throttled probes
}

}  // namespace modelpulse::daemon
