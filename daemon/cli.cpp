#include "daemon/cli.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <tuple>

#include "collector/collector.h"
#include "daemon/build_info.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/http_server.h"
#include "daemon/logging.h"
#include "daemon/probe_output.h"
#include "daemon/report.h"
#include "daemon/status_page.h"
#include "rules/export.h"
#include "rules/rules.h"
#include "rules/slo.h"
#include "simulator/simulator.h"
#include "storage/recorded_store.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse::daemon {
namespace {

constexpr int kUsageError = 2;

// promtool's `check config`: the config, then every rule file it names, as `check rules` would.
// With `syntax_only` nothing the config refers to is read (ConfigCheck::kSyntaxOnly).
int CheckConfig(const std::string& file, bool syntax_only) {
  auto config = LoadConfig(file, syntax_only ? ConfigCheck::kSyntaxOnly : ConfigCheck::kFull);
  if (!config) {
    std::cerr << "FAILED: " << file << "\n" << config.error().ToString() << "\n";
    return 1;
  }
  std::cout << "SUCCESS: " << file << " is valid\n" << DescribeConfig(*config);
  if (const std::string slo_rules = rules::SloRuleFileYaml(config->slos); !slo_rules.empty()) {
    // Generated, so a failure here is modelpulse's bug; still better caught by the check.
    if (auto parsed = rules::ParseRuleFile(slo_rules, "<slos>"); !parsed) {
      std::cerr << "FAILED: the rules generated from slos: " << parsed.error().ToString() << "\n";
      return 1;
    }
  }
  if (syntax_only || config->rule_files.empty()) {
    return 0;
  }
  std::cout << "\n";
  return rules::CheckRuleFiles(config->rule_files, std::cout);
}

// `export rules`: the config's rule files as one Prometheus rule file, with the burn-rate rules of
// its SLOs (over counters, so they travel) appended. Rules that cannot travel
// are named on stderr with the reason and left out; that is not an error unless `strict` (a
// deployment pipeline that must ship every rule asks for it), so the usual run exits 0.
int ExportRulesCommand(const std::string& config_file, const std::string& output, bool strict) {
  // Rules and SLOs only: a build machine without the API keys can export.
  auto config = LoadConfig(config_file, ConfigCheck::kSyntaxOnly);
  if (!config) {
    std::cerr << config.error().ToString() << "\n";
    return kUsageError;
  }
  std::vector<rules::RuleFileDef> files;
  for (const std::string& path : config->rule_files) {
    auto file = rules::LoadRuleFile(path);
    if (!file) {
      std::cerr << file.error().ToString() << "\n";
      return 1;
    }
    files.push_back(std::move(*file));
  }
  // The SLOs' burn-rate rules, in the dialect that means the same in Prometheus.
  rules::ExportOptions options;
  if (const std::string slo_rules =
          rules::SloRuleFileYaml(config->slos, rules::SloRuleDialect::kPortable);
      !slo_rules.empty()) {
    auto generated = rules::ParseRuleFile(slo_rules, "slos");
    if (!generated) {
      std::cerr << generated.error().ToString() << "\n";
      return 1;
    }
    options.extra_groups = std::move(generated->groups);
  }
  const rules::RulesExport exported = rules::ExportRules(files, options);
  for (const rules::ExportRefusal& refusal : exported.refused) {
    std::cerr << "not exported: " << refusal.rule << " (" << refusal.location
              << "): " << refusal.reason << "\n";
  }
  std::cerr << "exported " << exported.exported << " rules, refused " << exported.refused.size()
            << "\n";
  if (output == "-") {
    std::cout << exported.yaml;
  } else {
    std::ofstream out(output, std::ios::trunc);
    out << exported.yaml;
    if (!out.flush()) {
      std::cerr << "cannot write " << output << "\n";
      return 1;
    }
  }
  return strict && !exported.refused.empty() ? 1 : 0;
}

// Starts the config's simulator in-process, if it has one, so `probe` works on the demo config.
Result<std::unique_ptr<simulator::Simulator>> MaybeStartSimulator(const Config& config,
                                                                  const Clock& clock) {
  if (!config.simulator) {
    return std::unique_ptr<simulator::Simulator>();
  }
  return StartSimulator(*config.simulator, clock);
}

int Probe(const std::string& config_file, const std::string& target_name, const std::string& output,
          int count) {
  auto config = LoadConfig(config_file);
  if (!config) {
    std::cerr << config.error().ToString() << "\n";
    return kUsageError;
  }
  const collector::TargetSpec* target = nullptr;
  for (const collector::TargetSpec& candidate : config->targets) {
    if (candidate.name == target_name) {
      target = &candidate;
    }
  }
  if (target == nullptr) {
    std::cerr << "no target named \"" << target_name << "\" in " << config_file << "; targets:";
    for (const collector::TargetSpec& candidate : config->targets) {
      std::cerr << " " << candidate.name;
    }
    std::cerr << "\n";
    return kUsageError;
  }
  SystemClock clock;
  auto simulator = MaybeStartSimulator(*config, clock);
  if (!simulator && simulator.error().code == Error::Code::kUnavailable) {
    // Typically the daemon of the same config already serves the simulator: probe that one.
    spdlog::info("simulator not started here ({}); probing whatever serves its address",
                 simulator.error().message);
  } else if (!simulator) {
    std::cerr << simulator.error().ToString() << "\n";
    return kUsageError;
  }
  int exit_code = 0;
  for (int i = 0; i < count; ++i) {
    ProbeResult result = collector::ProbeOnce(*target, config->prober, clock);
    if (output == "json") {
      std::cout << ProbeToJsonLine(result) << std::endl;
    } else {
      std::cout << ProbeToText(result) << std::flush;
    }
    if (result.outcome != Outcome::kOk) {
      exit_code = ExitCodeFor(result.outcome);
    }
  }
  return exit_code;
}

// Unix seconds ("1764115200", "1764115200.5") or RFC 3339 in UTC ("2026-11-26T04:00:00Z").
Result<int64_t> ParseQueryTime(const std::string& text) {
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  // Milliseconds must fit an int64 (llround of more is undefined: 1e300 became INT64_MIN).
  constexpr double kMaxSeconds = 9.2e15;
  if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(seconds)) {
    if (std::fabs(seconds) > kMaxSeconds) {
      return Fail(
          Error::InvalidArgument("invalid --time \"" + text +
                                 "\": out of range (at most 9.2e15 seconds either side of 1970)"));
    }
    return static_cast<int64_t>(std::llround(seconds * 1000));
  }
  std::tm tm = {};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (!in.fail()) {
    std::string rest;
    in >> rest;
    if (rest == "Z" || rest.empty()) {
      return static_cast<int64_t>(timegm(&tm)) * 1000;
    }
  }
  return Fail(Error::InvalidArgument("invalid --time \"" + text +
                                     "\": use unix seconds or RFC 3339 UTC like "
                                     "2026-11-26T04:00:00Z"));
}

