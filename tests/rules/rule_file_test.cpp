// Rule files: what Prometheus 2.42 accepts, what it rejects, and where the error is (1-based
// line:column in the file, pointing inside the expression for PromQL errors).
#include <doctest/doctest.h>

#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

Error ParseError(std::string_view text) {
  auto file = ParseRuleFile(text, "r.yaml");
  REQUIRE(!file);
  return file.error();
}

}  // namespace

TEST_CASE("a valid file: groups, intervals, limits, rules") {
  auto file = ParseRuleFile(R"(groups:
  - name: availability
    interval: 30s
    limit: 10
    rules:
      - record: target:probe_success:avg_5m
        expr: avg_over_time(probe_success[5m])
        labels: {source: modelpulse}
      - alert: ModelEndpointDown
        expr: max_over_time(probe_success[5m]) == 0
        for: 2m
        keep_firing_for: 5m
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.target }} is down'
  - name: empty
    rules: []
)",
                            "r.yaml");
  REQUIRE(file);
  REQUIRE(file->groups.size() == 2);
  const RuleGroupDef& g = file->groups[0];
  CHECK(g.name == "availability");
  CHECK(g.interval == Millis(30000));
  CHECK(g.limit == 10);
  REQUIRE(g.rules.size() == 2);
  CHECK(g.rules[0].kind == RuleDef::Kind::kRecording);
  CHECK(g.rules[0].name == "target:probe_success:avg_5m");
  CHECK(g.rules[0].labels.at("source") == "modelpulse");
  CHECK(g.rules[0].location == "r.yaml:6:9");
  CHECK(g.rules[1].kind == RuleDef::Kind::kAlerting);
  CHECK(g.rules[1].for_duration == Millis(120000));
  CHECK(g.rules[1].keep_firing_for == Millis(300000));
  CHECK(g.rules[1].expr.text() == "max_over_time(probe_success[5m]) == 0");
  CHECK(g.rules[1].annotations.at("summary") == "{{ $labels.target }} is down");
  CHECK(!file->groups[1].interval);
  CHECK(ParseRuleFile("", "empty.yaml")->groups.empty());
}

TEST_CASE("PromQL errors are located inside the expression") {
  Error plain = ParseError(R"(groups:
  - name: g
    rules:
      - alert: Foo
        expr: up == = 1
)");
  CHECK(plain.location == "r.yaml:5:21");
  CHECK(plain.message.rfind("group \"g\", rule 1, \"Foo\": could not parse expression: ", 0) == 0);

  Error quoted = ParseError(R"(groups:
  - name: g
    rules:
      - record: x
        expr: "sum(up) by"
)");
  CHECK(quoted.location.rfind("r.yaml:5:", 0) == 0);

  Error block = ParseError(R"(groups:
  - name: g
    rules:
      - alert: Ok
        expr: up
      - alert: Bar
        expr: |
          sum(rate(x[5m]))
            / on(a) nosuchfunction(y)
)");
  CHECK(block.location == "r.yaml:9:21");
  CHECK(block.message.rfind("group \"g\", rule 2, \"Bar\": could not parse expression: ", 0) == 0);
}

TEST_CASE("strict decoding: unknown keys, including 3.x-only ones, are errors") {
  Error unknown = ParseError(R"(groups:
  - name: g
    rules:
      - record: foo
        expr: up
        annotations: {a: b}
      - alert: Bar
        expr: up == 0
        bogus: 1
)");
  // Decoding precedes validation, as in Prometheus: the unknown key wins over rule 1's error.
  CHECK(unknown.location == "r.yaml:9:9");
  CHECK(unknown.message == "field bogus not found in type rulefmt.RuleNode");

  Error offset = ParseError(R"(groups:
  - name: g
    query_offset: 1m
    rules: []
)");
  CHECK(offset.location == "r.yaml:3:5");
  CHECK(offset.message == "field query_offset not found in type rulefmt.RuleGroup");
  CHECK(ParseError("group: []\n").message == "field group not found in type rulefmt.RuleGroups");
}

TEST_CASE("group validation") {
  Error empty = ParseError(R"(groups:
  - name: ""
    rules: []
)");
  CHECK(empty.message == "Groupname must not be empty");
  CHECK(empty.location == "r.yaml:2:5");
  Error repeated = ParseError(R"(groups:
  - name: g
    rules: []
  - name: g
    rules: []
)");
  CHECK(repeated.message == "groupname: \"g\" is repeated in the same file");
  CHECK(repeated.location == "r.yaml:4:5");
  Error interval = ParseError(R"(groups:
  - name: g
    interval: 1m30
    rules: []
)");
  CHECK(interval.location == "r.yaml:3:15");
}

TEST_CASE("rule validation messages") {
  auto rule = [](std::string body) {
    return ParseError("groups:\n  - name: g\n    rules:\n      - " + body);
  };
  const std::string prefix = "group \"g\", rule 1, ";
  CHECK(rule("record: a\n        alert: b\n        expr: up\n").message ==
        prefix + "\"b\": only one of 'record' and 'alert' must be set");
  CHECK(rule("expr: up\n").message == prefix + "\"\": one of 'record' or 'alert' must be set");
  Error no_expr = rule("alert: A\n        for: 1m\n");
  CHECK(no_expr.message == prefix + "\"A\": field 'expr' must be set in rule");
  CHECK(rule("record: r\n        expr: up\n        for: 1m\n").message ==
        prefix + "\"r\": invalid field 'for' in recording rule");
  CHECK(rule("record: r\n        expr: up\n        keep_firing_for: 1m\n").message ==
        prefix + "\"r\": invalid field 'keep_firing_for' in recording rule");
  Error bad_name = rule("record: 'bad name'\n        expr: up\n");
  CHECK(bad_name.message == prefix + "\"bad name\": invalid recording rule name: bad name");
  CHECK(bad_name.location == "r.yaml:4:17");
  CHECK(rule("alert: A\n        expr: up\n        labels: {__name__: x}\n").message ==
        prefix + "\"A\": invalid label name: __name__");
  CHECK(rule("alert: A\n        expr: up\n        labels: {1x: x}\n").message ==
        prefix + "\"A\": invalid label name: 1x");
  CHECK(rule("alert: A\n        expr: up\n        annotations: {a-b: x}\n").message ==
        prefix + "\"A\": invalid annotation name: a-b");
  Error tmpl =
      rule("alert: A\n        expr: up\n        annotations:\n          s: '{{ nope }}'\n");
  CHECK(tmpl.message == prefix +
                            "\"A\": annotation \"s\": template: __alert_A:1: function \"nope\" "
                            "not defined");
  CHECK(tmpl.location == "r.yaml:7:14");
  // Recording rules' labels are not templates.
  CHECK(
      ParseRuleFile("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n"
                    "        labels: {a: '{{ nope }}'}\n",
                    "r.yaml"));
}

TEST_CASE("YAML syntax errors and unreadable files") {
  Error syntax = ParseError("groups:\n  - name: g\n    rules: [\n");
  CHECK(syntax.location.rfind("r.yaml:", 0) == 0);
  CHECK(syntax.message.rfind("yaml: ", 0) == 0);
  auto missing = LoadRuleFile("/nonexistent/rules.yaml");
  REQUIRE(!missing);
  CHECK(missing.error().code == Error::Code::kIo);
}

}  // namespace modelpulse::rules
