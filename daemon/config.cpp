#include "daemon/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <utility>

#include "alerting/config.h"
#include "common/regex.h"
#include "common/yaml_reader.h"
#include "rules/rules.h"
#include "rules/slo_config.h"

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;
using collector::ConnectionReuse;
using collector::Provider;
using collector::TargetSpec;
using yaml::Diagnostics;
using yaml::Entry;
using yaml::KindName;
using yaml::MapEntries;
using yaml::ReadBool;
using yaml::ReadDuration;
using yaml::ReadInt;
using yaml::ReadNonEmptyString;
using yaml::ReadNumber;
using yaml::ReadString;
using yaml::Sign;

constexpr size_t kMaxExpectLength = 1024;

// Where problems go, the outside world, and the folder relative paths start at: shared with the
// collector, which reads each target's provider-owned keys.
using Context = collector::ConfigReadContext;

fs::path Resolve(const std::string& folder, const std::string& path) {
  return yaml::ResolvePath(folder, path);
}

// Prometheus: [a-zA-Z_][a-zA-Z0-9_]*, with names starting "__" reserved for internal use.
bool IsValidLabelName(std::string_view name) {
  return yaml::IsIdentifier(name) && !name.starts_with("__");
}

// A label map (`labels`, `external_labels`): names checked, values must be scalars.
Labels ReadLabels(const Entry& e, std::string_view path, Diagnostics& diag) {
  Labels labels;
  for (const Entry& label :
       MapEntries(e.value, e.ValueMark(), path, fmt::format("in \"{}\"", path), {}, diag)) {
    if (!IsValidLabelName(label.key)) {
      diag.Add(label.key_node.Mark(),
               fmt::format("\"{}\": invalid label name \"{}\" (must match "
                           "[a-zA-Z_][a-zA-Z0-9_]* and not start with \"__\")",
                           path, label.key));
      continue;
    }
    if (std::optional<std::string> value =
            ReadString(label, fmt::format("{}.{}", path, label.key), diag)) {
      labels[label.key] = *value;
    }
  }
  return labels;
}

// "host:port", "[v6]:port" or ":port"; the port 0..65535.
bool IsListenAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size() ||
      colon + 6 < address.size()) {
    return false;
  }
  const std::string_view port = address.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const std::string_view host = address.substr(0, colon);
  if (host.find_first_of(" /\t") != std::string_view::npos) {
    return false;
  }
  return std::stoi(std::string(port)) <= 65535;
}

std::optional<std::string> ReadListenAddress(const Entry& e, std::string_view path,
                                             Diagnostics& diag) {
  std::optional<std::string> address = ReadString(e, path, diag);
  if (address && !IsListenAddress(*address)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected host:port, got \"{}\"", path, *address));
    return std::nullopt;
  }
  return address;
}

// ---------------------------------------------------------------------------------------------
// Probe settings: `defaults:` and the same keys on each target.

template <typename T>
struct Setting {
  T value{};
  YAML::Mark mark;
  bool from_target = false;
};

struct ProbeSettings {
  std::optional<Setting<Millis>> interval;
  std::optional<Setting<bool>> stream;
  std::optional<Setting<int>> max_tokens;
  std::optional<Setting<std::string>> prompt;
  std::optional<Setting<std::string>> expect;
  std::optional<Setting<Millis>> connect;
  std::optional<Setting<Millis>> first_token;
  std::optional<Setting<Millis>> total;
  std::optional<Setting<ConnectionReuse>> connection;
};

enum class Scope { kDefaults, kTarget };

constexpr std::array<std::string_view, 7> kProbeKeys = {
    "interval", "stream", "max_tokens", "prompt", "expect", "timeouts", "connection"};
constexpr std::array<std::string_view, 3> kTimeoutKeys = {"connect", "first_token", "total"};

template <typename T>
void Store(std::optional<Setting<T>>& slot, std::optional<T> value, const Entry& e, Scope scope) {
  if (value) {
    slot = Setting<T>{std::move(*value), e.ValueMark(), scope == Scope::kTarget};
  }
}

