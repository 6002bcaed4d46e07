// `modelpulse test rules` and `modelpulse check rules`: promtool 2.42's unit-test format, loop
// and report (§3; cmd/promtool/unittest.go), and its rule-file check output.
#include "rules/internal/unit_test.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <ostream>
#include <set>
#include <span>
#include <sstream>

#include "common/yaml_reader.h"
#include "rules/internal/alerts.h"
#include "rules/internal/go_compat.h"
#include "rules/internal/group.h"
#include "rules/internal/rule_file.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

// ------------------------------------------------------------------------------ notation

bool IsNameChar(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// A PromQL number as the series notation writes it: signed decimal, exponent, Inf, NaN.
std::optional<double> ParseNumber(std::string_view s, size_t& pos) {
  size_t start = pos;
  size_t i = pos;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  auto word = [&](std::string_view w) {
    if (s.size() - i >= w.size()) {
      std::string lower(s.substr(i, w.size()));
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      return lower == w;
    }
    return false;
  };
  if (word("inf")) {
    pos = i + 3;
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (word("nan")) {
    pos = i + 3;
    return std::numeric_limits<double>::quiet_NaN();
  }
  size_t digits_start = i;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
  }
  if (i == digits_start || (i == digits_start + 1 && s[digits_start] == '.')) {
    return std::nullopt;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) {
      ++j;
    }
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
        ++j;
      }
      i = j;
    }
  }
  std::string text(s.substr(start, i - start));
  pos = i;
  return std::strtod(text.c_str(), nullptr);
}

// Model durations as promtool prints them ("1m30s", "0s").
std::string ModelDuration(Millis d) { return FormatPromDuration(d); }

// ------------------------------------------------------------------------------ input storage

// The test's input series, visible up to the current evaluation step as promtool's LazyLoader.
class InputSource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    std::vector<Series> out;
    to_ms = std::min(to_ms, visible_until_ms_);
    const CompiledSelector selector(matchers);
    for (const auto& [labels, samples] : series_) {
      if (!selector.Matches(labels)) {
        continue;
      }
      Series s{labels, {}};
      for (const Sample& smp : samples) {
        if (smp.t_ms >= from_ms && smp.t_ms <= to_ms) {
          s.samples.push_back(smp);
        }
      }
      if (!s.samples.empty()) {
        out.push_back(std::move(s));
      }
    }
    return out;
  }

  // A duplicate timestamp keeps the first sample, as Prometheus's appender does.
  void Add(const Labels& labels, int64_t t_ms, double v) {
    auto& samples = series_[labels];
    if (!samples.empty() && samples.back().t_ms >= t_ms) {
      return;
    }
    samples.push_back({t_ms, v});
  }
  void SetVisibleUntil(int64_t t_ms) { visible_until_ms_ = t_ms; }

 private:
  std::map<Labels, std::vector<Sample>> series_;
  int64_t visible_until_ms_ = 0;
};

// ------------------------------------------------------------------------------ test file

struct ExpAlert {
  Labels labels;
  Labels annotations;
};
struct AlertTest {
  Millis eval_time{0};
  std::string alertname;
  std::vector<ExpAlert> exp;
};
struct ExpSample {
  std::string labels;
  double value = 0;
};
struct PromqlTest {
  std::string expr;
  Millis eval_time{0};
  std::vector<ExpSample> exp;
};
struct InputSeries {
  std::string series;
  std::string values;
};
struct TestGroup {
  std::string name;
  Millis interval{0};
  std::vector<InputSeries> input;
  std::vector<AlertTest> alert_tests;
  std::vector<PromqlTest> promql_tests;
  Labels external_labels;
  std::string external_url;
};
struct TestFile {
  std::vector<std::string> rule_files;
  Millis evaluation_interval{60000};
  std::vector<std::string> group_eval_order;
  std::vector<TestGroup> tests;
};

