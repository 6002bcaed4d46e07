// Differential test of the PromQL engine against promtool 2.42.
//
// Reads a corpus (series in promtool's expanding notation, eval times, expressions), evaluates
// every expression at every eval time with OUR engine, writes a promtool unit-test file whose
// exp_samples are our results printed with %.17g (round-trips exactly; promtool 2.42 compares
// floats with ==), and runs `promtool test rules` on it. promtool passing = bit-for-bit agreement.
//
// Usage: promql_differential <corpus> <out.yml> <promtool>
// Exit: 0 agreement, 1 disagreement or bad corpus, 77 promtool missing (CTest SKIP_RETURN_CODE).

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
#include "rules/promql.h"
#include "rules/promql_parser.h"

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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: promql_differential <corpus> <out.yml> <promtool>\n";
    return 1;
  }
  std::string promtool = argv[3];
  if (access(promtool.c_str(), X_OK) != 0) {
    std::cout << "SKIP: " << promtool << " not found; install Debian's prometheus package\n";
    return 77;
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
  int cases = 0, samples = 0, skipped_nan = 0, skipped_error = 0, empty = 0;
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
    } else if (kind == "expr") {
      auto query = Query::Parse(rest);
      if (!query) {
        std::cerr << "line " << line_no << ": our parser rejects `" << rest
                  << "`: " << query.error().ToString() << "\n";
        return 1;
      }
      for (int64_t t : eval_times) {
        auto value = query->Evaluate(source, t);
        if (!value) {
          ++skipped_error;
          std::cout << "note: `" << rest << "` at " << GoDuration(t)
                    << " is an error here: " << value.error().ToString() << "\n";
          continue;
        }
        std::vector<std::pair<Labels, double>> results;
        if (const auto* scalar = std::get_if<modelpulse::rules::Scalar>(&*value)) {
          results.emplace_back(Labels{}, scalar->value);
        } else if (const auto* vector = std::get_if<modelpulse::rules::Vector>(&*value)) {
          for (const auto& s : *vector) {
            results.emplace_back(s.labels, s.value);
          }
        } else {
          ++skipped_error;
          continue;
        }
        bool has_nan = false;
        for (const auto& r : results) {
          has_nan = has_nan || std::isnan(r.second);
        }
        if (has_nan) {
          ++skipped_nan;  // promtool can never match NaN (NaN != NaN)
          continue;
        }
        ++cases;
        if (results.empty()) {
          ++empty;
        }
        tests << "      - expr: " << YamlSingle(rest) << "\n"
              << "        eval_time: " << GoDuration(t) << "\n"
              << "        exp_samples:" << (results.empty() ? " []" : "") << "\n";
        for (const auto& [labels, v] : results) {
          ++samples;
          tests << "          - labels: " << YamlSingle(SeriesNotation(labels)) << "\n"
                << "            value: " << YamlFloat(v) << "\n";
        }
      }
    } else {
      std::cerr << "line " << line_no << ": unknown directive " << kind << "\n";
      return 1;
    }
  }
  std::ofstream out(argv[2]);
  out << "# Generated by promql_differential from " << argv[1] << "; do not edit.\n"
      << "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n";
  for (const auto& [notation, values] : input_series) {
    out << "      - series: " << YamlSingle(notation) << "\n        values: " << YamlSingle(values)
        << "\n";
  }
  // promtool only loads input samples up to the largest eval_time; a last check past the end of
  // the data makes it load everything (negative offsets read ahead of the eval time).
  int64_t last_sample = 0;
  for (const Series& s : source.series) {
    last_sample = s.samples.empty() ? last_sample : std::max(last_sample, s.samples.back().t_ms);
  }
  out << "    promql_expr_test:\n"
      << tests.str() << "      - expr: vector(1)\n"
      << "        eval_time: " << GoDuration(last_sample + kIntervalMs) << "\n"
      << "        exp_samples:\n          - labels: '{}'\n            value: 1\n";
  out.close();
  std::cout << "differential corpus: " << cases << " cases (" << empty << " empty results), "
            << samples << " samples; skipped " << skipped_nan << " with NaN, " << skipped_error
            << " errors/non-vector\n";
  std::string command = promtool + " test rules " + argv[2] + " 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::cerr << "cannot run " << command << "\n";
    return 1;
  }
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) {
    std::cout << buf;
  }
  int status = pclose(pipe);
  bool passed = status == 0;
  std::cout << (passed ? "promtool AGREES with every case\n" : "promtool DISAGREES (see above)\n");
  return passed ? 0 : 1;
}
