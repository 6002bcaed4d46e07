#ifndef MODELPULSE_TESTS_COLLECTOR_PROVIDER_TEST_UTIL_H_
#define MODELPULSE_TESTS_COLLECTOR_PROVIDER_TEST_UTIL_H_

// Test helpers shared by the provider adapter tests: an event recorder, a decoder driver that
// splits a stream at every byte boundary, a request-header lookup, and a scratch directory for
// token-command scripts.

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/internal/providers/provider.h"

namespace modelpulse::collector::testing {

// Records what a decoder reported, in order: `log` the reports tests assert on, `trace` every
// report with its details (chunks, error messages), for comparing two decodes of one stream.
struct Recorder final : StreamEvents {
  std::vector<std::string> log;
  std::vector<std::string> trace;
  std::string content;
  std::string reasoning;
  Usage usage;
  std::optional<ProviderError> error;
  std::string malformed;
  int chunks = 0;
  bool terminator = false;

  void OnChunk() override {
    trace.push_back("chunk");
    ++chunks;
  }
  void OnContent(std::string_view text) override {
    Log("content:" + std::string(text));
    content += text;
  }
  void OnReasoning(std::string_view text) override {
    Log("reasoning:" + std::string(text));
    reasoning += text;
  }
  void OnUsage(const Usage& u) override {
    Log("usage:" + std::to_string(u.input_tokens.value_or(-1)) + "/" +
        std::to_string(u.output_tokens.value_or(-1)));
    if (u.input_tokens) {
      usage.input_tokens = u.input_tokens;
    }
    if (u.output_tokens) {
      usage.output_tokens = u.output_tokens;
    }
  }
  void OnError(const ProviderError& e) override {
    log.push_back("error:" + std::string(OutcomeName(e.outcome)));
    trace.push_back("error:" + std::string(OutcomeName(e.outcome)) + ":" + e.message);
    if (!error) {
      error = e;
    }
  }
  void OnMalformed(std::string_view what) override {
    Log("malformed:" + std::string(what));
    if (malformed.empty()) {
      malformed = what;
    }
  }
  void OnTerminator() override {
    Log("done");
    terminator = true;
  }

 private:
  void Log(const std::string& entry) {
    log.push_back(entry);
    trace.push_back(entry);
  }
};

// Decodes `stream` whole, then split in two at every byte boundary, then one byte at a time;
// every run must report the same events (Recorder::trace). Returns the whole-stream run.
inline Recorder DecodeEverySplit(const ProviderAdapter& adapter, std::string_view stream) {
  Recorder whole;
  auto decoder = adapter.NewStreamDecoder({});
  decoder->Feed(stream, whole);
  decoder->Finish(whole);
  int mismatches = 0;
  for (size_t split = 0; split <= stream.size(); ++split) {
    Recorder parts;
    auto split_decoder = adapter.NewStreamDecoder({});
    split_decoder->Feed(stream.substr(0, split), parts);
    split_decoder->Feed(stream.substr(split), parts);
    split_decoder->Finish(parts);
    if (parts.trace != whole.trace) {
      ++mismatches;
    }
  }
  CHECK(mismatches == 0);
  Recorder bytes;
  auto byte_decoder = adapter.NewStreamDecoder({});
  for (char c : stream) {
    byte_decoder->Feed(std::string_view(&c, 1), bytes);
  }
  byte_decoder->Finish(bytes);
  CHECK(bytes.trace == whole.trace);
  return whole;
}

// The value of the first request header called `name` (exact case), or nullopt.
inline std::optional<std::string> HeaderValue(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) {
      return value.Reveal();
    }
  }
  return std::nullopt;
}

inline std::string Sse(std::string_view event, std::string_view data) {
  std::string out;
  if (!event.empty()) {
    out += "event: " + std::string(event) + "\n";
  }
  return out + "data: " + std::string(data) + "\n\n";
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mp-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // Writes an executable /bin/sh script and returns its path.
  std::string Script(const std::string& name, const std::string& body) const {
    const std::filesystem::path file = path_ / name;
    std::ofstream(file) << "#!/bin/sh\n" << body << "\n";
    chmod(file.c_str(), 0700);
    return file.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace modelpulse::collector::testing

#endif  // MODELPULSE_TESTS_COLLECTOR_PROVIDER_TEST_UTIL_H_