// Handles `e` when it is a probe setting; returns false otherwise.
bool ReadProbeSetting(const Entry& e, std::string_view where, Scope scope, ProbeSettings& out,
                      Diagnostics& diag) {
  const std::string& key = e.key;
  if (key == "interval") {
    Store(out.interval, ReadDuration(e, key, Sign::kPositive, diag), e, scope);
  } else if (key == "stream") {
    Store(out.stream, ReadBool(e, key, diag), e, scope);
  } else if (key == "max_tokens") {
    std::optional<int64_t> n = ReadInt(e, key, 1, 1'000'000, diag);
    Store(out.max_tokens, n ? std::optional<int>(static_cast<int>(*n)) : std::nullopt, e, scope);
  } else if (key == "prompt") {
    Store(out.prompt, ReadNonEmptyString(e, key, diag), e, scope);
  } else if (key == "expect") {
    std::optional<std::string> expect = ReadString(e, key, diag);
    if (expect && expect->size() > kMaxExpectLength) {
      diag.Add(e.ValueMark(),
               fmt::format("\"expect\": longer than {} characters", kMaxExpectLength));
      expect.reset();
    } else if (expect) {
      // The collector compiles it the same way (RE2, default options; "(?i)" for any case).
      if (Result<Regex> compiled = Regex::Compile(*expect); !compiled) {
        diag.Add(e.ValueMark(), fmt::format("\"expect\": {}", compiled.error().message));
        expect.reset();
      }
    }
    Store(out.expect, std::move(expect), e, scope);
  } else if (key == "connection") {
    std::optional<std::string> text = ReadString(e, key, diag);
    std::optional<ConnectionReuse> reuse;
    if (text == "fresh") {
      reuse = ConnectionReuse::kFresh;
    } else if (text == "keep_warm") {
      reuse = ConnectionReuse::kKeepWarm;
    } else if (text) {
      diag.Add(e.ValueMark(),
               fmt::format("\"connection\": expected fresh or keep_warm, got \"{}\"", *text));
    }
    Store(out.connection, reuse, e, scope);
  } else if (key == "timeouts") {
    for (const Entry& t :
         MapEntries(e.value, e.ValueMark(), "timeouts", fmt::format("in \"timeouts\" of {}", where),
                    kTimeoutKeys, diag)) {
      std::optional<Millis> value = ReadDuration(t, "timeouts." + t.key, Sign::kPositive, diag);
      Store(t.key == "connect"       ? out.connect
            : t.key == "first_token" ? out.first_token
                                     : out.total,
            value, t, scope);
    }
  } else {
    return false;
  }
  return true;
}

template <typename T>
std::optional<Setting<T>> Merge(const std::optional<Setting<T>>& own,
                                const std::optional<Setting<T>>& inherited) {
  return own ? own : inherited;
}

// first_token and connect cannot exceed total. Checked once for `defaults` and again for a
// target only where the target set one of the two values, so one mistake is reported once.
void CheckTimeouts(const ProbeSettings& s, Scope scope, std::string_view where, Diagnostics& diag) {
  const Millis total = s.total ? s.total->value : collector::Timeouts{}.total;
  const auto check = [&](const std::optional<Setting<Millis>>& part, std::string_view name) {
    if (!part || part->value <= total) {
      return;
    }
    const bool involves_target = part->from_target || (s.total && s.total->from_target);
    if ((scope == Scope::kTarget) != involves_target) {
      return;
    }
    // Point at whichever of the two the target set; within one scope, at the shorter timeout.
    const YAML::Mark mark =
        !part->from_target && s.total && s.total->from_target ? s.total->mark : part->mark;
    diag.Add(mark,
             fmt::format("\"timeouts.{}\" ({}) is longer than \"timeouts.total\" ({}) {}", name,
                         FormatPromDuration(part->value), FormatPromDuration(total), where));
  };
  check(s.first_token, "first_token");
  check(s.connect, "connect");
}

void ApplySettings(const ProbeSettings& s, TargetSpec& spec) {
  if (s.interval) {
    spec.interval = s.interval->value;
  }
  if (s.stream) {
    spec.stream = s.stream->value;
  }
  if (s.max_tokens) {
    spec.max_tokens = s.max_tokens->value;
  }
  if (s.prompt) {
    spec.prompt = s.prompt->value;
  }
  if (s.expect) {
    spec.expect = s.expect->value;
  }
  if (s.connect) {
    spec.timeouts.connect = s.connect->value;
  }
  if (s.first_token) {
    spec.timeouts.first_token = s.first_token->value;
  }
  if (s.total) {
    spec.timeouts.total = s.total->value;
  }
  if (s.connection) {
    spec.connection = s.connection->value;
  }
}