std::string FormatLabels(const Labels& labels) {
  std::string out;
  auto name = labels.find("__name__");
  if (name != labels.end()) {
    out = name->second;
  }
  out += "{";
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (key == "__name__") {
      continue;
    }
    out += (first ? "" : ", ") + key + "=\"" + value + "\"";
    first = false;
  }
  return out + "}";
}

// `export slo-rules`: the rule file generated from the config's SLOs, to stdout or `output`.
int ExportSloRules(const std::string& config_file, const std::string& output) {
  auto config = LoadConfig(config_file, ConfigCheck::kSyntaxOnly);
  if (!config) {
    std::cerr << config.error().ToString() << "\n";
    return kUsageError;
  }
  const std::string text = rules::SloRuleFileYaml(config->slos);
  if (text.empty()) {
    std::cerr << "error: " << config_file << " defines no slos\n";
    return 1;
  }
  if (output.empty() || output == "-") {
    std::cout << text;
    return 0;
  }
  std::ofstream file(output, std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    std::cerr << "error: cannot write " << output << "\n";
    return 1;
  }
  return 0;
}

struct ReportFlags {
  std::string month;
  std::string from;
  std::string to;
  std::string storage_path = "/var/lib/modelpulse/modelpulse.db";
  std::string config_file;
  bool config_given = false;  // --config.file on the command line
  std::string format = "table";
};

