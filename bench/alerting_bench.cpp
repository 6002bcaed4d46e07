// Notification delivery (issue 8): 1,000 firing alerts committed through the outbox (real
// SQLite file, the daemon's storage) to 4 webhook receivers on loopback; prints the outbox's
// commit rate and the delivery latency from the state-change commit to receipt (p50, p99).
//
//   build/release/bench/alerting_bench [alerts=1000]

#include <curl/curl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "alerting/alerting.h"
#include "common/alert_event.h"
#include "storage/storage.h"

namespace {

using namespace modelpulse;
using Steady = std::chrono::steady_clock;

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  curl_global_init(CURL_GLOBAL_ALL);
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