// ---------------------------------------------------------------------------------------------
// Targets.

// The keys of a target: the daemon's own, around those the collector reads for the provider (in
// this order, which decides between equally close "did you mean" suggestions).
constexpr std::array<std::string_view, 4> kTargetIdentityKeys = {"name", "provider", "model",
                                                                 "provider_model"};
constexpr std::array<std::string_view, 10> kTargetProbeKeys = {
    "labels",     "price",  "budget", "interval", "stream",
    "max_tokens", "prompt", "expect", "timeouts", "connection"};

const std::vector<std::string_view>& TargetKeys() {
  static const std::vector<std::string_view> kKeys = [] {
    std::vector<std::string_view> keys(kTargetIdentityKeys.begin(), kTargetIdentityKeys.end());
    const std::span<const std::string_view> provider_keys = collector::ProviderOwnedTargetKeys();
    keys.insert(keys.end(), provider_keys.begin(), provider_keys.end());
    keys.insert(keys.end(), kTargetProbeKeys.begin(), kTargetProbeKeys.end());
    return keys;
  }();
  return kKeys;
}

bool IsProviderOwnedKey(std::string_view key) {
  const std::span<const std::string_view> keys = collector::ProviderOwnedTargetKeys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

constexpr std::array<std::string_view, 2> kPriceKeys = {"input_per_million", "output_per_million"};
constexpr std::array<std::string_view, 2> kBudgetKeys = {"daily_tokens", "daily_cost"};
constexpr std::array<std::string_view, 3> kIdentityLabels = {"target", "provider", "model"};

struct ParsedTarget {
  TargetSpec spec;
  YAML::Mark name_mark;
  bool has_name = false;
  std::string auth_source;  // DescribeConfig's secret-free account of the credential
};

// The target's name, looked up before the walk so every message can say which target it is in.
std::string DescribeTarget(const YAML::Node& node, size_t index) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "name" && it->second.IsScalar() &&
          !it->second.Scalar().empty()) {
        return fmt::format("target \"{}\"", it->second.Scalar());
      }
    }
  }
  return fmt::format("target #{}", index + 1);
}

void ReadPrice(const Entry& e, std::string_view where, TargetSpec& spec, Diagnostics& diag) {
  for (const Entry& p : MapEntries(e.value, e.ValueMark(), "price",
                                   fmt::format("in \"price\" of {}", where), kPriceKeys, diag)) {
    std::optional<double> value = ReadNumber(p, "price." + p.key, Sign::kNonNegative, diag);
    (p.key == "input_per_million" ? spec.input_price_per_million : spec.output_price_per_million) =
        value;
  }
}

void ReadBudget(const Entry& e, std::string_view where, TargetSpec& spec, Diagnostics& diag) {
  for (const Entry& b : MapEntries(e.value, e.ValueMark(), "budget",
                                   fmt::format("in \"budget\" of {}", where), kBudgetKeys, diag)) {
    if (b.key == "daily_tokens") {
      spec.daily_token_budget =
          ReadInt(b, "budget.daily_tokens", 1, std::numeric_limits<int64_t>::max(), diag);
    } else {
      spec.daily_cost_budget = ReadNumber(b, "budget.daily_cost", Sign::kPositive, diag);
    }
  }
}

