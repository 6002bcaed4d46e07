// Differential test of the PromQL engine against promtool 2.42.
//
// Reads a corpus (series in promtool's expanding notation, eval times, expressions), evaluates
// every expression at every eval time with OUR engine, writes a promtool unit-test file whose
// exp_samples are our results printed with %.17g (round-trips exactly; promtool 2.42 compares
// floats with ==), and runs `promtool test rules` on it. promtool passing = bit-for-bit agreement.
//
// Corpus directives, one a line (`#` starts a comment line):
//   series <selector> <values>  a series in promtool's expanding notation, 1m apart from t=0
//   eval <duration>...          the eval times for every following expression
//   expr <PromQL>               must evaluate here; an error here fails the run
//   expr-error <PromQL>         must fail here at every eval time, and promtool must fail too
//   expr-range <PromQL>         gives a range vector or string here at every eval time;
//                               promtool's test format cannot compare those (it reports "rule
//                               result is not a vector or scalar", which is checked), so they
//                               are counted as not compared
// NaN never equals NaN in promtool's comparison, so a result holding NaN is compared through
// `(e) >= -Inf` (every non-NaN sample, value and labels) and `(e) >= bool -Inf` (which samples
// are NaN) instead of being dropped.
//
// Usage: promql_differential <corpus> <out.yml> <promtool> <minimum compared cases>
// Exit: 0 agreement, 1 disagreement, an unexpected error, too few cases or a bad corpus; 77 when
// promtool is missing and MODELPULSE_ALLOW_MISSING_PEERS=1 (refused when CI=true), which ctest
// reports as Skipped (SKIP_RETURN_CODE); a missing promtool otherwise fails.

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/duration.h"
#include "rules/internal/promql_parser.h"
#include "rules/promql.h"

namespace {

using modelpulse::Labels;
using modelpulse::Result;
using modelpulse::rules::LabelMatcher;
using modelpulse::rules::Query;
using modelpulse::rules::Sample;
using modelpulse::rules::SampleSource;
using modelpulse::rules::Series;

constexpr int64_t kIntervalMs = 60'000;

// Returns every series with samples in the window, filtered by metric name only: the evaluator
// must re-apply the other matchers itself.
class MemorySource : public SampleSource {
 public:
  std::vector<Series> series;
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    std::vector<Series> out;
    for (const Series& s : series) {
      bool name_ok = true;
      for (const LabelMatcher& m : matchers) {
        if (m.name == "__name__" && m.type == LabelMatcher::Type::kEqual) {
          auto it = s.labels.find("__name__");
          name_ok = it != s.labels.end() && it->second == m.value;
        }
      }
      if (!name_ok) {
        continue;
      }
      Series copy{s.labels, {}};
      for (const Sample& sample : s.samples) {
        if (sample.t_ms >= from_ms && sample.t_ms <= to_ms) {
          copy.samples.push_back(sample);
        }
      }
      out.push_back(std::move(copy));
    }
    return out;
  }
};

double ParseValue(const std::string& text, bool& ok) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  ok = !text.empty() && end == text.c_str() + text.size();
  return v;
}

// promtool's expanding notation: a, _, _xN, axN, a+bxN, a-bxN, stale.
bool Expand(const std::string& values, std::vector<Sample>& out) {
  std::istringstream in(values);
  std::string item;
  int64_t index = 0;
  while (in >> item) {
    if (item == "_") {
      ++index;
      continue;
    }
    if (item.rfind("_x", 0) == 0) {
      index += std::stoll(item.substr(2));
      continue;
    }
    if (item == "stale") {
      out.push_back({index++ * kIntervalMs, std::bit_cast<double>(0x7ff0000000000002ULL)});
      continue;
    }
    size_t x = item.rfind('x');
    bool ok = true;
    if (x == std::string::npos) {
      double v = ParseValue(item, ok);
      if (!ok) {
        return false;
      }
      out.push_back({index++ * kIntervalMs, v});
      continue;
    }
    int64_t times = std::stoll(item.substr(x + 1));
    std::string head = item.substr(0, x);
    size_t op = std::string::npos;
    for (size_t i = 1; i < head.size(); ++i) {
      if ((head[i] == '+' || head[i] == '-') && head[i - 1] != 'e' && head[i - 1] != 'E') {
        op = i;
      }
    }
    double current = ParseValue(op == std::string::npos ? head : head.substr(0, op), ok);
    double step = 0;
    if (op != std::string::npos) {
      bool step_ok = true;
      step = ParseValue(head.substr(op), step_ok);
      ok = ok && step_ok;
    }
    if (!ok) {
      return false;
    }
    for (int64_t j = 0; j <= times; ++j) {
      out.push_back({index++ * kIntervalMs, current});
      current += step;
    }
  }
  return true;
}

std::string Quote(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string SeriesNotation(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    out += (first ? "" : ", ") + name + "=" + Quote(value);
    first = false;
  }
  return out + "}";
}

std::string YamlSingle(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  return out + "'";
}

