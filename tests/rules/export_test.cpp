// `export rules`: which rules travel to a Prometheus that scrapes /metrics, the reasons given for
// those that do not, and an output that parses back (and that promtool accepts).
#include "rules/export.h"

#include <doctest/doctest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <string>

#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

constexpr std::string_view kRules = R"(groups:
  - name: mixed
    interval: 30s
    rules:
      - alert: Throttled
        expr: |
          sum without (outcome) (rate(modelpulse_probes_total{outcome="throttled"}[5m]))
            / sum without (outcome) (rate(modelpulse_probes_total[5m]))
          >= 0.33
        for: 5m
        labels: {severity: warning}
        annotations: {summary: '{{ $labels.target }} "throttled"'}
      - record: target:ttft:p95_1h
        expr: histogram_quantile(0.95, rate(modelpulse_probe_ttft_seconds_bucket[1h]))
      - alert: DownNow
        expr: probe_success == 0
      - record: target:success:avg_15m
        expr: avg_over_time(probe_success[15m])
      - alert: LessAvailable
        expr: target:success:avg_15m < 0.9
  - name: embedded
    rules:
      - alert: HeadroomLow
        expr: avg_over_time(probe_ratelimit_remaining_ratio[15m]) < 0.1
)";

std::string RuleNames(const RuleFileDef& file) {
  std::string names;
  for (const RuleGroupDef& group : file.groups) {
    for (const RuleDef& rule : group.rules) {
      names += group.name + "/" + rule.name + " ";
    }
  }
  return names;
}

TEST_CASE("export rules: counters and instant gauges travel, gauges over ranges do not") {
  auto file = ParseRuleFile(kRules, "mixed.yaml");
  REQUIRE(file.has_value());
  const RulesExport exported = ExportRules({*file});
  CHECK(exported.exported == 3);
  REQUIRE(exported.refused.size() == 3);
  CHECK(exported.refused[0].rule == "target:success:avg_15m");
  CHECK(exported.refused[0].location == "mixed.yaml:17:9");
  CHECK(exported.refused[0].reason.find("per-probe gauge probe_success over a range") !=
        std::string::npos);
  // Refused because what it reads is not exported.
  CHECK(exported.refused[1].rule == "LessAvailable");
  CHECK(exported.refused[1].reason ==
        "reads target:success:avg_15m, recorded by a rule that is not exported");
  CHECK(exported.refused[2].rule == "HeadroomLow");

  // The output parses back to the travelling rules, group settings and texts kept; the group
  // left empty is dropped.
  auto back = ParseRuleFile(exported.yaml, "exported.yaml");
  REQUIRE(back.has_value());
  CHECK(RuleNames(*back) == "mixed/Throttled mixed/target:ttft:p95_1h mixed/DownNow ");
  const RuleDef& throttled = back->groups[0].rules[0];
  CHECK(back->groups[0].interval == Millis(30'000));
  CHECK(throttled.for_duration == Millis(300'000));
  CHECK(throttled.expr_text == file->groups[0].rules[0].expr_text);
  CHECK(throttled.labels.at("severity") == "warning");
  CHECK(throttled.annotations.at("summary") == R"({{ $labels.target }} "throttled")");
}

TEST_CASE("export rules: later exporters add checks and generated groups") {
  auto file = ParseRuleFile(kRules, "mixed.yaml");
  REQUIRE(file.has_value());
  ExportOptions options;
  options.checks.push_back([](const RuleDef& rule) -> std::optional<std::string> {
    if (rule.name == "DownNow") {
      return "no instant gauges, please";
    }
    return std::nullopt;
  });
  auto generated = ParseRuleFile(R"(groups:
  - name: slo
    rules:
      - record: slo:errors:ratio_rate5m
        expr: sum without (outcome) (rate(modelpulse_probes_total{outcome!="ok"}[5m]))
)",
                                 "slo.yaml");
  REQUIRE(generated.has_value());
  options.extra_groups = generated->groups;
  const RulesExport exported = ExportRules({*file}, options);
  CHECK(exported.exported == 3);
  CHECK(exported.refused.size() == 4);
  auto back = ParseRuleFile(exported.yaml, "exported.yaml");
  REQUIRE(back.has_value());
  CHECK(RuleNames(*back) ==
        "mixed/Throttled mixed/target:ttft:p95_1h slo/slo:errors:ratio_rate5m ");

  if (access("/usr/bin/promtool", X_OK) == 0) {
    char path[] = "/tmp/mp-export-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, exported.yaml.data(), exported.yaml.size()) ==
            static_cast<ssize_t>(exported.yaml.size()));
    close(fd);
    FILE* pipe = popen(("promtool check rules " + std::string(path) + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    std::array<char, 4096> buf{};
    size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
      output.append(buf.data(), n);
    }
    const int status = pclose(pipe);
    unlink(path);
    INFO(output);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(output.find("SUCCESS: 3 rules found") != std::string::npos);
  }
}

}  // namespace
}  // namespace modelpulse::rules