ParsedTarget ReadTarget(const YAML::Node& node, size_t index, const ProbeSettings& defaults,
                        Context& ctx) {
  ParsedTarget parsed;
  TargetSpec& spec = parsed.spec;
  const std::string where = DescribeTarget(node, index);
  if (!node.IsMap()) {
    ctx.diag.Add(node.Mark(), fmt::format("{}: expected a map, got {}", where, KindName(node)));
    return parsed;
  }
  ProbeSettings own;
  std::optional<Provider> provider;
  const Entry* labels_entry = nullptr;
  const Entry* budget_entry = nullptr;
  std::vector<const Entry*> provider_entries;  // read by the collector once the provider is known
  Labels own_labels;
  bool has[3] = {false, false, false};  // name, provider, model
  const std::vector<Entry> entries =
      MapEntries(node, node.Mark(), where, fmt::format("in {}", where), TargetKeys(), ctx.diag);
  for (const Entry& e : entries) {
    const std::string& key = e.key;
    if (key == "name") {
      has[0] = true;
      if (std::optional<std::string> name = ReadNonEmptyString(e, key, ctx.diag)) {
        spec.name = *name;
        parsed.name_mark = e.ValueMark();
        parsed.has_name = true;
      }
    } else if (key == "provider") {
      has[1] = true;
      if (std::optional<std::string> name = ReadNonEmptyString(e, key, ctx.diag)) {
        provider = collector::ProviderFromName(*name);
        if (!provider) {
          ctx.diag.Add(e.ValueMark(),
                       fmt::format("\"provider\": unknown provider \"{}\" (valid: {})", *name,
                                   collector::ProviderNameList()));
        }
      }
    } else if (key == "model") {
      has[2] = true;
      spec.model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (key == "provider_model") {
      spec.provider_model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (IsProviderOwnedKey(key)) {
      provider_entries.push_back(&e);
    } else if (key == "labels") {
      labels_entry = &e;
      own_labels = ReadLabels(e, "labels", ctx.diag);
    } else if (key == "price") {
      ReadPrice(e, where, spec, ctx.diag);
    } else if (key == "budget") {
      budget_entry = &e;
      ReadBudget(e, where, spec, ctx.diag);
    } else {
      ReadProbeSetting(e, where, Scope::kTarget, own, ctx.diag);
    }
  }
  constexpr std::array<std::string_view, 3> kRequired = {"name", "provider", "model"};
  for (size_t i = 0; i < kRequired.size(); ++i) {
    if (!has[i]) {
      ctx.diag.Add(node.Mark(),
                   fmt::format("{}: missing required key \"{}\"", where, kRequired[i]));
    }
  }

  // Provider-owned keys wait for the provider, wherever it stands in the map.
  parsed.auth_source =
      collector::ReadProviderKeys(node, where, provider, provider_entries, spec, ctx);

  ProbeSettings merged;
  merged.interval = Merge(own.interval, defaults.interval);
  merged.stream = Merge(own.stream, defaults.stream);
  merged.max_tokens = Merge(own.max_tokens, defaults.max_tokens);
  merged.prompt = Merge(own.prompt, defaults.prompt);
  merged.expect = Merge(own.expect, defaults.expect);
  merged.connect = Merge(own.connect, defaults.connect);
  merged.first_token = Merge(own.first_token, defaults.first_token);
  merged.total = Merge(own.total, defaults.total);
  merged.connection = Merge(own.connection, defaults.connection);
  CheckTimeouts(merged, Scope::kTarget, fmt::format("in {}", where), ctx.diag);
  ApplySettings(merged, spec);

  if (spec.provider_model.empty()) {
    spec.provider_model = spec.model;
  }
  if (budget_entry && spec.daily_cost_budget && !spec.input_price_per_million &&
      !spec.output_price_per_million) {
    ctx.diag.Add(budget_entry->ValueMark(),
                 fmt::format("\"budget.daily_cost\": needs \"price\" to count cost in {}", where));
  }

  // The series identity: derived labels first (provider, cloud and region came with the provider's
  // keys), then the target's own, which may refine cloud and region but not rename what the
  // target is.
  spec.labels["target"] = spec.name;
  spec.labels["model"] = spec.model;
  for (const auto& [name, value] : own_labels) {
    if (std::find(kIdentityLabels.begin(), kIdentityLabels.end(), name) != kIdentityLabels.end()) {
      YAML::Mark mark = labels_entry->ValueMark();
      for (auto it = labels_entry->value.begin(); it != labels_entry->value.end(); ++it) {
        if (it->first.Scalar() == name) {
          mark = it->first.Mark();
        }
      }
      ctx.diag.Add(mark, fmt::format("\"labels\": label \"{}\" is set from the target's {} and "
                                     "cannot be overridden",
                                     name, name == "target" ? "name" : name));
      continue;
    }
    spec.labels[name] = value;
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Top-level sections.

constexpr std::array<std::string_view, 9> kTopKeys = {"global",    "web",      "storage",
                                                      "defaults",  "targets",  "rule_files",
                                                      "simulator", "alerting", "slos"};
constexpr std::array<std::string_view, 7> kGlobalKeys = {
    "external_labels", "max_concurrency",     "max_response_bytes", "jitter_fraction",
    "shutdown_grace",  "evaluation_interval", "external_url"};
constexpr std::array<std::string_view, 1> kWebKeys = {"listen_address"};
constexpr std::array<std::string_view, 4> kStorageKeys = {"path", "retention", "summary_retention",
                                                          "memory_window"};
constexpr std::array<std::string_view, 2> kSimulatorKeys = {"scenario", "listen_address"};

void ReadGlobal(const Entry& section, Config& config, Diagnostics& diag) {
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "global", "in \"global\"",
                                   kGlobalKeys, diag)) {
    const std::string path = "global." + e.key;
    if (e.key == "external_labels") {
      config.external_labels = ReadLabels(e, path, diag);
    } else if (e.key == "max_concurrency") {
      if (auto n = ReadInt(e, path, 1, 100'000, diag)) {
        config.prober.max_concurrency = static_cast<size_t>(*n);
      }
    } else if (e.key == "max_response_bytes") {
      if (auto n = ReadInt(e, path, 1024, int64_t{1} << 30, diag)) {
        config.prober.max_response_bytes = static_cast<size_t>(*n);
      }
    } else if (e.key == "jitter_fraction") {
      if (auto f = ReadNumber(e, path, Sign::kNonNegative, diag)) {
        if (*f >= 1) {
          diag.Add(e.ValueMark(), fmt::format("\"{}\": must be less than 1, got {}", path, *f));
        } else {
          config.prober.jitter_fraction = *f;
        }
      }
    } else if (e.key == "external_url") {
      if (auto url = ReadNonEmptyString(e, path, diag)) {
        if (!alerting::IsHttpUrl(*url)) {
          diag.Add(e.ValueMark(), fmt::format("\"{}\": expected an http:// or https:// URL, "
                                              "got \"{}\"",
                                              path, *url));
        } else {
          config.external_url = *url;
        }
      }
    } else if (e.key == "evaluation_interval") {
      if (auto interval = ReadDuration(e, path, Sign::kPositive, diag)) {
        config.evaluation_interval = *interval;
      }
    } else if (auto grace = ReadDuration(e, path, Sign::kNonNegative, diag)) {
      config.prober.shutdown_grace = *grace;
    }
  }
}

void ReadStorage(const Entry& section, Config& config, Context& ctx) {
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "storage", "in \"storage\"",
                                   kStorageKeys, ctx.diag)) {
    if (e.key == "path") {
      if (auto path = ReadNonEmptyString(e, "storage.path", ctx.diag)) {
        config.storage.path = Resolve(ctx.folder, *path).string();
      }
    } else if (e.key == "summary_retention") {
      // Hourly and daily probe summaries, what reports and the status page read; never deleted
      // before the rows (storage raises a shorter value to storage.retention).
      if (auto retention =
              ReadDuration(e, "storage.summary_retention", Sign::kPositive, ctx.diag)) {
        config.storage.summary_retention = *retention;
      }
    } else if (e.key == "memory_window") {
      if (auto window = ReadDuration(e, "storage.memory_window", Sign::kPositive, ctx.diag)) {
        config.memory_window = *window;
      }
    } else if (auto retention = ReadDuration(e, "storage.retention", Sign::kPositive, ctx.diag)) {
      config.storage.retention = *retention;
    }
  }
}

void ReadSimulator(const Entry& section, Config& config, Context& ctx) {
  SimulatorSettings simulator;
  bool has_scenario = false;
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "simulator",
                                   "in \"simulator\"", kSimulatorKeys, ctx.diag)) {
    if (e.key == "scenario") {
      has_scenario = true;
      if (auto path = ReadNonEmptyString(e, "simulator.scenario", ctx.diag)) {
        simulator.scenario_path = Resolve(ctx.folder, *path).string();
      }
    } else if (auto address = ReadListenAddress(e, "simulator.listen_address", ctx.diag)) {
      simulator.listen_address = *address;
    }
  }
  if (!has_scenario && section.value.IsMap()) {
    ctx.diag.Add(section.ValueMark(), "\"simulator\": missing required key \"scenario\"");
  }
  config.simulator = std::move(simulator);
}

