#ifndef MODELPULSE_DAEMON_DAEMON_H_
#define MODELPULSE_DAEMON_DAEMON_H_

#include <memory>
#include <optional>
#include <string>

#include "common/common.h"

namespace modelpulse::simulator {
class Simulator;
struct SimulatorSettings;
}  // namespace modelpulse::simulator

// daemon/ only wires the modules (DESIGN.md §2): cli.cpp is the command line, config.cpp turns
// the main YAML file into each module's options (a target's provider-owned keys are read by
// collector/), daemon.cpp builds, owns and connects the parts, http_server.cpp serves the
// endpoints, metrics.cpp renders /metrics from the probe series table, probe_output.cpp prints
// `modelpulse probe`. It names no provider, cloud host or auth scheme, and no series.
namespace modelpulse::daemon {

using simulator::SimulatorSettings;

// `modelpulse run` flags. An explicit flag wins over the config file, which wins over the
// built-in default.
struct RunFlags {
  std::string config_file = "/etc/modelpulse/modelpulse.yml";
  std::optional<std::string> web_listen_address;
  std::optional<std::string> storage_path;
  // The HTTP endpoint's security and client bounds (HttpServerOptions says what each does).
  std::optional<std::string> web_config_file;
  bool web_enable_lifecycle = false;
  int web_max_connections = 64;
  Millis web_read_timeout{10'000};
};

// Builds and owns the parts (store, simulator, prober, metrics, HTTP server) and wires them; does
// nothing else itself. Thread-safe: Reload may be called from the signal loop and from HTTP.
class Daemon {
 public:
  // Loads the config and starts everything. Fails when the config is invalid, the database cannot
  // be opened or an address cannot be bound; nothing keeps running then.
  static Result<std::unique_ptr<Daemon>> Start(const RunFlags& flags);
  virtual ~Daemon() = default;

  // Re-reads the config file. On failure the running config stays in force and the error is
  // returned (and logged, and visible on /metrics).
  virtual Status Reload() = 0;
  // Stops probing (in-flight probes get their grace period), flushes storage, stops serving.
  virtual void Stop() = 0;
  virtual int http_port() const = 0;
};

// `modelpulse run`: starts the daemon, then serves signals until SIGTERM or SIGINT (exit 0) while
// SIGHUP reloads. Returns the process exit code.
int RunUntilSignalled(const RunFlags& flags);

// Starts the config's built-in simulator in-process on its listen address: the one start-up
// sequence `run` and `probe` share. Fails like ParseListenAddress and Simulator::Start.
Result<std::unique_ptr<simulator::Simulator>> StartSimulator(const SimulatorSettings& settings,
                                                             const Clock& clock);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_DAEMON_H_
