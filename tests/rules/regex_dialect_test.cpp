// Prometheus's regex dialect (Go's regexp, RE2 syntax) in label matchers, label_replace and the
// template functions: the same verdict and the same matches as promtool 2.42. The table's
// expectations were read from promtool; the last case asks /usr/bin/promtool again at test time.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "rules/internal/promql_parser.h"
#include "rules/promql.h"
#include "rules/rules.h"
#include "tests/required_peer.h"
#include "tests/rules/promtool_util.h"

namespace modelpulse::rules {
namespace {

using modelpulse::testing::RunCapture;
using modelpulse::testing::YamlSingle;

// The label values every accepted pattern is matched against (one series `x{v="..."}` each).
const std::vector<std::string> kValues = {"a",   "A", "aa", "aaa", "ab", "aB",     "abc", "ABC",
                                          "a.b", "7", "42", "x7",  "é",  "Straße", "ΣΑ"};

struct Row {
  std::string pattern;  // as written inside the PromQL string literal (backslashes doubled)
  bool accepted;        // promtool check rules' verdict
  std::set<std::string> matches;
};

// Each row checked with promtool 2.42 (`promtool check rules` for the verdict, `promtool test
// rules` for the matches, as the last test case does).
const std::vector<Row> kTable = {
    // Lookarounds, possessive forms, backreferences and other Perl/PCRE-only syntax: refused.
    {"a(?=b)", false, {}},
    {"a(?!b)", false, {}},
    {"(?<=a)b", false, {}},
    {"a++", false, {}},
    {"a*+", false, {}},
    {"(a)\\\\1", false, {}},
    {"(?<n>a)", false, {}},
    {"(?>a)", false, {}},
    {"(?#c)a", false, {}},
    {"(?x)a b", false, {}},
    {"\\\\Z", false, {}},
    {"\\\\C", false, {}},  // RE2 alone would accept it: Go does not
    {"\\\\e", false, {}},
    {"[[:foo:]]", false, {}},
    {"a{1001}", false, {}},
    {"a)(b", false, {}},  // valid inside ^(?:...)$, but Prometheus parses the pattern alone too
    // RE2 syntax: accepted, fully anchored.
    {"a", true, {"a"}},
    {"a|ab", true, {"a", "ab"}},
    {"a(?i)b", true, {"ab", "aB"}},
    {"(?i)abc", true, {"abc", "ABC"}},
    {"(?i:a)b.*", true, {"ab", "abc"}},
    {"\\\\d+", true, {"7", "42"}},
    {"x?\\\\d", true, {"7", "x7"}},
    {"\\\\pL+", true, {"a", "A", "aa", "aaa", "ab", "aB", "abc", "ABC", "é", "Straße", "ΣΑ"}},
    {"\\\\p{Greek}+", true, {"ΣΑ"}},
    {"\\\\PL", true, {"7"}},
    {"\\\\w+", true, {"a", "A", "aa", "aaa", "ab", "aB", "abc", "ABC", "7", "42", "x7"}},
    {"[[:upper:]]+", true, {"A", "ABC"}},
    {"a+?", true, {"a", "aa", "aaa"}},
    {"a{2,}?", true, {"aa", "aaa"}},
    {"(?U)a+", true, {"a", "aa", "aaa"}},
    {".", true, {"a", "A", "7", "é"}},
    {"..", true, {"aa", "ab", "aB", "42", "x7", "ΣΑ"}},
    {"\\\\Qa.b\\\\E", true, {"a.b"}},
    {"a\\\\.b", true, {"a.b"}},
    {"(?i)STRASSE|straße", true, {"Straße"}},
    {"\\\\x{3a3}.", true, {"ΣΑ"}},
    {"(?P<n>a)b", true, {"ab"}},
    {"(?P<n>a)(?P<n>b)c", true, {"abc"}},
    {"a{,3}", true, {}},  // Go reads "{,3}" as literal text
    {"(?s)a.*", true, {"a", "aa", "aaa", "ab", "aB", "abc", "a.b"}},
};

class TableSource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    std::vector<Series> out;
    for (const std::string& v : kValues) {
      out.push_back({{{"__name__", "x"}, {"v", v}}, {{0, 1}}});
    }
    return out;
  }
};

