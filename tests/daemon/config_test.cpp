#include "daemon/config.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/map_environment.h"

namespace modelpulse::daemon {
namespace {

using collector::ConnectionReuse;
using collector::Provider;
using collector::TargetSpec;
using namespace std::chrono_literals;

// Environment variables, files and glob results given by the test; nothing from the machine.
// The real environment for files and globs, with injected variables: for the shipped configs.
class ShippedEnvironment final : public Environment {
 public:
  std::map<std::string, std::string> vars;
  std::optional<std::string> GetEnv(const std::string& name) const override {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  Result<std::string> ReadFile(const std::string& path) const override {
    return system_.ReadFile(path);
  }
  Result<std::vector<std::string>> Glob(const std::string& pattern) const override {
    return system_.Glob(pattern);
  }

 private:
  SystemEnvironment system_;
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// The problems reported for `yaml`, one per line. Fails the test when the config parses.
std::vector<std::string> Problems(const std::string& yaml, const Environment& env) {
  Result<Config> config = ParseConfig(yaml, "t.yaml", env);
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().code == Error::Code::kParse);
  return Lines(config.error().message);
}

std::vector<std::string> Problems(const std::string& yaml) {
  return Problems(yaml, testing::MapEnvironment{});
}

bool Has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

bool HasPrefix(const std::vector<std::string>& lines, const std::string& prefix) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.starts_with(prefix); });
}

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    text += line + "\n";
  }
  return text;
}

// A target with the required keys, for tests about one other key.
std::string OneTarget(const std::string& extra) {
  return "targets:\n"
         "  - name: t\n"
         "    provider: openai\n"
         "    model: m\n"
         "    base_url: https://api.openai.com/v1\n" +
         extra;
}

Config MustParse(const std::string& yaml, const Environment& env = testing::MapEnvironment{}) {
  Result<Config> config = ParseConfig(yaml, "/etc/mp/mp.yaml", env);
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  return *config;
}

constexpr const char* kFullConfig = R"(global:
  external_labels: {vantage: eu-home}
  max_concurrency: 8
  max_response_bytes: 65536
  jitter_fraction: 0.2
  shutdown_grace: 3s
  evaluation_interval: 30s
web:
  listen_address: 127.0.0.1:9000
storage:
  path: data/mp.db
  retention: 30d
  summary_retention: 400d
  memory_window: 30m
defaults:
  interval: 30s
  stream: true
  max_tokens: 8
  prompt: "Say OK."
  expect: "(?i)\\bok\\b"
  timeouts: {connect: 2s, first_token: 10s, total: 30s}
  connection: keep_warm
targets:
  - name: gpt@openai
    provider: openai
    model: gpt-4o-mini
    provider_model: gpt-4o-mini-2024-07-18
    base_url: https://eu.api.openai.com/v1/
    auth: {api_key_env: OPENAI_API_KEY}
    labels: {tier: prod}
    price: {input_per_million: 0.15, output_per_million: 0.6}
    budget: {daily_tokens: 50000, daily_cost: 1.5}
  - name: llama@groq
    provider: openai_compatible
    model: llama-3.1-8b
    base_url: https://api.groq.com/openai/v1
    auth: {api_key_file: secrets/groq.key}
    headers: {X-Team: sre, X-Token: {env: TEAM_TOKEN}}
    interval: 10s
    stream: false
    max_tokens: 4
    prompt: Hi
    expect: ""
    timeouts: {total: 15s}
    connection: fresh
    labels: {region: us-west}
