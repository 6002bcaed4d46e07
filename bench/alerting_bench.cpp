// Notification delivery (issue 8): 1,000 firing alerts committed through the outbox (real
// SQLite file, the daemon's storage) to 4 webhook receivers on loopback; prints the outbox's
// commit rate and the delivery latency from the state-change commit to receipt (p50, p99).
//
//   build/release/bench/alerting_bench [alerts=1000]
//
// `flap` mode: the outbox while every receiver is down, for `minutes` of an alert that flaps
// every 2 minutes (fires 2 min, clears 2 min), its rule evaluated every 15 s by the real rule
// manager, on an injected clock (ManualClock: an hour runs in seconds). One webhook receiver
// (Alertmanager's default timings) and one Alertmanager, both a closed loopback port: every send
// is a real connection refused and is retried. Prints outbox rows, database size and RSS.
//
//   build/release/bench/alerting_bench flap [minutes=60]

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "alerting/alerting.h"
#include "common/alert_event.h"
#include "common/sample_source.h"
#include "rules/manager.h"
#include "storage/storage.h"

namespace {

using namespace modelpulse;
using Steady = std::chrono::steady_clock;

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// The rule reads time() only.
class NoSamples final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    return std::vector<Series>{};
  }
};

// VmRSS from /proc/self/status, in KiB.
long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

// The first column of the first row of `sql`, as an integer; -1 on failure.
int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t rows = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      rows = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return rows;
}

