#ifndef MODELPULSE_DAEMON_CONFIG_H_
#define MODELPULSE_DAEMON_CONFIG_H_

// The main configuration file (DESIGN.md §4): one YAML file turned into the plain options structs
// of each module. The daemon reads the sections and the keys every target has; the collector reads
// each target's provider-owned keys (endpoint, credential, provider details), so nothing here
// knows one provider from another. yaml-cpp stays out of this header (common/yaml_reader.h).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alerting/alerting.h"
#include "collector/collector.h"
#include "common/common.h"
#include "common/environment.h"
#include "rules/slo.h"
#include "simulator/simulator.h"
#include "storage/storage.h"

namespace modelpulse::daemon {

// Where probes are stored when neither the file nor --storage.path says (FHS, as the systemd unit).
inline constexpr std::string_view kDefaultStoragePath = "/var/lib/modelpulse/modelpulse.db";

// The built-in simulator of the offline demo (`simulator:` section).
using simulator::SimulatorSettings;

// Everything the main config file says, with defaults applied, relative paths resolved and
// secrets read. Plain data: holds secrets only inside `Secret` values.
struct Config {
  std::string file;  // absolute path it was loaded from
  Labels external_labels;
  std::string web_listen_address = "127.0.0.1:9464";
  // storage.path is absolute after loading; kDefaultStoragePath when the file does not set it.
  storage::StorageOptions storage;
  // storage.memory_window: how much recent probe history rules and the API read from memory
  // (older ranges come from SQLite). Memory grows with targets times this; a restart applies it.
  Millis memory_window{2LL * 3600 * 1000};
  collector::ProberOptions prober;
  std::vector<collector::TargetSpec> targets;  // in file order; may be empty
  // Target name -> where its credential comes from, secret-free, as the collector describes it
  // (collector::ReadProviderKeys): a variable, file, command or profile name, or "none". For
  // DescribeConfig.
  std::map<std::string, std::string> auth_sources;
  std::vector<std::string> rule_files;  // absolute, globs expanded, sorted per pattern
  Millis evaluation_interval{15000};    // global.evaluation_interval: rule groups without their own
  std::optional<SimulatorSettings> simulator;
  // global.external_url; empty: http://<web_listen_address> (ExternalUrl in daemon.cpp).
  std::string external_url;
  // The `alerting:` section; its external_url and external_labels are filled in by the daemon.
  alerting::AlertingConfig alerting;
  // The `slos:` section (rules/slo_config.h), in file order; each selects at least one target.
  std::vector<rules::SloSpec> slos;
};

// How much `check config` checks. kSyntaxOnly is promtool's `check config --syntax-only`: the
// config's own syntax and values, not what it refers to, so a config can be linted on a build
// machine without its API keys, credential files or rule files. An unset variable or an unreadable
// secret file then reads as a placeholder, a rule-file pattern without matches matches itself, and
// each module checks its structured credentials for their form only. Never used to run anything.
enum class ConfigCheck { kFull, kSyntaxOnly };

// Reads and parses the file at `path` with the process's real environment. Returns the Config, or
// kIo/kNotFound when the file cannot be read, or kParse as ParseConfig does.
Result<Config> LoadConfig(const std::string& path, ConfigCheck check = ConfigCheck::kFull);

// Parses `yaml`, the content of `file_name` (used in messages as given, and made absolute to find
// the folder that relative paths start from). Every problem found is reported, not only the first:
// on failure returns one kParse Error whose message holds one line per problem,
// "FILE:LINE:COLUMN: message" (1-based), sorted by position. Messages name environment
// variables and files that hold secrets, never their contents. `env` (common/environment.h)
// supplies environment variables, files and globs.
Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name,
                           const Environment& env, ConfigCheck check = ConfigCheck::kFull);

// A short, secret-free summary for `modelpulse check config`: "N targets, M rule files", then one
// line per target with its provider, model, provider details (api, project, api-version),
// interval, URL and where its credential comes from (auth_sources).
std::string DescribeConfig(const Config& config);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_CONFIG_H_
