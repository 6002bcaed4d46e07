#include "daemon/config.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace modelpulse::daemon {
namespace {

using collector::ConnectionReuse;
using collector::Provider;
using collector::TargetSpec;
using namespace std::chrono_literals;

// Environment variables, files and glob results given by the test; nothing from the machine.
class FakeEnvironment final : public Environment {
 public:
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<std::string>> globs;

  std::optional<std::string> GetEnv(const std::string& name) const override {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  Result<std::string> ReadFile(const std::string& path) const override {
    auto it = files.find(path);
    if (it == files.end()) {
      return Fail(Error::NotFound("cannot read " + path + ": No such file or directory"));
    }
    return it->second;
  }
  Result<std::vector<std::string>> Glob(const std::string& pattern) const override {
    auto it = globs.find(pattern);
    if (it != globs.end()) {
      return it->second;
    }
    // A literal path matches itself when it is a known file, as glob(3) does.
    if (files.count(pattern) > 0) {
      return std::vector<std::string>{pattern};
    }
    return std::vector<std::string>{};
  }
};

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
  return Problems(yaml, FakeEnvironment{});
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

Config MustParse(const std::string& yaml, const Environment& env = FakeEnvironment{}) {
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
web:
  listen_address: 127.0.0.1:9000
storage:
  path: data/mp.db
  retention: 30d
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

FakeEnvironment FullEnvironment() {
  FakeEnvironment env;
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
  CHECK(config.prober.max_concurrency == 8);
  CHECK(config.prober.max_response_bytes == 65536);
  CHECK(config.prober.jitter_fraction == doctest::Approx(0.2));
  CHECK(config.prober.shutdown_grace == 3s);
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
  CHECK(Has(lines, "t.yaml:4:3: unknown key \"intervall\" in \"defaults\" (did you mean "
                   "\"interval\"?)"));
  CHECK(HasPrefix(lines, "t.yaml:5:23: \"timeouts.connect\": not a valid duration: \"5x\""));
  CHECK(Has(lines, "t.yaml:5:40: \"timeouts.first_token\" (1m30s) is longer than "
                   "\"timeouts.total\" (1m) in \"defaults\""));
  CHECK(Has(lines, "t.yaml:11:5: unknown key \"intervall\" in target \"gpt@openai\" (did you "
                   "mean \"interval\"?)"));
  CHECK(Has(lines, "t.yaml:12:17: \"max_tokens\": expected an integer, got \"many\""));
  CHECK(Has(lines, "t.yaml:13:11: duplicate target name \"gpt@openai\" (first defined at line 7)"));
  CHECK(Has(lines, "t.yaml:14:15: \"provider\": unknown provider \"opnai\" (valid: openai, "
                   "openai_compatible, azure, anthropic, bedrock, vertex, gemini)"));
  CHECK(Has(lines, "t.yaml:16:15: \"base_url\": must start with http:// or https://"));
  CHECK(Has(lines, "t.yaml:17:25: \"auth.api_key_env\": environment variable OPENAI_API_KEY is "
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
}

TEST_CASE("wrong types are errors at the value") {
  CHECK(Has(Problems("targets: {a: b}\n"),
            "t.yaml:1:10: \"targets\": expected a list, got a map"));
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
  CHECK(Has(Problems("global: {jitter_fraction: 1.5}\n"),
            "t.yaml:1:27: \"global.jitter_fraction\": must be less than 1, got 1.5"));
  CHECK(Has(Problems("web: {listen_address: localhost}\n"),
            "t.yaml:1:23: \"web.listen_address\": expected host:port, got \"localhost\""));
  CHECK(Has(Problems("storage: {retention: -1d}\n"),
            "t.yaml:1:22: \"storage.retention\": not a valid duration: \"-1d\" (expected e.g. 30s, "
            "5m, 1h30m)"));
}

TEST_CASE("(?i) selects a case-insensitive ECMAScript regex") {
  CHECK(MustParse(OneTarget("    expect: \"(?i)\\\\bok\\\\b\"\n")).targets[0].expect ==
        "(?i)\\bok\\b");
  // "(?i)" anywhere but the start is not ECMAScript.
  CHECK(HasPrefix(Problems(OneTarget("    expect: \"ok(?i)\"\n")),
                  "t.yaml:6:13: \"expect\": invalid regular expression"));
}

TEST_CASE("a first_token or connect timeout longer than total is an error where it was set") {
  // Total inherited from defaults, first_token set on the target: reported at the target's value.
  const std::string yaml = "defaults: {timeouts: {total: 30s}}\n" +
                           OneTarget("    timeouts: {first_token: 40s}\n");
  CHECK(Problems(yaml) == std::vector<std::string>{
                              "t.yaml:7:29: \"timeouts.first_token\" (40s) is longer than "
                              "\"timeouts.total\" (30s) in target \"t\""});
  // The target's own total shorter than the inherited connect: reported at the total.
  const std::string shorter = "defaults: {timeouts: {connect: 5s}}\n" +
                              OneTarget("    timeouts: {total: 2s}\n");
  CHECK(Problems(shorter) == std::vector<std::string>{
                                 "t.yaml:7:23: \"timeouts.connect\" (5s) is longer than "
                                 "\"timeouts.total\" (2s) in target \"t\""}
        );
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
                   FakeEnvironment env;
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
    const std::string yaml = "targets:\n  - {name: t, provider: openai, model: m, base_url: '" +
                             url + "'}\n";
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
    FakeEnvironment env;
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

  const Config own = MustParse(OneTarget("    labels: {cloud: azure, region: eastus, team: sre}\n"));
  CHECK(own.targets[0].labels == Labels{{"target", "t"},
                                        {"provider", "openai"},
                                        {"model", "m"},
                                        {"cloud", "azure"},
                                        {"region", "eastus"},
                                        {"team", "sre"}});

  const std::vector<std::string> lines =
      Problems(OneTarget("    labels: {model: x, target: y, __meta: z, 1st: w, ok: [v]}\n"));
  INFO(Join(lines));
  CHECK(Has(lines, "t.yaml:6:14: \"labels\": label \"model\" is set from the target's model and "
                   "cannot be overridden"));
  CHECK(Has(lines, "t.yaml:6:24: \"labels\": label \"target\" is set from the target's name and "
                   "cannot be overridden"));
  CHECK(Has(lines, "t.yaml:6:35: \"labels\": invalid label name \"__meta\" (must match "
                   "[a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\")"));
  CHECK(HasPrefix(lines, "t.yaml:6:46: \"labels\": invalid label name \"1st\""));
  CHECK(Has(lines, "t.yaml:6:58: \"labels.ok\": expected a string, got a list"));
  CHECK(lines.size() == 5);
  CHECK(HasPrefix(Problems("global: {external_labels: {bad-name: x}}\n"),
                  "t.yaml:1:28: \"global.external_labels\": invalid label name \"bad-name\""));
}

TEST_CASE("secrets are read by reference and never appear in messages") {
  FakeEnvironment env;
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
  CHECK(Has(lines, "t.yaml:6:25: \"auth.api_key_env\": environment variable MISSING_KEY is not "
                   "set"));
  CHECK(Has(lines, "t.yaml:7:22: \"headers.X-Key\": value contains a line break"));
  CHECK(Has(lines, "t.yaml:7:40: \"headers\": invalid header name \"Bad Header\""));
  CHECK(Has(lines, "t.yaml:12:25: \"auth.api_key_env\": environment variable EMPTY_KEY is empty"));
  CHECK(Has(lines, "t.yaml:17:26: \"auth.api_key_file\": cannot read " + cwd +
                       "/keys/missing.key: No such file or directory"));
  CHECK(Has(lines, "t.yaml:22:26: \"auth.api_key_file\": file " + cwd + "/keys/empty.key is empty"));
  CHECK(Has(lines, "t.yaml:27:41: \"auth\": give only one way to authenticate, got api_key_env "
                   "and api_key_file"));
  CHECK(lines.size() == 7);
  CHECK(all.find("SECRET") == std::string::npos);

  FakeEnvironment no_credentials;
  CHECK(Has(Problems(OneTarget("    auth: {api_key_credential: anthropic}\n"), no_credentials),
            "t.yaml:6:32: \"auth.api_key_credential\": credential anthropic needs "
            "$CREDENTIALS_DIRECTORY, which is not set (LoadCredential= in the systemd unit)"));
}

TEST_CASE("rule_files: globs expanded relative to the config, a missing literal file is an error") {
  FakeEnvironment env;
  env.globs = {{"/etc/mp/rules/*.yaml", {"/etc/mp/rules/x.yaml"}}};
  env.files = {{"/abs/r.yaml", ""}};
  const Config config = MustParse("rule_files: [rules/*.yaml, /abs/r.yaml, rules/none*.yaml, "
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
                  "$OPENAI_API_KEY\n") !=
        std::string::npos);
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
  const FakeEnvironment env = FullEnvironment();
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

// The repository root, found from this file's path: tests/daemon/config_test.cpp.
std::filesystem::path RepoRoot() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

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
  CHECK_FALSE(config->simulator.has_value());

  // Without the keys, each missing variable is named.
  Result<Config> keyless = ParseConfig(ReadText(file), "example.yaml", ShippedEnvironment{});
  REQUIRE_FALSE(keyless.has_value());
  INFO(keyless.error().message);
  CHECK(Lines(keyless.error().message).size() == 3);
}

TEST_CASE("config/demo.yaml parses without any key, through LoadConfig") {
  const std::filesystem::path root = RepoRoot();
  Result<Config> config = LoadConfig((root / "config" / "demo.yaml").string());
  INFO((config ? std::string() : config.error().message));
  REQUIRE(config.has_value());
  REQUIRE(config->targets.size() == 3);
  std::vector<std::string> clouds;
  for (const TargetSpec& target : config->targets) {
    CHECK(target.model == "gpt-4o-mini");
    CHECK(target.interval == 5s);
    CHECK(target.base_url.starts_with("http://127.0.0.1:9465/"));
    CHECK(target.api_key.empty());
    clouds.push_back(target.labels.at("cloud"));
  }
  CHECK(clouds == std::vector<std::string>{"openai", "azure", "groq"});
  REQUIRE(config->simulator.has_value());
  CHECK(config->simulator->scenario_path ==
        (root / "config" / "scenarios" / "demo.yaml").lexically_normal().string());
  CHECK(config->simulator->listen_address == "127.0.0.1:9465");
  for (const std::string& rule_file : config->rule_files) {
    CHECK(rule_file.starts_with((root / "config" / "rules").lexically_normal().string()));
  }
}

TEST_CASE("LoadConfig reports an unreadable file") {
  Result<Config> config = LoadConfig("/nonexistent/modelpulse.yml");
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().code == Error::Code::kNotFound);
  CHECK(config.error().message.find("/nonexistent/modelpulse.yml") != std::string::npos);
}

}  // namespace
}  // namespace modelpulse::daemon
