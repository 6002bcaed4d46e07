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
  Metrics metrics("test");
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

}  // namespace
}  // namespace modelpulse::daemon