std::string YamlFloat(double v) {
  if (std::isinf(v)) {
    return v > 0 ? ".inf" : "-.inf";
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string GoDuration(int64_t ms) {
  return modelpulse::FormatPromDuration(modelpulse::Millis(ms));
}

// A promql_expr_test entry: `expr` at `t_ms` must give exactly `results`.
void WriteCase(std::ostringstream& tests, const std::string& expr, int64_t t_ms,
               const std::vector<std::pair<Labels, double>>& results) {
  tests << "      - expr: " << YamlSingle(expr) << "\n"
        << "        eval_time: " << GoDuration(t_ms) << "\n"
        << "        exp_samples:" << (results.empty() ? " []" : "") << "\n";
  for (const auto& [labels, v] : results) {
    tests << "          - labels: " << YamlSingle(SeriesNotation(labels)) << "\n"
          << "            value: " << YamlFloat(v) << "\n";
  }
}

bool EnvIs(const char* name, const std::string& value) {
  const char* set = std::getenv(name);
  return set != nullptr && value == set;
}

struct Run {
  int status = -1;
  std::string output;
};

Run RunPromtool(const std::string& promtool, const std::string& file) {
  Run run;
  std::string command = promtool + " test rules " + file + " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return run;
  }
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) {
    run.output += buf;
  }
  run.status = pclose(pipe);
  return run;
}

