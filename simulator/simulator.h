#ifndef MODELPULSE_SIMULATOR_SIMULATOR_H_
#define MODELPULSE_SIMULATOR_SIMULATOR_H_

// A real HTTP server that speaks the providers' APIs with scripted latency and failures, so the
// demo and tests run offline. Depends on common/ only, and shares no protocol code with
// collector/ on purpose: an encoder bug mirrored in the decoder that tests it would pass.
//
// Where things live: <provider>_protocol.cpp speaks one provider's API (routes, auth checks,
// bodies, streams, errors); protocol_util.cpp shapes the answer behaviours (ok, empty,
// truncated, malformed, hang) once for every protocol and hands each only the errors to word;
// simulator.cpp serves, and turns a config's or a command line's settings into options;
// scenario.cpp reads scenario files; endpoint.cpp and rate_limiter.cpp hold the scripted phases
// and budgets; cloud_crypto.cpp checks signatures and tokens independently of the collector;
// connection.cpp paces bytes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/common.h"

namespace modelpulse::simulator {

struct SimulatorOptions {
  std::string scenario_path;       // YAML scenario file
  std::string host = "127.0.0.1";  // loopback only unless the user says otherwise
  int port = 0;                    // 0 picks a free port
  size_t worker_threads = 64;      // each open stream holds one worker
};

// How a config's `simulator:` section or `modelpulse simulate` asks for a simulator.
struct SimulatorSettings {
  std::string scenario_path;  // absolute when read from a config (against the config's folder)
  std::string listen_address = "127.0.0.1:9465";  // "host:port", "[v6]:port"
  size_t worker_threads = 64;
};

// The options that serve `settings`: its listen address split into host and port. Fails with
// kInvalidArgument for a malformed address, quoting it (common/listen_address.h).
Result<SimulatorOptions> OptionsFromSettings(const SimulatorSettings& settings);

// What the simulator did for one request, so tests can compare the prober's measurements with
// what was injected.
struct InjectedResponse {
  std::string endpoint;
  int64_t received_unix_ms = 0;
  int http_status = 0;
  std::string behaviour;                 // "ok", "rate_limit", "insufficient_quota", "hang", ...
  double first_token_delay_seconds = 0;  // from request arrival to the first content token
  double total_seconds = 0;              // from request arrival to the last byte
  int64_t output_tokens = 0;
  int64_t input_tokens = 0;
  bool stream = false;
};

class Simulator {
 public:
  // Loads the scenario and starts serving. Fails with kParse (file:line:column) for a bad
  // scenario and kUnavailable when the address cannot be bound. `clock` must outlive the
  // simulator; it times everything: phases, rate-limit budgets, token lifetimes, the journal's
  // timestamps and the pacing of bytes. Serve the prober a SystemClock: its timings are measured
  // against this pacing. A ManualClock holds every delay until the test moves it.
  static Result<std::unique_ptr<Simulator>> Start(const SimulatorOptions& options,
                                                  const Clock& clock);
  // Stops serving; open streams are cut.
  virtual ~Simulator() = default;

  virtual int port() const = 0;
  // "http://127.0.0.1:PORT"
  virtual std::string BaseUrl() const = 0;
  // The most recent requests, oldest first (bounded ring).
  virtual std::vector<InjectedResponse> Journal() const = 0;
};

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_SIMULATOR_H_
