#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <csignal>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "alerting/alerting.h"
#include "collector/collector.h"
#include "common/duration.h"
#include "daemon/api.h"
#include "daemon/build_info.h"
#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/process_stats.h"
#include "daemon/target_health.h"
#include "daemon/watchdog.h"
#include "rules/manager.h"
#include "simulator/simulator.h"
#include "storage/recorded_store.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

// The rule engine reads this much recent history from memory; older ranges come from SQLite.
constexpr Millis kRecentWindow{2LL * 3600 * 1000};

std::string FormatSeconds(const std::optional<double>& seconds) {
  return seconds ? fmt::format("{:.3f}", *seconds) : std::string();
}

// Fans each finished probe out to /metrics, storage, the targets' health and the log. Runs on the
// prober's thread. Every probe is a debug line; info and warn only tell a target's changes of
// outcome, so a healthy fleet's log stays quiet at the default level.
class ProbeFanOut final : public collector::ProbeSink {
 public:
  ProbeFanOut(Metrics& metrics, storage::ProbeSink& store, storage::ProbeSeriesSource& series,
              TargetHealth& health)
      : metrics_(metrics), store_(store), series_(series), health_(health) {}

  void OnProbe(const ProbeResult& result) override {
    metrics_.ObserveProbe(result);
    series_.Append(result);
    store_.Append(result);
    const std::string outcome(OutcomeName(result.outcome));
    if (spdlog::should_log(spdlog::level::debug)) {  // skips building the fields at info
      spdlog::debug(WithFields(
          "probe",
          {{"target", result.target},
           {"outcome", outcome},
           {"status", std::to_string(result.http_status)},
           {"ttft", FormatSeconds(result.ttft_seconds)},
           {"duration", FormatSeconds(result.total_seconds)},
           {"input_tokens", result.input_tokens ? std::to_string(*result.input_tokens) : ""},
           {"output_tokens", result.output_tokens ? std::to_string(*result.output_tokens) : ""},
           {"err", result.error}}));
    }
    const std::optional<TargetHealth::Change> change = health_.Observe(result);
    if (!change) {
      return;
    }
    const std::string previous =
        change->previous ? std::string(OutcomeName(*change->previous)) : "unknown";
    if (result.outcome == Outcome::kOk) {
      spdlog::info(
          WithFields("target recovered",
                     {{"target", result.target}, {"previous", previous}, {"outcome", outcome}}));
    } else {
      spdlog::warn(
          WithFields("target probe failing", {{"target", result.target},
                                              {"previous", previous},
                                              {"outcome", outcome},
                                              {"status", std::to_string(result.http_status)},
                                              {"err", result.error}}));
    }
  }

 private:
  Metrics& metrics_;
  storage::ProbeSink& store_;
  storage::ProbeSeriesSource& series_;
  TargetHealth& health_;
};

std::string ExternalUrl(const Config& config) {
  return config.external_url.empty() ? "http://" + config.web_listen_address : config.external_url;
}

