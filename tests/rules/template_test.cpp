// Alert templates: Go float formatting (§1.6), humanize functions and the text/template subset,
// with the outputs promtool 2.42 printed (§1.5); the last case asks /usr/bin/promtool at test
// time to render the same templates and compares.
#include "rules/internal/template.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "rules/rules.h"
#include "tests/required_peer.h"
#include "tests/rules/promtool_util.h"

namespace modelpulse::rules {
namespace {

std::string Expand(std::string_view text, TemplateData data = {},
                   const TemplateQueryFunc& query = nullptr) {
  auto out = ExpandTemplate("__alert_T", text, data, query);
  return out ? *out : "ERROR: " + out.error().message;
}

}  // namespace

TEST_CASE("$value prints as Go's %v for float64") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {2, "2"},
      {-0.5, "-0.5"},
      {1000, "1000"},
      {100000, "100000"},
      {123456, "123456"},
      {12345.678, "12345.678"},
      {1000000, "1e+06"},
      {1234567, "1.234567e+06"},
      {123456789, "1.23456789e+08"},
      {1e21, "1e+21"},
      {1e100, "1e+100"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {0.000001, "1e-06"},
      {0.30000000000000004, "0.30000000000000004"},
      {nan, "NaN"},
      {inf, "+Inf"},
      {-inf, "-Inf"}};
  for (const auto& [v, text] : cases) {
    CAPTURE(text);
    CHECK(FormatGoFloat(v) == text);
    TemplateData data;
    data.value = v;
    CHECK(Expand("{{ $value }}", data) == text);
  }
  CHECK(FormatGoFloatE(3) == "3E+00");
  CHECK(FormatGoFloatE(0.15) == "1.5E-01");
  CHECK(FormatGoFloatE(0) == "0E+00");
  CHECK(FormatGoFloatE(123456789) == "1.23456789E+08");
}

TEST_CASE("humanize functions") {
  CHECK(Humanize(1234567) == "1.235M");
  CHECK(Humanize(0.00123) == "1.23m");
  CHECK(Humanize(-1500) == "-1.5k");
  CHECK(Humanize(999.95) == "1000");
  CHECK(Humanize(0) == "0");
  CHECK(Humanize1024(2048) == "2ki");
  CHECK(Humanize1024(1536) == "1.5ki");
  CHECK(Humanize1024(1) == "1");
  CHECK(HumanizeDuration(90061) == "1d 1h 1m 1s");
  CHECK(HumanizeDuration(3600) == "1h 0m 0s");
  CHECK(HumanizeDuration(59.5) == "59.5s");
  CHECK(HumanizeDuration(3) == "3s");
  CHECK(HumanizeDuration(0.05) == "50ms");
  CHECK(HumanizeDuration(0) == "0s");
  CHECK(HumanizePercentage(0.1234) == "12.34%");
  CHECK(HumanizePercentage(1) == "100%");
  CHECK(Expand("{{ 1700000000 | humanizeTimestamp }}") == "2023-11-14 22:13:20 +0000 UTC");
  CHECK(Expand("{{ 1700000000.5 | humanizeTimestamp }}") == "2023-11-14 22:13:20.5 +0000 UTC");
  // Milliseconds, truncated toward zero, as model.TimeFromUnixNano keeps them.
  CHECK(Expand("{{ 1700000000.0129 | humanizeTimestamp }}") == "2023-11-14 22:13:20.012 +0000 UTC");
  CHECK(Expand("{{ -1.5 | humanizeTimestamp }}") == "1969-12-31 23:59:58.5 +0000 UTC");
  CHECK(Expand("{{ \"1234567\" | humanize }}") == "1.235M");
  CHECK(Expand("{{ humanize \"x\" }}").rfind("ERROR: ", 0) == 0);
}

