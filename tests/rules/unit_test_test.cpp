// The promtool-compatible runner: expanding notation, series notation, and the shipped rule
// tests run both by Debian's promtool 2.42 and by RunRuleTests, plus failure reports compared
// with promtool's byte for byte.
#include "rules/internal/unit_test.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rules/internal/go_compat.h"
#include "rules/rules.h"
#include "tests/required_peer.h"

namespace modelpulse::rules {
namespace {

namespace fs = std::filesystem;
using modelpulse::testing::SkipForMissingPeer;

const fs::path kRepo = fs::path(MODELPULSE_SOURCE_ROOT);

std::vector<std::string> ShippedTests() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kRepo / "config/rules/tests")) {
    if (e.path().extension() == ".yaml") {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Run {
  int code = -1;
  std::string output;
};

// Runs a command line (no user input in it) and captures stdout+stderr.
Run Shell(const std::string& command) {
  Run run;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return run;
  }
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    run.output.append(buf.data(), n);
  }
  const int status = pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

bool HavePromtool() { return access("/usr/bin/promtool", X_OK) == 0; }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/modelpulse-ruletest-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

TEST_CASE("expanding notation expands as promtool 2.42 does") {
  auto v = ExpandSeriesValues("1 _x2 5x1 stale 9-3x2");
  REQUIRE(v);
  REQUIRE(v->size() == 9);
  CHECK((*v)[0] == 1.0);
  CHECK(!(*v)[1]);
  CHECK(!(*v)[2]);
  CHECK((*v)[3] == 5.0);
  CHECK((*v)[4] == 5.0);
  CHECK(IsStaleNaN(*(*v)[5]));
  CHECK((*v)[6] == 9.0);
  CHECK((*v)[7] == 6.0);
  CHECK((*v)[8] == 3.0);

  auto x = ExpandSeriesValues("1x4");
  REQUIRE(x);
  CHECK(x->size() == 5);

  // Repeated float addition: 0.1 three times is not 0.3.
  auto sum = ExpandSeriesValues("0+0.1x3");
  REQUIRE(sum);
  CHECK(*(*sum)[3] == 0.30000000000000004);

  auto specials = ExpandSeriesValues("Inf -Inf NaN 1e3 -2.5 +3");
  REQUIRE(specials);
  CHECK(std::isinf(*(*specials)[0]));
  CHECK(*(*specials)[1] < 0);
  CHECK(std::isnan(*(*specials)[2]));
  CHECK(*(*specials)[3] == 1000.0);
  CHECK(*(*specials)[4] == -2.5);
  CHECK(*(*specials)[5] == 3.0);

  auto neg = ExpandSeriesValues("-1-1x2 1+-1x1");
  REQUIRE(neg);
  CHECK(neg->size() == 5);
  CHECK(*(*neg)[2] == -3.0);
  CHECK(*(*neg)[4] == 0.0);

  CHECK(!ExpandSeriesValues("1x"));
  CHECK(!ExpandSeriesValues("abc"));
  CHECK(!ExpandSeriesValues("_x"));
  CHECK(!ExpandSeriesValues("1x100", 50));
}

TEST_CASE("series notation parses names, labels and quoting") {
  auto a = ParseSeriesLabels(R"(probe_success{target="a", model='m1'})");
  REQUIRE(a);
  CHECK(*a == Labels{{"__name__", "probe_success"}, {"target", "a"}, {"model", "m1"}});
  auto b = ParseSeriesLabels(R"({__name__="x:y", a="q\"uote"})");
  REQUIRE(b);
  CHECK(b->at("__name__") == "x:y");
  CHECK(b->at("a") == "q\"uote");
  auto c = ParseSeriesLabels("{}");
  REQUIRE(c);
  CHECK(c->empty());
  CHECK(ParseSeriesLabels("up")->at("__name__") == "up");
  CHECK(!ParseSeriesLabels("up{a=b}"));
  CHECK(!ParseSeriesLabels("up{a=\"b\""));
}