// The problems of a test file, each at its place, worded as Go's yaml package words them for
// promtool: a type error "yaml: unmarshal errors:\n  line N: ...", a syntax error "yaml: line N:
// ...", and a field's own check without a position. promtool stops at the first problem, and so
// does the reader (every step returns false once one is reported).
class TestFileProblems {
 public:
  void TypeError(const YAML::Mark& at, std::string message) {
    Add(Kind::kType, at, std::move(message));
  }
  void SyntaxError(const YAML::Mark& at, std::string message) {
    Add(Kind::kSyntax, at, std::move(message));
  }
  void FieldError(std::string message) {
    Add(Kind::kField, YAML::Mark::null_mark(), std::move(message));
  }
  // Keys of `map` outside `known`, type errors of Go type `type` (CheckKnownFields).
  void UnknownFields(const YAML::Node& map, std::span<const std::string_view> known,
                     const std::string& type) {
    if (diag_.empty()) {
      first_kind_ = Kind::kType;
    }
    CheckKnownFields(map, known, type, diag_);
  }
  bool empty() const { return diag_.empty(); }

  // REQUIRES: a problem was reported.
  Error ToError() const {
    const yaml::Diagnostics::Problem& first = diag_.First();
    switch (first_kind_) {
      case Kind::kType:
        return Error::Parse("yaml: unmarshal errors:\n  line " + std::to_string(first.line) + ": " +
                            first.message);
      case Kind::kSyntax:
        return Error::Parse("yaml: line " + std::to_string(first.line) + ": " + first.message);
      case Kind::kField:
        break;
    }
    return Error::Parse(first.message);
  }

 private:
  enum class Kind { kType, kSyntax, kField };

  void Add(Kind kind, const YAML::Mark& at, std::string message) {
    if (diag_.empty()) {
      first_kind_ = kind;
    }
    diag_.Add(at, std::move(message));
  }

  yaml::Diagnostics diag_;
  Kind first_kind_ = Kind::kField;
};

// yaml.UnmarshalStrict into Go type `type`: a map with none but the `known` keys.
bool Strict(const YAML::Node& map, std::span<const std::string_view> known, std::string_view type,
            TestFileProblems& problems) {
  if (!map.IsMap()) {
    problems.TypeError(map.Mark(), "cannot unmarshal into main." + std::string(type));
    return false;
  }
  problems.UnknownFields(map, known, "main." + std::string(type));
  return problems.empty();
}

std::optional<Millis> DurationField(const YAML::Node& node, TestFileProblems& problems) {
  if (!node || node.IsNull()) {
    return Millis(0);
  }
  const std::string text = node.Scalar();
  if (text == "0") {
    return Millis(0);
  }
  auto d = ParsePromDuration(text);
  if (!d) {
    problems.FieldError("not a valid duration string: \"" + text + "\"");
    return std::nullopt;
  }
  return *d;
}

std::optional<Labels> StringMap(const YAML::Node& node, TestFileProblems& problems) {
  Labels out;
  if (!node || node.IsNull()) {
    return out;
  }
  if (!node.IsMap()) {
    problems.SyntaxError(node.Mark(), "expected a map of strings");
    return std::nullopt;
  }
  for (const auto& kv : node) {
    out[kv.first.Scalar()] = kv.second.IsNull() ? "" : kv.second.Scalar();
  }
  return out;
}

// Calls `f` on each item of a list (absent or null: none) until it returns false.
template <typename F>
bool ForEach(const YAML::Node& node, TestFileProblems& problems, F&& f) {
  if (!node || node.IsNull()) {
    return true;
  }
  if (!node.IsSequence()) {
    problems.SyntaxError(node.Mark(), "expected a list");
    return false;
  }
  for (const YAML::Node& item : node) {
    if (!f(item)) {
      return false;
    }
  }
  return true;
}

std::string ScalarOr(const YAML::Node& node) { return node ? node.Scalar() : ""; }

constexpr std::string_view kTestFileFields[] = {"rule_files", "evaluation_interval",
                                                "group_eval_order", "tests"};
constexpr std::string_view kTestGroupFields[] = {
    "interval",        "input_series", "alert_rule_test", "promql_expr_test",
    "external_labels", "external_url", "name"};
constexpr std::string_view kSeriesFields[] = {"series", "values"};
constexpr std::string_view kAlertTestFields[] = {"eval_time", "alertname", "exp_alerts"};
constexpr std::string_view kAlertFields[] = {"exp_labels", "exp_annotations"};
constexpr std::string_view kPromqlTestFields[] = {"expr", "eval_time", "exp_samples"};
constexpr std::string_view kSampleFields[] = {"labels", "value"};