TEST_CASE("variables, fields, pipelines and functions") {
  TemplateData data;
  data.labels = {{"target", "gpt-4o@openai"}, {"model", "gpt-4o"}};
  data.value = 0.25;
  data.external_labels = {{"vantage", "eu-home"}};
  data.external_url = "http://mp:9464";
  CHECK(Expand("{{ $labels.target }} is down", data) == "gpt-4o@openai is down");
  CHECK(Expand("{{ .Labels.model }}/{{ .Value }}", data) == "gpt-4o/0.25");
  CHECK(Expand("{{ $externalLabels.vantage }} {{ $externalURL }}", data) ==
        "eu-home http://mp:9464");
  CHECK(Expand("{{ $value | humanizePercentage }}", data) == "25%");
  CHECK(Expand("[{{ $labels.nope }}]", data) == "[]");
  CHECK(Expand("{{ $labels }}") == "map[]");
  CHECK(Expand("{{ printf \"%.1f\" 2.25 }}") == "2.2");
  CHECK(Expand("{{ printf \"%.2f%%\" $value }}", data) == "0.25%");
  CHECK(Expand("{{ printf \"%s=%d\" \"n\" 3 }}") == "n=3");
  CHECK(Expand("{{ printf \"%v|%5.1f|%-4s|\" 1e6 2.0 \"ab\" }}") == "1e+06|  2.0|ab  |");
  CHECK(Expand("{{ \"sla monitor\" | title }}") == "Sla Monitor");
  CHECK(Expand("{{ toUpper \"abc\" }}{{ \"DEF\" | toLower }}") == "ABCdef");
  CHECK(Expand("{{ reReplaceAll \"(a+)\" \"<$1>\" \"baaa\" }}") == "b<aaa>");
  CHECK(Expand("{{ if match \"^gpt\" $labels.model }}yes{{ end }}", data) == "yes");
  CHECK(Expand("{{ parseDuration \"1h30m\" }}") == "5400");
  CHECK(Expand("{{ stripPort \"host:9090\" }} {{ stripDomain \"a.b.c:80\" }}") == "host a:80");
  CHECK(Expand("{{ $x := 5 }}{{ $x }}{{ $x = 6 }}{{ $x }}") == "56");
  CHECK(Expand("{{ len $labels }}", data) == "2");
  CHECK(Expand("{{ index $labels \"model\" }}", data) == "gpt-4o");
  CHECK(Expand("{{/* a comment */}}ok") == "ok");
  CHECK(Expand("a  {{- \"b\" -}}  c") == "abc");
}

TEST_CASE("if / else if / else, comparisons, and/or/not") {
  TemplateData data;
  for (auto [v, want] : std::vector<std::pair<double, std::string>>{
           {7, "high"},
           {3, "mid"},
           {0.5, "low"},
           // Go's gt is "not le": NaN, unordered, is greater.
           {std::numeric_limits<double>::quiet_NaN(), "high"}}) {
    data.value = v;
    CHECK(Expand("{{ if gt $value 5.0 }}high{{ else if ge $value 1.0 }}mid{{ else }}low{{ end }}",
                 data) == want);
  }
  CHECK(Expand("{{ if and true 0 }}a{{ else }}b{{ end }}") == "b");
  CHECK(Expand("{{ or 0 \"x\" }}") == "x");
  CHECK(Expand("{{ not false }}") == "true");
  CHECK(Expand("{{ eq \"a\" \"b\" \"a\" }}") == "true");
  // Go refuses to compare a float with an int constant.
  data.value = 1;
  CHECK(Expand("{{ gt $value 5 }}", data).find("incompatible types for comparison") !=
        std::string::npos);
  CHECK(Expand("{{ with $labels.x }}set{{ else }}unset{{ end }}") == "unset");
}

TEST_CASE("query, first, value, label, range") {
  TemplateQueryFunc query = [](std::string_view expr) -> Result<Vector> {
    if (expr == "vector(42)") {
      return Vector{{Labels{}, 42, 0}};
    }
    return Vector{{{{"target", "a"}}, 1, 0}, {{{"target", "b"}}, 2, 0}};
  };
  CHECK(Expand("{{ with query \"vector(42)\" }}{{ . | first | value }}{{ end }}", {}, query) ==
        "42");
  CHECK(Expand("{{ range query \"up\" }}{{ .Labels.target }}={{ .Value }};{{ end }}", {}, query) ==
        "a=1;b=2;");
  CHECK(Expand("{{ range $i, $s := query \"up\" }}{{ $i }}:{{ label \"target\" $s }} {{ end }}", {},
               query) == "0:a 1:b ");
  CHECK(Expand("{{ query \"up\" | first | label \"target\" }}", {}, query) == "a");
  // Not wired: an error value, not a crash.
  CHECK(Expand("{{ query \"up\" }}").find("not available") != std::string::npos);
}