TEST_CASE("Go duration text for evaluation errors") {
  CHECK(GoDurationText(Millis(0)) == "0s");
  CHECK(GoDurationText(Millis(60000)) == "1m0s");
  CHECK(GoDurationText(Millis(90000)) == "1m30s");
  CHECK(GoDurationText(Millis(3600000)) == "1h0m0s");
  CHECK(GoDurationText(Millis(1500)) == "1.5s");
  CHECK(GoDurationText(Millis(250)) == "250ms");
}

TEST_CASE("shipped rule tests pass with promtool 2.42") {
  if (!HavePromtool() && SkipForMissingPeer("/usr/bin/promtool (Debian's prometheus)")) {
    return;
  }
  std::string cmd = "/usr/bin/promtool test rules";
  for (const auto& f : ShippedTests()) {
    cmd += " '" + f + "'";
  }
  Run run = Shell(cmd);
  INFO(run.output);
  CHECK(run.code == 0);
  CHECK(run.output.find("FAILED") == std::string::npos);
}

TEST_CASE("shipped rule tests pass with RunRuleTests") {
  const auto files = ShippedTests();
  REQUIRE(files.size() >= 4);
  std::ostringstream out;
  const int code = RunRuleTests(files, out);
  INFO(out.str());
  CHECK(code == 0);
  CHECK(out.str().find("FAILED") == std::string::npos);
}

TEST_CASE("shipped rule files pass CheckRuleFiles") {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(kRepo / "config/rules")) {
    if (e.path().extension() == ".yaml") {
      files.push_back(e.path().string());
    }
  }
  std::ostringstream out;
  CHECK(CheckRuleFiles(files, out) == 0);
  CHECK(out.str().find("SUCCESS: 4 rules found") != std::string::npos);
}

// Failing tests: the report must be what promtool prints, byte for byte.
TEST_CASE("failure reports match promtool's") {
  TempDir dir;
  dir.Write("rules.yaml", R"(groups:
  - name: g
    rules:
      - alert: ProbeFailing
        expr: probe_success == 0
        for: 3m
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.target }} failing at {{ $value }}'
      - record: job:x:avg
        expr: avg_over_time(x[5m])
)");
  const std::string test = dir.Write("t.test.yaml", R"(rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - name: first
    interval: 1m
    input_series:
      - series: 'probe_success{target="a"}'
        values: '1 1 0 0 0 0 0 1 1'
      - series: 'x{t="a"}'
        values: '1 1 0 1 1 1'
    alert_rule_test:
      - eval_time: 4m
        alertname: ProbeFailing
        exp_alerts:
          - exp_labels: {severity: page, target: a}
      - eval_time: 5m30s
        alertname: ProbeFailing
        exp_alerts:
          - exp_labels: {severity: page, target: a}
      - eval_time: 7m
        alertname: ProbeFailing
        exp_alerts: []
    promql_expr_test:
      - expr: job:x:avg
        eval_time: 5m
        exp_samples:
          - labels: 'job:x:avg{t="a"}'
            value: 0.8
      - expr: ALERTS_FOR_STATE
        eval_time: 5m
        exp_samples:
          - labels: 'ALERTS_FOR_STATE{alertname="ProbeFailing", severity="page", target="a"}'
            value: 120
      - expr: x
        eval_time: 1m
        exp_samples: []
      - expr: x{
        eval_time: 1m
  - interval: 1m
    input_series:
      - series: 'up{job="a"}'
        values: '1 2 3'
    promql_expr_test:
      - expr: up
        eval_time: 2m
        exp_samples:
          - labels: 'up{job="a"}'
            value: 3
          - labels: 'up{job="b"}'
            value: 1
)");
  std::ostringstream ours;
  const int code = RunRuleTests({test}, ours);
  CHECK(code == 1);
  if (!HavePromtool() && SkipForMissingPeer("/usr/bin/promtool (Debian's prometheus)")) {
    return;
  }
  Run theirs = Shell("/usr/bin/promtool test rules '" + test + "'");
  CHECK(theirs.code == 1);
  // Both name the file the same way; the parse error text of "x{" is the engine's own.
  std::string a = ours.str();
  std::string b = theirs.output;
  auto strip_parse_error = [](std::string s) {
    const size_t at = s.find("expr: \"x{\"");
    if (at != std::string::npos) {
      s.erase(at, s.find('\n', at) - at);
    }
    return s;
  };
  CHECK(strip_parse_error(a) == strip_parse_error(b));
}

