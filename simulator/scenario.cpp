#include "simulator/internal/scenario.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "common/duration.h"
#include "simulator/internal/protocol.h"

namespace modelpulse::simulator {
namespace {

constexpr std::pair<Behaviour, std::string_view> kBehaviourNames[] = {
    {Behaviour::kOk, "ok"},
    {Behaviour::kRateLimit, "rate_limit"},
    {Behaviour::kInsufficientQuota, "insufficient_quota"},
    {Behaviour::kOverloaded503, "overloaded_503"},
    {Behaviour::kServerError500, "server_error_500"},
    {Behaviour::kUnauthorized401, "unauthorized_401"},
    {Behaviour::kErrorIn200, "error_in_200"},
    {Behaviour::kTruncatedStream, "truncated_stream"},
    {Behaviour::kMalformedJson, "malformed_json"},
    {Behaviour::kEmptyCompletion, "empty_completion"},
    {Behaviour::kHang, "hang"},
    {Behaviour::kHangAfterHeaders, "hang_after_headers"},
    {Behaviour::kOverloadedMidstream, "overloaded_midstream"},
    {Behaviour::kQuotaPerDay, "quota_per_day"},
    {Behaviour::kExceptionMidstream, "exception_midstream"},
    {Behaviour::kModelNotReady, "model_not_ready"},
};

// Thrown inside this file only, and turned into an Error at ParseScenario's boundary, because
// every helper here would otherwise thread a Result through a dozen levels of YAML walking.
struct ScenarioError {
  std::string message;
  YAML::Mark mark;
};

[[noreturn]] void Throw(const YAML::Node& node, std::string message) {
  throw ScenarioError{std::move(message), node.Mark()};
}

void CheckKeys(const YAML::Node& map, std::string_view what,
               std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap()) {
    Throw(map, fmt::format("{} must be a mapping", what));
  }
  for (const auto& item : map) {
    const auto key = item.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (auto a : allowed) {
        list += list.empty() ? "" : ", ";
        list += a;
      }
      Throw(item.first,
            fmt::format("unknown key '{}' in {} (expected one of: {})", key, what, list));
    }
  }
}

double Number(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) {
    Throw(node, fmt::format("{} must be a number", what));
  }
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    Throw(node, fmt::format("{} must be a number, got '{}'", what, node.Scalar()));
  }
}

double NonNegative(const YAML::Node& node, std::string_view what) {
  const double value = Number(node, what);
  if (!(value >= 0) || !std::isfinite(value)) {
    Throw(node, fmt::format("{} must be a non-negative number, got '{}'", what, node.Scalar()));
  }
  return value;
}

std::string String(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) {
    Throw(node, fmt::format("{} must be a string", what));
  }
  return node.Scalar();
}

Micros Duration(const YAML::Node& node, std::string_view what) {
  const auto text = String(node, what);
  auto parsed = ParsePromDuration(text);
  if (!parsed) {
    Throw(node,
          fmt::format("{} must be a positive duration like 300ms or 1m, got '{}'", what, text));
  }
  if (parsed->count() <= 0) {
    Throw(node, fmt::format("{} must be positive, got '{}'", what, text));
  }
  return std::chrono::duration_cast<Micros>(*parsed);
}

