#include "daemon/config.h"

#include <glob.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <span>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;
using collector::ConnectionReuse;
using collector::Provider;
using collector::TargetSpec;

// Larger than any sane config or key file; keeps a mistaken path (a disk image, /dev/zero) from
// exhausting memory.
constexpr size_t kMaxFileBytes = 16u << 20;
constexpr size_t kMaxExpectLength = 1024;

// ---------------------------------------------------------------------------------------------
// Diagnostics: every problem is collected with its position, then reported together.

struct Problem {
  int line = 0;  // 1-based; 0 when there is nothing to point at
  int column = 0;
  std::string message;
};

class Diagnostics {
 public:
  void Add(const YAML::Mark& mark, std::string message) {
    const bool known = !mark.is_null();
    problems_.push_back({known ? mark.line + 1 : 0, known ? mark.column + 1 : 0,
                         std::move(message)});
  }
  bool empty() const { return problems_.empty(); }

  Error ToError(const std::string& file) const {
    std::vector<Problem> sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Problem& a, const Problem& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::string text;
    for (const Problem& problem : sorted) {
      if (!text.empty()) {
        text += '\n';
      }
      text += problem.line > 0
                  ? fmt::format("{}:{}:{}: {}", file, problem.line, problem.column, problem.message)
                  : fmt::format("{}: {}", file, problem.message);
    }
    return Error::Parse(std::move(text));
  }

 private:
  std::vector<Problem> problems_;
};

struct Context {
  Diagnostics& diag;
  const Environment& env;
  fs::path folder;  // relative paths in the file start here
};

// ---------------------------------------------------------------------------------------------
// Map walking with unknown-key and duplicate-key detection.

std::string_view KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

struct Entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;

  // yaml-cpp marks an empty value at the next token, possibly lines away; the key is a better
  // place to point at.
  YAML::Mark ValueMark() const { return value.IsNull() ? key_node.Mark() : value.Mark(); }
};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Suggestion(std::string_view key, std::span<const std::string_view> known) {
  const size_t limit = key.size() <= 4 ? 1 : (key.size() <= 8 ? 2 : 3);
  size_t best = limit + 1;
  std::string_view best_key;
  for (std::string_view candidate : known) {
    const size_t distance = EditDistance(key, candidate);
    if (distance < best) {
      best = distance;
      best_key = candidate;
    }
  }
  if (best_key.empty() && key.size() >= 3) {
    // A truncated key ("api_key" for "api_key_env") is far in edits but plain to a reader.
    for (std::string_view candidate : known) {
      if (candidate.starts_with(key)) {
        best_key = candidate;
        break;
      }
    }
  }
  return best_key.empty() ? std::string() : fmt::format(" (did you mean \"{}\"?)", best_key);
}

// The entries of a map, each key once. A null node counts as an empty map. Reports a node of
// another kind (as `path`), non-scalar keys, repeated keys and, unless `known` is empty, keys
// outside `known` (described as being `where`, e.g. `in "global"`).
std::vector<Entry> MapEntries(const YAML::Node& node, const YAML::Mark& mark,
                              std::string_view path, std::string_view where,
                              std::span<const std::string_view> known, Diagnostics& diag) {
  std::vector<Entry> entries;
  if (node.IsNull()) {
    return entries;
  }
  if (!node.IsMap()) {
    diag.Add(mark, fmt::format("\"{}\": expected a map, got {}", path, KindName(node)));
    return entries;
  }
  std::map<std::string, int> seen;  // key -> 1-based line
  for (auto it = node.begin(); it != node.end(); ++it) {
    // A copy: `it->` yields a temporary proxy, so a reference to its member would dangle.
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    if (!key.IsScalar()) {
      diag.Add(key.Mark(), fmt::format("keys must be plain strings, got {} {}", KindName(key),
                                       where));
      continue;
    }
    const std::string name = key.Scalar();
    if (auto [pos, inserted] = seen.emplace(name, key.Mark().line + 1); !inserted) {
      diag.Add(key.Mark(), fmt::format("duplicate key \"{}\" {} (first at line {})", name, where,
                                       pos->second));
      continue;
    }
    if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
      diag.Add(key.Mark(), fmt::format("unknown key \"{}\" {}{}", name, where,
                                       Suggestion(name, known)));
      continue;
    }
    entries.push_back({name, key, value});
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Typed scalars. Each reports its own problem and returns nullopt.

std::optional<std::string> ReadString(const Entry& e, std::string_view path, Diagnostics& diag) {
  if (!e.value.IsScalar()) {
    diag.Add(e.ValueMark(),
             fmt::format("\"{}\": expected a string, got {}", path, KindName(e.value)));
    return std::nullopt;
  }
  return e.value.Scalar();
}

std::optional<std::string> ReadNonEmptyString(const Entry& e, std::string_view path,
                                              Diagnostics& diag) {
  std::optional<std::string> text = ReadString(e, path, diag);
  if (text && text->empty()) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must not be empty", path));
    return std::nullopt;
  }
  return text;
}

