#include "daemon/metrics.h"

#include <doctest/doctest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "common/probe_series.h"

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

// `promtool check metrics` on `text` (it reads stdin): its exit code and output.
std::pair<int, std::string> PromtoolCheckMetrics(const std::string& text) {
  char path[] = "/tmp/mp-metrics-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  FILE* pipe = popen(("promtool check metrics < " + std::string(path) + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    output.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST_CASE("metrics: probe counters by outcome class and the three histograms, per target") {
  Metrics metrics(BuildInfo{.version = "test"});
  ProbeResult ok = Probe("t", std::nullopt);
  ok.ttft_seconds = 0.3;
  ok.output_tokens_per_second = 42;
  metrics.ObserveProbe(ok);
  ProbeResult throttled = Probe("t", std::nullopt);
  throttled.outcome = Outcome::kThrottled;
  throttled.http_status = 429;
  throttled.total_seconds = 0.04;
  metrics.ObserveProbe(throttled);
  const std::string text = metrics.Render(SelfStatus{});
  const std::string labels = R"(model="gpt-4o-mini",provider="openai",target="t")";
  for (
      const std::string& line : std::vector<std::string>{
          "# TYPE modelpulse_probes_total counter\n",
          R"(modelpulse_probes_total{model="gpt-4o-mini",outcome="ok",provider="openai",target="t"} 1)"
          "\n",
          R"(modelpulse_probes_total{model="gpt-4o-mini",outcome="throttled",provider="openai",target="t"} 1)"
          "\n",
          "# TYPE modelpulse_probe_ttft_seconds histogram\n",
          "modelpulse_probe_ttft_seconds_count{" + labels + "} 1\n",
          "modelpulse_probe_ttft_seconds_sum{" + labels + "} 0.3\n",
          "modelpulse_probe_ttft_seconds_bucket{" + labels + R"(,le="0.25"} 0)" + "\n",
          "modelpulse_probe_ttft_seconds_bucket{" + labels + R"(,le="0.5"} 1)" + "\n",
          "modelpulse_probe_ttft_seconds_bucket{" + labels + R"(,le="+Inf"} 1)" + "\n",
          // Successful probes only: the throttled probe's 0.04 s is not a latency.
          "modelpulse_probe_duration_seconds_count{" + labels + "} 1\n",
          "modelpulse_probe_duration_seconds_bucket{" + labels + R"(,le="0.05"} 0)" + "\n",
          "modelpulse_probe_duration_seconds_bucket{" + labels + R"(,le="0.5"} 1)" + "\n",
          "modelpulse_probe_output_tokens_per_second_bucket{" + labels + R"(,le="35"} 0)" + "\n",
          "modelpulse_probe_output_tokens_per_second_bucket{" + labels + R"(,le="50"} 1)" + "\n",
      }) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  }
  // Every bound the table states is exported, spelled as the rule engine spells `le`.
  for (const double bound : ProbeLatencyBuckets()) {
    CHECK(text.find("modelpulse_probe_ttft_seconds_bucket{" + labels + ",le=\"" +
                    FormatBucketBound(bound) + "\"}") != std::string::npos);
  }
  for (const double bound : ProbeTokensPerSecondBuckets()) {
    CHECK(text.find("modelpulse_probe_output_tokens_per_second_bucket{" + labels + ",le=\"" +
                    FormatBucketBound(bound) + "\"}") != std::string::npos);
  }
  if (access("/usr/bin/promtool", X_OK) == 0) {
    // promtool's linter: exit 0 for a valid exposition (it prints lint hints, not errors).
    const auto [code, output] = PromtoolCheckMetrics(text);
    INFO(output);
    CHECK(code == 0);
  }
}

}  // namespace
}  // namespace modelpulse::daemon