Distribution ParseDistribution(const YAML::Node& node, std::string_view what) {
  Distribution d;
  if (node.IsScalar()) {
    d.kind = Distribution::Kind::kConstant;
    d.value = NonNegative(node, what);
    return d;
  }
  CheckKeys(node, what,
            {"distribution", "value", "mean", "stddev", "median", "sigma", "min", "max"});
  if (!node["distribution"]) {
    Throw(node,
          fmt::format("{} needs 'distribution' (constant, uniform, normal or lognormal)", what));
  }
  const auto kind = String(node["distribution"], "distribution");
  auto require = [&](const char* key) {
    if (!node[key]) {
      Throw(node, fmt::format("{} ({}) needs '{}'", what, kind, key));
    }
    return NonNegative(node[key], fmt::format("{}.{}", what, key));
  };
  auto forbid_except = [&](std::initializer_list<std::string_view> keys) {
    for (const auto& item : node) {
      const auto key = item.first.as<std::string>();
      if (key != "distribution" && std::find(keys.begin(), keys.end(), key) == keys.end()) {
        Throw(item.first, fmt::format("'{}' does not apply to a {} distribution", key, kind));
      }
    }
  };
  if (kind == "constant") {
    forbid_except({"value"});
    d.kind = Distribution::Kind::kConstant;
    d.value = require("value");
  } else if (kind == "uniform") {
    forbid_except({"min", "max"});
    d.kind = Distribution::Kind::kUniform;
    d.min = require("min");
    d.max = require("max");
  } else if (kind == "normal") {
    forbid_except({"mean", "stddev", "min", "max"});
    d.kind = Distribution::Kind::kNormal;
    d.mean = require("mean");
    d.stddev = require("stddev");
    if (node["min"])
      d.min = require("min");
    if (node["max"])
      d.max = require("max");
  } else if (kind == "lognormal") {
    forbid_except({"median", "sigma", "min", "max"});
    d.kind = Distribution::Kind::kLogNormal;
    d.median = require("median");
    d.sigma = require("sigma");
    if (d.median <= 0) {
      Throw(node["median"], "lognormal median must be positive");
    }
    if (node["min"])
      d.min = require("min");
    if (node["max"])
      d.max = require("max");
  } else {
    Throw(node["distribution"],
          fmt::format("unknown distribution '{}' (expected constant, uniform, normal or lognormal)",
                      kind));
  }
  if (d.min > d.max) {
    Throw(node, fmt::format("{}: min ({}) is greater than max ({})", what, d.min, d.max));
  }
  return d;
}

std::vector<ErrorRule> ParseErrors(const YAML::Node& node) {
  if (!node.IsSequence()) {
    Throw(node, "errors must be a list of {kind, probability}");
  }
  std::vector<ErrorRule> rules;
  double total = 0;
  for (const auto& item : node) {
    CheckKeys(item, "an error rule", {"kind", "probability"});
    if (!item["kind"] || !item["probability"]) {
      Throw(item, "an error rule needs 'kind' and 'probability'");
    }
    const auto name = String(item["kind"], "kind");
    auto kind = BehaviourFromName(name);
    if (!kind || *kind == Behaviour::kOk) {
      std::string list;
      for (const auto& [b, n] : kBehaviourNames) {
        if (b != Behaviour::kOk) {
          list += list.empty() ? "" : ", ";
          list += n;
        }
      }
      Throw(item["kind"], fmt::format("unknown error kind '{}' (expected one of: {})", name, list));
    }
    const double p = NonNegative(item["probability"], "probability");
    if (p > 1) {
      Throw(item["probability"], fmt::format("probability must be within [0, 1], got {}", p));
    }
    total += p;
    if (total > 1 + 1e-9) {
      Throw(item["probability"], "the probabilities of a phase's errors add up to more than 1");
    }
    rules.push_back({*kind, p});
  }
  return rules;
}

Phase ParsePhase(const YAML::Node& node) {
  CheckKeys(node, "a phase",
            {"name", "duration", "errors", "first_token_ms", "inter_token_ms", "output_tokens"});
  Phase phase;
  if (node["name"])
    phase.name = String(node["name"], "name");
  if (node["duration"])
    phase.duration = Duration(node["duration"], "duration");
  if (node["errors"])
    phase.errors = ParseErrors(node["errors"]);
  if (node["first_token_ms"]) {
    phase.first_token_ms = ParseDistribution(node["first_token_ms"], "first_token_ms");
  }
  if (node["inter_token_ms"]) {
    phase.inter_token_ms = ParseDistribution(node["inter_token_ms"], "inter_token_ms");
  }
  if (node["output_tokens"]) {
    phase.output_tokens = ParseDistribution(node["output_tokens"], "output_tokens");
  }
  return phase;
}

bool IsMountName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