bool HasGlobMeta(std::string_view pattern) {
  return pattern.find_first_of("*?[") != std::string_view::npos;
}

void ReadRuleFiles(const Entry& section, Config& config, Context& ctx) {
  if (section.value.IsNull()) {
    return;
  }
  if (!section.value.IsSequence()) {
    ctx.diag.Add(section.ValueMark(),
                 fmt::format("\"rule_files\": expected a list, got {}", KindName(section.value)));
    return;
  }
  for (const YAML::Node& item : section.value) {
    const Entry e{"rule_files", section.key_node, item};
    std::optional<std::string> pattern = ReadNonEmptyString(e, "rule_files", ctx.diag);
    if (!pattern) {
      continue;
    }
    const std::string resolved = Resolve(ctx.folder, *pattern).string();
    Result<std::vector<std::string>> matches = ctx.env.Glob(resolved);
    if (!matches) {
      ctx.diag.Add(e.ValueMark(), fmt::format("\"rule_files\": {}", matches.error().message));
      continue;
    }
    if (matches->empty() && !HasGlobMeta(*pattern)) {
      ctx.diag.Add(e.ValueMark(), fmt::format("\"rule_files\": {} does not exist", resolved));
      continue;
    }
    for (std::string& match : *matches) {
      if (std::find(config.rule_files.begin(), config.rule_files.end(), match) ==
          config.rule_files.end()) {
        config.rule_files.push_back(std::move(match));
      }
    }
  }
}