int CountOccurrences(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: promql_differential <corpus> <out.yml> <promtool> <minimum cases>\n";
    return 1;
  }
  std::string promtool = argv[3];
  const int minimum_cases = std::atoi(argv[4]);
  if (access(promtool.c_str(), X_OK) != 0) {
    const bool asked = EnvIs("MODELPULSE_ALLOW_MISSING_PEERS", "1");
    const bool opted_out = asked && !EnvIs("CI", "true");
    std::cout << (opted_out ? "MODELPULSE SKIPPED: " : "FAILED: ") << "missing " << promtool
              << " (Debian's prometheus package)"
              << (opted_out ? "\n"
                  : asked   ? "; MODELPULSE_ALLOW_MISSING_PEERS is refused when CI=true\n"
                            : "; MODELPULSE_ALLOW_MISSING_PEERS=1 skips it locally\n");
    return opted_out ? 77 : 1;
  }
  std::ifstream corpus(argv[1]);
  if (!corpus) {
    std::cerr << "cannot read " << argv[1] << "\n";
    return 1;
  }
  MemorySource source;
  std::vector<std::pair<std::string, std::string>> input_series;  // notation, values
  std::vector<int64_t> eval_times;
  std::ostringstream tests;
  // Entries promtool must fail: expected errors and range results, each at one eval time.
  std::ostringstream must_fail;
  int cases = 0, samples = 0, nan_cases = 0, empty = 0, unexpected = 0;
  int expected_errors = 0, range_results = 0;
  std::string line;
  int line_no = 0;
  while (std::getline(corpus, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    size_t space = line.find(' ');
    std::string kind = line.substr(0, space);
    std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
    if (kind == "series") {
      // The selector ends at the closing brace; the values follow.
      size_t brace = rest.find('}');
      std::string selector = rest.substr(0, brace + 1);
      std::string values = rest.substr(brace + 2);
      auto expr = modelpulse::rules::promql::ParseExpr(selector);
      const auto* vs =
          expr ? std::get_if<modelpulse::rules::promql::VectorSelector>(&(*expr)->node) : nullptr;
      if (vs == nullptr) {
        std::cerr << "line " << line_no << ": bad series selector\n";
        return 1;
      }
      Series series;
      for (const auto& m : vs->matchers) {
        series.labels[m.matcher.name] = m.matcher.value;
      }
      if (!Expand(values, series.samples)) {
        std::cerr << "line " << line_no << ": bad values\n";
        return 1;
      }
      input_series.emplace_back(SeriesNotation(series.labels), values);
      source.series.push_back(std::move(series));
    } else if (kind == "eval") {
      eval_times.clear();
      std::istringstream in(rest);
      std::string d;
      while (in >> d) {
        auto ms = modelpulse::ParsePromDuration(d);
        if (!ms) {
          std::cerr << "line " << line_no << ": bad duration " << d << "\n";
          return 1;
        }
        eval_times.push_back(ms->count());
      }
    } else if (kind == "expr" || kind == "expr-error" || kind == "expr-range") {
      auto query = Query::Parse(rest);
      for (int64_t t : eval_times) {
        auto value = query ? query->Evaluate(source, t)
                           : Result<modelpulse::rules::Value>(modelpulse::Fail(query.error()));
        const std::string where =
            "line " + std::to_string(line_no) + ": `" + rest + "` at " + GoDuration(t);
        if (kind == "expr-error") {
          if (value) {
            std::cout << where << ": marked expr-error but evaluates here\n";
            ++unexpected;
          }
          ++expected_errors;
          WriteCase(must_fail, rest, t, {});
          continue;
        }
        if (!value) {
          std::cout << where << ": error here (mark it expr-error if promtool fails too): "
                    << value.error().ToString() << "\n";
          ++unexpected;
          continue;
        }
        const bool is_range = std::holds_alternative<modelpulse::rules::Matrix>(*value) ||
                              std::holds_alternative<modelpulse::rules::String>(*value);
        if (kind == "expr-range" || is_range) {
          if (kind != "expr-range" || !is_range) {
            std::cout << where
                      << (is_range ? ": a range vector or string, mark it expr-range\n"
                                   : ": marked expr-range but gives an instant value\n");
            ++unexpected;
            continue;
          }
          ++range_results;
          WriteCase(must_fail, rest, t, {});
          continue;
        }
        std::vector<std::pair<Labels, double>> results;
        const auto* scalar = std::get_if<modelpulse::rules::Scalar>(&*value);
        if (scalar != nullptr) {
          results.emplace_back(Labels{}, scalar->value);
        } else {
          for (const auto& s : std::get<modelpulse::rules::Vector>(*value)) {
            results.emplace_back(s.labels, s.value);
          }
        }
        ++cases;
        empty += results.empty() ? 1 : 0;
        samples += static_cast<int>(results.size());
        const bool has_nan = std::any_of(results.begin(), results.end(),
                                         [](const auto& r) { return std::isnan(r.second); });
        if (!has_nan) {
          WriteCase(tests, rest, t, results);
          continue;
        }
        ++nan_cases;
        if (scalar != nullptr) {
          WriteCase(tests, "(" + rest + ") >= bool -Inf", t, {{Labels{}, 0.0}});
          continue;
        }
        std::vector<std::pair<Labels, double>> not_nan;
        std::vector<std::pair<Labels, double>> is_number;
        for (const auto& [labels, v] : results) {
          if (!std::isnan(v)) {
            not_nan.emplace_back(labels, v);
          }
          Labels without_name = labels;
          without_name.erase("__name__");
          is_number.emplace_back(without_name, std::isnan(v) ? 0.0 : 1.0);
        }
        WriteCase(tests, "(" + rest + ") >= -Inf", t, not_nan);
        WriteCase(tests, "(" + rest + ") >= bool -Inf", t, is_number);
      }
    } else {
      std::cerr << "line " << line_no << ": unknown directive " << kind << "\n";
      return 1;
    }
  }
  std::ostringstream series_yaml;
  for (const auto& [notation, values] : input_series) {
    series_yaml << "      - series: " << YamlSingle(notation)
                << "\n        values: " << YamlSingle(values) << "\n";
  }
  // promtool only loads input samples up to the largest eval_time; a last check past the end of
  // the data makes it load everything (negative offsets read ahead of the eval time).
  int64_t last_sample = 0;
  for (const Series& s : source.series) {
    last_sample = s.samples.empty() ? last_sample : std::max(last_sample, s.samples.back().t_ms);
  }
  const std::string load_everything =
      "      - expr: vector(1)\n        eval_time: " + GoDuration(last_sample + kIntervalMs) +
      "\n        exp_samples:\n          - labels: '{}'\n"
      "            value: 1\n";
  auto write_file = [&](const std::string& path, const std::string& entries) {
    std::ofstream out(path);
    out << "# Generated by promql_differential from " << argv[1] << "; do not edit.\n"
        << "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n"
        << "    input_series:\n"
        << series_yaml.str() << "    promql_expr_test:\n"
        << entries << load_everything;
  };
  const std::string out_path = argv[2];
  write_file(out_path, tests.str());
  const std::string must_fail_path = out_path + ".must-fail.yml";
  write_file(must_fail_path, must_fail.str());

  std::cout << "differential corpus: " << cases << " cases compared (" << nan_cases
            << " holding NaN, " << empty << " empty results), " << samples << " samples; "
            << expected_errors << " expected errors and " << range_results
            << " range results (not compared) confirmed with promtool; " << unexpected
            << " unexpected; minimum " << minimum_cases << " compared cases\n";
  const Run compared = RunPromtool(promtool, out_path);
  std::cout << compared.output;
  bool passed = compared.status == 0;
  std::cout << (passed ? "promtool AGREES with every compared case\n"
                       : "promtool DISAGREES (see above)\n");
  // Every must-fail entry is one failure line in promtool's report.
  const Run confirmations = RunPromtool(promtool, must_fail_path);
  const int errors_seen = CountOccurrences(confirmations.output, ", err: ");
  const int range_seen =
      CountOccurrences(confirmations.output, "rule result is not a vector or scalar");
  if (errors_seen != expected_errors + range_results || range_seen != range_results) {
    std::cout << confirmations.output << "promtool fails " << errors_seen << " of "
              << expected_errors + range_results << " must-fail entries (" << range_seen << " of "
              << range_results << " as range results)\n";
    passed = false;
  }
  if (unexpected > 0) {
    std::cout << unexpected << " evaluations differ from what the corpus marks (see above)\n";
    passed = false;
  }
  if (cases < minimum_cases) {
    std::cout << "only " << cases << " compared cases, fewer than the minimum " << minimum_cases
              << "\n";
    passed = false;
  }
  return passed ? 0 : 1;
}
