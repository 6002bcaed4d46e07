#ifndef MODELPULSE_TESTS_COLLECTOR_PYTHON_ORACLE_H_
#define MODELPULSE_TESTS_COLLECTOR_PYTHON_ORACLE_H_

// Runs Debian's /usr/bin/python3 (with python3-botocore) on a script and an input file, as an
// independent oracle for SigV4 and event-stream tests. Test-only.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

namespace modelpulse::collector::testing {

// Writes `script` and `input` to a fresh temporary directory, runs
// `/usr/bin/python3 script input`, and returns its stdout; nullopt when it cannot run or exits
// non-zero.
inline std::optional<std::string> RunPythonOracle(const std::string& script,
                                                  const std::string& input) {
  char dir_template[] = "/tmp/modelpulse-oracle-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) {
    return std::nullopt;
  }
  const std::string script_path = std::string(dir) + "/oracle.py";
  const std::string input_path = std::string(dir) + "/input";
  std::ofstream(script_path, std::ios::binary) << script;
  std::ofstream(input_path, std::ios::binary) << input;
  const std::string command = "/usr/bin/python3 " + script_path + " " + input_path;
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return std::nullopt;
  }
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, read);
  }
  const int status = pclose(pipe);
  std::remove(script_path.c_str());
  std::remove(input_path.c_str());
  rmdir(dir);
  if (status != 0) {
    return std::nullopt;
  }
  return output;
}

}  // namespace modelpulse::collector::testing

#endif  // MODELPULSE_TESTS_COLLECTOR_PYTHON_ORACLE_H_