ProbeSettings ReadDefaults(const Entry* section, Diagnostics& diag) {
  ProbeSettings defaults;
  if (section == nullptr) {
    return defaults;
  }
  for (const Entry& e : MapEntries(section->value, section->ValueMark(), "defaults",
                                   "in \"defaults\"", kProbeKeys, diag)) {
    ReadProbeSetting(e, "\"defaults\"", Scope::kDefaults, defaults, diag);
  }
  CheckTimeouts(defaults, Scope::kDefaults, "in \"defaults\"", diag);
  return defaults;
}

void ReadTargets(const Entry& section, const ProbeSettings& defaults, Config& config,
                 Context& ctx) {
  if (section.value.IsNull()) {
    return;
  }
  if (!section.value.IsSequence()) {
    ctx.diag.Add(section.ValueMark(),
                 fmt::format("\"targets\": expected a list, got {}", KindName(section.value)));
    return;
  }
  std::map<std::string, int> first_line;  // name -> 1-based line of its first definition
  size_t index = 0;
  for (const YAML::Node& node : section.value) {
    ParsedTarget parsed = ReadTarget(node, index++, defaults, ctx);
    if (parsed.has_name) {
      auto [it, inserted] = first_line.emplace(parsed.spec.name, parsed.name_mark.line + 1);
      if (!inserted) {
        ctx.diag.Add(parsed.name_mark,
                     fmt::format("duplicate target name \"{}\" (first defined at line {})",
                                 parsed.spec.name, it->second));
      }
    }
    if (parsed.has_name) {
      config.auth_sources.emplace(parsed.spec.name, std::move(parsed.auth_source));
    }
    config.targets.push_back(std::move(parsed.spec));
  }
}

// With a `simulator:` section, a target's base_url (and a service account's auth.token_url), and a
// webhook receiver's url, may be a path on the built-in simulator, "/openai/v1", so that the demo
// writes the simulator's address once, in simulator.listen_address. Returns the URL paths are
// relative to, or nullopt without a simulator section.
std::optional<std::string> SimulatorUrl(const std::vector<Entry>& sections) {
  for (const Entry& e : sections) {
    if (e.key != "simulator") {
      continue;
    }
    std::string address = SimulatorSettings{}.listen_address;
    if (e.value.IsMap()) {
      const YAML::Node given = e.value["listen_address"];
      if (given && given.IsScalar() && IsListenAddress(given.Scalar())) {
        address = given.Scalar();
      }
    }
    // ":9465" listens on every interface; a client reaches it on loopback.
    return "http://" + (address.starts_with(':') ? "127.0.0.1" + address : address);
  }
  return std::nullopt;
}

// Rewrites a path SimulatorUrl allows into a URL, in place, before the module that owns the
// key reads it; a scalar keeps its position, so messages about it still point at the file.
void ResolveSimulatorPath(YAML::Node value, const std::string& simulator_url) {
  if (value && value.IsScalar() && value.Scalar().starts_with('/')) {
    value = simulator_url + value.Scalar();
  }
}