rules::RuleManagerOptions RuleOptionsOf(const Config& config) {
  rules::RuleManagerOptions options;
  options.rule_files = config.rule_files;
  options.evaluation_interval = config.evaluation_interval;
  options.external_labels = config.external_labels;
  options.external_url = ExternalUrl(config);
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
      : flags_(std::move(flags)), config_(std::move(config)), metrics_(GetBuildInfo()) {}

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
      simulator_ = std::move(*started);  // it logs where it serves
    }
    config_.storage.heartbeat = &writer_heartbeat_;
    config_.prober.heartbeat = &prober_heartbeat_;
    auto store = storage::Store::Open(config_.storage, clock_);
    if (!store) {
      return Fail(store.error());
    }
    store_ = std::move(*store);
    series_ = std::make_unique<storage::ProbeSeriesSource>(store_.get(), kRecentWindow,
                                                           clock_.NowUnixMillis());
    storage::RecordedStoreOptions recorded_options;
    recorded_options.path = config_.storage.path;
    recorded_options.retention = config_.storage.retention;
    auto recorded = storage::RecordedStore::Open(recorded_options, clock_);
    if (!recorded) {
      return Fail(recorded.error());
    }
    recorded_ = std::move(*recorded);
    // Rules, the API and the CLI read the probe series and the series rules wrote as one.
    all_series_ = std::make_unique<SourceUnion>(*series_, *recorded_);
    // Alert states and the notifications they cause share one transaction (issue 8).
    alert_states_ = rules::AlertStatesIn(*store_, store_.get());
    alerting::AlertingConfig alerting_config = config_.alerting;
    alerting_config.external_url = ExternalUrl(config_);
    alerting_config.external_labels = config_.external_labels;
    transport_ = alerting::CurlTransport();
    auto notifier = alerting::Notifier::Create(std::move(alerting_config), {}, *store_, *store_,
                                               *transport_, clock_);
    if (!notifier) {
      return Fail(notifier.error());
    }
    notifier_ = std::move(*notifier);
    rules::RuleManagerOptions rule_options = RuleOptionsOf(config_);
    rule_options.heartbeat = &rules_heartbeat_;
    rule_options.recorded = recorded_.get();
    auto rule_engine =
        rules::RuleManager::Create(rule_options, *all_series_, *alert_states_, clock_);
    if (!rule_engine) {
      return Fail(rule_engine.error());
    }
    rule_engine_ = std::move(*rule_engine);
    fan_out_ = std::make_unique<ProbeFanOut>(metrics_, *store_, *series_, health_);
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
    handlers.alerts_json = [this] { return AlertsJson(); };
    QueryApiOptions api_options;
    api_options.version = std::string(GetBuildInfo().version);
    query_api_ = std::make_unique<QueryApi>(*all_series_, clock_, api_options);
    handlers.api = [this](const ApiRequest& request) { return query_api_->Handle(request); };
    auto http = HttpServer::Start(http_options, std::move(handlers));
    if (!http) {
      return Fail(http.error());
    }
    http_ = std::move(*http);
    prober_thread_ = std::jthread([this](std::stop_token stop) { prober_->Run(stop); });
    rules_thread_ = std::jthread([this](std::stop_token stop) { rule_engine_->Run(stop); });
    if (auto interval = SystemdWatchdogInterval()) {
      watchdog_ = std::make_unique<Watchdog>(
          std::vector<WatchedLoop>{{"prober", &prober_heartbeat_},
                                   {"rules", &rules_heartbeat_},
                                   {"storage writer", &writer_heartbeat_}},
          *interval, clock_, NotifySystemd);
      watchdog_thread_ = std::jthread([this](std::stop_token stop) { watchdog_->Run(stop); });
    }
    notifier_thread_ = std::jthread([this](std::stop_token stop) { notifier_->Run(stop); });
    metrics_.ObserveReload(true, clock_.NowUnixMillis());
    ready_ = true;
    spdlog::info(WithFields("modelpulse started",
                            {{"version", std::string(GetBuildInfo().version)},
                             {"targets", std::to_string(config_.targets.size())},
                             {"listen_address", config_.web_listen_address},
                             {"tls", http_options.web && http_options.web->tls ? "true" : "false"},
                             {"storage", config_.storage.path}}));
    return {};
  }

  Status Reload() override {
    std::lock_guard lock(reload_mu_);
    // Whichever way the reload came (SIGHUP or HTTP) and however it ends, systemd sees it.
    NotifySystemd(ReloadingState());
    Status reloaded = ReloadLocked();
    NotifySystemd("READY=1");
    return reloaded;
  }

  // REQUIRES: reload_mu_ is held.
  Status ReloadLocked() {
    auto next = LoadWithFlags(flags_);
    if (!next) {
      metrics_.ObserveReload(false, clock_.NowUnixMillis());
      spdlog::error(WithFields("reload failed, keeping the running configuration",
                               {{"err", next.error().ToString()}}));
      return Fail(next.error());
    }
    // Rule files first: they are the part of a reload that can still fail, and a failure must
    // leave everything as it was.
    if (auto rules = rule_engine_->Reload(RuleOptionsOf(*next)); !rules) {
      metrics_.ObserveReload(false, clock_.NowUnixMillis());
      spdlog::error(WithFields("reload failed, keeping the running configuration",
                               {{"err", rules.error().ToString()}}));
      return Fail(rules.error());
    }
    if (next->storage.path != config_.storage.path ||
        next->web_listen_address != config_.web_listen_address) {
      spdlog::warn("storage.path and web.listen_address changes take effect after a restart");
    }
    if (next->external_url != config_.external_url ||
        next->alerting.receivers.size() != config_.alerting.receivers.size() ||
        next->alerting.alertmanagers.size() != config_.alerting.alertmanagers.size()) {
      spdlog::warn("alerting changes take effect after a restart");
    }
    std::vector<std::string> names;
    for (const collector::TargetSpec& target : next->targets) {
      names.push_back(target.name);
    }
    prober_->SetTargets(next->targets);
    metrics_.ForgetTargetsExcept(names);
    health_.ForgetTargetsExcept(names);
    {
      std::lock_guard config_lock(config_mu_);
      config_.targets = next->targets;
      config_.external_labels = next->external_labels;
    }
    metrics_.ObserveReload(true, clock_.NowUnixMillis());
    spdlog::info(WithFields("configuration reloaded", {{"targets", std::to_string(names.size())}}));
    return {};
  }

  void Stop() override {
    std::call_once(stopped_, [this] {
      ready_ = false;
      // First: a slow shutdown is bounded by TimeoutStopSec=, not by the watchdog.
      if (watchdog_thread_.joinable()) {
        watchdog_thread_.request_stop();
        watchdog_thread_.join();
      }
      if (rules_thread_.joinable()) {
        rules_thread_.request_stop();
        rules_thread_.join();
      }
      if (prober_thread_.joinable()) {
        prober_thread_.request_stop();
        prober_thread_.join();
      }
      if (notifier_thread_.joinable()) {
        notifier_thread_.request_stop();
        notifier_thread_.join();
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
      notifier_.reset();
      alert_states_.reset();
      all_series_.reset();
      recorded_.reset();
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
    if (auto process = ReadProcessStats("/proc")) {
      status.process = *process;
    }
    status.alerting = notifier_->MetricsCollectable();
    return metrics_.Render(status);
  }

  // Prometheus's targets API envelope and field names (health, lastScrape, lastScrapeDuration,
  // lastError), plus what only a probe has: its outcome and the daily budget.
  std::string TargetsJson() {
    std::map<std::string, std::pair<Millis, Millis>> schedule;  // name -> interval, timeout
    {
      std::lock_guard lock(config_mu_);
      for (const collector::TargetSpec& target : config_.targets) {
        schedule[target.name] = {target.interval, target.timeouts.total};
      }
    }
    nlohmann::json targets = nlohmann::json::array();
    for (const collector::TargetStatus& status : prober_->Status()) {
      const std::optional<TargetHealth::Last> last = health_.LastOf(status.name);
      const auto when = schedule.find(status.name);
      const bool known = when != schedule.end();
      targets.push_back(
          {{"name", status.name},
           {"labels", status.labels},
           {"health", HealthOf(last)},
           // Prometheus's zero time for a target never scraped.
           {"lastScrape", last ? FormatTimestamp(last->start_unix_ms) : "0001-01-01T00:00:00Z"},
           {"lastScrapeDuration", last ? last->duration_seconds : 0.0},
           {"lastError", last ? last->error : ""},
           {"lastOutcome", last ? std::string(OutcomeName(last->outcome)) : ""},
           {"lastHttpStatus", last ? last->http_status : 0},
           {"scrapeInterval", known ? FormatPromDuration(when->second.first) : ""},
           {"scrapeTimeout", known ? FormatPromDuration(when->second.second) : ""},
           {"budget_paused", status.budget_paused},
           {"tokens_today", status.tokens_today},
           {"cost_today", status.cost_today}});
    }
    return nlohmann::json{
        {"status", "success"},
        {"data", {{"activeTargets", targets}, {"droppedTargets", nlohmann::json::array()}}}}
        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  // Prometheus's GET /api/v1/alerts: pending and firing alerts, value as Go's %e.
  std::string AlertsJson() {
    nlohmann::json alerts = nlohmann::json::array();
    for (const rules::ActiveAlert& alert : rule_engine_->Snapshot().alerts) {
      char value[64];
      const auto written =
          std::to_chars(value, value + sizeof(value), alert.value, std::chars_format::scientific);
      alerts.push_back({{"labels", alert.labels},
                        {"annotations", alert.annotations},
                        {"state", alert.state},
                        {"activeAt", alerting::GoTime(alert.active_at_ms)},
                        {"value", std::string(value, written.ptr)}});
    }
    return nlohmann::json{{"status", "success"}, {"data", {{"alerts", alerts}}}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  RunFlags flags_;
  std::mutex config_mu_;
  Config config_;  // Guarded by config_mu_ after Init.
  std::mutex reload_mu_;
  SystemClock clock_;
  Heartbeat prober_heartbeat_{clock_};
  Heartbeat rules_heartbeat_{clock_};
  Heartbeat writer_heartbeat_{clock_};
  Metrics metrics_;
  TargetHealth health_;
  std::unique_ptr<simulator::Simulator> simulator_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::ProbeSeriesSource> series_;
  std::unique_ptr<storage::RecordedStore> recorded_;      // the series rules write
  std::unique_ptr<SourceUnion> all_series_;               // series_ and recorded_
  std::unique_ptr<rules::AlertStateStore> alert_states_;  // in store_
  std::unique_ptr<rules::RuleManager> rule_engine_;
  std::unique_ptr<alerting::Transport> transport_;
  std::unique_ptr<alerting::Notifier> notifier_;
  std::unique_ptr<ProbeFanOut> fan_out_;
  std::unique_ptr<QueryApi> query_api_;  // over all_series_; outlives http_
  std::unique_ptr<collector::Prober> prober_;
  std::unique_ptr<HttpServer> http_;
  std::jthread prober_thread_;
  std::jthread rules_thread_;
  std::unique_ptr<Watchdog> watchdog_;
  std::jthread watchdog_thread_;
  std::jthread notifier_thread_;
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
  auto options = simulator::OptionsFromSettings(settings);
  if (!options) {
    return Fail(options.error());
  }
  return simulator::Simulator::Start(*options, clock);
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
  NotifySystemd("READY=1");
  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) {
      continue;
    }
    if (signal == SIGHUP) {
      spdlog::info("SIGHUP: reloading configuration");
      (void)(*daemon)->Reload();  // a failure is logged and the running configuration kept
      continue;
    }
    spdlog::info("{}: shutting down", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    NotifySystemd("STOPPING=1");
    break;
  }
  (*daemon)->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace modelpulse::daemon
