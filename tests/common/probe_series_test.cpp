#include "common/probe_series.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

namespace modelpulse {
namespace {

TEST_CASE("the series table is indexed by the stored field ids, which never change") {
  REQUIRE(ProbeSeriesTable().size() == static_cast<size_t>(kProbeFieldCount));
  for (int f = 0; f < kProbeFieldCount; ++f) {
    CHECK(static_cast<int>(ProbeSeriesTable()[static_cast<size_t>(f)].field) == f);
  }
  // The rollup table stores these numbers.
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(0)).name) == "probe_success");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(6)).name) == "probe_ttft_seconds");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(11)).name) == "probe_http_status_code");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(15)).resource) == "requests");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(16)).resource) == "tokens");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(17)).name) ==
        "probe_retry_after_seconds");
  CHECK(std::string(ProbeSeriesOf(static_cast<ProbeField>(18)).name) == "probe_auth_failed");
  // One help text per name: the two rate-limit series share a family.
  CHECK(ProbeSeriesNames().size() == 18);
}

TEST_CASE("a probe yields the samples of the phases that happened, in field order") {
  ProbeResult p;
  p.outcome = Outcome::kThrottled;
  p.http_status = 429;
  p.total_seconds = 1.5;
  p.ttft_seconds = 0.25;
  p.output_tokens = 16;
  p.requests = {1000.0, 250.0, std::nullopt};
  p.tokens = {0.0, 10.0, std::nullopt};  // a zero limit yields no ratio
  const std::vector<ProbeSample> samples = ProbeSamples(p);
  std::vector<std::string> names;
  for (const ProbeSample& s : samples) {
    names.push_back(std::string(s.name) +
                    (*s.resource != '\0' ? "/" + std::string(s.resource) : ""));
  }
  CHECK(names ==
        std::vector<std::string>{"probe_success", "probe_duration_seconds", "probe_ttft_seconds",
                                 "probe_output_tokens", "probe_http_status_code", "probe_throttled",
                                 "probe_overloaded", "probe_quota_exhausted",
                                 "probe_ratelimit_remaining_ratio/requests", "probe_auth_failed"});
  CHECK(samples[0].value == 0.0);
  CHECK(samples[1].value == 1.5);
  CHECK(samples[4].value == 429.0);
  CHECK(samples[5].value == 1.0);
  CHECK(samples[8].value == 0.25);
}

TEST_CASE("NaN passes through the table and storage decides what it stores") {
  ProbeResult p;
  p.total_seconds = std::numeric_limits<double>::quiet_NaN();
  auto value = ProbeSeriesValue(ProbeSeriesOf(ProbeField::kTotal), ProbeNumbersOf(p));
  REQUIRE(value.has_value());
  CHECK(std::isnan(*value));
}

}  // namespace
}  // namespace modelpulse