void ResolveSimulatorPaths(const YAML::Node& target, const std::string& simulator_url) {
  if (!target.IsMap()) {
    return;
  }
  ResolveSimulatorPath(target["base_url"], simulator_url);
  const YAML::Node auth = target["auth"];
  if (auth && auth.IsMap()) {
    ResolveSimulatorPath(auth["token_url"], simulator_url);
  }
}

// The demo's webhook receiver is served by the simulator too (alerting.receivers[].webhook.url).
void ResolveSimulatorWebhooks(const YAML::Node& alerting, const std::string& simulator_url) {
  if (!alerting.IsMap() || !alerting["receivers"] || !alerting["receivers"].IsSequence()) {
    return;
  }
  for (const YAML::Node& receiver : alerting["receivers"]) {
    for (const char* kind : {"webhook", "template"}) {
      if (receiver.IsMap() && receiver[kind] && receiver[kind].IsMap()) {
        ResolveSimulatorPath(receiver[kind]["url"], simulator_url);
      }
    }
  }
}

void ReadDocument(const YAML::Node& root, Config& config, Context& ctx) {
  if (!root.IsNull() && !root.IsMap()) {
    ctx.diag.Add(root.Mark(),
                 fmt::format("the config must be a map of sections, got {}", KindName(root)));
    return;
  }
  const std::vector<Entry> sections =
      MapEntries(root, root.Mark(), "", "at the top level", kTopKeys, ctx.diag);
  const Entry* defaults_section = nullptr;
  for (const Entry& e : sections) {
    if (e.key == "defaults") {
      defaults_section = &e;
    }
  }
  // Defaults first, wherever they appear in the file: targets inherit them.
  const ProbeSettings defaults = ReadDefaults(defaults_section, ctx.diag);
  if (const std::optional<std::string> simulator_url = SimulatorUrl(sections)) {
    for (const Entry& e : sections) {
      if (e.key == "targets" && e.value.IsSequence()) {
        for (const YAML::Node& target : e.value) {
          ResolveSimulatorPaths(target, *simulator_url);
        }
      } else if (e.key == "alerting") {
        ResolveSimulatorWebhooks(e.value, *simulator_url);
      }
    }
  }
  for (const Entry& e : sections) {
    if (e.key == "global") {
      ReadGlobal(e, config, ctx.diag);
    } else if (e.key == "web") {
      for (const Entry& w :
           MapEntries(e.value, e.ValueMark(), "web", "in \"web\"", kWebKeys, ctx.diag)) {
        if (auto address = ReadListenAddress(w, "web.listen_address", ctx.diag)) {
          config.web_listen_address = *address;
        }
      }
    } else if (e.key == "storage") {
      ReadStorage(e, config, ctx);
    } else if (e.key == "targets") {
      ReadTargets(e, defaults, config, ctx);
    } else if (e.key == "rule_files") {
      ReadRuleFiles(e, config, ctx);
    } else if (e.key == "simulator") {
      ReadSimulator(e, config, ctx);
    } else if (e.key == "alerting") {
      alerting::ReadAlertingSection(e, ctx.env, ctx.folder, config.alerting, ctx.diag,
                                    rules::CheckNotificationTemplate);
    } else if (e.key == "slos") {
      rules::ReadSloSection(e, config.slos, ctx.diag);
    }
  }
  // An SLO that selects no target would report nothing, forever: most likely a typo.
  for (const rules::SloSpec& slo : config.slos) {
    const bool selects = std::any_of(
        config.targets.begin(), config.targets.end(),
        [&](const collector::TargetSpec& target) { return rules::SloSelects(slo, target.labels); });
    if (!selects && !config.targets.empty()) {
      YAML::Mark mark;
      mark.line = slo.line - 1;
      mark.column = slo.column - 1;
      ctx.diag.Add(mark,
                   fmt::format("slo \"{}\": its selector matches no target's labels", slo.name));
    }
  }
}

// ConfigCheck::kSyntaxOnly's view of the outside world: answers from `real` where it can, else
// as if the secret were there. What a placeholder cannot stand in for (a credential file that is
// parsed) the modules skip themselves (collector::ConfigReadContext::read_credential_files).
class SyntaxOnlyEnvironment final : public Environment {
 public:
  explicit SyntaxOnlyEnvironment(const Environment& real) : real_(real) {}

  std::optional<std::string> GetEnv(const std::string& name) const override {
    std::optional<std::string> value = real_.GetEnv(name);
    if (value && !value->empty()) {
      return value;
    }
    return std::string(kPlaceholder);
  }