bool ReadAlertTest(const YAML::Node& n, TestGroup& group, TestFileProblems& problems) {
  if (!Strict(n, kAlertTestFields, "alertTestCase", problems)) {
    return false;
  }
  AlertTest test;
  const std::optional<Millis> when = DurationField(n["eval_time"], problems);
  if (!when) {
    return false;
  }
  test.eval_time = *when;
  test.alertname = ScalarOr(n["alertname"]);
  const bool read = ForEach(n["exp_alerts"], problems, [&](const YAML::Node& a) {
    if (!Strict(a, kAlertFields, "alert", problems)) {
      return false;
    }
    std::optional<Labels> labels = StringMap(a["exp_labels"], problems);
    if (!labels) {
      return false;
    }
    std::optional<Labels> annotations = StringMap(a["exp_annotations"], problems);
    if (!annotations) {
      return false;
    }
    test.exp.push_back({std::move(*labels), std::move(*annotations)});
    return true;
  });
  if (read) {
    group.alert_tests.push_back(std::move(test));
  }
  return read;
}

bool ReadPromqlTest(const YAML::Node& n, TestGroup& group, TestFileProblems& problems) {
  if (!Strict(n, kPromqlTestFields, "promqlTestCase", problems)) {
    return false;
  }
  PromqlTest test;
  test.expr = ScalarOr(n["expr"]);
  const std::optional<Millis> when = DurationField(n["eval_time"], problems);
  if (!when) {
    return false;
  }
  test.eval_time = *when;
  const bool read = ForEach(n["exp_samples"], problems, [&](const YAML::Node& s) {
    if (!Strict(s, kSampleFields, "sample", problems)) {
      return false;
    }
    ExpSample e;
    e.labels = ScalarOr(s["labels"]);
    try {
      e.value = s["value"] ? s["value"].as<double>() : 0.0;
    } catch (const YAML::Exception&) {
      problems.TypeError(s["value"].Mark(),
                         "cannot unmarshal !!str `" + s["value"].Scalar() + "` into float64");
      return false;
    }
    test.exp.push_back(std::move(e));
    return true;
  });
  if (read) {
    group.promql_tests.push_back(std::move(test));
  }
  return read;
}

bool ReadTestGroup(const YAML::Node& t, TestFile& file, TestFileProblems& problems) {
  if (!Strict(t, kTestGroupFields, "testGroup", problems)) {
    return false;
  }
  TestGroup group;
  group.name = ScalarOr(t["name"]);
  group.external_url = ScalarOr(t["external_url"]);
  const std::optional<Millis> interval = DurationField(t["interval"], problems);
  if (!interval) {
    return false;
  }
  group.interval = *interval;
  std::optional<Labels> external_labels = StringMap(t["external_labels"], problems);
  if (!external_labels) {
    return false;
  }
  group.external_labels = std::move(*external_labels);
  const bool read =
      ForEach(t["input_series"], problems,
              [&](const YAML::Node& n) {
                if (!Strict(n, kSeriesFields, "series", problems)) {
                  return false;
                }
                group.input.push_back({ScalarOr(n["series"]), ScalarOr(n["values"])});
                return true;
              }) &&
      ForEach(t["alert_rule_test"], problems,
              [&](const YAML::Node& n) { return ReadAlertTest(n, group, problems); }) &&
      ForEach(t["promql_expr_test"], problems,
              [&](const YAML::Node& n) { return ReadPromqlTest(n, group, problems); });
  if (read) {
    file.tests.push_back(std::move(group));
  }
  return read;
}

bool ReadTestFile(const YAML::Node& root, TestFile& file, TestFileProblems& problems) {
  if (!root || root.IsNull()) {
    return true;
  }
  if (!Strict(root, kTestFileFields, "unitTestFile", problems)) {
    return false;
  }
  if (!ForEach(root["rule_files"], problems, [&](const YAML::Node& n) {
        file.rule_files.push_back(n.Scalar());
        return true;
      })) {
    return false;
  }
  const std::optional<Millis> eval = DurationField(root["evaluation_interval"], problems);
  if (!eval) {
    return false;
  }
  if (eval->count() > 0) {
    file.evaluation_interval = *eval;
  }
  return ForEach(root["group_eval_order"], problems,
                 [&](const YAML::Node& n) {
                   file.group_eval_order.push_back(n.Scalar());
                   return true;
                 }) &&
         ForEach(root["tests"], problems,
                 [&](const YAML::Node& t) { return ReadTestGroup(t, file, problems); });
}