std::optional<bool> ReadBool(const Entry& e, std::string_view path, Diagnostics& diag) {
  bool value = false;
  if (!e.value.IsScalar() || !YAML::convert<bool>::decode(e.value, value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected true or false, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ReadInt(const Entry& e, std::string_view path, int64_t min, int64_t max,
                               Diagnostics& diag) {
  long long value = 0;
  if (!e.value.IsScalar() || !YAML::convert<long long>::decode(e.value, value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected an integer, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  if (value < min || value > max) {
    diag.Add(e.ValueMark(),
             value < min ? fmt::format("\"{}\": must be at least {}, got {}", path, min, value)
                         : fmt::format("\"{}\": must be at most {}, got {}", path, max, value));
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

enum class Sign { kNonNegative, kPositive };

std::optional<double> ReadNumber(const Entry& e, std::string_view path, Sign sign,
                                 Diagnostics& diag) {
  double value = 0;
  if (!e.value.IsScalar() || !YAML::convert<double>::decode(e.value, value) ||
      !std::isfinite(value)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected a number, got {}", path,
                                        e.value.IsScalar() ? "\"" + e.value.Scalar() + "\""
                                                           : std::string(KindName(e.value))));
    return std::nullopt;
  }
  if (sign == Sign::kPositive && value <= 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must be greater than 0, got {}", path, value));
    return std::nullopt;
  }
  if (value < 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must not be negative, got {}", path, value));
    return std::nullopt;
  }
  return value;
}

std::optional<Millis> ReadDuration(const Entry& e, std::string_view path, Sign sign,
                                   Diagnostics& diag) {
  std::optional<std::string> text = ReadString(e, path, diag);
  if (!text) {
    return std::nullopt;
  }
  Result<Millis> duration = ParsePromDuration(*text);
  if (!duration) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, duration.error().message));
    return std::nullopt;
  }
  if (sign == Sign::kPositive && duration->count() <= 0) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": must be greater than 0, got {}", path, *text));
    return std::nullopt;
  }
  return *duration;
}

bool IsIdentifier(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) {
      return false;
    }
  }
  return true;
}

// Prometheus: [a-zA-Z_][a-zA-Z0-9_]*, with names starting "__" reserved for internal use.
bool IsValidLabelName(std::string_view name) {
  return IsIdentifier(name) && !name.starts_with("__");
}