int Flap(int minutes) {
  std::string dir_pattern =
      (std::filesystem::temp_directory_path() / "mp-alerting-flap-XXXXXX").string();
  const std::string dir = mkdtemp(dir_pattern.data());
  const int64_t start_ms = 1'800'000'000'000;  // a multiple of 4 minutes: flapping starts firing
  ManualClock clock(start_ms);
  storage::StorageOptions options;
  options.path = dir + "/flap.db";
  auto store = storage::Store::Open(options, clock);
  if (!store) {
    fmt::print(stderr, "{}\n", store.error().ToString());
    return 1;
  }
  {
    std::ofstream rules(dir + "/flap.yaml");
    rules << "groups:\n  - name: flap\n    interval: 15s\n    rules:\n"
             "      - alert: Flapping\n        expr: vector(time()) % 240 < 120\n"
             "        labels: {severity: warning}\n"
             "        annotations: {summary: \"flapping every 2 minutes\"}\n";
  }
  // A port nothing listens on: bound (never listening), its number read, then closed.
  int closed_port = 0;
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      closed_port = ntohs(addr.sin_port);
    }
    close(fd);
  }
  alerting::AlertingConfig config;
  config.external_url = "http://bench";
  alerting::AlertmanagerConfig am;
  am.endpoint.url = Secret(fmt::format("http://127.0.0.1:{}", closed_port));
  config.alertmanagers.push_back(am);
  alerting::ReceiverConfig receiver;
  receiver.name = "down";
  receiver.webhook.url = Secret(fmt::format("http://127.0.0.1:{}/hook", closed_port));
  receiver.group_by = {"alertname"};
  config.receivers.push_back(receiver);
  auto transport = alerting::CurlTransport();
  auto notifier = alerting::Notifier::Create(config, {}, **store, **store, *transport, clock);
  NoSamples samples;
  auto states = rules::AlertStatesIn(**store, store->get());
  rules::RuleManagerOptions rule_options;
  rule_options.rule_files = {dir + "/flap.yaml"};
  rule_options.evaluation_interval = Millis(15000);
  auto manager = rules::RuleManager::Create(rule_options, samples, *states, clock);
  if (!notifier || !manager) {
    fmt::print(stderr, "cannot start: {}\n",
               !notifier ? notifier.error().ToString() : manager.error().ToString());
    return 1;
  }
  const long rss_before = RssKiB();
  const auto wall = Steady::now();
  const int64_t end_ms = start_ms + int64_t{minutes} * 60'000;
  // Every 5 s of injected time: due evaluations (every 15 s), then one notifier round.
  while (clock.NowUnixMillis() < end_ms) {
    (void)(*manager)->EvaluateDue(clock.NowUnixMillis());
    (*notifier)->Step();
    clock.Advance(5000);
  }
  (void)(*store)->Flush();
  size_t pending = 0;
  std::string per_destination;
  for (const alerting::DestinationStatus& d : (*notifier)->Destinations()) {
    pending += d.pending;
    per_destination +=
        fmt::format(" {}={} (oldest {:.0f}s)", d.name, d.pending, d.oldest_pending_seconds);
  }
  const long rss_after = RssKiB();
  fmt::print(
      "flap: {} min of injected time (alert flapping every 2 min, evaluated every 15 s), "
      "{:.1f}s wall\n",
      minutes, Seconds(Steady::now() - wall));
  fmt::print("outbox rows: {} in SQLite (in memory {}:{}), unconsumed alert events: {}\n",
             QueryInt(options.path, "SELECT count(*) FROM notifications"), pending, per_destination,
             QueryInt(options.path, "SELECT count(*) FROM alert_events"));
  fmt::print("outbox bodies: {} bytes in all\n",
             QueryInt(options.path, "SELECT coalesce(sum(length(body)), 0) FROM notifications"));
  // The daemon's checkpoints run on the probe writer's connection (storage/store.cpp); with no
  // probes here, the WAL would only grow. Checkpoint, so the file shows what the rows take.
  const int64_t wal_before_kib =
      static_cast<int64_t>(std::filesystem::exists(options.path + "-wal")
                               ? std::filesystem::file_size(options.path + "-wal") / 1024
                               : 0);
  (void)QueryInt(options.path, "PRAGMA wal_checkpoint(TRUNCATE)");
  fmt::print("WAL before checkpoint: {} KiB (no probe writes: nothing checkpointed it)\n",
             wal_before_kib);
  std::string files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with("flap.db")) {
      files += fmt::format(" {}={:.1f}KiB", entry.path().filename().string(),
                           static_cast<double>(entry.file_size()) / 1024.0);
    }
  }
  fmt::print("database files:{}; RSS {} KiB before, {} KiB after (+{} KiB)\n", files, rss_before,
             rss_after, rss_after - rss_before);
  notifier->reset();
  manager->reset();
  states.reset();
  store->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_ALL);
  if (argc > 1 && std::string_view(argv[1]) == "flap") {
    return Flap(argc > 2 ? std::atoi(argv[2]) : 60);
  }
  const int alerts = argc > 1 ? std::atoi(argv[1]) : 1000;
  std::string dir_pattern =
      (std::filesystem::temp_directory_path() / "mp-alerting-bench-XXXXXX").string();
  const std::string dir = mkdtemp(dir_pattern.data());
  SystemClock clock;
  storage::StorageOptions options;
  options.path = dir + "/bench.db";
  auto store = storage::Store::Open(options, clock);
  if (!store) {
    fmt::print(stderr, "{}\n", store.error().ToString());
    return 1;
  }

  std::mutex mu;
  std::vector<double> latencies;  // seconds from commit to receipt
  Steady::time_point committed;
  httplib::Server server;
  server.Post("/hook", [&](const httplib::Request& req, httplib::Response&) {
    const auto now = Steady::now();
    const auto body = nlohmann::json::parse(req.body);
    std::lock_guard lock(mu);
    for (size_t i = 0; i < body["alerts"].size(); ++i) {
      latencies.push_back(Seconds(now - committed));
    }
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });

  alerting::AlertingConfig config;
  config.external_url = "http://bench";
  for (int r = 0; r < 4; ++r) {
    alerting::ReceiverConfig receiver;
    receiver.name = fmt::format("r{}", r);
    receiver.webhook.url = Secret(fmt::format("http://127.0.0.1:{}/hook", port));
    receiver.group_by = {"alertname", "target"};  // one group, one message per alert
    receiver.group_wait = Millis(0);
    config.receivers.push_back(receiver);
  }
  auto transport = alerting::CurlTransport();
  alerting::NotifierOptions notifier_options;
  notifier_options.poll_interval = Millis(20);
  auto notifier =
      alerting::Notifier::Create(config, notifier_options, **store, **store, *transport, clock);
  if (!notifier) {
    fmt::print(stderr, "{}\n", notifier.error().ToString());
    return 1;
  }

  // The rule manager commits one transaction per group evaluation; 10 groups of alerts/10.
  std::vector<std::vector<std::string>> groups(10);
  for (int i = 0; i < alerts; ++i) {
    AlertEvent e;
    e.labels = {{"alertname", "Bench"}, {"target", fmt::format("t{}", i)}};
    e.annotations = {{"summary", fmt::format("target t{} is down", i)}};
    e.starts_at_ms = clock.NowUnixMillis();
    e.ends_at_ms = e.starts_at_ms + 240000;
    groups[static_cast<size_t>(i) % groups.size()].push_back(EncodeAlertEvent(e));
  }
  committed = Steady::now();
  for (size_t g = 0; g < groups.size(); ++g) {
    (void)(*store)->CommitStateWithEvents("alerts", fmt::format("g{}", g), std::string_view("{}"),
                                          groups[g]);
  }
  const double commit_seconds = Seconds(Steady::now() - committed);
  std::jthread running([&](std::stop_token stop) { (*notifier)->Run(stop); });
  const auto deadline = Steady::now() + std::chrono::seconds(120);
  while (Steady::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (latencies.size() >= static_cast<size_t>(alerts) * 4) {
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  running.request_stop();
  running.join();
  server.stop();
  serving.join();
  std::lock_guard lock(mu);
  fmt::print("alerts={} receivers=4 delivered={} (expected {})\n", alerts, latencies.size(),
             alerts * 4);
  fmt::print("outbox commit: {} events in {} transactions in {:.3f}s = {:.0f} events/s\n", alerts,
             groups.size(), commit_seconds, alerts / commit_seconds);
  fmt::print("delivery latency commit->receipt: p50={:.3f}s p99={:.3f}s max={:.3f}s\n",
             Percentile(latencies, 0.5), Percentile(latencies, 0.99), Percentile(latencies, 1.0));
  std::filesystem::remove_all(dir);
  return latencies.size() == static_cast<size_t>(alerts) * 4 ? 0 : 1;
}