Result<TestFile> ParseTestFile(const std::string& text) {
  TestFile file;
  TestFileProblems problems;
  try {
    ReadTestFile(YAML::Load(text), file, problems);
  } catch (const YAML::Exception& e) {
    problems.SyntaxError(e.mark, e.msg);
  }
  if (!problems.empty()) {
    return Fail(problems.ToError());
  }
  return file;
}

// ------------------------------------------------------------------------------ running

struct LabelsAndAnnotations {
  Labels labels;
  Labels annotations;
  bool operator<(const LabelsAndAnnotations& o) const {
    return labels != o.labels ? labels < o.labels : annotations < o.annotations;
  }
  bool operator==(const LabelsAndAnnotations& o) const {
    return labels == o.labels && annotations == o.annotations;
  }
};

std::string IndentLines(const std::string& lines, const std::string& indent) {
  std::string out;
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t nl = lines.find('\n', start);
    if (!first) {
      out += indent;
    }
    first = false;
    out += lines.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (nl == std::string::npos) {
      break;
    }
    out += '\n';
    start = nl + 1;
  }
  return out;
}

std::string AlertListText(const std::vector<LabelsAndAnnotations>& list) {
  if (list.empty()) {
    return "[]";
  }
  auto one = [](const LabelsAndAnnotations& la) {
    return "Labels:" + LabelsText(la.labels) + "\nAnnotations:" + LabelsText(la.annotations);
  };
  std::string s = "[\n0:" + IndentLines("\n" + one(list[0]), "  ");
  for (size_t i = 1; i < list.size(); ++i) {
    s += ",\n" + std::to_string(i) + ":" + IndentLines("\n" + one(list[i]), "  ");
  }
  return s + "\n]";
}

std::string SamplesText(const std::vector<std::pair<Labels, double>>& samples) {
  if (samples.empty()) {
    return "nil";
  }
  std::string s;
  for (size_t i = 0; i < samples.size(); ++i) {
    s += (i ? ", " : "") + LabelsText(samples[i].first) + " " + FormatGoFloatE(samples[i].second);
  }
  return s;
}

struct LoadedGroup {
  RuleGroup group;
  size_t order = 0;
};

