// The status page (daemon/status_page.h) over 200 targets x 90 days of probe summaries (issue 10:
// "the status page rendered in under 50 ms"). Generates the database: one probe per target
// through the store (its targets row and labels), then 90 days of hourly and daily probe
// summaries (migration 9) as a 15 s probe interval leaves them (240 probes an hour, a few
// failures on some days). Prints, each the median of `rounds`:
//  - cold: BuildStaticStatusPage, everything read from the daily summaries (report
//    --format=status-html);
//  - warm: what GET /status does once the settled days are cached: StatusDays::Read of today for
//    every target, then RenderStatusPage;
//  - render: RenderStatusPage alone; and the page's size.
//
//   build/release/tests/daemon/status_bench [targets] [rounds]

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include "daemon/status_page.h"
#include "storage/storage.h"

namespace {

using namespace modelpulse;
constexpr int64_t kDay = 86'400'000;

double Ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int targets = argc > 1 ? std::atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 9;
  char tmpl[] = "/tmp/modelpulse-status-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string db = dir + "/m.db";
  const int64_t now = 1'790'812'800'000 + 12 * 3600'000;  // 2026-10-01T12:00Z
  const int64_t first_hour = now - now % kDay - 89 * kDay;
  {
    ManualClock clock(now);
    storage::StorageOptions options;
    options.path = db;
    options.retention = Millis(0);
    auto store = storage::Store::Open(options, clock);
    if (!store) {
      std::fprintf(stderr, "%s\n", store.error().ToString().c_str());
      return 1;
    }
    for (int t = 0; t < targets; ++t) {
      ProbeResult p;
      p.target = "model-" + std::to_string(t % 20) + "@cloud-" + std::to_string(t / 20);
      p.labels = {{"target", p.target},
                  {"model", "model-" + std::to_string(t % 20)},
                  {"cloud", "cloud-" + std::to_string(t / 20)}};
      p.start_unix_ms = now - 60'000;
      p.total_seconds = 1;
      (*store)->Append(p);
    }
    if (!(*store)->Flush()) {
      return 1;
    }
  }
  sqlite3* raw = nullptr;
  sqlite3_open(db.c_str(), &raw);
  const auto start_gen = std::chrono::steady_clock::now();
  // The probe summaries (migration 9) a 15 s interval leaves: per target, one row per hour (240
  // probes) and per day (5760), with a few server errors and throttled probes on some days, and
  // sketch blobs of a typical size (the page reads only the daily counts).
  const std::string first_day = std::to_string(now - now % kDay - 89 * kDay);
  const std::string sql =
      "BEGIN; WITH RECURSIVE h(b) AS (SELECT " + std::to_string(first_hour) +
      " UNION ALL SELECT b + 3600000 FROM h WHERE b + 3600000 < " + std::to_string(now) +
      "), d(b) AS (SELECT " + first_day +
      " UNION ALL SELECT b + 86400000 FROM d WHERE b + "
      "86400000 <= " +
      std::to_string(now) +
      "), s(span, b, n) AS (SELECT 3600000, b, 240 FROM h UNION ALL SELECT 86400000, b, 5760 FROM "
      "d), f(id, span, b, n, bad, thr) AS (SELECT t.id, s.span, s.b, s.n, "
      "((s.b / 86400000 + t.id) % 7 = 0) * ((t.id + s.b / 86400000) % 5) * s.n / 240, "
      "((s.b / 86400000 + t.id) % 11 = 0) * s.n / 240 FROM targets t, s) "
      "INSERT OR REPLACE INTO probe_summaries SELECT id, span, b, n, n - bad - thr, thr, 0, 0, 0, "
      "0, 0, 0, bad, 0, 0, randomblob(span / 24000), randomblob(span / 24000), 40.0 * (n - bad - "
      "thr), n - bad - thr, NULL FROM f; COMMIT;";
  char* error = nullptr;
  if (sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "%s\n", error);
    return 1;
  }
  sqlite3_close(raw);
  std::printf("generated %d targets x 90 days of summaries in %.0f ms (%s)\n", targets,
              Ms(start_gen), db.c_str());

  std::vector<double> cold, warm, warm_cpu, render;
  size_t bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    auto start = std::chrono::steady_clock::now();
    auto page = daemon::BuildStaticStatusPage(db, {}, now);
    const std::string html = daemon::RenderStatusPage(*page);
    cold.push_back(Ms(start));
    bytes = html.size();
    start = std::chrono::steady_clock::now();
    const std::string again = daemon::RenderStatusPage(*page);
    render.push_back(Ms(start));
  }
  // The daemon's path: one archive, one cache, filled once, then page after page.
  auto archive = storage::Archive::OpenReadOnly(db);
  auto stored = (*archive)->ListTargets();
  daemon::StatusDays cache;
  const rules::SloSpec availability;
  std::vector<std::pair<int64_t, const rules::SloSpec*>> refs;
  for (const storage::StoredTarget& target : *stored) {
    refs.emplace_back(target.id, &availability);
  }
  (void)cache.ReadAll(**archive, refs, now);
  for (int r = 0; r < rounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    daemon::StatusPage page;
    page.now_ms = now;
    auto days = cache.ReadAll(**archive, refs, now + r);
    for (const storage::StoredTarget& target : *stored) {
      daemon::StatusTarget row;
      row.name = target.name;
      row.labels = target.labels;
      row.days = std::move((*days)[target.id]);
      page.targets.push_back(std::move(row));
    }
    const std::string html = daemon::RenderStatusPage(page);
    warm.push_back(Ms(start));
    // CPU time too: the machine may be shared, and wall time then includes waiting for a core.
    warm_cpu.push_back(1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC);
  }
  std::printf(
      "targets %d, rounds %d: cold (all 90 days from summaries + render) %.1f ms; warm (today "
      "from summaries + render, GET /status) %.1f ms wall, %.1f ms CPU; render only %.1f ms; "
      "page %zu bytes\n",
      targets, rounds, Median(cold), Median(warm), Median(warm_cpu), Median(render), bytes);
  std::filesystem::remove_all(dir);
  return 0;
}