std::string SelectorText(const std::string& pattern) { return "x{v=~\"" + pattern + "\"}"; }

Result<std::set<std::string>> Matches(const std::string& pattern) {
  auto query = Query::Parse(SelectorText(pattern));
  if (!query) {
    return Fail(query.error());
  }
  auto value = query->Evaluate(TableSource(), 0);
  if (!value) {
    return Fail(value.error());
  }
  std::set<std::string> out;
  for (const VectorSample& s : std::get<Vector>(*value)) {
    out.insert(s.labels.at("v"));
  }
  return out;
}

}  // namespace

TEST_CASE("regex dialect: promtool's verdicts and matches for label matchers") {
  for (const Row& row : kTable) {
    CAPTURE(row.pattern);
    auto got = Matches(row.pattern);
    CHECK(got.has_value() == row.accepted);
    if (!got) {
      CHECK(got.error().code == Error::Code::kParse);
      continue;
    }
    CHECK(*got == row.matches);
    // !~ is the complement over the same series.
    auto negated = Query::Parse("x{v!~\"" + row.pattern + "\"}");
    REQUIRE(negated.has_value());
    auto value = negated->Evaluate(TableSource(), 0);
    REQUIRE(value.has_value());
    CHECK(std::get<Vector>(*value).size() == kValues.size() - row.matches.size());
  }
}

TEST_CASE("regex dialect: nesting beyond Go's limit is a parse error, never a stack overflow") {
  // std::regex recursed once per level and crashed `check rules`, `query` and the daemon here.
  auto nested = [](int depth, const std::string& open) {
    std::string out;
    for (int i = 0; i < depth; ++i)
      out += open;
    return out + "a" + std::string(static_cast<size_t>(depth), ')');
  };
  auto deep = promql::ParseExpr("x{v=~\"" + nested(30000, "(") + "\"}");
  REQUIRE_FALSE(deep.has_value());
  CHECK(deep.error().message.find("nests too deeply") != std::string::npos);
  // Go (promtool) accepts 998 nested groups and refuses 999.
  CHECK(promql::ParseExpr("x{v=~\"" + nested(998, "(") + "\"}").has_value());
  CHECK_FALSE(promql::ParseExpr("x{v=~\"" + nested(999, "(") + "\"}").has_value());
  // Non-capturing groups are not captures: RE2 parses them without recursion.
  auto non_capturing = Query::Parse("x{v=~\"" + nested(12000, "(?:") + "\"}");
  REQUIRE(non_capturing.has_value());
  auto value = non_capturing->Evaluate(TableSource(), 0);
  REQUIRE(value.has_value());
  CHECK(std::get<Vector>(*value).size() == 1);
}

TEST_CASE("regex dialect: label_replace expands $1, ${1}, $name and ${name} as Go does") {
  auto eval = [](const std::string& replacement, const std::string& regex) -> std::string {
    auto query = Query::Parse("label_replace(x{v=\"Straße\"}, \"d\", \"" + replacement +
                              "\", \"v\", \"" + regex + "\")");
    REQUIRE(query.has_value());
    auto value = query->Evaluate(TableSource(), 0);
    if (!value) {
      return "error: " + value.error().message;
    }
    const auto& vector = std::get<Vector>(*value);
    REQUIRE(vector.size() == 1);
    auto d = vector[0].labels.find("d");
    return d == vector[0].labels.end() ? "<none>" : d->second;
  };
  CHECK(eval("$1-${2}", "(S)(t).*") == "S-t");
  CHECK(eval("${head}|$tail", "(?P<head>St)(?P<tail>.*)") == "St|raße");
  CHECK(eval("$head$$", "(?P<head>St).*") == "St$");
  // "$1x" names the group "1x", which does not exist; "${1}x" is group 1 then "x".
  CHECK(eval("$1x|${1}x", "(S).*") == "|Sx");
  // A malformed reference keeps its '$'; an unmatched group is empty.
  CHECK(eval("${1|$-", "(S).*") == "${1|$-");
  CHECK(eval("[$2]", "(S)(z)?.*") == "[]");
  // Prometheus compiles "^(?:" + regex + ")$" for label_replace only, so this one is valid there.
  CHECK(eval("$1", "S)(.*") == "traße");
  // The whole value must match (anchored): no match leaves the series unchanged.
  CHECK(eval("$1", "(t)") == "<none>");
  CHECK(eval("$1", "(?i)(s).*") == "S");
  CHECK(eval("x", "a(?=b)").rfind("error: invalid regular expression in label_replace()", 0) == 0);
}