std::vector<std::string> RunTestGroup(const TestGroup& tg, const TestFile& file,
                                      const std::vector<std::string>& rule_files) {
  std::vector<std::string> errs;
  InputSource input;
  for (const InputSeries& s : tg.input) {
    auto labels = ParseSeriesLabels(s.series);
    if (!labels) {
      return {"parse error: series " + GoQuote(s.series) + ": " + labels.error().message};
    }
    auto values = ExpandSeriesValues(s.values);
    if (!values) {
      return {"parse error: values " + GoQuote(s.values) + ": " + values.error().message};
    }
    for (size_t i = 0; i < values->size(); ++i) {
      if ((*values)[i]) {
        input.Add(*labels, static_cast<int64_t>(i) * tg.interval.count(), *(*values)[i]);
      }
    }
  }

  AlertingOptions options;
  options.external_labels = tg.external_labels;
  options.external_url = tg.external_url;
  options.evaluation_interval = tg.interval;
  // Evaluation runs at simulated timestamps; only the durations it reports read this clock.
  const SystemClock clock;
  std::vector<LoadedGroup> groups;
  for (const std::string& path : rule_files) {
    auto def = LoadRuleFile(path);
    if (!def) {
      errs.push_back(def.error().ToString());
      continue;
    }
    for (RuleGroupDef& g : def->groups) {
      auto it = std::find(file.group_eval_order.begin(), file.group_eval_order.end(), g.name);
      // Unlisted groups count as index 0, like promtool; ties keep file order.
      size_t order = it == file.group_eval_order.end()
                         ? 0
                         : static_cast<size_t>(it - file.group_eval_order.begin());
      groups.push_back({RuleGroup(std::move(g), options, clock), order});
    }
  }
  if (!errs.empty()) {
    return errs;
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const LoadedGroup& a, const LoadedGroup& b) { return a.order < b.order; });

  for (const AlertTest& t : tg.alert_tests) {
    if (t.alertname.empty()) {
      return {"an item under alert_rule_test misses required attribute alertname at eval_time " +
              ModelDuration(t.eval_time) +
              (tg.name.empty() ? "" : " (in TestGroup " + tg.name + ")")};
    }
  }
  int64_t maxt = 0;
  for (const auto& t : tg.alert_tests) {
    maxt = std::max<int64_t>(maxt, t.eval_time.count());
  }
  for (const auto& t : tg.promql_tests) {
    maxt = std::max<int64_t>(maxt, t.eval_time.count());
  }
  std::vector<int64_t> alert_times;
  for (const auto& t : tg.alert_tests) {
    alert_times.push_back(t.eval_time.count());
  }
  std::sort(alert_times.begin(), alert_times.end());
  alert_times.erase(std::unique(alert_times.begin(), alert_times.end()), alert_times.end());

  SeriesOverlay overlay(input);
  const int64_t step = file.evaluation_interval.count();
  size_t curr = 0;
  for (int64_t ts = 0; ts <= maxt; ts += step) {
    input.SetVisibleUntil(ts);
    std::vector<std::string> eval_errs;
    for (LoadedGroup& g : groups) {
      g.group.Evaluate(overlay, ts);
      for (const RuleEvalStatus& st : g.group.statuses()) {
        if (st.last_error) {
          eval_errs.push_back("    rule: " + st.name + ", time: " + GoDurationText(Millis(ts)) +
                              ", err: " + st.last_error->message);
        }
      }
    }
    errs.insert(errs.end(), eval_errs.begin(), eval_errs.end());
    if (!eval_errs.empty()) {
      return errs;
    }
    while (curr < alert_times.size() && ts <= alert_times[curr] && alert_times[curr] < ts + step) {
      const int64_t t = alert_times[curr];
      for (const AlertTest& test : tg.alert_tests) {
        if (test.eval_time.count() != t) {
          continue;
        }
        std::vector<LabelsAndAnnotations> got;
        for (const LoadedGroup& g : groups) {
          for (const AlertingRule* rule : g.group.alerting_rules()) {
            if (rule->def().name != test.alertname) {
              continue;
            }
            for (const Alert& a : rule->FiringAlerts()) {
              got.push_back({a.labels, a.annotations});
            }
          }
        }
        std::vector<LabelsAndAnnotations> exp;
        for (const ExpAlert& e : test.exp) {
          Labels labels = e.labels;
          labels["alertname"] = test.alertname;
          exp.push_back({labels, e.annotations});
        }
        std::sort(got.begin(), got.end());
        std::sort(exp.begin(), exp.end());
        if (got != exp) {
          std::string name = tg.name.empty() ? "" : "    name: " + tg.name + ",\n";
          errs.push_back(name + "    alertname: " + test.alertname +
                         ", time: " + ModelDuration(test.eval_time) +
                         ", \n        exp:" + IndentLines(AlertListText(exp), "            ") +
                         ", \n        got:" + IndentLines(AlertListText(got), "            "));
        }
      }
      ++curr;
    }
  }

  for (const PromqlTest& test : tg.promql_tests) {
    const std::string head =
        "    expr: " + GoQuote(test.expr) + ", time: " + ModelDuration(test.eval_time);
    auto query = Query::Parse(test.expr);
    Result<Vector> got_vec = query ? EvaluateInstant(*query, overlay, test.eval_time.count())
                                   : Result<Vector>(Fail(query.error()));
    if (!got_vec) {
      errs.push_back(head + ", err: " + got_vec.error().message);
      continue;
    }
    std::vector<std::pair<Labels, double>> got;
    for (const VectorSample& s : *got_vec) {
      got.emplace_back(s.labels, s.value);
    }
    std::vector<std::pair<Labels, double>> exp;
    bool bad = false;
    for (const ExpSample& e : test.exp) {
      auto labels = ParseSeriesLabels(e.labels);
      if (!labels) {
        errs.push_back(head + ", err: labels " + GoQuote(e.labels) + ": " + labels.error().message);
        bad = true;
        break;
      }
      exp.emplace_back(*labels, e.value);
    }
    if (bad) {
      continue;
    }
    auto by_labels = [](const auto& a, const auto& b) { return a.first < b.first; };
    std::stable_sort(got.begin(), got.end(), by_labels);
    std::stable_sort(exp.begin(), exp.end(), by_labels);
    // Exact float equality, so NaN never matches (reflect.DeepEqual).
    bool equal = got.size() == exp.size();
    for (size_t i = 0; equal && i < got.size(); ++i) {
      equal = got[i].first == exp[i].first && got[i].second == exp[i].second;
    }
    if (!equal) {
      errs.push_back(head + ",\n        exp: " + SamplesText(exp) +
                     "\n        got: " + SamplesText(got));
    }
  }
  return errs;
}