TEST_CASE("a rule evaluation error stops the test group like promtool") {
  TempDir dir;
  dir.Write("rules.yaml", R"(groups:
  - name: g
    rules:
      - alert: Dup
        expr: probe_success
        labels: {target: same}
)");
  const std::string test = dir.Write("t.test.yaml", R"(rule_files: [rules.yaml]
tests:
  - interval: 1m
    input_series:
      - series: 'probe_success{target="a"}'
        values: '1 1'
      - series: 'probe_success{target="b"}'
        values: '1 1'
    alert_rule_test:
      - eval_time: 1m
        alertname: Dup
)");
  std::ostringstream ours;
  CHECK(RunRuleTests({test}, ours) == 1);
  CHECK(ours.str().find("    rule: Dup, time: 0s, err: vector contains metrics with the same "
                        "labelset after applying alert labels") != std::string::npos);
  if (!HavePromtool() && SkipForMissingPeer("/usr/bin/promtool (Debian's prometheus)")) {
    return;
  }
  Run theirs = Shell("/usr/bin/promtool test rules '" + test + "'");
  CHECK(ours.str() == theirs.output);
}

TEST_CASE("strict decoding of test files") {
  TempDir dir;
  const std::string test = dir.Write("t.test.yaml", R"(rule_files: []
tests:
  - interval: 1m
    bogus: 1
)");
  std::ostringstream ours;
  CHECK(RunRuleTests({test}, ours) == 1);
  CHECK(ours.str().find("line 4: field bogus not found in type main.testGroup") !=
        std::string::npos);
}

TEST_CASE("test file problems are worded as Go's yaml package words them, the first one only") {
  TempDir dir;
  const auto report = [&](const std::string& text) {
    std::ostringstream out;
    CHECK(RunRuleTests({dir.Write("t.test.yaml", text)}, out) == 1);
    return out.str();
  };
  CHECK(report("tests: 5\n").find("  FAILED:\nyaml: line 1: expected a list\n") !=
        std::string::npos);
  CHECK(report("evaluation_interval: soon\n").find("  FAILED:\nnot a valid duration string: "
                                                    "\"soon\"\n") != std::string::npos);
  CHECK(report("tests: [5]\n").find("  FAILED:\nyaml: unmarshal errors:\n  line 1: cannot "
                                     "unmarshal into main.testGroup\n") != std::string::npos);
  CHECK(report(R"(tests:
  - interval: 1m
    promql_expr_test:
      - expr: up
        exp_samples:
          - labels: up
            value: abc
)")
            .find("  FAILED:\nyaml: unmarshal errors:\n  line 7: cannot unmarshal !!str `abc` "
                  "into float64\n") != std::string::npos);
  CHECK(report("tests:\n  - external_labels: [a]\n")
            .find("  FAILED:\nyaml: line 2: expected a map of strings\n") != std::string::npos);
  // Two unknown keys: only the first is reported, as promtool stops there.
  const std::string two = report("tests:\n  - bogus: 1\n    other: 2\n");
  CHECK(two.find("line 2: field bogus not found in type main.testGroup") != std::string::npos);
  CHECK(two.find("field other") == std::string::npos);
  CHECK(report("tests: [\n").find("  FAILED:\nyaml: line ") != std::string::npos);
}

}  // namespace modelpulse::rules