TEST_CASE("regex dialect: template match and reReplaceAll are Go's, unanchored") {
  auto expand = [](const std::string& text) {
    auto out = ExpandTemplate("__alert_T", text, TemplateData{}, nullptr);
    return out ? *out : "ERROR: " + out.error().message;
  };
  CHECK(expand(R"T({{ match "\\d+" "ab12" }})T") == "true");
  CHECK(expand(R"T({{ match "^\\d+$" "ab12" }})T") == "false");
  CHECK(expand(R"T({{ match "\\pL" "ΣΑ" }})T") == "true");
  CHECK(expand(R"T({{ reReplaceAll "(?P<k>\\w+)=(\\w+)" "${2}:$k" "a=1 b=2" }})T") == "1:a 2:b");
  // Go's empty-match rules: "x*" on "abc" replaces each gap once.
  CHECK(expand(R"T({{ reReplaceAll "x*" "-" "abc" }})T") == "-a-b-c-");
  CHECK(expand(R"T({{ reReplaceAll "a*" "-" "baaac" }})T") == "-b-c-");
  CHECK(expand(R"T({{ reReplaceAll "" "." "ΣΑ" }})T") == ".Σ.Α.");
  CHECK(
      expand(R"T({{ match "a(?=b)" "ab" }})T").find("error calling match: error parsing regexp") !=
      std::string::npos);
  CHECK(expand(R"T({{ reReplaceAll "a++" "" "a" }})T").find("error calling reReplaceAll") !=
        std::string::npos);
  // A catastrophic pattern for a backtracking engine is linear here.
  const std::string long_a(1 << 16, 'a');
  CHECK(expand("{{ match \"^(a+)+$\" \"" + long_a + "b\" }}") == "false");
}

// The table again, through promtool itself: refused rows must fail `promtool check rules`, and
// one `promtool test rules` file holds every accepted row with our matches as its expectation.
TEST_CASE("regex dialect: promtool 2.42 agrees with every row of the table") {
  if (access("/usr/bin/promtool", X_OK) != 0 &&
      modelpulse::testing::SkipForMissingPeer("/usr/bin/promtool (Debian's prometheus)")) {
    return;
  }
  char dir_template[] = "/tmp/modelpulse-regex-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::filesystem::path dir = dir_template;
  std::string test =
      "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n";
  for (const std::string& v : kValues) {
    test += "      - series: " + YamlSingle("x{v=\"" + v + "\"}") + "\n        values: '1'\n";
  }
  test += "    promql_expr_test:\n";
  for (const Row& row : kTable) {
    CAPTURE(row.pattern);
    if (!row.accepted) {
      std::ofstream(dir / "refused.yaml")
          << "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: "
          << YamlSingle(SelectorText(row.pattern)) << "\n";
      int status = 0;
      const std::string output =
          RunCapture("/usr/bin/promtool check rules " + (dir / "refused.yaml").string(), status);
      INFO(output);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) != 0);
      continue;
    }
    auto got = Matches(row.pattern);
    REQUIRE(got.has_value());
    test += "      - expr: " + YamlSingle(SelectorText(row.pattern)) +
            "\n        eval_time: 0s\n        exp_samples:\n";
    for (const std::string& v : *got) {
      test +=
          "          - labels: " + YamlSingle("x{v=\"" + v + "\"}") + "\n            value: 1\n";
    }
    if (got->empty()) {
      test += "          []\n";
    }
  }
  std::ofstream(dir / "accepted.test.yaml") << test;
  modelpulse::testing::CheckPromtoolTestPasses(dir / "accepted.test.yaml");
  std::filesystem::remove_all(dir);
}

}  // namespace modelpulse::rules
