// The test command's short run of every fuzz target (fuzz/targets.h), in the ordinary builds:
// each target's seed corpus, then a fixed number of mutations of it (bit flips, byte changes,
// cuts, copies, dictionary tokens, splices of two seeds), from a fixed seed so a failure repeats.
// This is not coverage-guided fuzzing (scripts/fuzz.sh runs libFuzzer for that); it makes every
// target run in every build, under ASan and UBSan in the asan one, so a regression in a decoder
// or parser that breaks an invariant fails the tests and not only a long fuzzing run.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/targets.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::string;
using Entry = int (*)(const uint8_t*, size_t);

constexpr size_t kMaxInput = 4096;  // scripts/fuzz.sh's -max_len

fs::path FuzzDir() { return fs::path(MODELPULSE_SOURCE_ROOT) / "fuzz"; }

Bytes ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<Bytes> Corpus(std::string_view name) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(FuzzDir() / "corpus" / name)) {
    if (entry.is_regular_file())
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Bytes> corpus;
  for (const fs::path& file : files)
    corpus.push_back(ReadAll(file));
  return corpus;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// libFuzzer's dictionary format: one `name="value"` or `"value"` per line, with \\, \" and \xNN.
std::vector<Bytes> Dictionary(std::string_view name) {
  std::ifstream in(FuzzDir() / "dict" / (std::string(name) + ".dict"));
  std::vector<Bytes> tokens;
  std::string line;
  while (std::getline(in, line)) {
    const size_t open = line.find('"');
    const size_t close = line.rfind('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open)
      continue;
    Bytes token;
    for (size_t i = open + 1; i < close; ++i) {
      if (line[i] != '\\' || i + 1 >= close) {
        token += line[i];
      } else if (line[i + 1] == 'x' && i + 3 < close && HexDigit(line[i + 2]) >= 0 &&
                 HexDigit(line[i + 3]) >= 0) {
        token += static_cast<char>(HexDigit(line[i + 2]) * 16 + HexDigit(line[i + 3]));
        i += 3;
      } else {
        token += line[++i];
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

class Mutator {
 public:
  Mutator(const std::vector<Bytes>& corpus, const std::vector<Bytes>& dictionary)
      : corpus_(corpus), dictionary_(dictionary) {}

  Bytes Next() {
    Bytes input = Pick(corpus_);
    const int steps = 1 + static_cast<int>(Below(4));
    for (int i = 0; i < steps; ++i)
      Mutate(input);
    if (input.size() > kMaxInput)
      input.resize(kMaxInput);
    return input;
  }

 private:
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  const Bytes& Pick(const std::vector<Bytes>& from) { return from[Below(from.size())]; }

  void Mutate(Bytes& input) {
    const size_t at = Below(input.size() + 1);
    switch (Below(8)) {
      case 0:
        if (!input.empty())
          input[at % input.size()] ^= static_cast<char>(1u << Below(8));
        break;
      case 1:
        if (!input.empty())
          input[at % input.size()] = static_cast<char>(Below(256));
        break;
      case 2:
        input.insert(at, Below(4) + 1, static_cast<char>(Below(256)));
        break;
      case 3:
        input.erase(at, Below(16) + 1);
        break;
      case 4:
        if (!input.empty()) {
          const size_t from = Below(input.size());
          input.insert(at, input.substr(from, Below(32) + 1));
        }
        break;
      case 5:
        if (!dictionary_.empty())
          input.insert(at, Pick(dictionary_));
        break;
      case 6:
        if (!dictionary_.empty()) {
          const Bytes& token = Pick(dictionary_);
          input.replace(at, token.size(), token);
        }
        break;
      default: {
        const Bytes& other = Pick(corpus_);
        input = input.substr(0, at) + other.substr(Below(other.size() + 1));
        break;
      }
    }
  }

  const std::vector<Bytes>& corpus_;
  const std::vector<Bytes>& dictionary_;
  std::mt19937_64 rng_{20261206};
};

void Run(Entry entry, const Bytes& input) {
  entry(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

void Smoke(std::string_view name, Entry entry, int mutations) {
  const std::vector<Bytes> corpus = Corpus(name);
  const std::vector<Bytes> dictionary = Dictionary(name);
  REQUIRE(corpus.size() >= 3);
  REQUIRE(dictionary.size() >= 10);
  const auto start = std::chrono::steady_clock::now();
  for (const Bytes& seed : corpus)
    Run(entry, seed);
  Mutator mutator(corpus, dictionary);
  for (int i = 0; i < mutations; ++i)
    Run(entry, mutator.Next());
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  MESSAGE(name << ": " << corpus.size() << " seeds and " << mutations << " mutations in "
               << took.count() << " s");
}

}  // namespace

namespace mf = modelpulse::fuzz;

TEST_CASE("fuzz smoke: the SSE decoder") { Smoke("sse", &mf::Sse, 400000); }
TEST_CASE("fuzz smoke: the event-stream decoder") {
  Smoke("eventstream", &mf::EventStream, 150000);
}
TEST_CASE("fuzz smoke: every provider's decoders, classifier and headers") {
  Smoke("provider", &mf::Provider, 150000);
}
TEST_CASE("fuzz smoke: PromQL parse and evaluate") { Smoke("promql", &mf::Promql, 200000); }
TEST_CASE("fuzz smoke: templates") { Smoke("template", &mf::Template, 100000); }
TEST_CASE("fuzz smoke: rule files") { Smoke("rule_file", &mf::RuleFile, 8000); }
TEST_CASE("fuzz smoke: promtool series notation") {
  Smoke("promtool_series", &mf::PromtoolSeries, 200000);
}
TEST_CASE("fuzz smoke: the config loader") { Smoke("config", &mf::Config, 2500); }
