// SLO rules (rules/slo.h): the generated rule file is the shipped example byte for byte, parses,
// passes promtool's check, and its unit tests (config/rules/slo/example.test.yml) pass in both
// modelpulse's runner and promtool 2.42.

#include "rules/slo.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rules/rules.h"
#include "tests/required_peer.h"
#include "tests/rules/promtool_util.h"

namespace modelpulse::rules {
namespace {

namespace fs = std::filesystem;
const fs::path kExampleDir = fs::path(MODELPULSE_SOURCE_ROOT) / "config/rules/slo";

std::vector<SloSpec> ExampleSlos() {
  SloSpec availability;
  availability.name = "gpt-4o-availability";
  availability.selector = {{"model", "gpt-4o"}};
  availability.objective_percent = 99.9;
  SloSpec throttling;
  throttling.name = "gpt-4o-throttling";
  throttling.selector = {{"model", "gpt-4o"}};
  throttling.kind = SloSpec::Kind::kThrottleFree;
  throttling.objective_percent = 95;
  SloSpec latency;
  latency.name = "gpt-4o-first-token";
  latency.selector = {{"model", "gpt-4o"}};
  latency.kind = SloSpec::Kind::kLatency;
  latency.threshold_seconds = 2;
  latency.objective_percent = 99;
  return {availability, throttling, latency};
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("the generated SLO rules are the shipped example and parse") {
  const std::string generated = SloRuleFileYaml(ExampleSlos());
  if (std::getenv("MODELPULSE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(kExampleDir / "example.rules.yml") << generated;
  }
  CHECK(generated == ReadAll(kExampleDir / "example.rules.yml"));
  auto parsed = ParseRuleFile(generated, "example.rules.yml");
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().ToString()));
  // One group per SLO, latency included: 7 windows x 3 + 2 recordings + 2 alerts each.
  REQUIRE(parsed->groups.size() == 3);
  CHECK(parsed->groups[0].name == "slo:gpt-4o-availability");
  CHECK(parsed->groups[0].rules.size() == 25);
  CHECK(parsed->groups[2].name == "slo:gpt-4o-first-token");
  CHECK(parsed->groups[2].rules.size() == 25);
  CHECK(generated.find("SLOs without rules") == std::string::npos);
  CHECK(SloRuleFileYaml({}).empty());
}

TEST_CASE("latency SLO rules read the phase's histogram: _count and the bucket le=threshold") {
  SloSpec slo = ExampleSlos()[2];
  for (SloRuleDialect dialect : {SloRuleDialect::kEmbedded, SloRuleDialect::kPortable}) {
    const std::string text = SloRuleFileYaml({slo}, dialect);
    CHECK(text.find("expr: 'sum(increase(modelpulse_probe_ttft_seconds_count{model=\"gpt-4o\"}"
                    "[1h])) or vector(0)'") != std::string::npos);
    CHECK(text.find("expr: '(sum(increase(modelpulse_probe_ttft_seconds_count{model=\"gpt-4o\"}"
                    "[1h])) - sum(increase(modelpulse_probe_ttft_seconds_bucket{model=\"gpt-4o\","
                    "le=\"2\"}[1h]))) or vector(0)'") != std::string::npos);
    // The evidence rule holds as for the other kinds.
    CHECK(text.find("slo:sli_events:count1h{slo=\"gpt-4o-first-token\"} >= 10 and "
                    "slo:sli_errors:count1h{slo=\"gpt-4o-first-token\"} >= 2") !=
          std::string::npos);
    CHECK(text.find("probe_success") == std::string::npos);
  }
  slo.phase = SloSpec::Phase::kTotal;
  slo.threshold_seconds = 0.25;
  const std::string total = SloRuleFileYaml({slo});
  CHECK(total.find("modelpulse_probe_duration_seconds_bucket{model=\"gpt-4o\",le=\"0.25\"}[5m]") !=
        std::string::npos);
  CHECK(total.find("ttft") == std::string::npos);
  // A spec built in code with a threshold between bounds (the config reader refuses one): no
  // rules, said in the file.
  slo.threshold_seconds = 2.5;
  CHECK(!IsLatencyBucket(2.5));
  CHECK(IsLatencyBucket(0.05));
  CHECK(IsLatencyBucket(60));
  const std::string skipped = SloRuleFileYaml({slo});
  CHECK(skipped.find("#   gpt-4o-first-token (latency: threshold 2.5s is not a histogram "
                     "bucket)") != std::string::npos);
  CHECK(skipped.find("groups: []") != std::string::npos);
}

TEST_CASE("the portable SLO rules are the shipped example, over counters only") {
  const std::string generated = SloRuleFileYaml(ExampleSlos(), SloRuleDialect::kPortable);
  if (std::getenv("MODELPULSE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(kExampleDir / "portable.rules.yml") << generated;
  }
  CHECK(generated == ReadAll(kExampleDir / "portable.rules.yml"));
  auto parsed = ParseRuleFile(generated, "portable.rules.yml");
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().ToString()));
  REQUIRE(parsed->groups.size() == 3);
  CHECK(parsed->groups[0].rules.size() == 25);
  // Every outcome but ok, quota_exhausted and auth is the provider's fault by default; errors
  // are exactly those outcomes.
  CHECK(generated.find("outcome=~\"ok|throttled|overloaded|timeout|network|client_error|"
                       "server_error|invalid_response|content_mismatch\"") != std::string::npos);
  CHECK(generated.find("probe_success") == std::string::npos);
  CHECK(generated.find("_over_time") == std::string::npos);
}

TEST_CASE("the portable SLO rules' unit tests pass in modelpulse's runner") {
  std::ostringstream out;
  const int code = RunRuleTests({(kExampleDir / "portable.test.yml").string()}, out);
  INFO(out.str());
  CHECK(code == 0);
}

TEST_CASE("promtool checks the portable SLO rules and passes their unit tests") {
  if (access("/usr/bin/promtool", X_OK) != 0 && testing::SkipForMissingPeer("promtool")) {
    return;
  }
  int status = 0;
  const std::string check = testing::RunCapture(
      "/usr/bin/promtool check rules " + (kExampleDir / "portable.rules.yml").string(), status);
  INFO(check);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(check.find("SUCCESS: 75 rules found") != std::string::npos);
  testing::CheckPromtoolTestPasses(kExampleDir / "portable.test.yml");
}

TEST_CASE("the SLO rules' unit tests pass in modelpulse's runner") {
  std::ostringstream out;
  const int code = RunRuleTests({(kExampleDir / "example.test.yml").string()}, out);
  INFO(out.str());
  CHECK(code == 0);
  CHECK(out.str().find("SUCCESS") != std::string::npos);
}

TEST_CASE("promtool checks the SLO rules and passes their unit tests") {
  if (access("/usr/bin/promtool", X_OK) != 0 && testing::SkipForMissingPeer("promtool")) {
    return;
  }
  int status = 0;
  const std::string check = testing::RunCapture(
      "/usr/bin/promtool check rules " + (kExampleDir / "example.rules.yml").string(), status);
  INFO(check);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(check.find("SUCCESS: 75 rules found") != std::string::npos);
  testing::CheckPromtoolTestPasses(kExampleDir / "example.test.yml");
}

TEST_CASE("availability excludes our own failures, and latency counts successful probes") {
  SloSpec slo;
  CHECK(ClassifyProbe(slo, Outcome::kOk, 0.2, 1) == SloVerdict::kGood);
  CHECK(ClassifyProbe(slo, Outcome::kOverloaded, std::nullopt, 1) == SloVerdict::kBad);
  CHECK(ClassifyProbe(slo, Outcome::kAuth, std::nullopt, 1) == SloVerdict::kExcluded);
  CHECK(ClassifyProbe(slo, Outcome::kQuotaExhausted, std::nullopt, 1) == SloVerdict::kExcluded);
  slo.kind = SloSpec::Kind::kLatency;
  slo.threshold_seconds = 1;
  CHECK(ClassifyProbe(slo, Outcome::kOk, 1.0, 9) == SloVerdict::kGood);
  CHECK(ClassifyProbe(slo, Outcome::kOk, 1.001, 9) == SloVerdict::kBad);
  CHECK(ClassifyProbe(slo, Outcome::kOk, std::nullopt, 9) == SloVerdict::kExcluded);
  CHECK(ClassifyProbe(slo, Outcome::kServerError, std::nullopt, 9) == SloVerdict::kExcluded);
  CHECK(ClassifyProbe(slo, Outcome::kContentMismatch, 0.5, 9) == SloVerdict::kExcluded);
  CHECK(ClassifyProbe(slo, Outcome::kOk, std::nan(""), 9) == SloVerdict::kExcluded);
  slo.kind = SloSpec::Kind::kThrottleFree;
  CHECK(ClassifyProbe(slo, Outcome::kThrottled, std::nullopt, 1) == SloVerdict::kBad);
  CHECK(ClassifyProbe(slo, Outcome::kServerError, std::nullopt, 1) == SloVerdict::kGood);
  CHECK(SloSelects(slo, {{"model", "x"}}));  // an empty selector selects everything
  slo.selector = {{"model", "x"}, {"cloud", "aws"}};
  CHECK(SloSelects(slo, {{"model", "x"}, {"cloud", "aws"}, {"target", "t"}}));
  CHECK(!SloSelects(slo, {{"model", "x"}, {"cloud", "gcp"}}));
}

}  // namespace
}  // namespace modelpulse::rules
