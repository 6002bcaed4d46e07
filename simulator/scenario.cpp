#include "simulator/internal/scenario.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <sstream>
#include <utility>

#include "common/duration.h"
#include "common/yaml_reader.h"
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

using yaml::Diagnostics;
using yaml::Entry;
using yaml::Sign;

const Entry* Find(const std::vector<Entry>& entries, std::string_view key) {
  for (const Entry& e : entries) {
    if (e.key == key) {
      return &e;
    }
  }
  return nullptr;
}

// The entries of a map that must be there (unlike yaml::MapEntries, nothing is not an empty map).
std::vector<Entry> Entries(const YAML::Node& node, const YAML::Mark& mark, std::string_view what,
                           std::span<const std::string_view> allowed, Diagnostics& diag) {
  if (!node.IsMap()) {
    diag.Add(mark, fmt::format("{} must be a mapping", what));
    return {};
  }
  return yaml::MapEntries(node, mark, what, fmt::format("in {}", what), allowed, diag);
}

std::optional<Micros> ReadPositiveDuration(const Entry& e, Diagnostics& diag) {
  const std::optional<Millis> duration = yaml::ReadDuration(e, e.key, Sign::kPositive, diag);
  if (!duration) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<Micros>(*duration);
}

// Which fields each distribution takes; the others are refused.
struct DistributionShape {
  std::string_view name;
  Distribution::Kind kind;
  std::array<std::string_view, 2> required;
  std::array<std::string_view, 2> optional;  // "" fills unused places
};

const DistributionShape kDistributionShapes[] = {
    {"constant", Distribution::Kind::kConstant, {"value", ""}, {"", ""}},
    {"uniform", Distribution::Kind::kUniform, {"min", "max"}, {"", ""}},
    {"normal", Distribution::Kind::kNormal, {"mean", "stddev"}, {"min", "max"}},
    {"lognormal", Distribution::Kind::kLogNormal, {"median", "sigma"}, {"min", "max"}},
};

double Distribution::*DistributionField(std::string_view key) {
  constexpr std::pair<std::string_view, double Distribution::*> kFields[] = {
      {"value", &Distribution::value},   {"mean", &Distribution::mean},
      {"stddev", &Distribution::stddev}, {"median", &Distribution::median},
      {"sigma", &Distribution::sigma},   {"min", &Distribution::min},
      {"max", &Distribution::max}};
  for (const auto& [name, field] : kFields) {
    if (name == key) {
      return field;
    }
  }
  return nullptr;
}