TEST_CASE("template errors are values") {
  CHECK(!CheckTemplate("__alert_X", "{{ nope }}"));
  CHECK(CheckTemplate("__alert_X", "{{ nope }}").error().message ==
        "template: __alert_X:1: function \"nope\" not defined");
  CHECK(!CheckTemplate("__alert_X", "{{ if true }}unclosed"));
  CHECK(!CheckTemplate("__alert_X", "{{ $undefined }}"));
  CHECK(!CheckTemplate("__alert_X", "{{ \"unterminated }}"));
  CHECK(!CheckTemplate("__alert_X", "{{ end }}"));
  CHECK(CheckTemplate("__alert_X", "plain text"));
  CHECK(CheckTemplate("__alert_X", "{{ $labels.a }} {{ $value | humanize }}"));
  CHECK(Expand("{{ .Nope }}").find("can't evaluate field Nope") != std::string::npos);
  // Deep nesting is refused, not recursed into without bound.
  std::string deep;
  for (int i = 0; i < 200; ++i) {
    deep += "{{ if true }}";
  }
  CHECK(!CheckTemplate("__alert_X", deep));
  std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  CHECK(!CheckTemplate("__alert_X", parens));
}

TEST_CASE("printf widths and precisions: Go's parse, bounded output") {
  // std::stoul threw std::out_of_range on the rules thread here and aborted the daemon; Go
  // prints %!(NOVERB) for a number it calls too large and ends the format (promtool 2.42 output).
  CHECK(Expand(R"([{{ printf "%99999999999999999999s" "x" }}])") ==
        "[%!(NOVERB)%!(EXTRA string=x)]");
  // This one allocated 4 GB.
  CHECK(Expand(R"([{{ printf "%4000000000v|%.99999999999999999999s" "x" "y" }}])") ==
        "[%!(NOVERB)%!(EXTRA string=x, string=y)]");
  CHECK(Expand(R"([{{ printf "%99999999999999999999d|tail" 1 }}])") ==
        "[%!(NOVERB)%!(EXTRA int=1)]");
  CHECK(Expand(R"([{{ printf "%4000000000d" 1 }}])") == "[%!(NOVERB)%!(EXTRA int=1)]");
  CHECK(Expand(R"([{{ printf "%.99999999999s|x" "abc" }}])") == "[%!(NOVERB)%!(EXTRA string=abc)]");
  CHECK(Expand(R"([{{ printf "%.2s|%5s" "abc" "x" }}])") == "[ab|    x]");
  // Widths Go accepts are honoured in full (a fixed buffer cut these at 127 and 511 bytes).
  CHECK(Expand(R"({{ printf "%300d" 5 }})") == std::string(299, ' ') + "5");
  CHECK(Expand(R"({{ printf "%.600f" 1.5 }})") == "1.5" + std::string(599, '0'));
  // Over the 1 MiB limit: an error of the template, never gigabytes (Go would allocate 10 MB
  // for this width and 4 GB for a width given through a variable-free loop of such calls).
  const std::string too_wide = Expand(R"({{ printf "%2000000d" 1 }})");
  CHECK(too_wide.rfind("ERROR: ", 0) == 0);
  CHECK(too_wide.find("width 2000000 is over the limit of 1048576") != std::string::npos);
  CHECK(Expand(R"({{ printf "%.2000000f" 1.0 }})").find("precision 2000000") != std::string::npos);
}

TEST_CASE("a template's output and the strings its functions build are bounded") {
  // Each call is under 1 MiB; together they pass it: an error, not a 1.6 MB annotation.
  const std::string two = Expand(R"({{ printf "%800000d" 1 }}{{ printf "%800000d" 2 }})");
  CHECK(two.rfind("ERROR: ", 0) == 0);
  CHECK(two.find("output over the limit of 1048576 bytes") != std::string::npos);
  // Strings built and thrown away count too (16 MiB in all per expansion).
  const std::string discarded =
      Expand(R"({{ range $i, $x := query "q" }}{{ $s := printf "%1000000d" 1 }}{{ end }}ok)",
             TemplateData{}, [](std::string_view) -> Result<Vector> {
               return Vector(100, VectorSample{Labels{}, 1, 0});
             });
  CHECK(discarded.find("strings over the limit of 16777216 bytes") != std::string::npos);
  TemplateData data;
  data.labels = {{"v", std::string(200000, 'a')}};
  CHECK(Expand(R"({{ reReplaceAll "" "0123456789" $labels.v }})", data)
            .find("longer than 1048576 bytes") != std::string::npos);
}