EndpointSpec ParseEndpoint(const YAML::Node& node, const std::string& base_dir) {
  CheckKeys(node, "an endpoint",
            {"name", "protocol", "api_key", "model", "first_token_ms", "inter_token_ms",
             "output_tokens", "ratelimit", "phases", "options"});
  EndpointSpec ep;
  ep.base_dir = base_dir;
  if (!node["name"])
    Throw(node, "an endpoint needs a 'name'");
  ep.name = String(node["name"], "name");
  if (!IsMountName(ep.name) || ep.name.front() == '_') {
    Throw(node["name"], fmt::format("endpoint name '{}' must be letters, digits, '-' or '_' (it "
                                    "becomes the URL path prefix) and not start with '_'",
                                    ep.name));
  }
  ep.protocol = node["protocol"] ? String(node["protocol"], "protocol") : "openai";
  if (!IsKnownProtocol(ep.protocol)) {
    Throw(node["protocol"] ? node["protocol"] : node,
          fmt::format("unknown protocol '{}' (expected one of: {})", ep.protocol,
                      fmt::join(ProtocolNames(), ", ")));
  }
  if (node["api_key"])
    ep.api_key = String(node["api_key"], "api_key");
  if (node["model"])
    ep.model = String(node["model"], "model");
  ep.first_token_ms = node["first_token_ms"]
                          ? ParseDistribution(node["first_token_ms"], "first_token_ms")
                          : Distribution{.value = 200};
  ep.inter_token_ms = node["inter_token_ms"]
                          ? ParseDistribution(node["inter_token_ms"], "inter_token_ms")
                          : Distribution{.value = 10};
  ep.output_tokens = node["output_tokens"]
                         ? ParseDistribution(node["output_tokens"], "output_tokens")
                         : Distribution{.value = 8};
  if (const auto rl = node["ratelimit"]) {
    CheckKeys(rl, "ratelimit", {"requests", "tokens", "window"});
    RateLimitSpec spec;
    if (rl["requests"])
      spec.requests = static_cast<int64_t>(NonNegative(rl["requests"], "requests"));
    if (rl["tokens"])
      spec.tokens = static_cast<int64_t>(NonNegative(rl["tokens"], "tokens"));
    if (rl["window"])
      spec.window = Duration(rl["window"], "window");
    if (spec.requests == 0 && spec.tokens == 0) {
      Throw(rl, "ratelimit needs 'requests' or 'tokens' greater than 0");
    }
    ep.ratelimit = spec;
  }
  if (const auto phases = node["phases"]) {
    if (!phases.IsSequence() || phases.size() == 0) {
      Throw(phases, "phases must be a non-empty list");
    }
    for (size_t i = 0; i < phases.size(); ++i) {
      ep.phases.push_back(ParsePhase(phases[i]));
      if (ep.phases.back().name.empty())
        ep.phases.back().name = fmt::format("phase{}", i + 1);
      if (i + 1 < phases.size() && !ep.phases.back().duration) {
        Throw(phases[i], "every phase but the last needs a 'duration'");
      }
    }
  } else {
    ep.phases.push_back(Phase{.name = "steady"});
  }
  if (const auto options = node["options"]) {
    if (!options.IsMap())
      Throw(options, "options must be a mapping of names to values");
    for (const auto& item : options) {
      ep.options[item.first.as<std::string>()] = String(item.second, item.first.as<std::string>());
    }
  }
  // The protocol vets its options and the error kinds it can render, so that a typo fails here
  // with a line number rather than at the first request.
  const auto protocol = MakeProtocol(ep.protocol);
  if (auto configured = protocol->Configure(ep); !configured) {
    Throw(node["options"] ? node["options"] : node, configured.error().message);
  }
  for (size_t i = 0; i < ep.phases.size(); ++i) {
    for (const auto& rule : ep.phases[i].errors) {
      if (!protocol->Supports(rule.kind)) {
        Throw(node["phases"] ? node["phases"][i] : node,
              fmt::format("protocol '{}' has no rendering of error kind '{}'", ep.protocol,
                          BehaviourName(rule.kind)));
      }
    }
  }
  return ep;
}