std::vector<std::string> RunTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return {"open " + path + ": no such file or directory"};
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  auto file = ParseTestFile(buf.str());
  if (!file) {
    return {file.error().message};
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::vector<std::string> rule_files;
  std::vector<std::string> errs;
  for (const std::string& pattern : file->rule_files) {
    std::string full = pattern;
    if (!pattern.empty() && pattern[0] != '/') {
      full = (dir / pattern).lexically_normal().string();
    }
    glob_t g{};
    if (glob(full.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        rule_files.emplace_back(g.gl_pathv[i]);
      }
    }
    globfree(&g);
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < file->group_eval_order.size(); ++i) {
    if (!seen.insert(file->group_eval_order[i]).second) {
      return {"group name repeated in evaluation order: " + file->group_eval_order[i]};
    }
  }
  for (const TestGroup& tg : file->tests) {
    auto e = RunTestGroup(tg, *file, rule_files);
    errs.insert(errs.end(), e.begin(), e.end());
  }
  return errs;
}

}  // namespace

// ------------------------------------------------------------------------------ public

Result<Labels> ParseSeriesLabels(std::string_view text) {
  Labels out;
  size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
    }
  };
  auto fail = [&](const std::string& msg) {
    return Fail(Error::Parse("1:" + std::to_string(i + 1) + ": parse error: " + msg));
  };
  skip();
  if (i < text.size() && IsNameChar(text[i], true)) {
    size_t start = i;
    while (i < text.size() && IsNameChar(text[i], false)) {
      ++i;
    }
    out["__name__"] = std::string(text.substr(start, i - start));
    skip();
  }
  if (i < text.size() && text[i] == '{') {
    ++i;
    while (true) {
      skip();
      if (i < text.size() && text[i] == '}') {
        ++i;
        break;
      }
      size_t start = i;
      while (i < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) {
        ++i;
      }
      if (start == i) {
        return fail("unexpected character in label matching");
      }
      std::string name(text.substr(start, i - start));
      skip();
      if (i >= text.size() || text[i] != '=') {
        return fail("expected \"=\" after label name " + name);
      }
      ++i;
      skip();
      if (i >= text.size() || (text[i] != '"' && text[i] != '\'' && text[i] != '`')) {
        return fail("expected a quoted label value");
      }
      const char quote = text[i++];
      std::string value;
      while (i < text.size() && text[i] != quote) {
        if (quote != '`' && text[i] == '\\' && i + 1 < text.size()) {
          const char e = text[i + 1];
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
          i += 2;
          continue;
        }
        value += text[i++];
      }
      if (i >= text.size()) {
        return fail("unterminated quoted string");
      }
      ++i;
      out[name] = value;
      skip();
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == '}') {
        ++i;
        break;
      }
      return fail("unexpected character after label value");
    }
  } else if (out.empty()) {
    return fail("unexpected end of input");
  }
  skip();
  if (i != text.size()) {
    return fail("unexpected trailing text");
  }
  return out;
}