namespace {

using modelpulse::testing::YamlSingle;

std::string SeriesValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "Inf" : "-Inf";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

// One alert instance per value; each instance carries every template as an annotation, with our
// expansion as the expected annotation of promtool's alert_rule_test. promtool passing means it
// renders every template the same way.
TEST_CASE("promtool 2.42 renders the templates as we do") {
  if (access("/usr/bin/promtool", X_OK) != 0 &&
      modelpulse::testing::SkipForMissingPeer("/usr/bin/promtool (Debian's prometheus)")) {
    return;
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {0, 2, -0.5, 1000, 100000, 123456, 12345.678, 1e6, 1234567,
                                      1.23456789e8, 1e21, 1e100, 0.0001, 0.00001, 0.000001,
                                      0.30000000000000004, nan, inf, -inf, 0.00123, -1500, 999.95,
                                      2048, 1536, 1, 90061, 3600, 59.5, 3, 0.05, 0.1234, 7, 0.25,
                                      // Past int64 seconds (humanizeDuration; negative
                                      // ones below, which humanizeTimestamp refuses here).
                                      5.55e26, 9.3e18};
  const std::vector<std::string> templates = {
      "{{ $value }}",
      "{{ $value | humanize }}",
      "{{ $value | humanize1024 }}",
      "{{ $value | humanizeDuration }}",
      "{{ $value | humanizePercentage }}",
      "{{ if gt $value 5.0 }}high{{ else if ge $value 1.0 }}mid{{ else }}low{{ end }}",
      "{{ printf \"%.2f%%\" $value }}",
      "{{ $labels.target }} is down",
      "{{ .Labels.model }}/{{ .Value }}",
      "[{{ $labels.nope }}]",
      "{{ len $labels }} {{ index $labels \"model\" }}",
      "{{ if match \"^gpt\" $labels.model }}yes{{ end }}",
      "{{ 1700000000 | humanizeTimestamp }}",
      "{{ 1700000000.5 | humanizeTimestamp }}",
      // Sub-millisecond fractions and negatives as Go converts them; values beyond int64
      // nanoseconds are an error (see "humanizeTimestamp beyond int64"), worded with Go's
      // template positions, which this comparison cannot share.
      "{{ if lt $value 9e9 }}{{ $value | humanizeTimestamp }}{{ end }}",
      "{{ 1700000000.0004 | humanizeTimestamp }} {{ -1.5 | humanizeTimestamp }}",
      "{{ \"1234567\" | humanize }}",
      "{{ printf \"%.1f\" 2.25 }}",
      "{{ printf \"%s=%d\" \"n\" 3 }}",
      "{{ printf \"%v|%5.1f|%-4s|\" 1e6 2.0 \"ab\" }}",
      "{{ \"sla monitor\" | title }}",
      "{{ toUpper \"abc\" }}{{ \"DEF\" | toLower }}",
      "{{ reReplaceAll \"(a+)\" \"<$1>\" \"baaa\" }}",
      "{{ parseDuration \"1h30m\" }}",
      "{{ stripPort \"host:9090\" }}",
      "{{ $x := 5 }}{{ $x }}{{ $x = 6 }}{{ $x }}",
      "{{/* a comment */}}ok",
      "a  {{- \"b\" -}}  c",
      "{{ if and true 0 }}a{{ else }}b{{ end }} {{ or 0 \"x\" }} {{ not false }}",
      "{{ eq \"a\" \"b\" \"a\" }}",
      "{{ with $labels.x }}set{{ else }}unset{{ end }}",
  };
  // The NaN instance has a rule of its own, so a failure on it names itself (Go's gt and ge are
  // "not le" and "not lt": NaN compares greater).
  const auto is_nan_instance = [&](size_t i) { return std::isnan(values[i]); };
  std::string rules = "groups:\n  - name: t\n    rules:\n";
  for (const bool nan_rule : {false, true}) {
    rules += std::string("      - alert: ") + (nan_rule ? "TNaN" : "T") +
             "\n        expr: " + (nan_rule ? "n" : "v") + " * 1\n        annotations:\n";
    for (size_t k = 0; k < templates.size(); ++k) {
      rules += "          a" + std::to_string(k) + ": " + YamlSingle(templates[k]) + "\n";
    }
  }
  std::string test =
      "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n"
      "  - interval: 1m\n    input_series:\n";
  std::string expected[2];
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string index = std::to_string(i);
    const bool nan_rule = is_nan_instance(i);
    test += std::string("      - series: '") + (nan_rule ? "n" : "v") + "{i=\"" + index +
            "\", target=\"gpt-4o@openai\", model=\"gpt-4o\"}'\n        values: '" +
            SeriesValue(values[i]) + " " + SeriesValue(values[i]) + "'\n";
    TemplateData data;
    data.labels = {{"i", index}, {"target", "gpt-4o@openai"}, {"model", "gpt-4o"}};
    data.value = values[i];
    std::string& out = expected[nan_rule ? 1 : 0];
    out += "          - exp_labels: {i: '" + index +
           "', target: gpt-4o@openai, model: gpt-4o}\n            exp_annotations:\n";
    for (size_t k = 0; k < templates.size(); ++k) {
      out += "              a" + std::to_string(k) + ": " + YamlSingle(Expand(templates[k], data)) +
             "\n";
    }
  }
  test += "    alert_rule_test:\n";
  for (const bool nan_rule : {false, true}) {
    test += std::string("      - eval_time: 1m\n        alertname: ") + (nan_rule ? "TNaN" : "T") +
            "\n        exp_alerts:\n" + expected[nan_rule ? 1 : 0];
  }

  char dir_template[] = "/tmp/modelpulse-template-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::filesystem::path dir = dir_template;
  std::ofstream(dir / "rules.yaml") << rules;
  std::ofstream(dir / "t.test.yaml") << test;
  modelpulse::testing::CheckPromtoolTestPasses(dir / "t.test.yaml");
  std::filesystem::remove_all(dir);
}

TEST_CASE("humanizeTimestamp beyond int64 nanoseconds is an error, as in Prometheus 2.42") {
  // libFuzzer's input: a cast C++ leaves undefined. promtool 2.42 answers the same message
  // (checked by hand through the test above with 1e21 and 1e100).
  for (const char* value :
       {"1e21", "-1e21", "1766666666666666666666666666666666666666666660000000"}) {
    CAPTURE(value);
    const std::string out = Expand(std::string("{{ ") + value + " | humanizeTimestamp }}");
    CHECK(out.find("error calling humanizeTimestamp: ") != std::string::npos);
    CHECK(out.find(" cannot be represented as a nanoseconds timestamp since it overflows int64") !=
          std::string::npos);
  }
  CHECK(Expand("{{ 1e21 | humanizeTimestamp }}").find("1e+21 cannot be represented") !=
        std::string::npos);
  // 9.2e9 s is still inside: the earliest time int64 nanoseconds reach is 1677, the latest 2262.
  CHECK(Expand("{{ 9.2e9 | humanizeTimestamp }}") == "2261-07-15 11:33:20 +0000 UTC");
}

TEST_CASE("humanizeDuration past int64 seconds prints what Prometheus 2.42 prints on amd64") {
  // libFuzzer's input: a cast C++ leaves undefined, and Go's int64(v) makes math.MinInt64.
  // The expected texts are promtool 2.42's (the positive one is also in the comparison above).
  CHECK(Expand("{{ 5.55e26 | humanizeDuration }}") == "-106751991167300d -15h -30m -8s");
  CHECK(Expand("{{ -5.55e26 | humanizeDuration }}") == "--106751991167300d -15h -30m -8s");
  CHECK(Expand("{{ 9.2e18 | humanizeDuration }}") == "106481481481481d 11h 33m 20s");
}

}  // namespace modelpulse::rules