int RunReport(const ReportFlags& flags) {
  ReportOptions options;
  options.storage_path = flags.storage_path;
  std::error_code ec;
  // Without --config.file the default config is read when it exists: a report without SLOs
  // is still a report.
  if (flags.config_given || std::filesystem::exists(flags.config_file, ec)) {
    // A report needs the SLOs, not the API keys.
    auto config = LoadConfig(flags.config_file, ConfigCheck::kSyntaxOnly);
    if (!config) {
      std::cerr << config.error().ToString() << "\n";
      return kUsageError;
    }
    options.slos = config->slos;
  }
  SystemClock clock;
  const int64_t now = clock.NowUnixMillis();
  options.to_ms = now;
  options.from_ms = now - 30LL * 24 * 3600 * 1000;
  if (!flags.month.empty()) {
    if (!flags.from.empty() || !flags.to.empty()) {
      std::cerr << "error: --month and --from/--to exclude each other\n";
      return kUsageError;
    }
    auto range = MonthRange(flags.month);
    if (!range) {
      std::cerr << range.error().ToString() << "\n";
      return kUsageError;
    }
    std::tie(options.from_ms, options.to_ms) = *range;
  }
  for (auto [text, into] :
       {std::pair{&flags.from, &options.from_ms}, std::pair{&flags.to, &options.to_ms}}) {
    if (text->empty()) {
      continue;
    }
    auto parsed = ParseQueryTime(*text);
    if (!parsed) {
      std::cerr << parsed.error().ToString() << "\n";
      return kUsageError;
    }
    *into = *parsed;
  }
  if (flags.format == "status-html") {
    // The status page as of --to (now by default): the 90 days before it, --from unused.
    auto page = BuildStaticStatusPage(options.storage_path, options.slos, options.to_ms);
    if (!page) {
      std::cerr << "error: " << page.error().ToString() << "\n";
      return page.error().code == Error::Code::kNotFound ? kUsageError : 1;
    }
    std::cout << RenderStatusPage(*page);
    return 0;
  }
  if (options.from_ms >= options.to_ms) {
    std::cerr << "error: the report period is empty (--from must be before --to)\n";
    return kUsageError;
  }
  if (isatty(STDERR_FILENO) != 0) {
    options.progress = &std::cerr;
  }
  auto report = BuildReport(options);
  if (!report) {
    // A missing database exits 1, as `query` does: the command line was fine.
    std::cerr << "error: " << report.error().ToString() << "\n";
    return 1;
  }
  auto text = FormatReport(*report, flags.format);
  if (!text) {
    std::cerr << text.error().ToString() << "\n";
    return kUsageError;
  }
  std::cout << *text;
  return 0;
}

