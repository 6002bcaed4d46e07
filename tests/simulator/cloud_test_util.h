#ifndef MODELPULSE_TESTS_SIMULATOR_CLOUD_TEST_UTIL_H_
#define MODELPULSE_TESTS_SIMULATOR_CLOUD_TEST_UTIL_H_

// Loopback HTTP helpers for the simulator tests: a scenario in a temp folder (started, or checked
// to be refused), one POST with its status, headers and body, and SSE split into (event, data)
// pairs by hand (no code shared with collector/).

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "simulator/simulator.h"

namespace modelpulse::simulator::testing {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("mp_sim_" + std::to_string(std::random_device{}()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    const auto file = (path_ / name).string();
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::filesystem::path path_;
};

// The clock of simulators whose time the test does not move. Stateless, so one is shared.
inline const Clock& RealClock() {
  static const SystemClock clock;
  return clock;
}

// REQUIRES: `clock` outlives the simulator.
inline std::unique_ptr<Simulator> StartScenario(const TempDir& dir, const std::string& yaml,
                                                size_t workers, const Clock& clock) {
  auto started = Simulator::Start(
      {.scenario_path = dir.Write("scenario.yaml", yaml), .worker_threads = workers}, clock);
  if (!started)
    FAIL(started.error().ToString());
  return std::move(*started);
}

inline std::unique_ptr<Simulator> StartScenario(
    const TempDir& dir, const std::string& yaml,
    size_t workers = SimulatorOptions{}.worker_threads) {
  return StartScenario(dir, yaml, workers, RealClock());
}

// A scenario that must be refused when it loads, with an error that names `culprit`.
inline void CheckRefused(const TempDir& dir, const std::string& yaml, const std::string& culprit) {
  auto started = Simulator::Start({.scenario_path = dir.Write("refused.yaml", yaml)}, RealClock());
  REQUIRE_FALSE(started);
  CHECK(started.error().message.find(culprit) != std::string::npos);
}

struct Exchange {
  int status = 0;
  httplib::Headers headers;
  std::string body;
  bool transport_error = false;

  std::string Header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  bool HasHeader(const std::string& name) const { return headers.count(name) > 0; }
};

inline Exchange Send(int port, const std::string& path, const std::string& body,
                     const httplib::Headers& headers = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10s);
  Exchange ex;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body;
  req.response_handler = [&](const httplib::Response& res) {
    ex.status = res.status;
    ex.headers = res.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    ex.body.append(data, n);
    return true;
  };
  ex.transport_error = !client.send(req);
  return ex;
}

// The events of an SSE body: (event name or "", data), split on blank lines.
inline std::vector<std::pair<std::string, std::string>> SseEvents(const std::string& body) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos)
      end = body.size();
    std::string name, data;
    std::istringstream lines(body.substr(pos, end - pos));
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("event: ", 0) == 0)
        name = line.substr(7);
      if (line.rfind("data: ", 0) == 0)
        data = line.substr(6);
    }
    if (!name.empty() || !data.empty())
      out.emplace_back(name, data);
    pos = end + 2;
  }
  return out;
}

}  // namespace modelpulse::simulator::testing

#endif  // MODELPULSE_TESTS_SIMULATOR_CLOUD_TEST_UTIL_H_