  Result<std::string> ReadFile(const std::string& path) const override {
    if (Result<std::string> content = real_.ReadFile(path)) {
      return content;
    }
    return std::string(kPlaceholder);
  }

  Result<std::vector<std::string>> Glob(const std::string& pattern) const override {
    Result<std::vector<std::string>> matches = real_.Glob(pattern);
    if (!matches || matches->empty()) {
      return std::vector<std::string>{pattern};
    }
    return matches;
  }

 private:
  static constexpr std::string_view kPlaceholder = "syntax-only";
  const Environment& real_;
};

}  // namespace

Result<Config> LoadConfig(const std::string& path, ConfigCheck check) {
  SystemEnvironment env;
  Result<std::string> content = env.ReadFile(path);
  if (!content) {
    Error error = content.error();
    error.message = "cannot load config: " + error.message;
    return Fail(std::move(error));
  }
  return ParseConfig(*content, path, env, check);
}

Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name,
                           const Environment& real_env, ConfigCheck check) {
  SyntaxOnlyEnvironment lenient_env(real_env);
  const Environment& env = check == ConfigCheck::kSyntaxOnly ? lenient_env : real_env;
  Diagnostics diag;
  Config config;
  std::error_code ec;
  fs::path absolute = fs::absolute(fs::path(file_name), ec);
  if (ec) {
    absolute = fs::path(file_name);
  }
  absolute = absolute.lexically_normal();
  config.file = absolute.string();
  config.storage.path = std::string(kDefaultStoragePath);
  Context ctx{diag, env, absolute.parent_path().string(), check == ConfigCheck::kFull};
  yaml::ReadSingleDocument(yaml, "a config file", diag,
                           [&](const YAML::Node& root) { ReadDocument(root, config, ctx); });
  if (!diag.empty()) {
    return Fail(diag.ToError(file_name));
  }
  return config;
}

std::string DescribeConfig(const Config& config) {
  const auto plural = [](size_t n, std::string_view word) {
    return fmt::format("{} {}{}", n, word, n == 1 ? "" : "s");
  };
  std::string text = fmt::format("{}, {}\n", plural(config.targets.size(), "target"),
                                 plural(config.rule_files.size(), "rule file"));
  for (const TargetSpec& target : config.targets) {
    const auto label = [&](const std::string& name) {
      auto it = target.labels.find(name);
      return it == target.labels.end() ? std::string("-") : it->second;
    };
    const std::string details = collector::DescribeProviderDetails(target);
    auto source = config.auth_sources.find(target.name);
    text +=
        fmt::format("  {}: {} {}{} (cloud {}, region {}{}) every {} at {}, auth {}\n", target.name,
                    collector::ProviderName(target.provider), target.model,
                    target.provider_model == target.model ? "" : " as " + target.provider_model,
                    label("cloud"), label("region"), details, FormatPromDuration(target.interval),
                    target.base_url, source != config.auth_sources.end() ? source->second : "none");
  }
  if (config.simulator) {
    text += fmt::format("  simulator: {} on {}\n", config.simulator->scenario_path,
                        config.simulator->listen_address);
  }
  for (const alerting::AlertmanagerConfig& am : config.alerting.alertmanagers) {
    text += fmt::format("  alertmanager: {}\n", alerting::RedactedUrl(am.endpoint.url.Reveal()));
  }
  for (const alerting::ReceiverConfig& receiver : config.alerting.receivers) {
    text += fmt::format("  receiver {}: webhook {}{}\n", receiver.name,
                        alerting::RedactedUrl(receiver.webhook.url.Reveal()),
                        receiver.hmac_secret.empty() ? "" : ", signed");
  }
  for (const rules::SloSpec& slo : config.slos) {
    std::string selector;
    for (const auto& [name, value] : slo.selector) {
      selector += fmt::format("{}{}={}", selector.empty() ? "" : ",", name, value);
    }
    text += fmt::format("  slo {}: {} {}% over {}, selector {{{}}}\n", slo.name,
                        rules::SloKindName(slo.kind), slo.objective_percent,
                        slo.window_kind == rules::SloSpec::WindowKind::kCalendarMonth
                            ? std::string("the calendar month")
                            : fmt::format("{}d", slo.window.count() / 86'400'000),
                        selector);
  }
  return text;
}

}  // namespace modelpulse::daemon
