#include "daemon/metrics.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse::daemon {
namespace {

ProbeResult Probe(const std::string& target, std::optional<double> cost) {
  ProbeResult result;
  result.target = target;
  result.labels = {{"target", target}, {"provider", "openai"}, {"model", "gpt-4o-mini"}};
  result.http_status = 200;
  result.total_seconds = 0.5;
  result.input_tokens = 12;
  result.output_tokens = 6;
  result.estimated_cost_dollars = cost;
  return result;
}

TEST_CASE("metrics: the estimated cost adds up what the prober charged, only for priced targets") {
  Metrics metrics(BuildInfo{.version = "test"});
  metrics.ObserveProbe(Probe("priced", 0.25));
  metrics.ObserveProbe(Probe("priced", 0.5));
  metrics.ObserveProbe(Probe("free", 0));
  metrics.ObserveProbe(Probe("unpriced", std::nullopt));
  const std::string text = metrics.Render(SelfStatus{});
  CHECK(text.find("# HELP modelpulse_estimated_cost_dollars_total Estimated spend of probes from "
                  "the configured prices.\n") != std::string::npos);
  CHECK(text.find("# TYPE modelpulse_estimated_cost_dollars_total counter\n") != std::string::npos);
  CHECK(
      text.find("modelpulse_estimated_cost_dollars_total{model=\"gpt-4o-mini\",provider=\"openai\","
                "target=\"priced\"} 0.75\n") != std::string::npos);
  CHECK(
      text.find("modelpulse_estimated_cost_dollars_total{model=\"gpt-4o-mini\",provider=\"openai\","
                "target=\"free\"} 0\n") != std::string::npos);
  CHECK(text.find("target=\"unpriced\"} ") != std::string::npos);  // its other series are there
  CHECK(
      text.find("modelpulse_estimated_cost_dollars_total{model=\"gpt-4o-mini\",provider=\"openai\","
                "target=\"unpriced\"}") == std::string::npos);
}

TEST_CASE("metrics: build_info carries version, revision, branch and compiler") {
  Metrics metrics(BuildInfo{.version = "1.2.3",
                            .revision = "abc123",
                            .branch = "main",
                            .build_user = "u@h",
                            .build_date = "20261206-03:39:17",
                            .compiler = "GNU 12.2.0",
                            .platform = "linux/amd64"});
  const std::string text = metrics.Render(SelfStatus{});
  CHECK(
      text.find("modelpulse_build_info{branch=\"main\",compiler=\"GNU 12.2.0\",revision=\"abc123\","
                "version=\"1.2.3\"} 1\n") != std::string::npos);
}

TEST_CASE("metrics: process_* series come from the scrape's process stats, when there are any") {
  Metrics metrics(BuildInfo{.version = "test"});
  CHECK(metrics.Render(SelfStatus{}).find("process_") == std::string::npos);
  SelfStatus status;
  status.process = ProcessStats{.cpu_seconds = 1.5,
                                .resident_memory_bytes = 2048,
                                .virtual_memory_bytes = 4096,
                                .start_time_seconds = 1796520120,
                                .open_fds = 12,
                                .max_fds = 1024};
  const std::string text = metrics.Render(status);
  for (const char* line :
       {"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2048\n",
        "process_virtual_memory_bytes 4096\n", "process_start_time_seconds 1796520120\n",
        "process_open_fds 12\n", "process_max_fds 1024\n"}) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  }
}

}  // namespace
}  // namespace modelpulse::daemon