int Query(const std::string& expr, const std::string& time_text, const std::string& db_path) {
  auto query = rules::Query::Parse(expr);
  if (!query) {
    std::cerr << "error: " << query.error().ToString() << "\n";
    return kUsageError;
  }
  SystemClock clock;
  int64_t at_ms = clock.NowUnixMillis();
  if (!time_text.empty()) {
    auto parsed = ParseQueryTime(time_text);
    if (!parsed) {
      std::cerr << parsed.error().ToString() << "\n";
      return kUsageError;
    }
    at_ms = *parsed;
  }
  // Read-only and from storage alone: a query runs beside (or after) the daemon, by a user who
  // may only read the file, and never migrates or writes it.
  auto history = storage::Store::OpenHistoryReadOnly(db_path);
  if (!history) {
    std::cerr << "error: " << history.error().ToString() << "\n";
    return 1;
  }
  storage::ProbeSeriesSource probes(history->get(), Millis(0), INT64_MAX);
  auto recorded = storage::RecordedStore::OpenReadOnly(db_path, clock);
  if (!recorded) {
    std::cerr << "error: " << recorded.error().ToString() << "\n";
    return 1;
  }
  // The probe series and the series rules recorded, as the daemon's rules and API read them.
  const SourceUnion source(probes, **recorded);
  auto value = query->Evaluate(source, at_ms);
  if (!value) {
    std::cerr << "error: " << value.error().ToString() << "\n";
    return 1;
  }
  const std::string at = fmt::format("@[{:.3f}]", static_cast<double>(at_ms) / 1000.0);
  if (const auto* vector = std::get_if<rules::Vector>(&*value)) {
    for (const rules::VectorSample& sample : *vector) {
      std::cout << FormatLabels(sample.labels) << " => " << rules::FormatGoFloat(sample.value)
                << " " << at << "\n";
    }
  } else if (const auto* scalar = std::get_if<rules::Scalar>(&*value)) {
    std::cout << "scalar: " << rules::FormatGoFloat(scalar->value) << " " << at << "\n";
  } else if (const auto* matrix = std::get_if<rules::Matrix>(&*value)) {
    for (const rules::Series& series : *matrix) {
      std::cout << FormatLabels(series.labels) << " =>\n";
      for (const rules::Sample& sample : series.samples) {
        std::cout << rules::FormatGoFloat(sample.v) << " @["
                  << fmt::format("{:.3f}", static_cast<double>(sample.t_ms) / 1000.0) << "]\n";
      }
    }
  } else if (const auto* text = std::get_if<rules::String>(&*value)) {
    std::cout << "string: " << text->value << " " << at << "\n";
  }
  return 0;
}

