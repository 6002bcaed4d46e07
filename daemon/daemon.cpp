#include "daemon/daemon.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "collector/collector.h"
#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "rules/manager.h"
#include "simulator/simulator.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

constexpr const char* kVersion = "0.1.0";
// The rule engine reads this much recent history from memory; older ranges come from SQLite.
constexpr Millis kRecentWindow{2LL * 3600 * 1000};

std::string FormatSeconds(const std::optional<double>& seconds) {
  return seconds ? fmt::format("{:.3f}s", *seconds) : std::string("-");
}

// Fans each finished probe out to /metrics, storage and the log. Runs on the prober's thread.
class ProbeFanOut final : public collector::ProbeSink {
 public:
  ProbeFanOut(Metrics& metrics, storage::ProbeSink& store, storage::ProbeSeriesSource& series)
      : metrics_(metrics), store_(store), series_(series) {}

  void OnProbe(const ProbeResult& result) override {
    metrics_.ObserveProbe(result);
    series_.Append(result);
    store_.Append(result);
    if (result.outcome == Outcome::kOk) {
      spdlog::info("probe target={} outcome=ok status={} ttft={} total={:.3f}s tokens={}/{}",
                   result.target, result.http_status, FormatSeconds(result.ttft_seconds),
                   result.total_seconds, result.input_tokens.value_or(-1),
                   result.output_tokens.value_or(-1));
    } else {
      spdlog::warn("probe target={} outcome={} status={} total={:.3f}s error=\"{}\"", result.target,
                   OutcomeName(result.outcome), result.http_status, result.total_seconds,
                   result.error);
    }
  }

 private:
  Metrics& metrics_;
  storage::ProbeSink& store_;
  storage::ProbeSeriesSource& series_;
};

rules::RuleManagerOptions RuleOptionsOf(const Config& config) {
  rules::RuleManagerOptions options;
  options.rule_files = config.rule_files;
  options.evaluation_interval = config.evaluation_interval;
  options.external_labels = config.external_labels;
  options.external_url = "http://" + config.web_listen_address;
  return options;
}

Result<Config> LoadWithFlags(const RunFlags& flags) {
  auto config = LoadConfig(flags.config_file);
  if (!config) {
    return config;
  }
  if (flags.web_listen_address) {
    config->web_listen_address = *flags.web_listen_address;
  }
  if (flags.storage_path) {
    config->storage.path = *flags.storage_path;
  }
  return config;
}

class DaemonImpl final : public Daemon {
 public:
  DaemonImpl(RunFlags flags, Config config)
      : flags_(std::move(flags)), config_(std::move(config)), metrics_(kVersion) {}

  ~DaemonImpl() override { Stop(); }

  Status Init() {
    HttpServerOptions http_options;
    http_options.listen_address = config_.web_listen_address;
    http_options.enable_lifecycle = flags_.web_enable_lifecycle;
    http_options.max_connections = flags_.web_max_connections;
    http_options.read_timeout = flags_.web_read_timeout;
    if (flags_.web_config_file) {
      // Read once, at start: a changed web config needs a restart.
      auto web = LoadWebConfig(*flags_.web_config_file);
      if (!web) {
        return Fail(web.error());
      }
      http_options.web = std::move(*web);
    }
    if (config_.simulator) {
      auto started = StartSimulator(*config_.simulator, clock_);
      if (!started) {
        return Fail(started.error());
      }
      simulator_ = std::move(*started);
      spdlog::info("simulator serving {} on {}", config_.simulator->scenario_path,
                   simulator_->BaseUrl());
    }
    auto store = storage::Store::Open(config_.storage, clock_);
    if (!store) {
      return Fail(store.error());
    }
    store_ = std::move(*store);
    series_ = std::make_unique<storage::ProbeSeriesSource>(store_.get(), kRecentWindow,
                                                           clock_.NowUnixMillis());
    alert_states_ = rules::AlertStatesIn(*store_);
    auto rule_engine =
        rules::RuleManager::Create(RuleOptionsOf(config_), *series_, *alert_states_, clock_);
    if (!rule_engine) {
      return Fail(rule_engine.error());
    }
    rule_engine_ = std::move(*rule_engine);
    fan_out_ = std::make_unique<ProbeFanOut>(metrics_, *store_, *series_);
    auto prober = collector::Prober::Create(config_.prober, *fan_out_, clock_);
    if (!prober) {
      return Fail(prober.error());
    }
    prober_ = std::move(*prober);
    prober_->SetTargets(config_.targets);

    HttpHandlers handlers;
    handlers.metrics = [this] { return RenderMetrics(); };
    // Not ready while the store cannot write: probes would be lost, and an orchestrator or a
    // load balancer should know.
    handlers.ready = [this] { return ready_.load() && store_->Stats().writable; };
    handlers.reload = [this] { return Reload(); };
    handlers.targets_json = [this] { return TargetsJson(); };
    QueryApiOptions api_options;
    api_options.version = kVersion;
    query_api_ = std::make_unique<QueryApi>(*series_, clock_, api_options);
    handlers.api = [this](const ApiRequest& request) { return query_api_->Handle(request); };
    auto http = HttpServer::Start(http_options, std::move(handlers));
    if (!http) {
      return Fail(http.error());
    }
    http_ = std::move(*http);
    prober_thread_ = std::jthread([this](std::stop_token stop) { prober_->Run(stop); });
    rules_thread_ = std::jthread([this](std::stop_token stop) { rule_engine_->Run(stop); });
    metrics_.ObserveReload(true, clock_.NowUnixMillis());
    ready_ = true;
    spdlog::info("modelpulse {} started: {} targets, listening on {}{}, storage {}", kVersion,
                 config_.targets.size(), config_.web_listen_address,
                 http_options.web && http_options.web->tls ? " (TLS)" : "", config_.storage.path);
    return {};
  }