std::optional<Distribution> ReadDistribution(const Entry& e, Diagnostics& diag) {
  const std::string& what = e.key;
  if (e.value.IsScalar()) {
    const std::optional<double> value = yaml::ReadNumber(e, what, Sign::kNonNegative, diag);
    if (!value) {
      return std::nullopt;
    }
    return Distribution{.kind = Distribution::Kind::kConstant, .value = *value};
  }
  static constexpr std::string_view kKeys[] = {"distribution", "value", "mean", "stddev",
                                               "median",       "sigma", "min",  "max"};
  const std::vector<Entry> entries = Entries(e.value, e.ValueMark(), what, kKeys, diag);
  if (!diag.empty()) {
    return std::nullopt;
  }
  const Entry* kind_entry = Find(entries, "distribution");
  if (kind_entry == nullptr) {
    diag.Add(e.ValueMark(),
             fmt::format("{} needs 'distribution' (constant, uniform, normal or lognormal)", what));
    return std::nullopt;
  }
  const std::optional<std::string> kind = yaml::ReadString(*kind_entry, "distribution", diag);
  if (!kind) {
    return std::nullopt;
  }
  const auto shape = std::find_if(std::begin(kDistributionShapes), std::end(kDistributionShapes),
                                  [&](const DistributionShape& s) { return s.name == *kind; });
  if (shape == std::end(kDistributionShapes)) {
    diag.Add(kind_entry->ValueMark(),
             fmt::format("unknown distribution '{}' (expected constant, uniform, normal or "
                         "lognormal)",
                         *kind));
    return std::nullopt;
  }
  const auto listed = [](const std::array<std::string_view, 2>& keys, std::string_view key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  for (const Entry& field : entries) {
    if (field.key != "distribution" && !listed(shape->required, field.key) &&
        !listed(shape->optional, field.key)) {
      diag.Add(field.key_node.Mark(),
               fmt::format("'{}' does not apply to a {} distribution", field.key, *kind));
      return std::nullopt;
    }
  }
  Distribution d{.kind = shape->kind};
  for (std::string_view key : shape->required) {
    if (!key.empty() && Find(entries, key) == nullptr) {
      diag.Add(e.ValueMark(), fmt::format("{} ({}) needs '{}'", what, *kind, key));
      return std::nullopt;
    }
  }
  for (const Entry& field : entries) {
    if (field.key == "distribution") {
      continue;
    }
    const std::optional<double> value =
        yaml::ReadNumber(field, fmt::format("{}.{}", what, field.key), Sign::kNonNegative, diag);
    if (!value) {
      return std::nullopt;
    }
    d.*DistributionField(field.key) = *value;
  }
  if (d.kind == Distribution::Kind::kLogNormal && d.median <= 0) {
    diag.Add(Find(entries, "median")->ValueMark(), "lognormal median must be positive");
    return std::nullopt;
  }
  if (d.min > d.max) {
    diag.Add(e.ValueMark(),
             fmt::format("{}: min ({}) is greater than max ({})", what, d.min, d.max));
    return std::nullopt;
  }
  return d;
}

std::optional<std::vector<ErrorRule>> ReadErrors(const Entry& e, Diagnostics& diag) {
  if (!e.value.IsSequence()) {
    diag.Add(e.ValueMark(), "errors must be a list of {kind, probability}");
    return std::nullopt;
  }
  static constexpr std::string_view kKeys[] = {"kind", "probability"};
  std::vector<ErrorRule> rules;
  double total = 0;
  for (const YAML::Node& item : e.value) {
    const std::vector<Entry> entries = Entries(item, item.Mark(), "an error rule", kKeys, diag);
    const Entry* kind_entry = Find(entries, "kind");
    const Entry* probability = Find(entries, "probability");
    if (!item.IsMap() || kind_entry == nullptr || probability == nullptr) {
      diag.Add(item.Mark(), "an error rule needs 'kind' and 'probability'");
      return std::nullopt;
    }
    const std::optional<std::string> name = yaml::ReadString(*kind_entry, "kind", diag);
    if (!name) {
      return std::nullopt;
    }
    const std::optional<Behaviour> kind = BehaviourFromName(*name);
    if (!kind || *kind == Behaviour::kOk) {
      std::string list;
      for (const auto& [b, n] : kBehaviourNames) {
        if (b != Behaviour::kOk) {
          list += list.empty() ? "" : ", ";
          list += n;
        }
      }
      diag.Add(kind_entry->ValueMark(),
               fmt::format("unknown error kind '{}' (expected one of: {})", *name, list));
      return std::nullopt;
    }
    const std::optional<double> p =
        yaml::ReadNumber(*probability, "probability", Sign::kNonNegative, diag);
    if (!p) {
      return std::nullopt;
    }
    if (*p > 1) {
      diag.Add(probability->ValueMark(),
               fmt::format("probability must be within [0, 1], got {}", *p));
      return std::nullopt;
    }
    total += *p;
    if (total > 1 + 1e-9) {
      diag.Add(probability->ValueMark(),
               "the probabilities of a phase's errors add up to more than 1");
      return std::nullopt;
    }
    rules.push_back({*kind, *p});
  }
  return rules;
}

Phase ReadPhase(const YAML::Node& node, Diagnostics& diag) {
  static constexpr std::string_view kKeys[] = {"name",           "duration",       "errors",
                                               "first_token_ms", "inter_token_ms", "output_tokens"};
  Phase phase;
  for (const Entry& e : Entries(node, node.Mark(), "a phase", kKeys, diag)) {
    if (e.key == "name") {
      phase.name = yaml::ReadString(e, e.key, diag).value_or("");
    } else if (e.key == "duration") {
      phase.duration = ReadPositiveDuration(e, diag);
    } else if (e.key == "errors") {
      phase.errors = ReadErrors(e, diag).value_or(std::vector<ErrorRule>{});
    } else if (e.key == "first_token_ms") {
      phase.first_token_ms = ReadDistribution(e, diag);
    } else if (e.key == "inter_token_ms") {
      phase.inter_token_ms = ReadDistribution(e, diag);
    } else if (e.key == "output_tokens") {
      phase.output_tokens = ReadDistribution(e, diag);
    }
  }
  return phase;
}

bool IsMountName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

std::optional<RateLimitSpec> ReadRateLimit(const Entry& e, Diagnostics& diag) {
  static constexpr std::string_view kKeys[] = {"requests", "tokens", "window"};
  const std::vector<Entry> entries = Entries(e.value, e.ValueMark(), "ratelimit", kKeys, diag);
  RateLimitSpec spec;
  for (const Entry& field : entries) {
    if (field.key == "window") {
      spec.window = ReadPositiveDuration(field, diag).value_or(spec.window);
      continue;
    }
    const std::optional<double> count =
        yaml::ReadNumber(field, field.key, Sign::kNonNegative, diag);
    (field.key == "requests" ? spec.requests : spec.tokens) =
        static_cast<int64_t>(count.value_or(0));
  }
  if (!diag.empty()) {
    return std::nullopt;
  }
  if (spec.requests == 0 && spec.tokens == 0) {
    diag.Add(e.ValueMark(), "ratelimit needs 'requests' or 'tokens' greater than 0");
    return std::nullopt;
  }
  return spec;
}

std::optional<EndpointSpec> ReadEndpoint(const YAML::Node& node, const std::string& base_dir,
                                         Diagnostics& diag) {
  static constexpr std::string_view kKeys[] = {
      "name",           "protocol",      "api_key",   "model",  "first_token_ms",
      "inter_token_ms", "output_tokens", "ratelimit", "phases", "options"};
  const std::vector<Entry> entries = Entries(node, node.Mark(), "an endpoint", kKeys, diag);
  if (!diag.empty()) {
    return std::nullopt;
  }
  EndpointSpec ep;
  ep.base_dir = base_dir;
  const Entry* name = Find(entries, "name");
  if (name == nullptr) {
    diag.Add(node.Mark(), "an endpoint needs a 'name'");
    return std::nullopt;
  }
  ep.name = yaml::ReadString(*name, "name", diag).value_or("");
  if (!diag.empty()) {
    return std::nullopt;
  }
  if (!IsMountName(ep.name) || ep.name.front() == '_') {
    diag.Add(name->ValueMark(),
             fmt::format("endpoint name '{}' must be letters, digits, '-' or '_' (it "
                         "becomes the URL path prefix) and not start with '_'",
                         ep.name));
    return std::nullopt;
  }
  const Entry* protocol_entry = Find(entries, "protocol");
  ep.protocol = protocol_entry != nullptr
                    ? yaml::ReadString(*protocol_entry, "protocol", diag).value_or("")
                    : "openai";
  if (!diag.empty()) {
    return std::nullopt;
  }
  if (!IsKnownProtocol(ep.protocol)) {
    diag.Add(protocol_entry != nullptr ? protocol_entry->ValueMark() : node.Mark(),
             fmt::format("unknown protocol '{}' (expected one of: {})", ep.protocol,
                         fmt::join(ProtocolNames(), ", ")));
    return std::nullopt;
  }
  ep.first_token_ms = Distribution{.value = 200};
  ep.inter_token_ms = Distribution{.value = 10};
  ep.output_tokens = Distribution{.value = 8};
  ep.phases.push_back(Phase{.name = "steady"});
  const Entry* phases = nullptr;
  const Entry* options = nullptr;
  for (const Entry& e : entries) {
    if (e.key == "api_key") {
      ep.api_key = yaml::ReadString(e, e.key, diag).value_or("");
    } else if (e.key == "model") {
      ep.model = yaml::ReadString(e, e.key, diag).value_or("");
    } else if (e.key == "first_token_ms") {
      ep.first_token_ms = ReadDistribution(e, diag).value_or(ep.first_token_ms);
    } else if (e.key == "inter_token_ms") {
      ep.inter_token_ms = ReadDistribution(e, diag).value_or(ep.inter_token_ms);
    } else if (e.key == "output_tokens") {
      ep.output_tokens = ReadDistribution(e, diag).value_or(ep.output_tokens);
    } else if (e.key == "ratelimit") {
      ep.ratelimit = ReadRateLimit(e, diag);
    } else if (e.key == "phases") {
      phases = &e;
    } else if (e.key == "options") {
      options = &e;
    }
  }
  if (phases != nullptr) {
    if (!phases->value.IsSequence() || phases->value.size() == 0) {
      diag.Add(phases->ValueMark(), "phases must be a non-empty list");
      return std::nullopt;
    }
    ep.phases.clear();
    for (size_t i = 0; i < phases->value.size(); ++i) {
      const YAML::Node phase_node = phases->value[i];
      ep.phases.push_back(ReadPhase(phase_node, diag));
      if (!diag.empty()) {
        return std::nullopt;
      }
      if (ep.phases.back().name.empty()) {
        ep.phases.back().name = fmt::format("phase{}", i + 1);
      }
      if (i + 1 < phases->value.size() && !ep.phases.back().duration) {
        diag.Add(phase_node.Mark(), "every phase but the last needs a 'duration'");
        return std::nullopt;
      }
    }
  }
  if (options != nullptr) {
    if (!options->value.IsMap()) {
      diag.Add(options->ValueMark(), "options must be a mapping of names to values");
      return std::nullopt;
    }
    for (const Entry& option : yaml::MapEntries(options->value, options->ValueMark(), "options",
                                                "in options", {}, diag)) {
      ep.options[option.key] = yaml::ReadString(option, option.key, diag).value_or("");
    }
  }
  if (!diag.empty()) {
    return std::nullopt;
  }
  // The protocol vets its options and the error kinds it can render, so that a typo fails here
  // with a line number rather than at the first request.
  const auto protocol = MakeProtocol(ep.protocol);
  if (auto configured = protocol->Configure(ep); !configured) {
    diag.Add(options != nullptr ? options->ValueMark() : node.Mark(), configured.error().message);
    return std::nullopt;
  }
  for (size_t i = 0; i < ep.phases.size(); ++i) {
    for (const auto& rule : ep.phases[i].errors) {
      if (!protocol->Supports(rule.kind)) {
        diag.Add(phases != nullptr ? phases->value[i].Mark() : node.Mark(),
                 fmt::format("protocol '{}' has no rendering of error kind '{}'", ep.protocol,
                             BehaviourName(rule.kind)));
        return std::nullopt;
      }
    }
  }
  return ep;
}

void ReadRoot(const YAML::Node& root, Scenario& scenario, Diagnostics& diag) {
  static constexpr std::string_view kKeys[] = {"seed", "hang_cap", "journal_size", "endpoints"};
  const std::vector<Entry> entries = Entries(root, root.Mark(), "the scenario", kKeys, diag);
  const Entry* endpoints = nullptr;
  for (const Entry& e : entries) {
    if (e.key == "seed") {
      scenario.seed = static_cast<uint64_t>(
          yaml::ReadNumber(e, e.key, Sign::kNonNegative, diag).value_or(scenario.seed));
    } else if (e.key == "hang_cap") {
      scenario.hang_cap = ReadPositiveDuration(e, diag).value_or(scenario.hang_cap);
    } else if (e.key == "journal_size") {
      const std::optional<double> size = yaml::ReadNumber(e, e.key, Sign::kNonNegative, diag);
      if (size && static_cast<size_t>(*size) == 0) {
        diag.Add(e.ValueMark(), "journal_size must be at least 1");
      } else if (size) {
        scenario.journal_size = static_cast<size_t>(*size);
      }
    } else if (e.key == "endpoints") {
      endpoints = &e;
    }
  }
  if (!diag.empty()) {
    return;
  }
  if (endpoints == nullptr || !endpoints->value.IsSequence() || endpoints->value.size() == 0) {
    diag.Add(endpoints != nullptr ? endpoints->ValueMark() : root.Mark(),
             "the scenario needs a non-empty 'endpoints' list");
    return;
  }
  std::set<std::string> names;
  const std::string base_dir = std::filesystem::path(scenario.path).parent_path().string();
  for (const YAML::Node& node : endpoints->value) {
    std::optional<EndpointSpec> ep = ReadEndpoint(node, base_dir, diag);
    if (!ep) {
      return;
    }
    if (!names.insert(ep->name).second) {
      diag.Add(node["name"].Mark(), fmt::format("duplicate endpoint name '{}'", ep->name));
      return;
    }
    scenario.endpoints.push_back(std::move(*ep));
  }
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
  Diagnostics diag;
  Scenario scenario;
  scenario.path = name;
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root || root.IsNull()) {
      return Fail(Error::Parse("the scenario file is empty", name));
    }
    ReadRoot(root, scenario, diag);
  } catch (const YAML::Exception& e) {
    diag.Add(e.mark, e.msg);
  }
  if (!diag.empty()) {
    // One problem at a time: later ones are often echoes of the first.
    return Fail(diag.FirstToError(name));
  }
  return scenario;
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