rule_files: [rules/*.yaml, extra/slo.yaml]
simulator: {scenario: scenarios/demo.yaml}
)";

testing::MapEnvironment FullEnvironment() {
  testing::MapEnvironment env;
  env.vars = {{"OPENAI_API_KEY", "sk-openai"}, {"TEAM_TOKEN", "team-token"}};
  env.files = {{"/etc/mp/secrets/groq.key", "gsk-groq\r\n"}, {"/etc/mp/extra/slo.yaml", ""}};
  env.globs = {{"/etc/mp/rules/*.yaml", {"/etc/mp/rules/a.yaml", "/etc/mp/rules/b.yaml"}}};
  return env;
}

TEST_CASE("a full config becomes the modules' option structs") {
  const Config config = MustParse(kFullConfig, FullEnvironment());
  CHECK(config.file == "/etc/mp/mp.yaml");
  CHECK(config.external_labels == Labels{{"vantage", "eu-home"}});
  CHECK(config.web_listen_address == "127.0.0.1:9000");
  CHECK(config.storage.path == "/etc/mp/data/mp.db");
  CHECK(config.storage.retention == Millis(30LL * 24 * 3600 * 1000));
  CHECK(config.storage.summary_retention == Millis(400LL * 24 * 3600 * 1000));
  CHECK(config.memory_window == Millis(30LL * 60 * 1000));
  CHECK(config.prober.max_concurrency == 8);
  CHECK(config.prober.max_response_bytes == 65536);
  CHECK(config.prober.jitter_fraction == doctest::Approx(0.2));
  CHECK(config.prober.shutdown_grace == 3s);
  CHECK(config.evaluation_interval == 30s);
  CHECK(config.rule_files == std::vector<std::string>{"/etc/mp/rules/a.yaml",
                                                      "/etc/mp/rules/b.yaml",
                                                      "/etc/mp/extra/slo.yaml"});
  REQUIRE(config.simulator.has_value());
  CHECK(config.simulator->scenario_path == "/etc/mp/scenarios/demo.yaml");
  CHECK(config.simulator->listen_address == "127.0.0.1:9465");
  REQUIRE(config.targets.size() == 2);

  const TargetSpec& gpt = config.targets[0];
  CHECK(gpt.name == "gpt@openai");
  CHECK(gpt.provider == Provider::kOpenAI);
  CHECK(gpt.model == "gpt-4o-mini");
  CHECK(gpt.provider_model == "gpt-4o-mini-2024-07-18");
  CHECK(gpt.base_url == "https://eu.api.openai.com/v1");
  CHECK(gpt.api_key == Secret("sk-openai"));
  CHECK(gpt.headers.empty());
  CHECK(gpt.labels == Labels{{"target", "gpt@openai"},
                             {"provider", "openai"},
                             {"model", "gpt-4o-mini"},
                             {"cloud", "openai"},
                             {"region", "eu"},
                             {"tier", "prod"}});
  // Inherited from defaults.
  CHECK(gpt.interval == 30s);
  CHECK(gpt.stream);
  CHECK(gpt.max_tokens == 8);
  CHECK(gpt.prompt == "Say OK.");
  CHECK(gpt.expect == "(?i)\\bok\\b");
  CHECK(gpt.timeouts.connect == 2s);
  CHECK(gpt.timeouts.first_token == 10s);
  CHECK(gpt.timeouts.total == 30s);
  CHECK(gpt.connection == ConnectionReuse::kKeepWarm);
  CHECK(gpt.input_price_per_million == doctest::Approx(0.15));
  CHECK(gpt.output_price_per_million == doctest::Approx(0.6));
  CHECK(gpt.daily_token_budget == 50000);
  CHECK(gpt.daily_cost_budget == doctest::Approx(1.5));

  const TargetSpec& groq = config.targets[1];
  CHECK(groq.provider == Provider::kOpenAICompatible);
  CHECK(groq.provider_model == "llama-3.1-8b");  // defaults to model
  CHECK(groq.api_key == Secret("gsk-groq"));     // trailing newline trimmed
  REQUIRE(groq.headers.size() == 2);
  CHECK(groq.headers[0].first == "X-Team");
  CHECK(groq.headers[0].second == Secret("sre"));
  CHECK(groq.headers[1].first == "X-Token");
  CHECK(groq.headers[1].second == Secret("team-token"));
  CHECK(groq.labels.at("cloud") == "groq");
  CHECK(groq.labels.at("region") == "us-west");  // own label wins over the derived "global"
  // Overridden per target; timeouts field by field.
  CHECK(groq.interval == 10s);
  CHECK_FALSE(groq.stream);
  CHECK(groq.max_tokens == 4);
  CHECK(groq.prompt == "Hi");
  CHECK(groq.expect.empty());
  CHECK(groq.timeouts.connect == 2s);
  CHECK(groq.timeouts.first_token == 10s);
  CHECK(groq.timeouts.total == 15s);
  CHECK(groq.connection == ConnectionReuse::kFresh);
  CHECK_FALSE(groq.input_price_per_million.has_value());
  CHECK_FALSE(groq.daily_token_budget.has_value());
}

TEST_CASE("without sections, the structs keep their defaults") {
  const Config empty = MustParse("");
  CHECK(empty.targets.empty());
  CHECK(empty.rule_files.empty());
  CHECK_FALSE(empty.simulator.has_value());
  CHECK(empty.web_listen_address == "127.0.0.1:9464");
  CHECK(empty.storage.path == kDefaultStoragePath);
  // Raw probes 90 days, their summaries two years (issue 10 item 4).
  CHECK(empty.storage.retention == Millis(90LL * 24 * 3600 * 1000));
  CHECK(empty.storage.summary_retention == Millis(2LL * 365 * 24 * 3600 * 1000));
  CHECK(empty.memory_window == Millis(2LL * 3600 * 1000));

  // An empty targets list is allowed; the daemon warns about it.
  CHECK(MustParse("targets: []\n").targets.empty());

  const Config one = MustParse(OneTarget(""));
  REQUIRE(one.targets.size() == 1);
  const TargetSpec expected_defaults;
  CHECK(one.targets[0].interval == expected_defaults.interval);
  CHECK(one.targets[0].prompt == expected_defaults.prompt);
  CHECK(one.targets[0].timeouts.total == expected_defaults.timeouts.total);
  CHECK(one.targets[0].api_key.empty());
}

TEST_CASE("every problem is reported with its file:line:column") {
  const std::string yaml = R"(global:
  max_concurrency: lots
defaults:
  intervall: 30s
  timeouts: {connect: 5x, first_token: 90s, total: 60s}
targets:
  - name: gpt@openai
    provider: openai
    model: gpt-4o-mini
    base_url: https://api.openai.com/v1
    intervall: 5s
    max_tokens: many
  - name: gpt@openai
    provider: opnai
    model: m
    base_url: api.openai.com/v1
    auth: {api_key_env: OPENAI_API_KEY}
)";
  const std::vector<std::string> lines = Problems(yaml);
  INFO(Join(lines));
  CHECK(Has(lines, "t.yaml:2:20: \"global.max_concurrency\": expected an integer, got \"lots\""));
  CHECK(Has(lines,
            "t.yaml:4:3: unknown key \"intervall\" in \"defaults\" (did you mean "
            "\"interval\"?)"));
  CHECK(HasPrefix(lines, "t.yaml:5:23: \"timeouts.connect\": not a valid duration: \"5x\""));
  CHECK(Has(lines,
            "t.yaml:5:40: \"timeouts.first_token\" (1m30s) is longer than "
            "\"timeouts.total\" (1m) in \"defaults\""));
  CHECK(Has(lines,
            "t.yaml:11:5: unknown key \"intervall\" in target \"gpt@openai\" (did you "
            "mean \"interval\"?)"));
  CHECK(Has(lines, "t.yaml:12:17: \"max_tokens\": expected an integer, got \"many\""));
  CHECK(Has(lines, "t.yaml:13:11: duplicate target name \"gpt@openai\" (first defined at line 7)"));
  CHECK(Has(lines,
            "t.yaml:14:15: \"provider\": unknown provider \"opnai\" (valid: openai, "
            "openai_compatible, azure, anthropic, bedrock, vertex, gemini)"));
  CHECK(Has(lines, "t.yaml:16:15: \"base_url\": must start with http:// or https://"));
  CHECK(Has(lines,
            "t.yaml:17:25: \"auth.api_key_env\": environment variable OPENAI_API_KEY is "
            "not set"));
  // Nothing else, each once (the defaults' timeout mistake is not repeated per target), sorted.
  CHECK(lines.size() == 10);
  CHECK(std::is_sorted(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    auto position = [](const std::string& line) {
      const size_t first = line.find(':');
      const size_t second = line.find(':', first + 1);
      return std::stoi(line.substr(first + 1, second - first - 1)) * 1000 +
             std::stoi(line.substr(second + 1));
    };
    return position(a) < position(b);
  }));
}

TEST_CASE("YAML syntax errors carry yaml-cpp's position, 1-based") {
  const std::vector<std::string> lines = Problems("targets:\n  - name: [oops\n");
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].starts_with("t.yaml:3:1: YAML syntax error: "));

  const std::vector<std::string> map_value = Problems("global: a: b\n");
  REQUIRE(map_value.size() == 1);
  CHECK(map_value[0] == "t.yaml:1:10: YAML syntax error: illegal map value");

  CHECK(Problems("web: {}\n---\nweb: {}\n")[0].starts_with("t.yaml:3:1: only one YAML document"));
  // A lone "," made yaml-cpp 0.7's LoadAll yield documents without end (gigabytes in seconds;
  // the config fuzz target's find): now a problem at its line.
  CHECK(Problems(",\n")[0].starts_with("t.yaml:1:1: only one YAML document"));
  CHECK(Problems("# a comment\n  , x\n")[0].starts_with("t.yaml:2:3: only one YAML document"));
}

TEST_CASE("wrong types are errors at the value") {
  CHECK(Has(Problems("targets: {a: b}\n"), "t.yaml:1:10: \"targets\": expected a list, got a map"));
  CHECK(Has(Problems("global: 5\n"), "t.yaml:1:9: \"global\": expected a map, got a scalar"));
  CHECK(Has(Problems("- a\n"), "t.yaml:1:1: the config must be a map of sections, got a list"));
  CHECK(Has(Problems("rule_files: rules/*.yaml\n"),
            "t.yaml:1:13: \"rule_files\": expected a list, got a scalar"));
  CHECK(Has(Problems("targets: [5]\n"), "t.yaml:1:11: target #1: expected a map, got a scalar"));
  CHECK(Has(Problems(OneTarget("    stream: maybe\n")),
            "t.yaml:6:13: \"stream\": expected true or false, got \"maybe\""));
  CHECK(Has(Problems(OneTarget("    labels: [a, b]\n")),
            "t.yaml:6:13: \"labels\": expected a map, got a list"));
  CHECK(Has(Problems(OneTarget("    provider_model: [x]\n")),
            "t.yaml:6:21: \"provider_model\": expected a string, got a list"));
  CHECK(Has(Problems(OneTarget("    price: {input_per_million: cheap}\n")),
            "t.yaml:6:32: \"price.input_per_million\": expected a number, got \"cheap\""));
  CHECK(Has(Problems(OneTarget("    max_tokens: 1.5\n")),
            "t.yaml:6:17: \"max_tokens\": expected an integer, got \"1.5\""));
  CHECK(Has(Problems(OneTarget("    prompt:\n")),
            "t.yaml:6:5: \"prompt\": expected a string, got nothing"));
}

TEST_CASE("unknown keys are errors at every level, with a suggestion when one is close") {
  CHECK(Has(Problems("rules_files: []\n"),
            "t.yaml:1:1: unknown key \"rules_files\" at the top level (did you mean "
            "\"rule_files\"?)"));
  CHECK(Has(Problems("global: {vantage: x}\n"),
            "t.yaml:1:10: unknown key \"vantage\" in \"global\""));
  CHECK(Has(Problems("web: {listen: x}\n"),
            "t.yaml:1:7: unknown key \"listen\" in \"web\" (did you mean \"listen_address\"?)"));
  CHECK(Has(Problems("storage: {pth: x}\n"),
            "t.yaml:1:11: unknown key \"pth\" in \"storage\" (did you mean \"path\"?)"));
  CHECK(Has(Problems("simulator: {scenario: s.yaml, port: 1}\n"),
            "t.yaml:1:31: unknown key \"port\" in \"simulator\""));
  CHECK(Has(Problems("defaults: {timeouts: {conect: 1s}}\n"),
            "t.yaml:1:23: unknown key \"conect\" in \"timeouts\" of \"defaults\" (did you mean "
            "\"connect\"?)"));
  CHECK(Has(Problems(OneTarget("    auth: {api_key: sk-live-123}\n")),
            "t.yaml:6:12: unknown key \"api_key\" in \"auth\" of target \"t\" (did you mean "
            "\"api_key_env\"?)"));
  CHECK(Has(Problems(OneTarget("    price: {input: 1}\n")),
            "t.yaml:6:13: unknown key \"input\" in \"price\" of target \"t\" (did you "
            "mean \"input_per_million\"?)"));
  CHECK(Has(Problems(OneTarget("    budget: {tokens: 1}\n")),
            "t.yaml:6:14: unknown key \"tokens\" in \"budget\" of target \"t\""));
  CHECK(Has(Problems(OneTarget("    headers: {X-A: {envv: A}}\n")),
            "t.yaml:6:21: unknown key \"envv\" in \"headers.X-A\" (did you mean \"env\"?)"));
  CHECK(Has(Problems("web: {listen_address: a:1}\nweb: {}\n"),
            "t.yaml:2:1: duplicate key \"web\" at the top level (first at line 1)"));
}

TEST_CASE("impossible values are errors") {
  CHECK(Has(Problems("defaults: {interval: 0s}\n"),
            "t.yaml:1:22: \"interval\": must be greater than 0, got 0s"));
  CHECK(Has(Problems(OneTarget("    timeouts: {total: 0s}\n")),
            "t.yaml:6:23: \"timeouts.total\": must be greater than 0, got 0s"));
  CHECK(Has(Problems(OneTarget("    max_tokens: 0\n")),
            "t.yaml:6:17: \"max_tokens\": must be at least 1, got 0"));
  CHECK(Has(Problems(OneTarget("    price: {output_per_million: -1}\n")),
            "t.yaml:6:33: \"price.output_per_million\": must not be negative, got -1"));
  CHECK(Has(Problems(OneTarget("    budget: {daily_tokens: -5}\n")),
            "t.yaml:6:28: \"budget.daily_tokens\": must be at least 1, got -5"));
  CHECK(Has(Problems(OneTarget("    budget: {daily_cost: -0.5}\n")),
            "t.yaml:6:26: \"budget.daily_cost\": must be greater than 0, got -0.5"));
  CHECK(Has(Problems(OneTarget("    budget: {daily_cost: 2}\n")),
            "t.yaml:6:13: \"budget.daily_cost\": needs \"price\" to count cost in target \"t\""));
  CHECK(HasPrefix(Problems(OneTarget("    expect: \"(?i)(ok\"\n")),
                  "t.yaml:6:13: \"expect\": invalid regular expression \"(?i)(ok\": "));
  CHECK(Has(Problems(OneTarget("    connection: sometimes\n")),
            "t.yaml:6:17: \"connection\": expected fresh or keep_warm, got \"sometimes\""));
  CHECK(Has(Problems("global: {evaluation_interval: 0s}\n"),
            "t.yaml:1:31: \"global.evaluation_interval\": must be greater than 0, got 0s"));
  CHECK(Has(Problems("global: {jitter_fraction: 1.5}\n"),
            "t.yaml:1:27: \"global.jitter_fraction\": must be less than 1, got 1.5"));
  CHECK(Has(Problems("web: {listen_address: localhost}\n"),
            "t.yaml:1:23: \"web.listen_address\": expected host:port, got \"localhost\""));
  CHECK(Has(Problems("storage: {memory_window: 0s}\n"),
            "t.yaml:1:26: \"storage.memory_window\": must be greater than 0, got 0s"));
  CHECK(Has(Problems("storage: {summary_retention: 0s}\n"),
            "t.yaml:1:30: \"storage.summary_retention\": must be greater than 0, got 0s"));
  CHECK(Has(Problems("storage: {retention: -1d}\n"),
            "t.yaml:1:22: \"storage.retention\": not a valid duration: \"-1d\" (expected e.g. 30s, "
            "5m, 1h30m)"));
}

// Everything logged while it lives, through the default logger; the previous one is restored.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%l %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

TEST_CASE("a secret file others can read is warned about by name, as ssh does, never quoted") {
  std::string folder = (std::filesystem::temp_directory_path() / "mp-perm-XXXXXX").string();
  REQUIRE(mkdtemp(folder.data()) != nullptr);
  const std::string key = folder + "/openai.key";
  { std::ofstream(key) << "gsk_SECRET_file_content_0123\n"; }
  const std::string yaml = OneTarget("    auth: {api_key_file: " + key + "}\n");
  ShippedEnvironment env;
  for (const auto& [mode, warned, who] :
       {std::tuple{0644, true, "others"}, std::tuple{0640, true, "its group"},
        std::tuple{0600, false, ""}, std::tuple{0400, false, ""}}) {
    CAPTURE(mode);
    REQUIRE(chmod(key.c_str(), static_cast<mode_t>(mode)) == 0);
    CapturedLog log;
    const Config config = MustParse(yaml, env);
    CHECK(config.targets[0].api_key.Reveal() == "gsk_SECRET_file_content_0123");
    const std::string text = log.text();
    CHECK(text.find("SECRET") == std::string::npos);
    if (warned) {
      CHECK(text == fmt::format("warning secret file {} is readable by {} (mode {:04o}); only its "
                                "owner should read it: chmod 600 {}\n",
                                key, who, mode, key));
    } else {
      CHECK(text.empty());
    }
  }
  std::filesystem::remove_all(folder);
}

TEST_CASE("expect is an RE2 pattern: (?i) anywhere, no lookaround or backreferences") {
  CHECK(MustParse(OneTarget("    expect: \"(?i)\\\\bok\\\\b\"\n")).targets[0].expect ==
        "(?i)\\bok\\b");
  // RE2 (like Go) takes flags mid-pattern.
  CHECK(MustParse(OneTarget("    expect: \"o(?i)k\"\n")).targets[0].expect == "o(?i)k");
  // The pattern that made std::regex recurse once per character of the answer is accepted.
  CHECK(MustParse(OneTarget("    expect: \"(.|\\n)*OK\"\n")).targets[0].expect == "(.|\n)*OK");
  // Backtracking-only constructs are refused at load time, with RE2's reason.
  CHECK(HasPrefix(Problems(OneTarget("    expect: \"(?=ok)\"\n")),
                  "t.yaml:6:13: \"expect\": invalid regular expression \"(?=ok)\": "));
  CHECK(HasPrefix(Problems(OneTarget("    expect: \"(o)\\\\1\"\n")),
                  "t.yaml:6:13: \"expect\": invalid regular expression"));
}

TEST_CASE("a first_token or connect timeout longer than total is an error where it was set") {
  // Total inherited from defaults, first_token set on the target: reported at the target's value.
  const std::string yaml =
      "defaults: {timeouts: {total: 30s}}\n" + OneTarget("    timeouts: {first_token: 40s}\n");
  CHECK(Problems(yaml) ==
        std::vector<std::string>{"t.yaml:7:29: \"timeouts.first_token\" (40s) is longer than "
                                 "\"timeouts.total\" (30s) in target \"t\""});
  // The target's own total shorter than the inherited connect: reported at the total.
  const std::string shorter =
      "defaults: {timeouts: {connect: 5s}}\n" + OneTarget("    timeouts: {total: 2s}\n");
  CHECK(Problems(shorter) ==
        std::vector<std::string>{"t.yaml:7:23: \"timeouts.connect\" (5s) is longer than "
                                 "\"timeouts.total\" (2s) in target \"t\""});
}

TEST_CASE("a target missing a required key is an error at the target") {
  const std::vector<std::string> lines = Problems("targets:\n  - name: lonely\n  - model: m\n");
  INFO(Join(lines));
  CHECK(Has(lines, "t.yaml:2:5: target \"lonely\": missing required key \"provider\""));
  CHECK(Has(lines, "t.yaml:2:5: target \"lonely\": missing required key \"model\""));
  CHECK(Has(lines, "t.yaml:3:5: target #2: missing required key \"name\""));
  CHECK(Has(lines, "t.yaml:3:5: target #2: missing required key \"provider\""));
  // base_url is required only where the provider has no default endpoint.
  CHECK(lines.size() == 4);
  CHECK(Problems("targets:\n  - {name: a, provider: azure, model: m, auth: {api_key_env: K}}\n",
                 [] {
                   testing::MapEnvironment env;
                   env.vars = {{"K", "key"}};
                   return env;
                 }()) ==
        std::vector<std::string>{"t.yaml:2:5: target \"a\": missing required key \"base_url\" "
                                 "(provider azure has no default endpoint)"});
  CHECK(Has(Problems(OneTarget("    base_url: x\n")),
            "t.yaml:6:5: duplicate key \"base_url\" in target \"t\" (first at line 5)"));
}

TEST_CASE("bad URLs are errors that do not repeat the URL") {
  const auto url_problem = [](const std::string& url) {
    const std::string yaml =
        "targets:\n  - {name: t, provider: openai, model: m, base_url: '" + url + "'}\n";
    const std::vector<std::string> lines = Problems(yaml);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find(url) == std::string::npos);
    return lines[0];
  };
  CHECK(url_problem("ftp://x/v1") ==
        "t.yaml:2:53: \"base_url\": must start with http:// or https://");
  CHECK(url_problem("https://user:sk-secret@host/v1") ==
        "t.yaml:2:53: \"base_url\": must not contain credentials (user:password@); use auth");
  CHECK(url_problem("https://host/v1?key=AIza-secret") ==
        "t.yaml:2:53: \"base_url\": must not contain a query or fragment (keys belong in auth or "
        "headers)");
  CHECK(url_problem("https:///v1") == "t.yaml:2:53: \"base_url\": has no host");
}

TEST_CASE("labels: derived from provider and URL, own labels refine cloud and region only") {
  const auto labels_of = [](const std::string& provider, const std::string& url) {
    // Each cloud with a credential it accepts; vertex also needs its project.
    const std::map<std::string, std::string> auth = {
        {"azure", ", auth: {api_key_env: KEY}"},
        {"anthropic", ", auth: {api_key_env: KEY}"},
        {"gemini", ", auth: {api_key_env: KEY}"},
        {"bedrock", ", auth: {bearer_token_env: KEY}"},
        {"vertex", ", auth: {bearer_token_env: KEY}, project: my-project"}};
    testing::MapEnvironment env;
    env.vars = {{"KEY", "k"}};
    const Config config =
        MustParse("targets:\n  - {name: t, provider: " + provider + ", model: m, base_url: '" +
                      url + "'" + (auth.count(provider) ? auth.at(provider) : "") + "}\n",
                  env);
    return config.targets.at(0).labels;
  };
  const auto cloud_region = [&](const std::string& provider, const std::string& url) {
    const Labels labels = labels_of(provider, url);
    return labels.at("cloud") + "/" + labels.at("region");
  };
  CHECK(cloud_region("openai", "https://api.openai.com/v1") == "openai/global");
  CHECK(cloud_region("openai", "https://eu.api.openai.com/v1") == "openai/eu");
  CHECK(cloud_region("azure", "https://contoso.openai.azure.com") == "azure/global");
  CHECK(cloud_region("anthropic", "https://api.anthropic.com") == "anthropic/global");
  CHECK(cloud_region("bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com") ==
        "aws/us-east-1");
  CHECK(cloud_region("bedrock", "https://bedrock-runtime.eu-central-1.amazonaws.com:443") ==
        "aws/eu-central-1");
  CHECK(cloud_region("vertex", "https://us-central1-aiplatform.googleapis.com/v1") ==
        "gcp/us-central1");
  CHECK(cloud_region("gemini", "https://generativelanguage.googleapis.com") == "gcp/global");
  CHECK(cloud_region("openai_compatible", "https://openrouter.ai/api/v1") == "openrouter/global");
  CHECK(cloud_region("openai_compatible", "https://api.groq.com/openai/v1") == "groq/global");
  CHECK(cloud_region("openai_compatible", "https://api.together.xyz/v1") == "together/global");
  CHECK(cloud_region("openai_compatible", "https://api.fireworks.ai/inference/v1") ==
        "fireworks/global");
  CHECK(cloud_region("openai_compatible", "https://api.mistral.ai/v1") == "mistral/global");
  CHECK(cloud_region("openai_compatible", "http://localhost:8080/v1") == "local/global");
  CHECK(cloud_region("openai_compatible", "http://127.0.0.1:9465/groq/v1") == "local/global");
  CHECK(cloud_region("openai_compatible", "https://LLM.Example.com/v1") ==
        "llm.example.com/global");

  const Config own =
      MustParse(OneTarget("    labels: {cloud: azure, region: eastus, team: sre}\n"));
  CHECK(own.targets[0].labels == Labels{{"target", "t"},
                                        {"provider", "openai"},
                                        {"model", "m"},
                                        {"cloud", "azure"},
                                        {"region", "eastus"},
                                        {"team", "sre"}});

  const std::vector<std::string> lines =
      Problems(OneTarget("    labels: {model: x, target: y, __meta: z, 1st: w, ok: [v]}\n"));
  INFO(Join(lines));
  CHECK(Has(lines,
            "t.yaml:6:14: \"labels\": label \"model\" is set from the target's model and "
            "cannot be overridden"));
  CHECK(Has(lines,
            "t.yaml:6:24: \"labels\": label \"target\" is set from the target's name and "
            "cannot be overridden"));
  CHECK(Has(lines,
            "t.yaml:6:35: \"labels\": invalid label name \"__meta\" (must match "
            "[a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\")"));
  CHECK(HasPrefix(lines, "t.yaml:6:46: \"labels\": invalid label name \"1st\""));
  CHECK(Has(lines, "t.yaml:6:58: \"labels.ok\": expected a string, got a list"));
  CHECK(lines.size() == 5);
  CHECK(HasPrefix(Problems("global: {external_labels: {bad-name: x}}\n"),
                  "t.yaml:1:28: \"global.external_labels\": invalid label name \"bad-name\""));
}

TEST_CASE("secrets are read by reference and never appear in messages") {
  testing::MapEnvironment env;
  env.vars = {{"OPENAI_API_KEY", "sk-live-SECRET1"},
              {"EMPTY_KEY", ""},
              {"MULTILINE", "SECRET2\r\nInjected: yes"},
              {"CREDENTIALS_DIRECTORY", "/run/credentials/modelpulse.service"}};
  // Problems() parses "t.yaml": relative paths start in the working directory.
  const std::string cwd = std::filesystem::current_path().string();
  env.files = {{cwd + "/keys/empty.key", "\n"},
               {"/run/credentials/modelpulse.service/anthropic", "sk-ant-SECRET3\n"}};

  const Config ok = MustParse(OneTarget("    auth: {api_key_credential: anthropic}\n"), env);
  CHECK(ok.targets[0].api_key == Secret("sk-ant-SECRET3"));

  const std::string yaml = R"(targets:
  - name: a
    provider: openai
    model: m
    base_url: https://api.openai.com/v1
    auth: {api_key_env: MISSING_KEY}
    headers: {X-Key: {env: MULTILINE}, "Bad Header": x}
  - name: b
    provider: openai
    model: m
    base_url: https://api.openai.com/v1
    auth: {api_key_env: EMPTY_KEY}
  - name: c
    provider: openai
    model: m
    base_url: https://api.openai.com/v1
    auth: {api_key_file: keys/missing.key}
  - name: d
    provider: openai
    model: m
    base_url: https://api.openai.com/v1
    auth: {api_key_file: keys/empty.key}
  - name: e
    provider: openai
    model: m
    base_url: https://api.openai.com/v1
    auth: {api_key_env: OPENAI_API_KEY, api_key_file: keys/empty.key}
)";
  const std::vector<std::string> lines = Problems(yaml, env);
  const std::string all = Join(lines);
  INFO(all);
  CHECK(Has(lines,
            "t.yaml:6:25: \"auth.api_key_env\": environment variable MISSING_KEY is not "
            "set"));
  CHECK(Has(lines, "t.yaml:7:22: \"headers.X-Key\": value contains a line break"));
  CHECK(Has(lines, "t.yaml:7:40: \"headers\": invalid header name \"Bad Header\""));
  CHECK(Has(lines, "t.yaml:12:25: \"auth.api_key_env\": environment variable EMPTY_KEY is empty"));
  CHECK(Has(lines, "t.yaml:17:26: \"auth.api_key_file\": cannot read " + cwd +
                       "/keys/missing.key: No such file or directory"));
  CHECK(
      Has(lines, "t.yaml:22:26: \"auth.api_key_file\": file " + cwd + "/keys/empty.key is empty"));
  CHECK(Has(lines,
            "t.yaml:27:41: \"auth\": give only one way to authenticate, got api_key_env "
            "and api_key_file"));
  CHECK(lines.size() == 7);
  CHECK(all.find("SECRET") == std::string::npos);

  testing::MapEnvironment no_credentials;
  CHECK(Has(Problems(OneTarget("    auth: {api_key_credential: anthropic}\n"), no_credentials),
            "t.yaml:6:32: \"auth.api_key_credential\": credential anthropic needs "
            "$CREDENTIALS_DIRECTORY, which is not set (LoadCredential= in the systemd unit)"));
}

TEST_CASE("rule_files: globs expanded relative to the config, a missing literal file is an error") {
  testing::MapEnvironment env;
  env.globs = {{"/etc/mp/rules/*.yaml", {"/etc/mp/rules/x.yaml"}}};
  env.files = {{"/abs/r.yaml", ""}};
  const Config config = MustParse(
      "rule_files: [rules/*.yaml, /abs/r.yaml, rules/none*.yaml, "
      "rules/../rules/*.yaml]\n",
      env);
  CHECK(config.rule_files == std::vector<std::string>{"/etc/mp/rules/x.yaml", "/abs/r.yaml"});
  CHECK(Has(Problems("rule_files: [nope.yaml]\n", env),
            "t.yaml:1:14: \"rule_files\": " +
                (std::filesystem::current_path() / "nope.yaml").string() + " does not exist"));
}

TEST_CASE("simulator settings") {
  const Config config =
      MustParse("simulator: {scenario: ../sim/demo.yaml, listen_address: '[::1]:0'}\n");
  REQUIRE(config.simulator.has_value());
  CHECK(config.simulator->scenario_path == "/etc/sim/demo.yaml");
  CHECK(config.simulator->listen_address == "[::1]:0");
  CHECK(Has(Problems("simulator: {listen_address: 127.0.0.1:1}\n"),
            "t.yaml:1:12: \"simulator\": missing required key \"scenario\""));
}

TEST_CASE("DescribeConfig summarises targets without secrets") {
  const Config config = MustParse(kFullConfig, FullEnvironment());
  const std::string text = DescribeConfig(config);
  INFO(text);
  CHECK(text.starts_with("2 targets, 3 rule files\n"));
  CHECK(text.find("  gpt@openai: openai gpt-4o-mini as gpt-4o-mini-2024-07-18 (cloud openai, "
                  "region eu) every 30s at https://eu.api.openai.com/v1, auth api key from "
                  "$OPENAI_API_KEY\n") != std::string::npos);
  CHECK(text.find("  llama@groq: openai_compatible llama-3.1-8b (cloud groq, region us-west) "
                  "every 10s at https://api.groq.com/openai/v1, auth api key from file "
                  "/etc/mp/secrets/groq.key\n") != std::string::npos);
  CHECK(text.find("sk-openai") == std::string::npos);
  CHECK(text.find("gsk-groq") == std::string::npos);
  CHECK(text.find("team-token") == std::string::npos);
  CHECK(DescribeConfig(MustParse(OneTarget(""))).starts_with("1 target, 0 rule files\n"));
}

TEST_CASE("mangled configs give positioned errors, never a crash") {
  // Deterministic mutations of a valid config: bytes deleted, duplicated or replaced by YAML
  // punctuation. Every outcome must be a Config or a list of "t.yaml:LINE:COLUMN: ..." lines.
  const std::string base = kFullConfig;
  const testing::MapEnvironment env = FullEnvironment();
  constexpr std::string_view kPunctuation = ":-{}[],'\"#&*!|>%@` \n\t?";
  std::mt19937 random(12345);
  int failures = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string text = base;
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < edits && !text.empty(); ++i) {
      const size_t at = random() % text.size();
      switch (random() % 3) {
        case 0:
          text.erase(at, 1 + random() % 8);
          break;
        case 1:
          text.insert(at, text.substr(at, 1 + random() % 40));
          break;
        default:
          text[at] = kPunctuation[random() % kPunctuation.size()];
          break;
      }
    }
    Result<Config> config = ParseConfig(text, "t.yaml", env);
    if (config) {
      continue;
    }
    ++failures;
    for (const std::string& line : Lines(config.error().message)) {
      INFO(text);
      REQUIRE(std::regex_search(line, std::regex(R"(^t\.yaml:[0-9]+:[0-9]+: .+)")));
      REQUIRE(line.find("sk-openai") == std::string::npos);
      REQUIRE(line.find("gsk-groq") == std::string::npos);
      REQUIRE(line.find("team-token") == std::string::npos);
    }
  }
  CHECK(failures > 500);  // the mutations did reach the error paths
}

std::filesystem::path RepoRoot() { return MODELPULSE_SOURCE_ROOT; }

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("config/example.yaml parses with its keys in the environment") {
  const std::filesystem::path file = RepoRoot() / "config" / "example.yaml";
  ShippedEnvironment env;
  env.vars = {{"OPENAI_API_KEY", "k1"}, {"GROQ_API_KEY", "k2"}, {"ANTHROPIC_API_KEY", "k3"}};
  Result<Config> config = ParseConfig(ReadText(file), file.string(), env);
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  CHECK(config->targets.size() == 3);
  CHECK(config->external_labels.at("vantage") == "eu-home");
  for (const TargetSpec& target : config->targets) {
    CHECK_FALSE(target.api_key.empty());
  }
  CHECK(config->targets[1].labels.at("cloud") == "groq");
  CHECK(config->targets[2].base_url == "https://api.anthropic.com");  // the provider's default
  CHECK(config->targets[2].auth.mode == collector::AuthMode::kApiKey);
  CHECK_FALSE(config->simulator.has_value());

  // Without the keys, each missing variable is named.
  Result<Config> keyless = ParseConfig(ReadText(file), "example.yaml", ShippedEnvironment{});
  REQUIRE_FALSE(keyless.has_value());
  INFO((keyless ? std::string() : keyless.error().message));
  CHECK(Lines(keyless.error().message).size() == 3);
}

TEST_CASE("a syntax-only check needs no key, credential file, service-account file or rule file") {
  // Every shipped config, with nothing in the environment.
  for (const char* name : {"example.yaml", "clouds.yaml", "demo.yaml"}) {
    const std::filesystem::path file = RepoRoot() / "config" / name;
    Result<Config> config =
        ParseConfig(ReadText(file), file.string(), ShippedEnvironment{}, ConfigCheck::kSyntaxOnly);
    INFO(name << ": " << (config ? std::string() : config.error().message));
    CHECK(config.has_value());
  }
  // Every way a secret or a referenced file can be missing, at once.
  const std::string yaml = "rule_files: [rules/missing.yml]\n" +
                           OneTarget(
                               "    auth: {api_key_env: "
                               "UNSET_KEY}\n") +
                           "  - name: f\n    provider: openai\n    model: m\n"
                           "    auth: {api_key_file: secrets/missing.key}\n"
                           "  - name: c\n    provider: openai\n    model: m\n"
                           "    auth: {api_key_credential: openai}\n"
                           "  - name: v\n    provider: vertex\n    model: gemini-2.0-flash\n"
                           "    region: us-central1\n    project: my-project\n"
                           "    auth: {google_service_account_file: sa.json}\n"
                           "  - name: b\n    provider: bedrock\n    model: m\n"
                           "    region: us-east-1\n    auth: {aws: {profile: prod}}\n"
                           "  - name: b2\n    provider: bedrock\n    model: m\n"
                           "    region: us-east-1\n"
                           "    auth: {aws: {credentials_file: aws/missing, profile: ci}}\n";
  testing::MapEnvironment empty;
  CHECK(Problems(yaml, empty).size() >= 7);
  Result<Config> config = ParseConfig(yaml, "/etc/mp/mp.yaml", empty, ConfigCheck::kSyntaxOnly);
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  REQUIRE(config->targets.size() == 6);
  CHECK(config->targets[3].auth.mode == collector::AuthMode::kGoogleServiceAccount);
  CHECK(config->targets[4].auth.mode == collector::AuthMode::kAwsSigV4);
  CHECK(config->targets[5].auth.mode == collector::AuthMode::kAwsSigV4);
  // Still a syntax check: a wrong value fails it, and so does a malformed reference.
  CHECK_FALSE(
      ParseConfig(OneTarget("    interval: soon\n"), "t.yaml", empty, ConfigCheck::kSyntaxOnly)
          .has_value());
  CHECK_FALSE(ParseConfig(OneTarget("    auth: {api_key_env: 'not a name'}\n"), "t.yaml", empty,
                          ConfigCheck::kSyntaxOnly)
                  .has_value());
  const Result<Config> empty_profile = ParseConfig(
      "targets:\n  - name: b\n    provider: bedrock\n    model: m\n"
      "    region: us-east-1\n    auth: {aws: {profile: ''}}\n",
      "t.yaml", empty, ConfigCheck::kSyntaxOnly);
  REQUIRE_FALSE(empty_profile.has_value());
  CHECK(empty_profile.error().message.find("auth.aws.profile") != std::string::npos);
}

TEST_CASE("config/demo.yaml parses without any key, through LoadConfig") {
  const std::filesystem::path root = RepoRoot();
  Result<Config> config = LoadConfig((root / "config" / "demo.yaml").string());
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  REQUIRE(config->targets.size() == 7);
  std::vector<std::string> providers;
  std::vector<std::string> clouds;
  for (const TargetSpec& target : config->targets) {
    CHECK(target.interval == 5s);
    CHECK(target.base_url.starts_with("http://127.0.0.1:9465/"));
    providers.push_back(std::string(collector::ProviderName(target.provider)));
    clouds.push_back(target.labels.at("cloud"));
  }
  CHECK(providers == std::vector<std::string>{"openai", "azure", "openai_compatible", "anthropic",
                                              "bedrock", "vertex", "gemini"});
  CHECK(clouds ==
        std::vector<std::string>{"openai", "azure", "groq", "anthropic", "aws", "gcp", "gcp"});
  // The same model family on the first three clouds, so one query compares them.
  for (size_t i = 0; i < 3; ++i) {
    CHECK(config->targets[i].model == "gpt-4o-mini");
  }
  // The demo's credentials are the simulator's fixed demo values, read from files in config/.
  CHECK(config->targets[1].api_key.Reveal() == "azure-demo-key");
  CHECK(config->targets[4].auth.mode == collector::AuthMode::kAwsSigV4);
  CHECK(config->targets[4].auth.aws.access_key_id.Reveal() == "AKIDEXAMPLE");
  CHECK(config->targets[5].auth.mode == collector::AuthMode::kGoogleServiceAccount);
  REQUIRE(config->simulator.has_value());
  CHECK(config->simulator->scenario_path ==
        (root / "config" / "scenarios" / "demo.yaml").lexically_normal().string());
  CHECK(config->simulator->listen_address == "127.0.0.1:9465");
  for (const std::string& rule_file : config->rule_files) {
    CHECK(rule_file.starts_with((root / "config" / "rules").lexically_normal().string()));
  }
}

// ---------------------------------------------------------------------------------------------
// Every cloud: auth modes, provider details, defaults and explanations.

// Every secret below contains "SeCrEt", so one search proves none leaked into a message.
constexpr std::string_view kSecretMarker = "SeCrEt";

constexpr const char* kServiceAccountJson = R"({
  "type": "service_account",
  "project_id": "my-project",
  "private_key_id": "0123abcd",
  "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvSeCrEtQIBADANBg\n-----END PRIVATE KEY-----\n",
  "client_email": "prober@my-project.iam.gserviceaccount.com",
  "token_uri": "https://oauth2.googleapis.com/token"
})";

testing::MapEnvironment CloudEnvironment() {
  testing::MapEnvironment env;
  env.vars = {{"OPENAI_API_KEY", "sk-SeCrEt-openai"},
              {"ANTHROPIC_API_KEY", "sk-ant-SeCrEt"},
              {"GEMINI_API_KEY", "AIza-SeCrEt-gemini"},
              {"AWS_ACCESS_KEY_ID", "AKIA-SeCrEt-ID"},
              {"AWS_SECRET_ACCESS_KEY", "wJalr-SeCrEt-KEY"},
              {"AWS_SESSION_TOKEN", "FwoG-SeCrEt-session"},
              {"AWS_BEARER_TOKEN_BEDROCK", "ABSK-SeCrEt-bedrock"},
              {"HOME", "/home/u"}};
  env.files = {{"/etc/mp/azure.token", "eyJ-SeCrEt-entra\n"},
               {"/etc/mp/sa.json", kServiceAccountJson}};
  return env;
}

constexpr const char* kCloudsConfig = R"(targets:
  - name: gpt@openai
    provider: openai
    model: gpt-4o-mini
    auth: {api_key_env: OPENAI_API_KEY}
  - name: llama@vllm
    provider: openai_compatible
    model: llama
    base_url: http://localhost:8000/v1
  - name: gpt@azure-deploy
    provider: azure
    model: gpt-4o-mini
    provider_model: my-deployment
    base_url: https://contoso.openai.azure.com
    api_version: 2024-10-21
    auth: {bearer_token_file: azure.token}
    labels: {region: eastus}
  - name: gpt@azure-v1
    provider: azure
    model: gpt-4o-mini
    base_url: https://contoso.openai.azure.com
    auth:
      token_command: [az, account, get-access-token, --query, accessToken, -o, tsv]
      token_command_ttl: 10m
  - name: claude@anthropic
    provider: anthropic
    model: claude-haiku
    anthropic_version: 2023-01-01
    auth: {api_key_env: ANTHROPIC_API_KEY}
  - name: oss@bedrock
    provider: bedrock
    model: gpt-oss-120b
    provider_model: openai.gpt-oss-120b-1:0
    region: us-west-2
    auth: {aws: {}}
  - name: oss@bedrock-openai
    provider: bedrock
    model: gpt-oss-120b
    region: cn-north-1
    api: openai
    openai_path_prefix: /openai/v1/
    auth: {bearer_token_env: AWS_BEARER_TOKEN_BEDROCK}
  - name: gemini@vertex
    provider: vertex
    model: gemini-flash
    region: global
    project: my-project
    auth: {google_service_account_file: sa.json}
  - name: oss@vertex
    provider: vertex
    model: gpt-oss-120b
    base_url: https://europe-west4-aiplatform.googleapis.com
    project: my-project
    api: openai
    auth: {token_command: [gcloud, auth, print-access-token]}
  - name: gemini@gemini
    provider: gemini
    model: gemini-flash
    auth: {api_key_env: GEMINI_API_KEY}
)";

TEST_CASE("with a simulator section, a base_url or token_url path is on the simulator") {
  testing::MapEnvironment env;
  env.files = {{"/etc/mp/sa.json", kServiceAccountJson}, {"/etc/mp/s.yaml", ""}};
  const std::string targets =
      "targets:\n"
      "  - name: o\n    provider: openai\n    model: m\n    base_url: /openai/v1\n"
      "  - name: v\n    provider: vertex\n    model: g\n    project: my-project\n"
      "    region: us-central1\n    base_url: /vertex\n"
      "    auth: {google_service_account_file: sa.json, token_url: /vertex/token}\n"
      "  - name: r\n    provider: openai\n    model: m\n"
      "    base_url: https://api.openai.com/v1\n";
  const Config config =
      MustParse(targets + "simulator: {scenario: s.yaml, listen_address: '127.0.0.1:9999'}\n", env);
  REQUIRE(config.targets.size() == 3);
  CHECK(config.targets[0].base_url == "http://127.0.0.1:9999/openai/v1");
  CHECK(config.targets[1].base_url == "http://127.0.0.1:9999/vertex");
  CHECK(config.targets[1].auth.token_url == "http://127.0.0.1:9999/vertex/token");
  CHECK(config.targets[2].base_url == "https://api.openai.com/v1");  // a URL stays a URL
  // The simulator's default address, and every interface reached on loopback.
  CHECK(MustParse(targets + "simulator: {scenario: s.yaml}\n", env).targets[0].base_url ==
        "http://127.0.0.1:9465/openai/v1");
  CHECK(MustParse(targets + "simulator: {scenario: s.yaml, listen_address: ':9998'}\n", env)
            .targets[0]
            .base_url == "http://127.0.0.1:9998/openai/v1");
  // Without a simulator a path is no URL, and the error still points at it.
  const std::vector<std::string> lines = Problems(targets, env);
  INFO(Join(lines));
  CHECK(HasPrefix(lines, "t.yaml:5:15: "));
}

TEST_CASE("every provider's config becomes its TargetSpec: auth mode, details, default URL") {
  using collector::ApiFlavor;
  using collector::AuthMode;
  const Config config = MustParse(kCloudsConfig, CloudEnvironment());
  REQUIRE(config.targets.size() == 10);
  const auto& t = config.targets;

  CHECK(t[0].provider == Provider::kOpenAI);
  CHECK(t[0].base_url == "https://api.openai.com/v1");
  CHECK(t[0].auth.mode == AuthMode::kApiKey);
  CHECK(t[0].api_key == Secret("sk-SeCrEt-openai"));
  CHECK(t[0].flavor == ApiFlavor::kNative);
  CHECK(t[0].region.empty());
  CHECK(t[0].labels.at("region") == "global");

  CHECK(t[1].auth.mode == AuthMode::kNone);  // an open vLLM needs no key
  CHECK(t[1].api_key.empty());
  CHECK(t[1].labels.at("cloud") == "local");

  CHECK(t[2].provider == Provider::kAzure);
  CHECK(t[2].auth.mode == AuthMode::kBearerToken);
  CHECK(t[2].api_key == Secret("eyJ-SeCrEt-entra"));
  CHECK(t[2].api_version == "2024-10-21");
  CHECK(t[2].flavor == ApiFlavor::kNative);  // deployment path
  CHECK(t[2].provider_model == "my-deployment");
  CHECK(t[2].labels.at("region") == "eastus");

  CHECK(t[3].auth.mode == AuthMode::kTokenCommand);
  CHECK(t[3].auth.token_command == std::vector<std::string>{"az", "account", "get-access-token",
                                                            "--query", "accessToken", "-o", "tsv"});
  CHECK(t[3].auth.token_command_ttl == 10min);
  CHECK(t[3].api_key.empty());
  CHECK(t[3].api_version.empty());
  CHECK(t[3].flavor == ApiFlavor::kOpenAICompatible);  // the v1 path

  CHECK(t[4].provider == Provider::kAnthropic);
  CHECK(t[4].base_url == "https://api.anthropic.com");
  CHECK(t[4].anthropic_version == "2023-01-01");
  CHECK(t[4].auth.mode == AuthMode::kApiKey);
  CHECK(t[4].labels.at("cloud") == "anthropic");

  CHECK(t[5].provider == Provider::kBedrock);
  CHECK(t[5].region == "us-west-2");
  CHECK(t[5].base_url == "https://bedrock-runtime.us-west-2.amazonaws.com");
  CHECK(t[5].auth.mode == AuthMode::kAwsSigV4);
  CHECK(t[5].auth.aws.access_key_id == Secret("AKIA-SeCrEt-ID"));
  CHECK(t[5].auth.aws.secret_access_key == Secret("wJalr-SeCrEt-KEY"));
  CHECK(t[5].auth.aws.session_token == Secret("FwoG-SeCrEt-session"));
  CHECK(t[5].flavor == ApiFlavor::kNative);
  CHECK(t[5].provider_model == "openai.gpt-oss-120b-1:0");
  CHECK(t[5].labels == Labels{{"target", "oss@bedrock"},
                              {"provider", "bedrock"},
                              {"model", "gpt-oss-120b"},
                              {"cloud", "aws"},
                              {"region", "us-west-2"}});

  CHECK(t[6].base_url == "https://bedrock-runtime.cn-north-1.amazonaws.com.cn");
  CHECK(t[6].auth.mode == AuthMode::kBearerToken);
  CHECK(t[6].api_key == Secret("ABSK-SeCrEt-bedrock"));
  CHECK(t[6].flavor == ApiFlavor::kOpenAICompatible);
  CHECK(t[6].openai_path_prefix == "/openai/v1");
  CHECK(t[6].labels.at("region") == "cn-north-1");

  CHECK(t[7].provider == Provider::kVertex);
  CHECK(t[7].base_url == "https://aiplatform.googleapis.com");
  CHECK(t[7].region == "global");
  CHECK(t[7].project == "my-project");
  CHECK(t[7].auth.mode == AuthMode::kGoogleServiceAccount);
  CHECK(t[7].auth.google_service_account_json == Secret(kServiceAccountJson));
  CHECK(t[7].auth.token_url == "https://oauth2.googleapis.com/token");  // the key's token_uri
  CHECK(t[7].labels.at("cloud") == "gcp");
  CHECK(t[7].labels.at("region") == "global");

  CHECK(t[8].region == "europe-west4");  // from the host
  CHECK(t[8].base_url == "https://europe-west4-aiplatform.googleapis.com");
  CHECK(t[8].flavor == ApiFlavor::kOpenAICompatible);
  CHECK(t[8].openai_path_prefix.empty());  // the adapter's default
  CHECK(t[8].auth.token_command ==
        std::vector<std::string>{"gcloud", "auth", "print-access-token"});
  CHECK(t[8].auth.token_command_ttl == collector::TargetAuth{}.token_command_ttl);
  CHECK(t[8].labels.at("region") == "europe-west4");

  CHECK(t[9].provider == Provider::kGemini);
  CHECK(t[9].base_url == "https://generativelanguage.googleapis.com");
  CHECK(t[9].auth.mode == AuthMode::kApiKey);
  CHECK(t[9].api_key == Secret("AIza-SeCrEt-gemini"));

  // Vertex default hosts per location kind; a region that disagrees with the host is an error.
  const auto vertex_url = [](const std::string& region) {
    testing::MapEnvironment env;
    env.vars = {{"T", "tok"}};
    return MustParse(
               "targets:\n  - {name: v, provider: vertex, model: m, project: my-project, "
               "region: " +
                   region + ", auth: {bearer_token_env: T}}\n",
               env)
        .targets.at(0)
        .base_url;
  };
  CHECK(vertex_url("us-central1") == "https://us-central1-aiplatform.googleapis.com");
  CHECK(vertex_url("eu") == "https://aiplatform.eu.rep.googleapis.com");
}

TEST_CASE("DescribeConfig names each auth mode and its source, never a secret") {
  const Config config = MustParse(kCloudsConfig, CloudEnvironment());
  const std::string text = DescribeConfig(config);
  INFO(text);
  CHECK(text.find(kSecretMarker) == std::string::npos);
  CHECK(text.find("prober@") == std::string::npos);  // nothing from inside the key file
  const std::vector<std::string> lines = Lines(text);
  REQUIRE(lines.size() == 11);
  CHECK(lines[0] == "10 targets, 0 rule files");
  CHECK(lines[1] ==
        "  gpt@openai: openai gpt-4o-mini (cloud openai, region global) every 1m at "
        "https://api.openai.com/v1, auth api key from $OPENAI_API_KEY");
  CHECK(lines[2].ends_with(", auth none"));
  CHECK(lines[3] ==
        "  gpt@azure-deploy: azure gpt-4o-mini as my-deployment (cloud azure, region "
        "eastus, api native, api-version 2024-10-21) every 1m at "
        "https://contoso.openai.azure.com, auth bearer token from file "
        "/etc/mp/azure.token");
  CHECK(
      lines[4].ends_with("(cloud azure, region global, api openai) every 1m at "
                         "https://contoso.openai.azure.com, auth bearer token from command az, "
                         "reused 10m"));
  CHECK(lines[6] ==
        "  oss@bedrock: bedrock gpt-oss-120b as openai.gpt-oss-120b-1:0 (cloud aws, "
        "region us-west-2, api native) every 1m at "
        "https://bedrock-runtime.us-west-2.amazonaws.com, auth aws sigv4, credentials "
        "from the environment (AWS_ACCESS_KEY_ID)");
  CHECK(lines[7].find("api openai, path prefix /openai/v1) every 1m") != std::string::npos);
  CHECK(lines[7].ends_with("auth bearer token from $AWS_BEARER_TOKEN_BEDROCK"));
  CHECK(lines[8] ==
        "  gemini@vertex: vertex gemini-flash (cloud gcp, region global, api native, "
        "project my-project) every 1m at https://aiplatform.googleapis.com, auth "
        "google service account from /etc/mp/sa.json, token url "
        "https://oauth2.googleapis.com/token");
  CHECK(lines[10].ends_with("auth api key from $GEMINI_API_KEY"));
}

TEST_CASE("AWS credentials: the environment first, else a profile of the shared credentials file") {
  constexpr const char* kCredentials =
      "[default]\naws_access_key_id = AKIA-SeCrEt-default\naws_secret_access_key = "
      "dflt-SeCrEt\n\n[prod]\naws_access_key_id=AKIA-SeCrEt-prod\naws_secret_access_key=prod-"
      "SeCrEt\naws_session_token = prod-SeCrEt-token\n\n[half]\naws_access_key_id = "
      "AKIA-SeCrEt-half\n";
  const auto bedrock = [](const std::string& aws) {
    return "targets:\n  - name: b\n    provider: bedrock\n    model: m\n    region: us-east-1\n"
           "    auth:\n      aws: " +
           aws + "\n";
  };
  testing::MapEnvironment files;
  files.vars = {{"HOME", "/home/u"}};
  files.files = {{"/home/u/.aws/credentials", kCredentials}, {"/etc/mp/aws/creds", kCredentials}};

  // No variables: the default profile of ~/.aws/credentials.
  Config config = MustParse(bedrock("{}"), files);
  CHECK(config.targets[0].auth.aws.access_key_id == Secret("AKIA-SeCrEt-default"));
  CHECK(config.targets[0].auth.aws.session_token.empty());
  CHECK(config.auth_sources.at("b") == "aws sigv4, profile 'default' in /home/u/.aws/credentials");

  // AWS_PROFILE picks another profile; an empty `aws:` is the same as {}.
  testing::MapEnvironment with_profile = files;
  with_profile.vars["AWS_PROFILE"] = "prod";
  config = MustParse(bedrock(""), with_profile);
  CHECK(config.targets[0].auth.aws.access_key_id == Secret("AKIA-SeCrEt-prod"));
  CHECK(config.targets[0].auth.aws.secret_access_key == Secret("prod-SeCrEt"));
  CHECK(config.targets[0].auth.aws.session_token == Secret("prod-SeCrEt-token"));

  // Variables win over the file...
  testing::MapEnvironment with_vars = files;
  with_vars.vars["AWS_ACCESS_KEY_ID"] = "AKIA-SeCrEt-env";
  with_vars.vars["AWS_SECRET_ACCESS_KEY"] = "env-SeCrEt";
  CHECK(MustParse(bedrock("{}"), with_vars).targets[0].auth.aws.access_key_id ==
        Secret("AKIA-SeCrEt-env"));
  // ...unless the config names a profile, as botocore does for an explicit profile.
  CHECK(MustParse(bedrock("{profile: prod}"), with_vars).targets[0].auth.aws.access_key_id ==
        Secret("AKIA-SeCrEt-prod"));
  // credentials_file is relative to the config's folder.
  config = MustParse(bedrock("{profile: prod, credentials_file: aws/creds}"), files);
  CHECK(config.auth_sources.at("b") == "aws sigv4, profile 'prod' in /etc/mp/aws/creds");
  // AWS_SHARED_CREDENTIALS_FILE replaces ~/.aws/credentials.
  testing::MapEnvironment shared = files;
  shared.vars["AWS_SHARED_CREDENTIALS_FILE"] = "/etc/mp/aws/creds";
  CHECK(MustParse(bedrock("{}"), shared).auth_sources.at("b") ==
        "aws sigv4, profile 'default' in /etc/mp/aws/creds");

  // Explicit variables, with a session token.
  testing::MapEnvironment named = files;
  named.vars.insert(
      {{"MY_ID", "AKIA-SeCrEt-mine"}, {"MY_KEY", "mine-SeCrEt"}, {"MY_TOK", "t-SeCrEt"}});
  config = MustParse(
      bedrock(
          "{access_key_id_env: MY_ID, secret_access_key_env: MY_KEY, session_token_env: MY_TOK}"),
      named);
  CHECK(config.targets[0].auth.aws.access_key_id == Secret("AKIA-SeCrEt-mine"));
  CHECK(config.targets[0].auth.aws.secret_access_key == Secret("mine-SeCrEt"));
  CHECK(config.targets[0].auth.aws.session_token == Secret("t-SeCrEt"));
  CHECK(config.auth_sources.at("b") == "aws sigv4, keys from $MY_ID and $MY_KEY with $MY_TOK");

  // Each failure says which variable, file or profile, at the aws value or the key that chose it.
  const auto problem = [&](const std::string& aws, const testing::MapEnvironment& env) {
    const std::vector<std::string> lines = Problems(bedrock(aws), env);
    INFO(Join(lines));
    CHECK(Join(lines).find(kSecretMarker) == std::string::npos);
    REQUIRE(lines.size() == 1);
    return lines[0];
  };
  testing::MapEnvironment nothing;
  nothing.vars = {{"HOME", "/home/u"}};
  CHECK(problem("{}", nothing) ==
        "t.yaml:7:12: \"auth.aws\": no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
        "are not set and /home/u/.aws/credentials does not exist");
  CHECK(problem("{profile: staging}", files) ==
        "t.yaml:7:22: \"auth.aws\": AWS profile 'staging' in /home/u/.aws/credentials not found");
  CHECK(problem("{profile: half}", files) ==
        "t.yaml:7:22: \"auth.aws\": AWS profile 'half' in /home/u/.aws/credentials has no "
        "aws_secret_access_key");
  testing::MapEnvironment half_env = nothing;
  half_env.vars["AWS_ACCESS_KEY_ID"] = "AKIA-SeCrEt-lonely";
  CHECK(problem("{}", half_env) ==
        "t.yaml:7:12: \"auth.aws\": AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  CHECK(problem("{access_key_id_env: MY_ID}", named) ==
        "t.yaml:7:12: \"auth.aws\": missing \"secret_access_key_env\" (access_key_id_env and "
        "secret_access_key_env go together)");
  CHECK(problem("{access_key_id_env: MY_ID, secret_access_key_env: NOPE}", named) ==
        "t.yaml:7:62: \"auth.aws.secret_access_key_env\": environment variable NOPE is not set");
  CHECK(
      problem("{access_key_id_env: MY_ID, secret_access_key_env: MY_KEY, profile: prod}", named) ==
      "t.yaml:7:70: \"auth.aws.profile\": give either access_key_id_env and "
      "secret_access_key_env, or a profile, not both");
  CHECK(problem("{region: us-east-1}", files) ==
        "t.yaml:7:13: unknown key \"region\" in \"auth.aws\"");
}

TEST_CASE("a service-account key file is read and checked, never quoted") {
  const auto vertex = [](const std::string& auth) {
    return "targets:\n  - name: v\n    provider: vertex\n    model: m\n    region: us-central1\n"
           "    project: my-project\n    auth: " +
           auth + "\n";
  };
  testing::MapEnvironment env;
  env.files = {
      {"/etc/mp/sa.json", kServiceAccountJson},
      {"/etc/mp/bad.json", "{\"private_key\": \"SeCrEt-not-json"},
      {"/etc/mp/user.json", R"({"type": "authorized_user", "refresh_token": "1//SeCrEt"})"},
      {"/etc/mp/nokey.json",
       R"({"type": "service_account", "client_email": "a@b", "private_key_id": "SeCrEt"})"},
      {"/etc/mp/notpem.json", R"({"type": "service_account", "client_email": "a@b",
          "private_key": "SeCrEt-raw", "token_uri": "https://oauth2.googleapis.com/token"})"}};

  const Config config =
      MustParse(vertex("{google_service_account_file: /etc/mp/sa.json, token_url: "
                       "'http://127.0.0.1:9465/token'}"),
                env);
  CHECK(config.targets[0].auth.mode == collector::AuthMode::kGoogleServiceAccount);
  CHECK(config.targets[0].auth.token_url == "http://127.0.0.1:9465/token");  // overrides token_uri

  const auto problem = [&](const std::string& file) {
    const std::vector<std::string> lines =
        Problems(vertex("{google_service_account_file: " + file + "}"), env);
    INFO(Join(lines));
    CHECK(Join(lines).find(kSecretMarker) == std::string::npos);
    REQUIRE(lines.size() == 1);
    return lines[0];
  };
  CHECK(problem("missing.json") ==
        "t.yaml:7:41: \"auth.google_service_account_file\": cannot read " +
            (std::filesystem::current_path() / "missing.json").string() +
            ": No such file or directory");
  CHECK(problem("/etc/mp/bad.json") ==
        "t.yaml:7:41: \"auth.google_service_account_file\": /etc/mp/bad.json is not a JSON object "
        "(expected a service-account key from the Google Cloud console)");
  CHECK(problem("/etc/mp/user.json") ==
        "t.yaml:7:41: \"auth.google_service_account_file\": /etc/mp/user.json is an "
        "\"authorized_user\" credential, not a service-account key (for gcloud user credentials "
        "use auth.token_command: [gcloud, auth, print-access-token])");
  CHECK(problem("/etc/mp/nokey.json") ==
        "t.yaml:7:41: \"auth.google_service_account_file\": /etc/mp/nokey.json has no "
        "\"private_key\", \"token_uri\"");
  CHECK(problem("/etc/mp/notpem.json") ==
        "t.yaml:7:41: \"auth.google_service_account_file\": the \"private_key\" in "
        "/etc/mp/notpem.json is not a PEM private key");
  CHECK(Has(Problems(vertex("{google_service_account_file: /etc/mp/sa.json, token_url: x}"), env),
            "t.yaml:7:69: \"auth.token_url\": must start with http:// or https://"));
}

TEST_CASE("auth modes and keys a provider does not take are errors at their position") {
  testing::MapEnvironment env;
  env.vars = {{"K", "k-SeCrEt"}};
  const auto problems = [&](const std::string& provider, const std::string& extra) {
    const std::vector<std::string> lines =
        Problems("targets:\n  - name: t\n    provider: " + provider +
                     "\n    model: m\n    base_url: https://h.example/v1\n" + extra,
                 env);
    CHECK(Join(lines).find(kSecretMarker) == std::string::npos);
    return lines;
  };
  const auto only = [&](const std::string& provider, const std::string& extra) {
    const std::vector<std::string> lines = problems(provider, extra);
    INFO(Join(lines));
    REQUIRE(lines.size() == 1);
    return lines[0];
  };
  CHECK(only("anthropic", "    auth: {aws: {}}\n") ==
        "t.yaml:6:12: \"auth.aws\": provider anthropic does not take AWS credentials (aws); it "
        "takes an API key (api_key_env, api_key_file, api_key_credential) or a bearer token "
        "(bearer_token_env, bearer_token_file, bearer_token_credential)");
  CHECK(only("bedrock", "    region: us-east-1\n    auth: {api_key_env: K}\n") ==
        "t.yaml:7:12: \"auth.api_key_env\": provider bedrock does not take an API key "
        "(api_key_env, api_key_file, api_key_credential); it takes AWS credentials (aws) or a "
        "bearer token (bearer_token_env, bearer_token_file, bearer_token_credential) (a Bedrock "
        "API key is sent as a bearer token: use auth.bearer_token_env, e.g. "
        "AWS_BEARER_TOKEN_BEDROCK)");
  CHECK(only("gemini", "    auth: {bearer_token_env: K}\n")
            .starts_with("t.yaml:6:12: \"auth.bearer_token_env\": provider gemini does not take a "
                         "bearer token"));
  CHECK(only("openai", "    auth: {token_command: [x]}\n") ==
        "t.yaml:6:12: \"auth.token_command\": provider openai does not take a token command "
        "(token_command); it takes an API key (api_key_env, api_key_file, api_key_credential) or "
        "a bearer token (bearer_token_env, bearer_token_file, bearer_token_credential)");
  CHECK(only("vertex",
             "    region: global\n    project: my-project\n"
             "    auth: {google_service_account_file: x.json, api_key_env: K}\n") ==
        "t.yaml:8:49: \"auth\": give only one way to authenticate, got "
        "google_service_account_file and api_key_env");
  CHECK(only("azure", "    auth: {api_key_env: K, token_command_ttl: 5m}\n") ==
        "t.yaml:6:28: \"auth.token_command_ttl\": applies only with token_command");
  CHECK(only("azure", "    auth: {api_key_env: K, token_url: 'https://x'}\n") ==
        "t.yaml:6:28: \"auth.token_url\": applies only with google_service_account_file");
  CHECK(only("azure", "    auth: {token_command: az account get-access-token}\n") ==
        "t.yaml:6:27: \"auth.token_command\": expected a non-empty list of arguments (run without "
        "a shell), e.g. [gcloud, auth, print-access-token], got a scalar");
  // A misspelt key leaves no way to authenticate: both are said.
  const std::vector<std::string> misspelt = problems("azure", "    auth: {api_key: K}\n");
  REQUIRE(misspelt.size() == 2);
  CHECK(misspelt[0].starts_with("t.yaml:6:11: target \"t\": provider azure needs a credential: "));
  CHECK(misspelt[1] ==
        "t.yaml:6:12: unknown key \"api_key\" in \"auth\" of target \"t\" (did "
        "you mean \"api_key_env\"?)");

  // Provider details that do not apply name the provider and those they apply to.
  const std::string openai_key = "    auth: {api_key_env: K}\n";
  CHECK(only("anthropic", openai_key + "    region: us-east-1\n") ==
        "t.yaml:7:5: \"region\": does not apply to provider anthropic (only to bedrock, vertex)");
  CHECK(only("bedrock",
             "    auth: {bearer_token_env: K}\n    region: us-east-1\n"
             "    project: p\n") ==
        "t.yaml:8:5: \"project\": does not apply to provider bedrock (only to vertex)");
  CHECK(only("openai", "    api_version: 2024-10-21\n") ==
        "t.yaml:6:5: \"api_version\": does not apply to provider openai (only to azure)");
  CHECK(only("azure", openai_key + "    anthropic_version: 2023-06-01\n") ==
        "t.yaml:7:5: \"anthropic_version\": does not apply to provider azure (only to anthropic)");
  CHECK(only("gemini", openai_key + "    api: openai\n") ==
        "t.yaml:7:5: \"api\": does not apply to provider gemini (only to azure, bedrock, vertex)");
  CHECK(only("openai_compatible", "    openai_path_prefix: /v1\n") ==
        "t.yaml:6:5: \"openai_path_prefix\": does not apply to provider openai_compatible (only "
        "to bedrock, vertex)");

  // Values and combinations.
  const std::string bearer = "    auth: {bearer_token_env: K}\n";
  CHECK(only("bedrock", bearer + "    region: us-east-1\n    openai_path_prefix: /openai/v1\n") ==
        "t.yaml:8:5: \"openai_path_prefix\": applies only with api: openai");
  CHECK(only("bedrock", bearer + "    region: useast1\n") ==
        "t.yaml:7:13: \"region\": \"useast1\" is not an AWS region (e.g. us-east-1)");
  CHECK(only("bedrock", bearer + "    region: us-east-1\n    api: grpc\n") ==
        "t.yaml:8:10: \"api\": expected native or openai, got \"grpc\"");
  CHECK(only("bedrock", bearer + "    region: us-east-1\n    api: openai\n"
                                 "    openai_path_prefix: openai/v1\n") ==
        "t.yaml:9:25: \"openai_path_prefix\": expected a path starting with / (e.g. /openai/v1)");
  CHECK(only("vertex", bearer + "    region: US Central\n    project: my-project\n") ==
        "t.yaml:7:13: \"region\": \"US Central\" is not a Google Cloud location (e.g. "
        "us-central1, europe-west4 or global)");
  CHECK(only("vertex", bearer + "    region: global\n    project: My Project\n") ==
        "t.yaml:8:14: \"project\": \"My Project\" is not a Google Cloud project id (6 to 30 "
        "lower-case letters, digits and hyphens)");
  CHECK(only("azure", openai_key + "    api: native\n") ==
        "t.yaml:7:10: \"api\": azure's native deployment path needs \"api_version\" (e.g. "
        "2024-10-21); without it the v1 path (api: openai) is used");
  CHECK(only("azure", openai_key + "    api: openai\n    api_version: 2024-10-21\n") ==
        "t.yaml:8:18: \"api_version\": applies to azure's deployment path (api: native), not to "
        "the v1 path (api: openai)");
  CHECK(only("anthropic", openai_key + "    anthropic_version: 'June 2023'\n") ==
        "t.yaml:7:24: \"anthropic_version\": \"June 2023\" is not a version (e.g. 2023-06-01)");
  CHECK(only("azure", openai_key + "    api_version: 'v 1'\n") ==
        "t.yaml:7:18: \"api_version\": \"v 1\" is not a version (e.g. 2024-10-21)");
  // The legacy domain-scoped project ids are project ids too: the api is the only problem here.
  CHECK(only("vertex", bearer + "    region: global\n    project: example.com:my-project\n"
                                "    api: grpc\n") ==
        "t.yaml:9:10: \"api\": expected native or openai, got \"grpc\"");

  // Bedrock and Vertex need a region (and Vertex a project) unless the host carries the region;
  // a region that contradicts the host is an error.
  const std::vector<std::string> vertex = problems("vertex", bearer);
  INFO(Join(vertex));
  CHECK(vertex == std::vector<std::string>{
                      "t.yaml:2:5: target \"t\": provider vertex needs \"region\" (e.g. "
                      "us-central1 or global): it is the location in every request path",
                      "t.yaml:2:5: target \"t\": provider vertex needs \"project\" (the Google "
                      "Cloud project id the requests are billed to)"});
  CHECK(only("bedrock", bearer) ==
        "t.yaml:2:5: target \"t\": provider bedrock needs \"region\" (e.g. us-east-1): it picks "
        "the endpoint and scopes the SigV4 signature");
  CHECK(Problems("targets:\n  - {name: t, provider: bedrock, model: m, region: us-east-1, "
                 "base_url: 'https://bedrock-runtime.eu-west-1.amazonaws.com', auth: "
                 "{bearer_token_env: K}}\n",
                 env) == std::vector<std::string>{"t.yaml:2:52: \"region\": us-east-1 differs "
                                                  "from the region eu-west-1 of \"base_url\""});
}

TEST_CASE("a cloud without credentials is an error that says how to provide them") {
  const auto explain = [](const std::string& target) {
    const std::vector<std::string> lines = Problems("targets:\n  - " + target + "\n");
    INFO(Join(lines));
    REQUIRE(lines.size() == 1);
    return lines[0];
  };
  CHECK(explain("{name: claude@anthropic, provider: anthropic, model: claude}") ==
        "t.yaml:2:5: target \"claude@anthropic\": provider anthropic needs an API key: set "
        "auth.api_key_env (e.g. ANTHROPIC_API_KEY) or auth.api_key_file");
  CHECK(explain("{name: g, provider: gemini, model: m, auth: {}}") ==
        "t.yaml:2:49: target \"g\": provider gemini needs an API key: set auth.api_key_env (e.g. "
        "GEMINI_API_KEY) or auth.api_key_file");
  CHECK(explain("{name: b, provider: bedrock, model: m, region: us-east-1}") ==
        "t.yaml:2:5: target \"b\": provider bedrock needs AWS credentials: set auth.aws ({} for "
        "the default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials; "
        "or {profile: NAME}), or auth.bearer_token_env (e.g. AWS_BEARER_TOKEN_BEDROCK) for a "
        "Bedrock API key");
  CHECK(explain("{name: v, provider: vertex, model: m, region: global, project: my-project}") ==
        "t.yaml:2:5: target \"v\": provider vertex needs a Google access token: set "
        "auth.google_service_account_file (a service-account JSON key), auth.token_command (e.g. "
        "[gcloud, auth, print-access-token]) or auth.bearer_token_env");
  CHECK(explain("{name: a, provider: azure, model: m, base_url: 'https://c.openai.azure.com'}")
            .starts_with("t.yaml:2:5: target \"a\": provider azure needs a credential: set "
                         "auth.api_key_env (e.g. AZURE_OPENAI_API_KEY) or auth.api_key_file for "
                         "the api-key header, auth.bearer_token_env or auth.bearer_token_file for "
                         "a Microsoft Entra ID token, or auth.token_command (e.g. [az, account, "));
  // A credential by reference that is not there names the variable (CI without secrets fails).
  CHECK(
      explain("{name: c, provider: anthropic, model: m, auth: {api_key_env: ANTHROPIC_API_KEY}}") ==
      "t.yaml:2:66: \"auth.api_key_env\": environment variable ANTHROPIC_API_KEY is not set");
}

TEST_CASE("no secret value appears in any message, whatever fails") {
  // Everything resolves, and every target has one mistake elsewhere: the messages must not carry
  // the secrets that were read.
  testing::MapEnvironment env = CloudEnvironment();
  env.vars["MULTILINE"] = "line-SeCrEt\nInjected: 1";
  env.files["/etc/mp/broken.json"] = "{\"private_key\": \"-----BEGIN PRIVATE KEY-----SeCrEt";
  std::string yaml = kCloudsConfig;
  yaml += R"(  - name: broken
    provider: vertex
    model: m
    region: global
    project: my-project
    auth: {google_service_account_file: broken.json}
    headers: {X-Api-Key: {env: MULTILINE}}
  - name: gpt@openai
    provider: openai
    model: m
    auth: {api_key_env: OPENAI_API_KEY}
    price: {input_per_million: free}
)";
  Result<Config> config = ParseConfig(yaml, "/etc/mp/mp.yaml", env);
  REQUIRE_FALSE(config.has_value());
  const std::string all = config.error().message;
  INFO(all);
  CHECK(Lines(all).size() == 4);
  CHECK(all.find(kSecretMarker) == std::string::npos);
}

TEST_CASE("config/clouds.yaml: one model on four clouds, parsed with a fake environment") {
  const std::filesystem::path file = RepoRoot() / "config" / "clouds.yaml";
  testing::MapEnvironment env;
  env.vars = {{"GROQ_API_KEY", "gsk-SeCrEt"},
              {"AWS_ACCESS_KEY_ID", "AKIA-SeCrEt"},
              {"AWS_SECRET_ACCESS_KEY", "aws-SeCrEt"},
              {"AWS_BEARER_TOKEN_BEDROCK", "ABSK-SeCrEt"},
              {"HOME", "/home/u"}};
  env.files = {{"/etc/modelpulse/vertex-sa.json", kServiceAccountJson}};
  Result<Config> config = ParseConfig(ReadText(file), file.string(), env);
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  std::vector<std::string> clouds;
  for (const TargetSpec& target : config->targets) {
    CHECK(target.model == "gpt-oss-120b");
    clouds.push_back(target.labels.at("cloud"));
  }
  CHECK(clouds == std::vector<std::string>{"groq", "azure", "aws", "aws", "gcp"});
  const std::string text = DescribeConfig(*config);
  INFO(text);
  CHECK(text.find(kSecretMarker) == std::string::npos);

  // Without credentials, each target says what is missing.
  Result<Config> bare = ParseConfig(ReadText(file), file.string(), testing::MapEnvironment{});
  REQUIRE_FALSE(bare.has_value());
  INFO((bare ? std::string() : bare.error().message));
  CHECK(Lines(bare.error().message).size() == 4);  // the Azure token command needs nothing now
}

TEST_CASE("LoadConfig reports an unreadable file") {
  Result<Config> config = LoadConfig("/nonexistent/modelpulse.yml");
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().code == Error::Code::kNotFound);
  CHECK(config.error().message.find("/nonexistent/modelpulse.yml") != std::string::npos);
}

}  // namespace
}  // namespace modelpulse::daemon

namespace modelpulse::daemon {
namespace {

constexpr const char* kSloTargets = R"(targets:
  - name: m@a
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:1/v1
    labels: {cloud: east}
  - name: m@b
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:2/v1
    labels: {cloud: west}
)";

TEST_CASE("slos: a selector, a kind, an objective and a window become SloSpecs") {
  const Config config = MustParse(std::string(kSloTargets) + R"(slos:
  - name: m-availability
    selector: {model: m}
    kind: availability
    objective: 99.9
    window: 28d
  - name: m-latency
    target: m@a
    kind: latency
    objective: 99
    window: calendar_month
    latency: {phase: total, threshold: 3s}
  - name: east-throttle
    selector: {cloud: east}
    kind: throttle_free
    objective: 95
    min_probes: 20
    min_failed_probes: 3
  - name: strict
    selector: {model: m}
    kind: availability
    objective: 99.5
    provider_fault_outcomes: [server_error, auth]
)");
  REQUIRE(config.slos.size() == 4);
  const rules::SloSpec& a = config.slos[0];
  CHECK(a.name == "m-availability");
  CHECK(a.selector == Labels{{"model", "m"}});
  CHECK(a.kind == rules::SloSpec::Kind::kAvailability);
  CHECK(a.objective_percent == 99.9);
  CHECK(a.window == Millis(28LL * 24 * 3600 * 1000));
  CHECK(a.min_probes == 10);
  CHECK(a.min_failed_probes == 2);
  // The default: quota_exhausted and auth are ours, every other failure the provider's.
  CHECK(a.provider_fault_outcomes.size() == 8);
  CHECK(rules::ClassifyProbe(a, Outcome::kAuth, std::nullopt, 1) == rules::SloVerdict::kExcluded);
  CHECK(rules::ClassifyProbe(a, Outcome::kQuotaExhausted, std::nullopt, 1) ==
        rules::SloVerdict::kExcluded);
  CHECK(rules::ClassifyProbe(a, Outcome::kServerError, std::nullopt, 1) == rules::SloVerdict::kBad);
  CHECK(rules::ClassifyProbe(a, Outcome::kThrottled, std::nullopt, 1) == rules::SloVerdict::kBad);
  const rules::SloSpec& l = config.slos[1];
  CHECK(l.selector == Labels{{"target", "m@a"}});
  CHECK(l.window_kind == rules::SloSpec::WindowKind::kCalendarMonth);
  CHECK(l.phase == rules::SloSpec::Phase::kTotal);
  CHECK(l.threshold_seconds == 3);
  CHECK(rules::ClassifyProbe(l, Outcome::kOk, 0.1, 3) == rules::SloVerdict::kGood);
  CHECK(rules::ClassifyProbe(l, Outcome::kOk, 0.1, 3.1) == rules::SloVerdict::kBad);
  CHECK(rules::ClassifyProbe(l, Outcome::kTimeout, std::nullopt, 60) ==
        rules::SloVerdict::kExcluded);
  CHECK(config.slos[2].min_probes == 20);
  CHECK(config.slos[2].min_failed_probes == 3);
  CHECK(config.slos[3].provider_fault_outcomes ==
        std::vector<Outcome>{Outcome::kServerError, Outcome::kAuth});
  CHECK(rules::ClassifyProbe(config.slos[3], Outcome::kTimeout, std::nullopt, 1) ==
        rules::SloVerdict::kExcluded);
  CHECK(DescribeConfig(config).find("  slo m-availability: availability 99.9% over 28d, "
                                    "selector {model=m}") != std::string::npos);
}

TEST_CASE("slos: every mistake is reported at its line and column") {
  const std::vector<std::string> lines = Problems(std::string(kSloTargets) + R"(slos:
  - name: a
    selector: {model: nope}
    kind: availability
    objective: 99.9
  - name: b
    target: m@a
    kind: latncy
    objective: 100
    window: 7d
  - name: c
    target: m@a
    kind: latency
    objective: 99
  - name: d
    target: m@a
    kind: throttle_free
    objective: 99
    provider_fault_outcomes: [ok, sever_error]
  - name: a
    target: m@a
    kind: availability
    objective: 99
    windw: 30d
  - name: e
    target: m@a
    kind: latency
    objective: 99
    latency: {threshold: 2500ms}
)");
  INFO(Join(lines));
  CHECK(Has(lines, "t.yaml:13:5: slo \"a\": its selector matches no target's labels"));
  CHECK(Has(lines,
            "t.yaml:19:11: \"kind\": unknown SLO kind \"latncy\" (valid: availability, latency, "
            "throttle_free)"));
  CHECK(Has(lines,
            "t.yaml:20:16: \"objective\": 100 is a percentage and must be below 100 (e.g. 99.9)"));
  CHECK(Has(lines,
            "t.yaml:21:13: \"window\": \"7d\" is not a supported SLO window (valid: 28d, 30d, "
            "calendar_month)"));
  CHECK(Has(lines, "t.yaml:22:5: slos[2]: a latency SLO needs \"latency: {threshold: ...}\""));
  CHECK(HasPrefix(lines, "t.yaml:30:31: \"provider_fault_outcomes\": \"ok\" is not a failure"));
  CHECK(HasPrefix(lines,
                  "t.yaml:30:35: \"provider_fault_outcomes\": \"sever_error\" is not a failure"));
  CHECK(Has(lines,
            "t.yaml:30:5: slos[3]: \"provider_fault_outcomes\" applies to availability "
            "SLOs only"));
  CHECK(HasPrefix(lines, "t.yaml:35:5: unknown key \"windw\" in slos[4]"));
  // The rules read the histogram bucket whose `le` is the threshold: 2.5 s has none.
  CHECK(Has(lines,
            "t.yaml:40:26: \"latency.threshold\": 2500ms is not a bound of the latency "
            "histograms, which the SLO's burn-rate rules read (valid: 50ms, 100ms, 250ms, 500ms, "
            "1s, 2s, 3s, 5s, 10s, 20s, 30s, 1m)"));
  for (const std::string& line : lines) {
    CHECK(line.find("slos[5]: a latency SLO needs") == std::string::npos);  // said once
  }
}

}  // namespace
}  // namespace modelpulse::daemon