Result<std::vector<std::optional<double>>> ExpandSeriesValues(std::string_view text,
                                                              size_t max_samples) {
  std::vector<std::optional<double>> out;
  std::istringstream in{std::string(text)};
  std::string item;
  auto too_many = [&] {
    return Fail(
        Error::InvalidArgument("too many samples (more than " + std::to_string(max_samples) + ")"));
  };
  while (in >> item) {
    auto bad = [&] {
      return Fail(Error::Parse("invalid value in series values: \"" + item + "\""));
    };
    auto parse_count = [&](size_t pos, uint64_t& n) {
      if (pos >= item.size()) {
        return false;
      }
      for (size_t k = pos; k < item.size(); ++k) {
        if (!std::isdigit(static_cast<unsigned char>(item[k]))) {
          return false;
        }
      }
      n = std::strtoull(item.c_str() + pos, nullptr, 10);
      return n <= max_samples;
    };
    if (item == "stale") {
      out.emplace_back(StaleNaN());
    } else if (item[0] == '_') {
      uint64_t n = 1;
      if (item.size() > 1 && (item[1] != 'x' || !parse_count(2, n))) {
        return bad();
      }
      if (out.size() + n > max_samples) {
        return too_many();
      }
      out.insert(out.end(), n, std::nullopt);
    } else {
      size_t pos = 0;
      auto a = ParseNumber(item, pos);
      if (!a) {
        return bad();
      }
      if (pos == item.size()) {
        out.emplace_back(*a);
      } else {
        double b = 0;
        if (item[pos] == '+' || item[pos] == '-') {
          const bool minus = item[pos] == '-';
          ++pos;
          size_t before = pos;
          auto delta = ParseNumber(item, pos);
          if (!delta || before == pos) {
            return bad();
          }
          b = minus ? -*delta : *delta;
        }
        uint64_t n = 0;
        if (pos >= item.size() || item[pos] != 'x' || !parse_count(pos + 1, n)) {
          return bad();
        }
        if (out.size() + n + 1 > max_samples) {
          return too_many();
        }
        double v = *a;
        for (uint64_t k = 0; k <= n; ++k) {
          out.emplace_back(v);
          v += b;  // repeated addition, as promtool: errors accumulate
        }
      }
    }
    if (out.size() > max_samples) {
      return too_many();
    }
  }
  return out;
}

std::string GoDurationText(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::string sign = ms < 0 ? "-" : "";
  ms = std::llabs(ms);
  if (ms < 1000) {
    return sign + std::to_string(ms) + "ms";
  }
  const int64_t hours = ms / 3600000;
  const int64_t minutes = (ms / 60000) % 60;
  const int64_t secs = (ms / 1000) % 60;
  const int64_t frac = ms % 1000;
  std::string out = sign;
  if (hours > 0) {
    out += std::to_string(hours) + "h";
  }
  if (hours > 0 || minutes > 0) {
    out += std::to_string(minutes) + "m";
  }
  out += std::to_string(secs);
  if (frac > 0) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') {
      f.pop_back();
    }
    out += f;
  }
  return out + "s";
}

int RunRuleTests(const std::vector<std::string>& files, std::ostream& out) {
  bool failed = false;
  for (const std::string& f : files) {
    out << "Unit Testing:  " << f << "\n";
    auto errs = RunTestFile(f);
    if (!errs.empty()) {
      out << "  FAILED:\n";
      for (const auto& e : errs) {
        out << e << "\n\n";
      }
      failed = true;
    } else {
      out << "  SUCCESS\n";
    }
    out << "\n";
  }
  return failed ? 1 : 0;
}

int CheckRuleFiles(const std::vector<std::string>& files, std::ostream& out) {
  bool failed = false;
  for (const std::string& f : files) {
    out << "Checking " << f << "\n";
    auto def = LoadRuleFile(f);
    if (!def) {
      failed = true;
      out << "  FAILED:\n";
      // promtool prints "file: line:col: message".
      std::string loc = def.error().location;
      if (loc.rfind(f + ":", 0) == 0) {
        loc = loc.substr(f.size() + 1);
      } else if (loc == f) {
        loc.clear();
      }
      out << f << ": " << (loc.empty() ? "" : loc + ": ") << def.error().message << "\n\n";
      continue;
    }
    size_t rules = 0;
    for (const auto& g : def->groups) {
      rules += g.rules.size();
    }
    out << "  SUCCESS: " << rules << " rules found\n\n";
  }
  return failed ? 1 : 0;
}

}  // namespace modelpulse::rules