// A label map (`labels`, `external_labels`): names checked, values must be scalars.
Labels ReadLabels(const Entry& e, std::string_view path, Diagnostics& diag) {
  Labels labels;
  for (const Entry& label : MapEntries(e.value, e.ValueMark(), path, fmt::format("in \"{}\"", path),
                                       {}, diag)) {
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

fs::path Resolve(const fs::path& folder, const std::string& path) {
  const fs::path p(path);
  return (p.is_absolute() ? p : folder / p).lexically_normal();
}

// "host:port", "[v6]:port" or ":port"; the port 0..65535.
bool IsListenAddress(std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size() || colon + 6 < address.size()) {
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
// Providers, URLs and the labels derived from them.

// Every provider, in the order collector.h declares them; names come from collector itself.
constexpr std::array<Provider, 7> kAllProviders = {
    Provider::kOpenAI,    Provider::kOpenAICompatible, Provider::kAzure, Provider::kAnthropic,
    Provider::kBedrock,   Provider::kVertex,           Provider::kGemini};

std::optional<Provider> ProviderByName(std::string_view name) {
  return collector::ProviderFromName(name);
}

std::string_view NameOfProvider(Provider provider) { return collector::ProviderName(provider); }

std::string ValidProviderList() {
  std::string list;
  for (Provider provider : kAllProviders) {
    list += (list.empty() ? "" : ", ") + std::string(NameOfProvider(provider));
  }
  return list;
}

// The host of an http(s) URL, lower-cased, without port or IPv6 brackets. Messages never repeat
// the URL: a query string may carry a key.
Result<std::string> UrlHost(std::string_view url) {
  size_t rest = 0;
  if (url.starts_with("https://")) {
    rest = 8;
  } else if (url.starts_with("http://")) {
    rest = 7;
  } else {
    return Fail(Error::InvalidArgument("must start with http:// or https://"));
  }
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) {
    return Fail(Error::InvalidArgument("must not contain white space"));
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return Fail(Error::InvalidArgument(
        "must not contain a query or fragment (keys belong in auth or headers)"));
  }
  const std::string_view authority = url.substr(rest, url.find('/', rest) - rest);
  if (authority.find('@') != std::string_view::npos) {
    return Fail(Error::InvalidArgument("must not contain credentials (user:password@); use auth"));
  }
  std::string_view host = authority;
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) {
    return Fail(Error::InvalidArgument("has no host"));
  }
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

std::string DefaultCloud(Provider provider, const std::string& host) {
  switch (provider) {
    case Provider::kOpenAI:
      return "openai";
    case Provider::kAzure:
      return "azure";
    case Provider::kAnthropic:
      return "anthropic";
    case Provider::kBedrock:
      return "aws";
    case Provider::kVertex:
    case Provider::kGemini:
      return "gcp";
    case Provider::kOpenAICompatible:
      break;
  }
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kHosts = {{
      {"openrouter.ai", "openrouter"},
      {"api.groq.com", "groq"},
      {"api.together.xyz", "together"},
      {"api.fireworks.ai", "fireworks"},
      {"api.mistral.ai", "mistral"},
      {"localhost", "local"},
      {"127.0.0.1", "local"},
      {"::1", "local"},
  }};
  for (const auto& [known_host, cloud] : kHosts) {
    if (host == known_host) {
      return std::string(cloud);
    }
  }
  return host;
}

// The region where the host name carries one: AWS (bedrock-runtime.us-east-1.amazonaws.com), GCP
// (us-central1-aiplatform.googleapis.com), OpenAI data residency (eu.api.openai.com), Azure AI
// regional endpoints (eastus.api.cognitive.microsoft.com). Otherwise "global".
std::string RegionFromHost(const std::string& host) {
  static const std::regex kAws(
      R"(^[a-z]{2}(-gov|-iso[a-z]*)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]+$)");
  static const std::regex kGcp(R"(^([a-z]+-[a-z]+[0-9]+)(-aiplatform)?$)");
  if (host.ends_with(".api.openai.com")) {
    return host.substr(0, host.size() - std::string_view(".api.openai.com").size());
  }
  if (host.ends_with(".api.cognitive.microsoft.com")) {
    return host.substr(0, host.find('.'));
  }
  size_t begin = 0;
  while (begin <= host.size()) {
    const size_t end = std::min(host.find('.', begin), host.size());
    const std::string part = host.substr(begin, end - begin);
    std::smatch match;
    if (std::regex_match(part, kAws)) {
      return part;
    }
    if (host.ends_with(".googleapis.com") && std::regex_match(part, match, kGcp)) {
      return match[1].str();
    }
    begin = end + 1;
  }
  return "global";
}

// ---------------------------------------------------------------------------------------------
// Secrets by reference.

enum class SecretSource { kEnv, kFile, kCredential };

std::string TrimTrailingNewlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// Resolves one reference (a variable name, a file path or a systemd credential name) found at
// `e`. Messages name the reference, never the value.
std::optional<Secret> ResolveSecret(SecretSource source, const Entry& e, std::string_view path,
                                    Context& ctx) {
  std::optional<std::string> reference = ReadNonEmptyString(e, path, ctx.diag);
  if (!reference) {
    return std::nullopt;
  }
  std::string file;
  switch (source) {
    case SecretSource::kEnv: {
      if (!IsIdentifier(*reference)) {
        ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": \"{}\" is not a valid environment "
                                                "variable name",
                                                path, *reference));
        return std::nullopt;
      }
      std::optional<std::string> value = ctx.env.GetEnv(*reference);
      if (!value) {
        ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": environment variable {} is not set",
                                                path, *reference));
        return std::nullopt;
      }
      if (value->empty()) {
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": environment variable {} is empty", path, *reference));
        return std::nullopt;
      }
      return Secret(std::move(*value));
    }
    case SecretSource::kFile:
      file = Resolve(ctx.folder, *reference).string();
      break;
    case SecretSource::kCredential: {
      if (reference->find('/') != std::string::npos) {
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": a credential name cannot contain '/'", path));
        return std::nullopt;
      }
      std::optional<std::string> directory = ctx.env.GetEnv("CREDENTIALS_DIRECTORY");
      if (!directory || directory->empty()) {
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": credential {} needs $CREDENTIALS_DIRECTORY, which is "
                                 "not set (LoadCredential= in the systemd unit)",
                                 path, *reference));
        return std::nullopt;
      }
      file = (fs::path(*directory) / *reference).string();
      break;
    }
  }
  Result<std::string> content = ctx.env.ReadFile(file);
  if (!content) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, content.error().message));
    return std::nullopt;
  }
  std::string value = TrimTrailingNewlines(std::move(*content));
  if (value.empty()) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": file {} is empty", path, file));
    return std::nullopt;
  }
  return Secret(std::move(value));
}

