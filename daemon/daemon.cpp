#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "alerting/alerting.h"
#include "collector/collector.h"
#include "common/duration.h"
#include "common/series_index.h"
#include "daemon/api.h"
#include "daemon/build_info.h"
#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/logging.h"
#include "daemon/metrics.h"
#include "daemon/process_stats.h"
#include "daemon/status_page.h"
#include "daemon/target_health.h"
#include "daemon/watchdog.h"
#include "rules/manager.h"
#include "simulator/simulator.h"
#include "storage/recorded_store.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

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

// Go's strconv.FormatFloat(v, 'e', -1, 64): the alert APIs' "value".
std::string GoExponent(double v) {
  char text[64];
  const auto written = std::to_chars(text, text + sizeof(text), v, std::chars_format::scientific);
  return std::string(text, written.ptr);
}

std::string ExternalUrl(const Config& config) {
  return config.external_url.empty() ? "http://" + config.web_listen_address : config.external_url;
}

rules::RuleManagerOptions RuleOptionsOf(const Config& config) {
  rules::RuleManagerOptions options;
  options.rule_files = config.rule_files;
  options.generated_rules = rules::SloRuleFileYaml(config.slos);
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
    // Until READY=1: the first start after an upgrade may migrate a large database for minutes.
    const StartupKeepAlive keep_alive(
        "starting: opening the database (the first start after an upgrade migrates it)",
        std::chrono::seconds(20), std::chrono::hours(2), clock_, NotifySystemd);
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
    series_ = std::make_unique<storage::ProbeSeriesSource>(store_.get(), config_.memory_window,
                                                           clock_.NowUnixMillis());
    slo_tracker_ = std::make_shared<rules::SloTracker>(config_.slos, *series_);
    metrics_.SetSlos(config_.slos);
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
    recorded_index_ = std::make_unique<CountingIndex>(*recorded_);
    all_index_ = std::make_unique<SeriesIndexUnion>(*series_, *recorded_index_);
    // Alert states and the notifications they cause share one transaction (issue 8).
    alert_states_ = rules::AlertStatesIn(*store_, store_.get());
    alerting_config_ = AlertingConfigOf(config_);
    transport_ = alerting::CurlTransport();
    auto notifier = CreateNotifier(alerting_config_);
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
    handlers.ready = [this] {
      const storage::StorageStats stats = store_->Stats();
      return ready_.load() && stats.writable &&
             stats.integrity != storage::StorageStats::Integrity::kCorrupt;
    };
    handlers.reload = [this] { return Reload(); };
    handlers.targets_json = [this] { return TargetsJson(); };
    handlers.alerts_json = [this] { return AlertsJson(); };
    handlers.status_html = [this] { return StatusHtml(); };
    handlers.rules_json = [this](const std::string& type) { return RulesJson(type); };
    QueryApiOptions api_options;
    api_options.version = std::string(GetBuildInfo().version);
    query_api_ = std::make_unique<QueryApi>(*all_series_, *all_index_, clock_, api_options);
    handlers.api = [this](const ApiRequest& request) { return query_api_->Handle(request); };
    auto http = HttpServer::Start(http_options, std::move(handlers));
    if (!http) {
      return Fail(http.error());
    }
    http_ = std::move(*http);
    prober_thread_ = std::jthread([this](std::stop_token stop) { prober_->Run(stop); });
    rules_thread_ = std::jthread([this](std::stop_token stop) { rule_engine_->Run(stop); });
    slo_thread_ = std::jthread([this](std::stop_token stop) { RunSloRefresh(stop); });
    if (auto interval = SystemdWatchdogInterval()) {
      watchdog_ = std::make_unique<Watchdog>(
          std::vector<WatchedLoop>{{"prober", &prober_heartbeat_},
                                   {"rules", &rules_heartbeat_},
                                   {"storage writer", &writer_heartbeat_}},
          *interval, clock_, NotifySystemd);
      watchdog_thread_ = std::jthread([this](std::stop_token stop) { watchdog_->Run(stop); });
    }
    StartNotifier();
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
    if (!ready_) {
      // Starting, or Stop() has begun (it sets ready_ first): the notifier thread a reload would
      // restart is going away.
      return Fail(Error::Unavailable("not ready: starting or shutting down"));
    }
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
        next->memory_window != config_.memory_window ||
        next->web_listen_address != config_.web_listen_address) {
      spdlog::warn(
          "storage.path, storage.memory_window and web.listen_address changes take effect after a "
          "restart");
    }
    if (alerting::AlertingConfig alerting = AlertingConfigOf(*next);
        !(alerting == alerting_config_)) {
      ReloadAlerting(std::move(alerting));
    }
    {
      std::lock_guard slo_lock(slo_mu_);
      slo_tracker_ = std::make_shared<rules::SloTracker>(next->slos, *series_);
      slo_cache_.clear();  // the next refresh (within kSloRefreshMs) fills it
    }
    metrics_.SetSlos(next->slos);
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

  // Replaces the notifier with one for `next`: the running one stops (after its requests in
  // flight, each bounded by its timeout), and the new one reads the outbox it left. Pending
  // notifications of a receiver that is gone are given up, counted and logged (Notifier::Create);
  // those of a receiver that stays, changed or not, are sent with its new settings. If the new
  // notifier cannot be created (its database), the old one runs on. REQUIRES: reload_mu_.
  void ReloadAlerting(alerting::AlertingConfig next) {
    notifier_thread_.request_stop();
    notifier_thread_.join();
    auto created = CreateNotifier(next);
    if (!created) {
      spdlog::error(WithFields("alerting reload failed, keeping the running alerting",
                               {{"err", created.error().ToString()}}));
    } else {
      std::lock_guard lock(notifier_mu_);
      notifier_ = std::move(*created);
      alerting_config_ = std::move(next);
      spdlog::info(
          WithFields("alerting reloaded",
                     {{"receivers", std::to_string(alerting_config_.receivers.size())},
                      {"alertmanagers", std::to_string(alerting_config_.alertmanagers.size())}}));
    }
    StartNotifier();
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
      if (slo_thread_.joinable()) {
        slo_thread_.request_stop();
        slo_thread_.join();
      }
      if (prober_thread_.joinable()) {
        prober_thread_.request_stop();
        prober_thread_.join();
      }
      {
        // A reload through HTTP may be replacing the notifier (and its thread) right now.
        std::lock_guard reload_lock(reload_mu_);
        if (notifier_thread_.joinable()) {
          notifier_thread_.request_stop();
          notifier_thread_.join();
        }
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
      all_index_.reset();
      recorded_index_.reset();
      all_series_.reset();
      recorded_.reset();
      series_.reset();
      store_.reset();
      simulator_.reset();
    });
  }

  int http_port() const override { return http_ ? http_->port() : -1; }

 private:
  alerting::AlertingConfig AlertingConfigOf(const Config& config) const {
    alerting::AlertingConfig alerting = config.alerting;
    alerting.external_url = ExternalUrl(config);
    alerting.external_labels = config.external_labels;
    return alerting;
  }

  Result<std::unique_ptr<alerting::Notifier>> CreateNotifier(
      const alerting::AlertingConfig& config) {
    alerting::NotifierOptions options;
    options.render = rules::ExpandNotificationTemplate;  // alerting does not include rules
    return alerting::Notifier::Create(config, options, *store_, *store_, *transport_, clock_);
  }

  void StartNotifier() {
    alerting::Notifier* notifier = notifier_.get();
    notifier_thread_ = std::jthread([notifier](std::stop_token stop) { notifier->Run(stop); });
  }

  std::string RenderMetrics() {
    SelfStatus status;
    status.probes_in_flight = prober_->InFlight();
    status.storage = store_->Stats();
    status.targets = prober_->Status();
    status.rules = rule_engine_->Snapshot();
    if (auto process = ReadProcessStats("/proc")) {
      status.process = *process;
    }
    {
      std::lock_guard lock(notifier_mu_);
      status.alerting = notifier_->MetricsCollectable();
    }
    status.slos = SloStatuses();
    return metrics_.Render(status);
  }

  // The SLO figures as last computed (a scrape never waits for a computation).
  std::vector<rules::SloStatus> SloStatuses() {
    std::lock_guard lock(slo_mu_);
    return slo_cache_;
  }

  // Recomputes the SLO figures every kSloRefreshMs (15 s, the default evaluation interval) on
  // its own thread: the first computation of a latency SLO reads its whole window raw (seconds
  // for a month of many targets), longer than a scrape may take.
  void RunSloRefresh(std::stop_token stop) {
    std::mutex wait_mu;
    std::condition_variable_any wake;
    // The status page's settled days, read once here (about 0.15 s for 200 targets x 90 days)
    // rather than by the first visitor, so every page reads only today's summaries.
    (void)StatusHtml();
    while (!stop.stop_requested()) {
      std::shared_ptr<rules::SloTracker> tracker;
      {
        std::lock_guard lock(slo_mu_);
        tracker = slo_tracker_;
      }
      if (tracker != nullptr) {
        auto computed = tracker->Compute(clock_.NowUnixMillis());
        std::lock_guard lock(slo_mu_);
        if (!computed) {
          spdlog::warn(
              WithFields("cannot compute SLO figures", {{"err", computed.error().ToString()}}));
        } else if (tracker == slo_tracker_) {  // not replaced by a reload meanwhile
          slo_cache_ = std::move(*computed);
        }
      }
      std::unique_lock lock(wait_mu);
      wake.wait_for(lock, stop, std::chrono::milliseconds(kSloRefreshMs), [] { return false; });
    }
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
  // GET /status: days from the daily probe summaries through a read-only connection of its own
  // (cached per settled day by status_days_), the state from the last probes, the incidents firing
  // now and the SLO figures as last computed.
  std::string StatusHtml() {
    const int64_t now = clock_.NowUnixMillis();
    std::vector<rules::SloSpec> slos;
    {
      std::lock_guard lock(config_mu_);
      slos = config_.slos;
    }
    std::map<std::string, int64_t> ids;
    if (auto stored = store_->ListTargets()) {
      for (const storage::StoredTarget& target : *stored) {
        ids[target.name] = target.id;
      }
    }
    StatusPage page;
    page.now_ms = now;
    std::lock_guard lock(status_mu_);  // the archive's connection serves one thread at a time
    if (status_archive_ == nullptr) {
      auto archive = storage::Archive::OpenReadOnly(config_.storage.path);
      if (archive) {
        status_archive_ = std::move(*archive);
      } else if (!status_archive_warned_) {
        status_archive_warned_ = true;  // once, not on every page
        spdlog::warn(
            WithFields("status page without history", {{"err", archive.error().ToString()}}));
      }
    }
    const std::vector<collector::TargetStatus> statuses = prober_->Status();
    std::vector<std::pair<int64_t, const rules::SloSpec*>> refs;
    for (const collector::TargetStatus& status : statuses) {
      if (auto id = ids.find(status.name); id != ids.end()) {
        refs.emplace_back(id->second, &AvailabilitySloFor(slos, status.labels));
      }
    }
    std::map<int64_t, std::vector<StatusDay>> days;
    if (status_archive_ != nullptr) {
      auto read = status_days_.ReadAll(*status_archive_, refs, now);
      if (read) {
        days = std::move(*read);
      } else {
        spdlog::warn(
            WithFields("cannot read daily availability", {{"err", read.error().ToString()}}));
      }
    }
    for (const collector::TargetStatus& status : statuses) {
      StatusTarget target;
      target.name = status.name;
      target.labels = status.labels;
      const std::optional<TargetHealth::Last> last = health_.LastOf(status.name);
      target.state = HealthOf(last);
      if (last) {
        target.last_outcome = OutcomeName(last->outcome);
        target.last_probe_ms = last->start_unix_ms;
      }
      target.objective = AvailabilitySloFor(slos, status.labels).ObjectiveRatio();
      if (auto id = ids.find(status.name); id != ids.end()) {
        if (auto it = days.find(id->second); it != days.end()) {
          target.days = std::move(it->second);
        }
      }
      if (target.days.empty()) {
        const int64_t today = now - now % 86'400'000;
        for (int i = kStatusDays - 1; i >= 0; --i) {
          target.days.push_back({today - i * 86'400'000LL});
        }
      }
      page.targets.push_back(std::move(target));
    }
    for (const rules::ActiveAlert& alert : rule_engine_->Snapshot().alerts) {
      if (alert.state == "firing") {
        auto name = alert.labels.find("alertname");
        page.incidents.push_back(
            {name == alert.labels.end() ? "" : name->second, alert.labels, alert.active_at_ms});
      }
    }
    std::sort(
        page.incidents.begin(), page.incidents.end(),
        [](const StatusIncident& a, const StatusIncident& b) { return a.starts_ms < b.starts_ms; });
    for (const rules::SloStatus& slo : SloStatuses()) {
      page.slos.push_back(StatusSloOf(slo.spec, slo.slo_window.events, slo.slo_window.bad));
    }
    return RenderStatusPage(page);
  }

  std::string AlertsJson() {
    nlohmann::json alerts = nlohmann::json::array();
    for (const rules::ActiveAlert& alert : rule_engine_->Snapshot().alerts) {
      alerts.push_back({{"labels", alert.labels},
                        {"annotations", alert.annotations},
                        {"state", alert.state},
                        {"activeAt", alerting::GoTime(alert.active_at_ms)},
                        {"value", GoExponent(alert.value)}});
    }
    return nlohmann::json{{"status", "success"}, {"data", {{"alerts", alerts}}}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  // Prometheus's GET /api/v1/rules (2.42's fields), with its `type=alert|record` filter.
  ApiAnswer RulesJson(const std::string& type) {
    if (!type.empty() && type != "alert" && type != "record") {
      return {400, nlohmann::json{{"status", "error"},
                                  {"errorType", "bad_data"},
                                  {"error", fmt::format("not supported value \"{}\"", type)}}
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
    }
    // Go's time.Time JSON, with its zero time for "not evaluated yet".
    const auto when = [](int64_t unix_ms) {
      return unix_ms > 0 ? alerting::GoTime(unix_ms) : std::string("0001-01-01T00:00:00Z");
    };
    // Go marshals a float64 of whole seconds without a fraction ("60", not "60.0").
    const auto seconds = [](Millis d) -> nlohmann::json {
      if (d.count() % 1000 == 0) {
        return d.count() / 1000;
      }
      return static_cast<double>(d.count()) / 1000.0;
    };
    nlohmann::json groups = nlohmann::json::array();
    for (const rules::RuleGroupStatus& group : rule_engine_->Snapshot().groups) {
      nlohmann::json rules_out = nlohmann::json::array();
      for (const rules::RuleStatus& rule : group.rule_statuses) {
        if ((type == "alert" && !rule.alerting) || (type == "record" && rule.alerting)) {
          continue;
        }
        nlohmann::json out;
        if (rule.alerting) {
          nlohmann::json alerts = nlohmann::json::array();
          for (const rules::ActiveAlert& alert : rule.alerts) {
            alerts.push_back({{"labels", alert.labels},
                              {"annotations", alert.annotations},
                              {"state", alert.state},
                              {"activeAt", alerting::GoTime(alert.active_at_ms)},
                              {"value", GoExponent(alert.value)}});
          }
          out = {{"state", rule.state},
                 {"name", rule.name},
                 {"query", rule.query},
                 {"duration", seconds(rule.duration)},
                 {"keepFiringFor", seconds(rule.keep_firing_for)},
                 {"labels", rule.labels},
                 {"annotations", rule.annotations},
                 {"alerts", alerts}};
        } else {
          out = {{"name", rule.name}, {"query", rule.query}};
          if (!rule.labels.empty()) {  // omitempty in Prometheus's recording rule
            out["labels"] = rule.labels;
          }
        }
        out["health"] = rule.health;
        if (!rule.last_error.empty()) {  // omitempty
          out["lastError"] = rule.last_error;
        }
        out["evaluationTime"] = rule.evaluation_seconds;
        out["lastEvaluation"] = when(rule.last_evaluation_ms);
        out["type"] = rule.alerting ? "alerting" : "recording";
        rules_out.push_back(std::move(out));
      }
      groups.push_back({{"name", group.name},
                        {"file", group.file},
                        {"rules", rules_out},
                        {"interval", seconds(group.interval)},
                        {"limit", group.limit},
                        {"evaluationTime", group.last_duration_seconds},
                        {"lastEvaluation", when(group.last_evaluation_ms)}});
    }
    return {200, nlohmann::json{{"status", "success"}, {"data", {{"groups", groups}}}}.dump(
                     -1, ' ', false, nlohmann::json::error_handler_t::replace)};
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
  static constexpr int64_t kSloRefreshMs = 15'000;
  std::mutex slo_mu_;
  std::shared_ptr<rules::SloTracker> slo_tracker_;  // guarded by slo_mu_
  std::vector<rules::SloStatus> slo_cache_;         // guarded by slo_mu_
  TargetHealth health_;
  std::mutex status_mu_;
  std::unique_ptr<storage::Archive> status_archive_;  // guarded by status_mu_; opened on use
  bool status_archive_warned_ = false;                // guarded by status_mu_
  StatusDays status_days_;
  std::unique_ptr<simulator::Simulator> simulator_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::ProbeSeriesSource> series_;
  std::unique_ptr<storage::RecordedStore> recorded_;      // the series rules write
  std::unique_ptr<SourceUnion> all_series_;               // series_ and recorded_
  std::unique_ptr<CountingIndex> recorded_index_;         // recorded_'s series
  std::unique_ptr<SeriesIndexUnion> all_index_;           // series_ and recorded_index_
  std::unique_ptr<rules::AlertStateStore> alert_states_;  // in store_
  std::unique_ptr<rules::RuleManager> rule_engine_;
  std::unique_ptr<alerting::Transport> transport_;
  std::mutex notifier_mu_;                        // notifier_ swapped by a reload
  std::unique_ptr<alerting::Notifier> notifier_;  // Guarded by notifier_mu_ after Init.
  alerting::AlertingConfig alerting_config_;      // what notifier_ runs; under reload_mu_
  std::unique_ptr<ProbeFanOut> fan_out_;
  std::unique_ptr<QueryApi> query_api_;  // over all_series_; outlives http_
  std::unique_ptr<collector::Prober> prober_;
  std::unique_ptr<HttpServer> http_;
  std::jthread prober_thread_;
  std::jthread rules_thread_;
  std::jthread slo_thread_;
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