Scenario ParseRoot(const YAML::Node& root, const std::string& name) {
  Scenario scenario;
  scenario.path = name;
  CheckKeys(root, "the scenario", {"seed", "hang_cap", "journal_size", "endpoints"});
  if (root["seed"])
    scenario.seed = static_cast<uint64_t>(NonNegative(root["seed"], "seed"));
  if (root["hang_cap"])
    scenario.hang_cap = Duration(root["hang_cap"], "hang_cap");
  if (root["journal_size"]) {
    scenario.journal_size = static_cast<size_t>(NonNegative(root["journal_size"], "journal_size"));
    if (scenario.journal_size == 0)
      Throw(root["journal_size"], "journal_size must be at least 1");
  }
  const auto endpoints = root["endpoints"];
  if (!endpoints || !endpoints.IsSequence() || endpoints.size() == 0) {
    Throw(endpoints ? endpoints : root, "the scenario needs a non-empty 'endpoints' list");
  }
  std::set<std::string> names;
  const std::string base_dir = std::filesystem::path(name).parent_path().string();
  for (const auto& node : endpoints) {
    auto ep = ParseEndpoint(node, base_dir);
    if (!names.insert(ep.name).second) {
      Throw(node["name"], fmt::format("duplicate endpoint name '{}'", ep.name));
    }
    scenario.endpoints.push_back(std::move(ep));
  }
  return scenario;
}

std::string Where(const std::string& name, const YAML::Mark& mark) {
  if (mark.is_null())
    return name;
  return fmt::format("{}:{}:{}", name, mark.line + 1, mark.column + 1);
}

}  // namespace

std::string_view BehaviourName(Behaviour behaviour) {
  for (const auto& [b, n] : kBehaviourNames) {
    if (b == behaviour)
      return n;
  }
  return "unknown";
}

std::optional<Behaviour> BehaviourFromName(std::string_view name) {
  for (const auto& [b, n] : kBehaviourNames) {
    if (n == name)
      return b;
  }
  return std::nullopt;
}

double Draw(const Distribution& d, std::mt19937_64& rng) {
  double value = 0;
  switch (d.kind) {
    case Distribution::Kind::kConstant:
      return d.value;
    case Distribution::Kind::kUniform:
      value = std::uniform_real_distribution<double>(d.min, d.max)(rng);
      break;
    case Distribution::Kind::kNormal:
      value = d.stddev > 0 ? std::normal_distribution<double>(d.mean, d.stddev)(rng) : d.mean;
      break;
    case Distribution::Kind::kLogNormal:
      value = std::lognormal_distribution<double>(std::log(d.median), d.sigma)(rng);
      break;
  }
  return std::max(0.0, std::clamp(value, d.min, d.max));
}

Result<Scenario> ParseScenario(std::string_view text, const std::string& name) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root || root.IsNull()) {
      return Fail(Error::Parse("the scenario file is empty", name));
    }
    return ParseRoot(root, name);
  } catch (const ScenarioError& e) {
    return Fail(Error::Parse(e.message, Where(name, e.mark)));
  } catch (const YAML::Exception& e) {
    return Fail(Error::Parse(e.msg, Where(name, e.mark)));
  }
}

Result<Scenario> LoadScenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(Error::Io(fmt::format("cannot read scenario file {}", path)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseScenario(buffer.str(), path);
}

std::string FormatGoDuration(Micros duration) {
  int64_t us = std::max<int64_t>(0, duration.count());
  if (us == 0)
    return "0s";
  auto trim = [](std::string s) {
    if (s.find('.') != std::string::npos) {
      while (s.back() == '0')
        s.pop_back();
      if (s.back() == '.')
        s.pop_back();
    }
    return s;
  };
  if (us < 1'000'000) {
    // Sub-second values are whole or fractional milliseconds, as OpenAI sends ("120ms", "7.44ms").
    return trim(fmt::format("{:.3f}", static_cast<double>(us) / 1000.0)) + "ms";
  }
  const int64_t ms = (us + 500) / 1000;
  const int64_t hours = ms / 3'600'000;
  const int64_t minutes = (ms / 60'000) % 60;
  const double seconds = static_cast<double>(ms % 60'000) / 1000.0;
  std::string out;
  if (hours > 0)
    out += fmt::format("{}h", hours);
  if (hours > 0 || minutes > 0)
    out += fmt::format("{}m", minutes);
  out += trim(fmt::format("{:.3f}", seconds)) + "s";
  return out;
}

}  // namespace modelpulse::simulator