constexpr std::array<std::string_view, 3> kAuthKeys = {"api_key_env", "api_key_file",
                                                        "api_key_credential"};

Secret ReadAuth(const Entry& e, std::string_view where, Context& ctx) {
  const std::vector<Entry> entries =
      MapEntries(e.value, e.ValueMark(), "auth", fmt::format("in \"auth\" of {}", where),
                 kAuthKeys, ctx.diag);
  if (entries.size() > 1) {
    ctx.diag.Add(entries[1].key_node.Mark(),
                 "\"auth\": give only one of api_key_env, api_key_file, api_key_credential");
    return Secret();
  }
  if (entries.empty()) {
    return Secret();
  }
  const Entry& ref = entries.front();
  const SecretSource source = ref.key == "api_key_env"    ? SecretSource::kEnv
                              : ref.key == "api_key_file" ? SecretSource::kFile
                                                          : SecretSource::kCredential;
  return ResolveSecret(source, ref, "auth." + ref.key, ctx).value_or(Secret());
}

bool IsHeaderName(std::string_view name) {
  constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           kTokenPunctuation.find(c) != std::string_view::npos;
  });
}

constexpr std::array<std::string_view, 3> kHeaderRefKeys = {"env", "file", "credential"};

std::vector<std::pair<std::string, Secret>> ReadHeaders(const Entry& e, std::string_view where,
                                                        Context& ctx) {
  std::vector<std::pair<std::string, Secret>> headers;
  for (const Entry& header : MapEntries(e.value, e.ValueMark(), "headers",
                                        fmt::format("in \"headers\" of {}", where), {}, ctx.diag)) {
    const std::string path = "headers." + header.key;
    if (!IsHeaderName(header.key)) {
      ctx.diag.Add(header.key_node.Mark(),
                   fmt::format("\"headers\": invalid header name \"{}\"", header.key));
      continue;
    }
    std::optional<Secret> value;
    if (header.value.IsMap()) {
      const std::vector<Entry> refs =
          MapEntries(header.value, header.ValueMark(), path, fmt::format("in \"{}\"", path),
                     kHeaderRefKeys, ctx.diag);
      if (refs.size() != 1) {
        ctx.diag.Add(header.ValueMark(),
                     fmt::format("\"{}\": give exactly one of env, file, credential", path));
        continue;
      }
      const SecretSource source = refs[0].key == "env"    ? SecretSource::kEnv
                                  : refs[0].key == "file" ? SecretSource::kFile
                                                          : SecretSource::kCredential;
      value = ResolveSecret(source, refs[0], path + "." + refs[0].key, ctx);
    } else if (header.value.IsScalar()) {
      value = Secret(header.value.Scalar());
    } else {
      ctx.diag.Add(header.ValueMark(), fmt::format("\"{}\": expected a string or {{env: VAR}}, "
                                                   "got {}",
                                                   path, KindName(header.value)));
      continue;
    }
    if (!value) {
      continue;
    }
    if (value->Reveal().find_first_of("\r\n") != std::string::npos) {
      // Said without the value: it may be a credential.
      ctx.diag.Add(header.ValueMark(), fmt::format("\"{}\": value contains a line break", path));
      continue;
    }
    headers.emplace_back(header.key, std::move(*value));
  }
  return headers;
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

// The compile problem of an `expect` regex, or nullopt. A leading "(?i)" (which ECMAScript lacks)
// means case-insensitive, as the collector reads it.
std::optional<std::string> RegexProblem(const std::string& expect) {
  std::string_view pattern = expect;
  auto flags = std::regex::ECMAScript;
  if (pattern.starts_with("(?i)")) {
    pattern.remove_prefix(4);
    flags |= std::regex::icase;
  }
  try {
    std::regex compiled{std::string(pattern), flags};
  } catch (const std::regex_error& error) {
    return std::string(error.what());
  }
  return std::nullopt;
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
      diag.Add(e.ValueMark(), fmt::format("\"expect\": longer than {} characters", kMaxExpectLength));
      expect.reset();
    } else if (expect) {
      if (std::optional<std::string> problem = RegexProblem(*expect)) {
        diag.Add(e.ValueMark(), fmt::format("\"expect\": invalid regular expression \"{}\": {}",
                                            *expect, *problem));
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
      diag.Add(e.ValueMark(), fmt::format("\"connection\": expected fresh or keep_warm, got \"{}\"",
                                          *text));
    }
    Store(out.connection, reuse, e, scope);
  } else if (key == "timeouts") {
    for (const Entry& t : MapEntries(e.value, e.ValueMark(), "timeouts",
                                     fmt::format("in \"timeouts\" of {}", where), kTimeoutKeys,
                                     diag)) {
      std::optional<Millis> value = ReadDuration(t, "timeouts." + t.key, Sign::kPositive, diag);
      Store(t.key == "connect" ? out.connect : t.key == "first_token" ? out.first_token : out.total,
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
    diag.Add(mark, fmt::format("\"timeouts.{}\" ({}) is longer than \"timeouts.total\" ({}) {}",
                               name, FormatPromDuration(part->value), FormatPromDuration(total),
                               where));
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

constexpr std::array<std::string_view, 17> kTargetKeys = {
    "name",     "provider", "model",      "provider_model", "base_url",   "auth",
    "headers",  "labels",   "price",      "budget",         "interval",   "stream",
    "max_tokens", "prompt", "expect",     "timeouts",       "connection"};
constexpr std::array<std::string_view, 2> kPriceKeys = {"input_per_million", "output_per_million"};
constexpr std::array<std::string_view, 2> kBudgetKeys = {"daily_tokens", "daily_cost"};
constexpr std::array<std::string_view, 3> kIdentityLabels = {"target", "provider", "model"};

struct ParsedTarget {
  TargetSpec spec;
  YAML::Mark name_mark;
  bool has_name = false;
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
  std::optional<std::string> host;
  YAML::Mark url_mark;
  const Entry* labels_entry = nullptr;
  const Entry* budget_entry = nullptr;
  Labels own_labels;
  bool has[4] = {false, false, false, false};  // name, provider, model, base_url
  const std::vector<Entry> entries =
      MapEntries(node, node.Mark(), where, fmt::format("in {}", where), kTargetKeys, ctx.diag);
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
        provider = ProviderByName(*name);
        if (!provider) {
          ctx.diag.Add(e.ValueMark(), fmt::format("\"provider\": unknown provider \"{}\" (valid: {})",
                                                  *name, ValidProviderList()));
        }
      }
    } else if (key == "model") {
      has[2] = true;
      spec.model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (key == "provider_model") {
      spec.provider_model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (key == "base_url") {
      has[3] = true;
      if (std::optional<std::string> url = ReadNonEmptyString(e, key, ctx.diag)) {
        Result<std::string> url_host = UrlHost(*url);
        if (!url_host) {
          ctx.diag.Add(e.ValueMark(), "\"base_url\": " + url_host.error().message);
        } else {
          while (url->size() > 1 && url->back() == '/') {
            url->pop_back();
          }
          spec.base_url = *url;
          host = *url_host;
          url_mark = e.ValueMark();
        }
      }
    } else if (key == "auth") {
      spec.api_key = ReadAuth(e, where, ctx);
    } else if (key == "headers") {
      spec.headers = ReadHeaders(e, where, ctx);
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
  constexpr std::array<std::string_view, 4> kRequired = {"name", "provider", "model", "base_url"};
  for (size_t i = 0; i < kRequired.size(); ++i) {
    if (!has[i]) {
      ctx.diag.Add(node.Mark(),
                   fmt::format("{}: missing required key \"{}\"", where, kRequired[i]));
    }
  }

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

  // The series identity: derived labels first, then the target's own, which may refine cloud and
  // region but not rename what the target is.
  if (provider) {
    spec.provider = *provider;
    spec.labels["provider"] = std::string(NameOfProvider(*provider));
    spec.labels["cloud"] = DefaultCloud(*provider, host.value_or(""));
  }
  spec.labels["target"] = spec.name;
  spec.labels["model"] = spec.model;
  spec.labels["region"] = host ? RegionFromHost(*host) : "global";
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

constexpr std::array<std::string_view, 7> kTopKeys = {
    "global", "web", "storage", "defaults", "targets", "rule_files", "simulator"};
constexpr std::array<std::string_view, 5> kGlobalKeys = {
    "external_labels", "max_concurrency", "max_response_bytes", "jitter_fraction",
    "shutdown_grace"};
constexpr std::array<std::string_view, 1> kWebKeys = {"listen_address"};
constexpr std::array<std::string_view, 2> kStorageKeys = {"path", "retention"};
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
    } else if (auto grace = ReadDuration(e, path, Sign::kNonNegative, diag)) {
      config.prober.shutdown_grace = *grace;
    }
  }
}

void ReadStorage(const Entry& section, Config& config, Context& ctx) {
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "storage",
                                   "in \"storage\"", kStorageKeys, ctx.diag)) {
    if (e.key == "path") {
      if (auto path = ReadNonEmptyString(e, "storage.path", ctx.diag)) {
        config.storage.path = Resolve(ctx.folder, *path).string();
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
    config.targets.push_back(std::move(parsed.spec));
  }
}

void ReadDocument(const YAML::Node& root, Config& config, Context& ctx) {
  if (!root.IsNull() && !root.IsMap()) {
    ctx.diag.Add(root.Mark(), fmt::format("the config must be a map of sections, got {}",
                                          KindName(root)));
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
  for (const Entry& e : sections) {
    if (e.key == "global") {
      ReadGlobal(e, config, ctx.diag);
    } else if (e.key == "web") {
      for (const Entry& w : MapEntries(e.value, e.ValueMark(), "web", "in \"web\"", kWebKeys,
                                       ctx.diag)) {
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
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::optional<std::string> SystemEnvironment::GetEnv(const std::string& name) const {
  // getenv is safe here: nothing in the daemon calls setenv after main starts threads.
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? std::nullopt : std::optional<std::string>(value);
}

Result<std::string> SystemEnvironment::ReadFile(const std::string& path) const {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return Fail(Error::Io(fmt::format("cannot read {}: is a directory", path)));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message = fmt::format("cannot read {}: {}", path, std::strerror(error));
    return Fail(error == ENOENT ? Error::NotFound(message) : Error::Io(message));
  }
  std::string content;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    content.append(buffer, static_cast<size_t>(in.gcount()));
    if (content.size() > kMaxFileBytes) {
      return Fail(Error::Io(fmt::format("cannot read {}: larger than {} bytes", path,
                                        kMaxFileBytes)));
    }
  }
  if (in.bad()) {
    return Fail(Error::Io(fmt::format("cannot read {}: read error", path)));
  }
  return content;
}

Result<std::vector<std::string>> SystemEnvironment::Glob(const std::string& pattern) const {
  glob_t matches{};
  // No GLOB_ERR: a folder that does not exist (or cannot be listed) simply matches nothing, as in
  // Prometheus; a literal rule file that is missing is reported by the caller.
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      paths.emplace_back(matches.gl_pathv[i]);
    }
  }
  globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    return Fail(Error::Io(fmt::format("cannot expand {}: {}", pattern,
                                      rc == GLOB_NOSPACE ? "out of memory" : "read error")));
  }
  // glob(3) sorts already (no GLOB_NOSORT); sorting again keeps the contract explicit.
  std::sort(paths.begin(), paths.end());
  return paths;
}

Result<Config> LoadConfig(const std::string& path) {
  SystemEnvironment env;
  Result<std::string> content = env.ReadFile(path);
  if (!content) {
    Error error = content.error();
    error.message = "cannot load config: " + error.message;
    return Fail(std::move(error));
  }
  return ParseConfig(*content, path, env);
}

Result<Config> ParseConfig(std::string_view yaml, const std::string& file_name,
                           const Environment& env) {
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
  Context ctx{diag, env, absolute.parent_path()};
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml));
    if (documents.size() > 1) {
      diag.Add(documents[1].Mark(), "only one YAML document is allowed in a config file");
    }
    if (!documents.empty()) {
      ReadDocument(documents.front(), config, ctx);
    }
  } catch (const YAML::ParserException& e) {
    diag.Add(e.mark, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    diag.Add(e.mark, "YAML error: " + e.msg);
  }
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
    text += fmt::format("  {}: {} {}{} (cloud {}, region {}) every {} at {}, auth {}\n",
                        target.name, NameOfProvider(target.provider), target.model,
                        target.provider_model == target.model ? ""
                                                              : " as " + target.provider_model,
                        label("cloud"), label("region"), FormatPromDuration(target.interval),
                        target.base_url, target.api_key.empty() ? "none" : "by reference");
  }
  if (config.simulator) {
    text += fmt::format("  simulator: {} on {}\n", config.simulator->scenario_path,
                        config.simulator->listen_address);
  }
  return text;
}

}  // namespace modelpulse::daemon