  Status Reload() override {
    std::lock_guard lock(reload_mu_);
    auto next = LoadWithFlags(flags_);
    if (!next) {
      metrics_.ObserveReload(false, clock_.NowUnixMillis());
      spdlog::error("reload failed, keeping the running configuration:\n{}",
                    next.error().ToString());
      return Fail(next.error());
    }
    // Rule files first: they are the part of a reload that can still fail, and a failure must
    // leave everything as it was.
    if (auto rules = rule_engine_->Reload(RuleOptionsOf(*next)); !rules) {
      metrics_.ObserveReload(false, clock_.NowUnixMillis());
      spdlog::error("reload failed, keeping the running configuration:\n{}",
                    rules.error().ToString());
      return Fail(rules.error());
    }
    if (next->storage.path != config_.storage.path ||
        next->web_listen_address != config_.web_listen_address) {
      spdlog::warn("storage.path and web.listen_address changes take effect after a restart");
    }
    std::vector<std::string> names;
    for (const collector::TargetSpec& target : next->targets) {
      names.push_back(target.name);
    }
    prober_->SetTargets(next->targets);
    metrics_.ForgetTargetsExcept(names);
    {
      std::lock_guard config_lock(config_mu_);
      config_.targets = next->targets;
      config_.external_labels = next->external_labels;
    }
    metrics_.ObserveReload(true, clock_.NowUnixMillis());
    spdlog::info("configuration reloaded: {} targets", names.size());
    return {};
  }

  void Stop() override {
    std::call_once(stopped_, [this] {
      ready_ = false;
      if (rules_thread_.joinable()) {
        rules_thread_.request_stop();
        rules_thread_.join();
      }
      if (prober_thread_.joinable()) {
        prober_thread_.request_stop();
        prober_thread_.join();
      }
      http_.reset();
      query_api_.reset();
      if (store_) {
        if (auto flushed = store_->Flush(); !flushed) {
          spdlog::error("final flush failed: {}", flushed.error().ToString());
        }
      }
      fan_out_.reset();
      prober_.reset();
      rule_engine_.reset();
      alert_states_.reset();
      series_.reset();
      store_.reset();
      simulator_.reset();
    });
  }

  int http_port() const override { return http_ ? http_->port() : -1; }

 private:
  std::string RenderMetrics() {
    SelfStatus status;
    status.probes_in_flight = prober_->InFlight();
    status.storage = store_->Stats();
    status.targets = prober_->Status();
    status.rules = rule_engine_->Snapshot();
    return metrics_.Render(status);
  }

  std::string TargetsJson() {
    nlohmann::json targets = nlohmann::json::array();
    for (const collector::TargetStatus& status : prober_->Status()) {
      targets.push_back({{"name", status.name},
                         {"labels", status.labels},
                         {"budget_paused", status.budget_paused},
                         {"tokens_today", status.tokens_today},
                         {"cost_today", status.cost_today}});
    }
    return nlohmann::json{{"status", "success"}, {"data", {{"targets", targets}}}}.dump();
  }

  RunFlags flags_;
  std::mutex config_mu_;
  Config config_;  // Guarded by config_mu_ after Init.
  std::mutex reload_mu_;
  SystemClock clock_;
  Metrics metrics_;
  std::unique_ptr<simulator::Simulator> simulator_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::ProbeSeriesSource> series_;
  std::unique_ptr<rules::AlertStateStore> alert_states_;  // in store_
  std::unique_ptr<rules::RuleManager> rule_engine_;
  std::unique_ptr<ProbeFanOut> fan_out_;
  std::unique_ptr<QueryApi> query_api_;  // over series_; outlives http_
  std::unique_ptr<collector::Prober> prober_;
  std::unique_ptr<HttpServer> http_;
  std::jthread prober_thread_;
  std::jthread rules_thread_;
  std::atomic<bool> ready_{false};
  std::once_flag stopped_;
};

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::Start(const RunFlags& flags) {
  auto config = LoadWithFlags(flags);
  if (!config) {
    return Fail(config.error());
  }
  auto daemon = std::make_unique<DaemonImpl>(flags, std::move(*config));
  if (auto started = daemon->Init(); !started) {
    return Fail(started.error());
  }
  return std::unique_ptr<Daemon>(std::move(daemon));
}

Result<std::unique_ptr<simulator::Simulator>> StartSimulator(const SimulatorSettings& settings,
                                                             const Clock& clock) {
  auto where = ParseListenAddress(settings.listen_address);
  if (!where) {
    return Fail(where.error());
  }
  simulator::SimulatorOptions options;
  options.scenario_path = settings.scenario_path;
  options.host = where->host;
  options.port = where->port;
  return simulator::Simulator::Start(options, clock);
}

int RunUntilSignalled(const RunFlags& flags) {
  // Block the signals before any thread starts, so every thread inherits the mask and only the
  // sigwait below ever sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto daemon = Daemon::Start(flags);
  if (!daemon) {
    spdlog::critical("cannot start: {}", daemon.error().ToString());
    return 1;
  }
  sd_notify(0, "READY=1");
  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) {
      continue;
    }
    if (signal == SIGHUP) {
      spdlog::info("SIGHUP: reloading configuration");
      sd_notify(0, "RELOADING=1");
      (void)(*daemon)->Reload();
      sd_notify(0, "READY=1");
      continue;
    }
    spdlog::info("{}: shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    sd_notify(0, "STOPPING=1");
    break;
  }
  (*daemon)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace modelpulse::daemon
