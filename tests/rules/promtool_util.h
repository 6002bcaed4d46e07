#ifndef MODELPULSE_TESTS_RULES_PROMTOOL_UTIL_H_
#define MODELPULSE_TESTS_RULES_PROMTOOL_UTIL_H_

// Test-only helpers for the cases that ask /usr/bin/promtool to confirm our output: YAML quoting
// of generated rule and test files, and running a command for its output.

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace modelpulse::testing {

// `text` as a YAML single-quoted scalar.
inline std::string YamlSingle(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  return out + "'";
}

// Runs `command` through the shell; returns stdout and stderr together, `status` as pclose's.
inline std::string RunCapture(const std::string& command, int& status) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) {
    output.append(buf, n);
  }
  status = pclose(pipe);
  return output;
}

// Runs `promtool test rules` on `test_file` and checks that every test in it passed.
inline void CheckPromtoolTestPasses(const std::filesystem::path& test_file) {
  int status = 0;
  const std::string output =
      RunCapture("/usr/bin/promtool test rules " + test_file.string(), status);
  INFO(output);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.find("SUCCESS") != std::string::npos);
}

}  // namespace modelpulse::testing

#endif  // MODELPULSE_TESTS_RULES_PROMTOOL_UTIL_H_