int Simulate(const std::string& scenario, const std::string& listen_address, int workers) {
  auto options = simulator::OptionsFromSettings({.scenario_path = scenario,
                                                 .listen_address = listen_address,
                                                 .worker_threads = static_cast<size_t>(workers)});
  if (!options) {
    std::cerr << options.error().ToString() << "\n";
    return kUsageError;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  SystemClock clock;
  auto simulator = simulator::Simulator::Start(*options, clock);
  if (!simulator) {
    std::cerr << simulator.error().ToString() << "\n";
    return 1;
  }
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("simulator stopping");
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{"modelpulse: watches AI model APIs the way SREs watch their own services"};
  app.require_subcommand(1);
  // Global flags go before or after the subcommand, as with Prometheus's binaries: subcommands
  // created from here on hand the flags they do not know to their parent.
  app.fallthrough();
  std::string version_text = VersionText(GetBuildInfo());
  version_text.pop_back();  // CLI11 ends the line itself
  app.set_version_flag("--version", version_text);
  std::string log_level = "info";
  app.add_option("--log.level", log_level,
                 "Only log messages with the given severity or above: debug, info, warn, error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  std::string log_format = "logfmt";
  app.add_option("--log.format", log_format, "Output format of log messages: logfmt, json")
      ->check(CLI::IsMember({"logfmt", "json"}))
      ->capture_default_str();

  RunFlags run_flags;
  std::string listen_flag;
  std::string storage_flag;
  CLI::App* run = app.add_subcommand("run", "Run the daemon");
  run->add_option("--config.file", run_flags.config_file, "Configuration file")
      ->capture_default_str();
  CLI::Option* listen_option = run->add_option(
      "--web.listen-address", listen_flag,
      "Address for /metrics and the API (default from the config, else 127.0.0.1:9464)");
  CLI::Option* storage_option = run->add_option("--storage.path", storage_flag,
                                                "SQLite database file (default from the config)");
  // The HTTP endpoint's flags, spelled as Prometheus spells them (README "Securing the endpoint").
  std::string web_config_flag;
  CLI::Option* web_config_option = run->add_option(
      "--web.config.file", web_config_flag,
      "Web config file (exporter-toolkit format) that enables TLS and/or basic authentication");
  run->add_flag("--web.enable-lifecycle", run_flags.web_enable_lifecycle,
                "Enable reload via HTTP request (POST or PUT /-/reload)");
  run->add_option("--web.max-connections", run_flags.web_max_connections,
                  "Maximum number of simultaneous connections (each holds a worker thread)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  std::string read_timeout_flag = "10s";
  run->add_option("--web.read-timeout", read_timeout_flag,
                  "Maximum duration to read a whole request, or to write its answer")
      ->check([](const std::string& text) -> std::string {
        auto parsed = ParsePromDuration(text);
        return parsed && parsed->count() > 0 ? "" : "expected a positive duration, e.g. 10s";
      })
      ->capture_default_str();

  CLI::App* check = app.add_subcommand("check", "Check configuration or rule files");
  check->require_subcommand(1);
  std::string check_config_file;
  bool check_syntax_only = false;
  CLI::App* check_config =
      check->add_subcommand("config", "Check a configuration file and the rule files it names");
  check_config->add_option("file", check_config_file, "Configuration file")->required();
  check_config->add_flag("--syntax-only", check_syntax_only,
                         "Check the file's syntax only: no secrets, credential or rule files "
                         "are read");
  std::vector<std::string> check_rule_files;
  CLI::App* check_rules = check->add_subcommand("rules", "Check rule files (as promtool does)");
  check_rules->add_option("files", check_rule_files, "Rule files")->required();

  CLI::App* test = app.add_subcommand("test", "Run unit tests");
  test->require_subcommand(1);
  std::vector<std::string> test_files;
  test->add_subcommand("rules", "Run rule unit tests in promtool's format")
      ->add_option("files", test_files, "Test files")
      ->required();

  CLI::App* export_cmd = app.add_subcommand("export", "Export configuration for other systems");
  export_cmd->require_subcommand(1);
  std::string export_config = run_flags.config_file;
  std::string export_output = "-";
  bool export_strict = false;
  CLI::App* export_rules = export_cmd->add_subcommand(
      "rules", "Write the configured rules for Prometheus, Thanos or Mimir (those that travel)");
  export_rules->add_option("--config.file", export_config, "Configuration file")
      ->capture_default_str();
  export_rules->add_option("--output", export_output, "File to write, or - for stdout")
      ->capture_default_str();
  export_rules->add_flag("--strict", export_strict,
                         "Exit 1 when any rule cannot travel (they are left out either way)");

  std::string query_expr;
  std::string query_time;
  std::string query_db = "/var/lib/modelpulse/modelpulse.db";
  CLI::App* query = app.add_subcommand("query", "Evaluate a PromQL expression over stored probes");
  query->add_option("expr", query_expr, "PromQL expression")->required();
  query->add_option("--time", query_time,
                    "Evaluation time: unix seconds or RFC 3339 (default now)");
  query->add_option("--storage.path", query_db, "SQLite database file")->capture_default_str();

  ReportFlags report_flags;
  report_flags.config_file = run_flags.config_file;
  CLI::App* report = app.add_subcommand(
      "report", "SLA report for a period: availability, SLOs, latency, incidents with evidence");
  report->add_option("--month", report_flags.month, "Calendar month in UTC, e.g. 2026-10");
  report->add_option("--from", report_flags.from,
                     "Start: unix seconds or RFC 3339 (default: 30 days before --to)");
  report->add_option("--to", report_flags.to, "End: unix seconds or RFC 3339 (default now)");
  report->add_option("--storage.path", report_flags.storage_path, "SQLite database file")
      ->capture_default_str();
  CLI::Option* report_config_option =
      report
          ->add_option("--config.file", report_flags.config_file, "Configuration file (its slos:)")
          ->capture_default_str();
  report
      ->add_option("--format", report_flags.format,
                   "table, markdown, csv, json, html, or status-html (the daemon's /status page "
                   "as a static file)")
      ->check(CLI::IsMember({"table", "markdown", "csv", "json", "html", "status-html"}))
      ->capture_default_str();

  CLI::App* export_slo = export_cmd->add_subcommand(
      "slo-rules", "The burn-rate rule file generated from the config's slos (Prometheus format)");
  export_slo->add_option("--config.file", export_config, "Configuration file")
      ->capture_default_str();
  export_slo->add_option("-o,--output", export_output, "File to write, or - for stdout")
      ->capture_default_str();

  std::string probe_config = run_flags.config_file;
  std::string probe_target;
  std::string probe_output = "text";
  int probe_count = 1;
  CLI::App* probe = app.add_subcommand("probe", "Probe one target now and print every phase");
  probe->add_option("target", probe_target, "Target name")->required();
  probe->add_option("--config.file", probe_config, "Configuration file")->capture_default_str();
  probe->add_option("--output", probe_output, "text or json (one line per probe)")
      ->check(CLI::IsMember({"text", "json"}));
  probe->add_option("--count", probe_count, "Probes to run, one after another")
      ->check(CLI::Range(1, 100000));

  std::string scenario;
  std::string simulate_listen = "127.0.0.1:9465";
  CLI::App* simulate = app.add_subcommand("simulate", "Serve simulated provider APIs");
  simulate->add_option("--scenario", scenario, "Scenario file")->required();
  // --listen-address is the spelling of earlier releases.
  simulate
      ->add_option("--web.listen-address,--listen-address", simulate_listen, "Address to serve on")
      ->capture_default_str();
  int simulate_workers = 64;
  simulate
      ->add_option("--worker-threads", simulate_workers,
                   "Streams served at once (each open stream holds a thread)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();

  app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, the version or the error
    // Every usage error exits 2, as Prometheus's binaries do; CLI11 has a code per kind.
    return code == 0 ? 0 : kUsageError;
  }
  // The flags' checks admit only names these parse.
  SetUpLogging(ParseLogLevel(log_level).value_or(spdlog::level::info),
               ParseLogFormat(log_format).value_or(LogFormat::kLogfmt));

  if (run->parsed()) {
    if (listen_option->count() > 0) {
      run_flags.web_listen_address = listen_flag;
    }
    if (storage_option->count() > 0) {
      run_flags.storage_path = storage_flag;
    }
    if (web_config_option->count() > 0) {
      run_flags.web_config_file = web_config_flag;
    }
    run_flags.web_read_timeout = *ParsePromDuration(read_timeout_flag);
    return RunUntilSignalled(run_flags);
  }
  if (check_config->parsed()) {
    return CheckConfig(check_config_file, check_syntax_only);
  }
  if (check_rules->parsed()) {
    return rules::CheckRuleFiles(check_rule_files, std::cout);
  }
  if (test->parsed()) {
    return rules::RunRuleTests(test_files, std::cout);
  }
  if (export_rules->parsed()) {
    return ExportRulesCommand(export_config, export_output, export_strict);
  }
  if (query->parsed()) {
    return Query(query_expr, query_time, query_db);
  }
  if (report->parsed()) {
    report_flags.config_given = report_config_option->count() > 0;
    return RunReport(report_flags);
  }
  if (export_slo->parsed()) {
    return ExportSloRules(export_config, export_output);
  }
  if (probe->parsed()) {
    return Probe(probe_config, probe_target, probe_output, probe_count);
  }
  if (simulate->parsed()) {
    return Simulate(scenario, simulate_listen, simulate_workers);
  }
  std::cout << VersionText(GetBuildInfo());
  return 0;
}

}  // namespace modelpulse::daemon
