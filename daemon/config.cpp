#include "daemon/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <glob.h>
#include <yaml-cpp/yaml.h>

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
#include <nlohmann/json.hpp>
#include <regex>
#include <span>
#include <utility>

#include "collector/auth/aws_credentials.h"

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
    problems_.push_back(
        {known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, std::move(message)});
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
std::vector<Entry> MapEntries(const YAML::Node& node, const YAML::Mark& mark, std::string_view path,
                              std::string_view where, std::span<const std::string_view> known,
                              Diagnostics& diag) {
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
      diag.Add(key.Mark(),
               fmt::format("keys must be plain strings, got {} {}", KindName(key), where));
      continue;
    }
    const std::string name = key.Scalar();
    if (auto [pos, inserted] = seen.emplace(name, key.Mark().line + 1); !inserted) {
      diag.Add(key.Mark(),
               fmt::format("duplicate key \"{}\" {} (first at line {})", name, where, pos->second));
      continue;
    }
    if (!known.empty() && std::find(known.begin(), known.end(), name) == known.end()) {
      diag.Add(key.Mark(),
               fmt::format("unknown key \"{}\" {}{}", name, where, Suggestion(name, known)));
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

fs::path Resolve(const fs::path& folder, const std::string& path) {
  const fs::path p(path);
  return (p.is_absolute() ? p : folder / p).lexically_normal();
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
// Providers, URLs and the labels derived from them.

// Every provider, in the order collector.h declares them; names come from collector itself.
constexpr std::array<Provider, 7> kAllProviders = {
    Provider::kOpenAI,  Provider::kOpenAICompatible, Provider::kAzure, Provider::kAnthropic,
    Provider::kBedrock, Provider::kVertex,           Provider::kGemini};

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
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": environment variable {} is not set", path, *reference));
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

// ---------------------------------------------------------------------------------------------
// Authentication: exactly one way per target, checked against what the provider accepts.

using collector::AuthMode;

// Each key that chooses how a target authenticates, and the mode it chooses.
struct AuthKey {
  std::string_view key;
  AuthMode mode;
};
constexpr std::array<AuthKey, 9> kAuthModeKeys = {{
    {"api_key_env", AuthMode::kApiKey},
    {"api_key_file", AuthMode::kApiKey},
    {"api_key_credential", AuthMode::kApiKey},
    {"bearer_token_env", AuthMode::kBearerToken},
    {"bearer_token_file", AuthMode::kBearerToken},
    {"bearer_token_credential", AuthMode::kBearerToken},
    {"token_command", AuthMode::kTokenCommand},
    {"aws", AuthMode::kAwsSigV4},
    {"google_service_account_file", AuthMode::kGoogleServiceAccount},
}};
// Keys that refine one mode: token_command_ttl with token_command, token_url with a service
// account.
constexpr std::array<std::string_view, 11> kAuthKeys = {"api_key_env",
                                                        "api_key_file",
                                                        "api_key_credential",
                                                        "bearer_token_env",
                                                        "bearer_token_file",
                                                        "bearer_token_credential",
                                                        "token_command",
                                                        "token_command_ttl",
                                                        "aws",
                                                        "google_service_account_file",
                                                        "token_url"};
constexpr std::array<std::string_view, 5> kAwsKeys = {"profile", "credentials_file",
                                                      "access_key_id_env", "secret_access_key_env",
                                                      "session_token_env"};

std::optional<AuthMode> ModeOfKey(std::string_view key) {
  for (const AuthKey& k : kAuthModeKeys) {
    if (k.key == key) {
      return k.mode;
    }
  }
  return std::nullopt;
}

// The modes a provider accepts, in the order its messages list them.
std::vector<AuthMode> AllowedModes(Provider provider) {
  switch (provider) {
    case Provider::kOpenAI:
    case Provider::kOpenAICompatible:
      return {AuthMode::kApiKey, AuthMode::kBearerToken};
    case Provider::kAzure:
      return {AuthMode::kApiKey, AuthMode::kBearerToken, AuthMode::kTokenCommand};
    case Provider::kAnthropic:
      return {AuthMode::kApiKey, AuthMode::kBearerToken};
    case Provider::kBedrock:
      return {AuthMode::kAwsSigV4, AuthMode::kBearerToken};
    case Provider::kVertex:
      return {AuthMode::kGoogleServiceAccount, AuthMode::kTokenCommand, AuthMode::kBearerToken};
    case Provider::kGemini:
      return {AuthMode::kApiKey};
  }
  return {};
}

// OpenAI-style hosts may be open (vLLM, Ollama, the simulator); every cloud needs a credential.
bool NeedsCredentials(Provider provider) {
  return provider != Provider::kOpenAI && provider != Provider::kOpenAICompatible;
}

std::string_view DescribeMode(AuthMode mode) {
  switch (mode) {
    case AuthMode::kNone:
      return "no credentials";
    case AuthMode::kApiKey:
      return "an API key (api_key_env, api_key_file, api_key_credential)";
    case AuthMode::kBearerToken:
      return "a bearer token (bearer_token_env, bearer_token_file, bearer_token_credential)";
    case AuthMode::kTokenCommand:
      return "a token command (token_command)";
    case AuthMode::kAwsSigV4:
      return "AWS credentials (aws)";
    case AuthMode::kGoogleServiceAccount:
      return "a service-account key (google_service_account_file)";
  }
  return "";
}

std::string AllowedModesText(Provider provider) {
  const std::vector<AuthMode> modes = AllowedModes(provider);
  std::string text;
  for (size_t i = 0; i < modes.size(); ++i) {
    if (i > 0) {
      text += i + 1 == modes.size() ? " or " : ", ";
    }
    text += DescribeMode(modes[i]);
  }
  return text;
}

// What to write when a provider that needs credentials has none: `modelpulse check config`'s
// answer to "why does my target not load".
std::string MissingCredentialHelp(Provider provider) {
  switch (provider) {
    case Provider::kAzure:
      return "provider azure needs a credential: set auth.api_key_env (e.g. AZURE_OPENAI_API_KEY) "
             "or auth.api_key_file for the api-key header, auth.bearer_token_env or "
             "auth.bearer_token_file for a Microsoft Entra ID token, or auth.token_command (e.g. "
             "[az, account, get-access-token, --resource, https://cognitiveservices.azure.com, "
             "--query, accessToken, -o, tsv])";
    case Provider::kAnthropic:
      return "provider anthropic needs an API key: set auth.api_key_env (e.g. ANTHROPIC_API_KEY) "
             "or auth.api_key_file";
    case Provider::kBedrock:
      return "provider bedrock needs AWS credentials: set auth.aws ({} for the default chain: "
             "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials; or {profile: "
             "NAME}), or auth.bearer_token_env (e.g. AWS_BEARER_TOKEN_BEDROCK) for a Bedrock API "
             "key";
    case Provider::kVertex:
      return "provider vertex needs a Google access token: set auth.google_service_account_file "
             "(a service-account JSON key), auth.token_command (e.g. [gcloud, auth, "
             "print-access-token]) or auth.bearer_token_env";
    case Provider::kGemini:
      return "provider gemini needs an API key: set auth.api_key_env (e.g. GEMINI_API_KEY) or "
             "auth.api_key_file";
    case Provider::kOpenAI:
    case Provider::kOpenAICompatible:
      break;
  }
  return "";
}

// What `auth:` resolved to. `source` says where the credential came from, for DescribeConfig;
// it names variables, files and profiles, never values.
struct ParsedAuth {
  collector::TargetAuth auth;
  Secret key;  // the API key or bearer token (TargetSpec::api_key)
  std::string source = "none";
  bool chose_mode = false;  // one mode key was given (resolved or not)
};

// `aws:` — explicit variables, or the chain of the AWS CLI and SDKs for static credentials:
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN unless a profile is named, then the
// profile (auth.aws.profile, AWS_PROFILE, "default") in the shared credentials file
// (auth.aws.credentials_file, AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials). An explicit
// profile ignores the environment, as botocore does.
void ReadAws(const Entry& e, ParsedAuth& out, Context& ctx) {
  const std::vector<Entry> entries =
      MapEntries(e.value, e.ValueMark(), "auth.aws", "in \"auth.aws\"", kAwsKeys, ctx.diag);
  if (!e.value.IsNull() && !e.value.IsMap()) {
    return;
  }
  std::map<std::string, const Entry*> given;
  for (const Entry& entry : entries) {
    given[entry.key] = &entry;
  }
  const auto has = [&](std::string_view key) { return given.count(std::string(key)) > 0; };
  collector::AwsCredentials& credentials = out.auth.aws;

  if (has("access_key_id_env") || has("secret_access_key_env") || has("session_token_env")) {
    bool complete = true;
    for (std::string_view other : {"profile", "credentials_file"}) {
      if (has(other)) {
        ctx.diag.Add(given[std::string(other)]->key_node.Mark(),
                     fmt::format("\"auth.aws.{}\": give either access_key_id_env and "
                                 "secret_access_key_env, or a profile, not both",
                                 other));
        complete = false;
      }
    }
    for (std::string_view needed : {"access_key_id_env", "secret_access_key_env"}) {
      if (!has(needed)) {
        ctx.diag.Add(e.ValueMark(), fmt::format("\"auth.aws\": missing \"{}\" (access_key_id_env "
                                                "and secret_access_key_env go together)",
                                                needed));
        complete = false;
      }
    }
    if (!complete) {
      return;
    }
    std::optional<Secret> id = ResolveSecret(SecretSource::kEnv, *given["access_key_id_env"],
                                             "auth.aws.access_key_id_env", ctx);
    std::optional<Secret> secret = ResolveSecret(
        SecretSource::kEnv, *given["secret_access_key_env"], "auth.aws.secret_access_key_env", ctx);
    std::optional<Secret> token;
    if (has("session_token_env")) {
      token = ResolveSecret(SecretSource::kEnv, *given["session_token_env"],
                            "auth.aws.session_token_env", ctx);
      if (!token) {
        return;
      }
    }
    if (!id || !secret) {
      return;
    }
    credentials.access_key_id = std::move(*id);
    credentials.secret_access_key = std::move(*secret);
    credentials.session_token = token.value_or(Secret());
    out.auth.mode = AuthMode::kAwsSigV4;
    out.source = fmt::format("aws sigv4, keys from ${} and ${}{}",
                             given["access_key_id_env"]->value.Scalar(),
                             given["secret_access_key_env"]->value.Scalar(),
                             token ? " with $" + given["session_token_env"]->value.Scalar() : "");
    return;
  }

  // The chain itself is collector/auth/aws_credentials, fed through the injected Environment.
  collector::AwsCredentialOptions options;
  YAML::Mark mark = e.ValueMark();
  if (has("credentials_file")) {
    std::optional<std::string> path =
        ReadNonEmptyString(*given["credentials_file"], "auth.aws.credentials_file", ctx.diag);
    if (!path) {
      return;
    }
    // "~/" is the resolver's to expand; anything else relative starts at the config's folder.
    options.credentials_file =
        path->starts_with("~/") ? *path : Resolve(ctx.folder, *path).string();
    mark = given["credentials_file"]->ValueMark();
  }
  if (has("profile")) {
    std::optional<std::string> name =
        ReadNonEmptyString(*given["profile"], "auth.aws.profile", ctx.diag);
    if (!name) {
      return;
    }
    options.profile = *name;
    mark = given["profile"]->ValueMark();
  }
  collector::AwsCredentialSources sources;
  sources.get_env = [&ctx](std::string_view name) { return ctx.env.GetEnv(std::string(name)); };
  sources.read_file = [&ctx](const std::string& path) { return ctx.env.ReadFile(path); };
  Result<collector::ResolvedAwsCredentials> resolved =
      collector::ResolveAwsCredentials(options, sources);
  if (!resolved) {
    ctx.diag.Add(mark, fmt::format("\"auth.aws\": {}", resolved.error().message));
    return;
  }
  credentials = std::move(resolved->credentials);
  out.auth.mode = AuthMode::kAwsSigV4;
  out.source = resolved->source == "environment"
                   ? "aws sigv4, credentials from the environment (AWS_ACCESS_KEY_ID)"
                   : "aws sigv4, " + resolved->source;
}

// `google_service_account_file`: read now, so a wrong path or a key of the wrong kind fails the
// config check rather than every probe. Messages name the file and the field, never content.
void ReadServiceAccount(const Entry& e, ParsedAuth& out, Context& ctx) {
  const std::string path = "auth.google_service_account_file";
  std::optional<std::string> reference = ReadNonEmptyString(e, path, ctx.diag);
  if (!reference) {
    return;
  }
  const std::string file = Resolve(ctx.folder, *reference).string();
  Result<std::string> content = ctx.env.ReadFile(file);
  if (!content) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, content.error().message));
    return;
  }
  // No exceptions: a parse error's text quotes the input, and the input is a private key.
  const nlohmann::json key = nlohmann::json::parse(*content, nullptr, false);
  if (key.is_discarded() || !key.is_object()) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {} is not a JSON object (expected a "
                                            "service-account key from the Google Cloud console)",
                                            path, file));
    return;
  }
  const auto text = [&](const char* field) -> std::string {
    auto it = key.find(field);
    return it != key.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string type = text("type");
  if (key.contains("type") && type != "service_account") {
    const bool printable =
        !type.empty() && type.size() < 40 && std::all_of(type.begin(), type.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        });
    ctx.diag.Add(e.ValueMark(),
                 fmt::format("\"{}\": {} is {} credential, not a service-account key (for "
                             "gcloud user credentials use auth.token_command: [gcloud, auth, "
                             "print-access-token])",
                             path, file, printable ? "an \"" + type + "\"" : "another kind of"));
    return;
  }
  std::vector<std::string_view> missing;
  for (const char* field : {"client_email", "private_key", "token_uri"}) {
    if (text(field).empty()) {
      missing.push_back(field);
    }
  }
  if (!missing.empty()) {
    ctx.diag.Add(e.ValueMark(),
                 fmt::format("\"{}\": {} has no \"{}\"", path, file, fmt::join(missing, "\", \"")));
    return;
  }
  if (text("private_key").find("PRIVATE KEY-----") == std::string::npos) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": the \"private_key\" in {} is not a PEM "
                                            "private key",
                                            path, file));
    return;
  }
  out.auth.mode = AuthMode::kGoogleServiceAccount;
  out.auth.google_service_account_json = Secret(std::move(*content));
  if (out.auth.token_url.empty()) {
    out.auth.token_url = text("token_uri");
  }
  out.source =
      fmt::format("google service account from {}, token url {}", file, out.auth.token_url);
}

void ReadTokenCommand(const Entry& e, ParsedAuth& out, Context& ctx) {
  if (!e.value.IsSequence() || e.value.size() == 0) {
    ctx.diag.Add(e.ValueMark(),
                 fmt::format("\"auth.token_command\": expected a non-empty list of arguments (run "
                             "without a shell), e.g. [gcloud, auth, print-access-token], got {}",
                             e.value.IsSequence() ? "an empty list" : KindName(e.value)));
    return;
  }
  std::vector<std::string> argv;
  for (const YAML::Node& item : e.value) {
    const Entry arg{e.key, e.key_node, item};
    std::optional<std::string> text = ReadNonEmptyString(arg, "auth.token_command", ctx.diag);
    if (!text) {
      return;
    }
    argv.push_back(std::move(*text));
  }
  out.auth.mode = AuthMode::kTokenCommand;
  // Only the program: arguments may name accounts or carry flags users consider private.
  out.source = fmt::format("bearer token from command {}, reused {}", argv.front(),
                           FormatPromDuration(out.auth.token_command_ttl));
  out.auth.token_command = std::move(argv);
}

// Reads `auth:` of a target. With `provider` known, a mode the provider does not accept is an
// error at its key, and the credential is not resolved.
ParsedAuth ReadAuth(const Entry& e, std::string_view where, std::optional<Provider> provider,
                    Context& ctx) {
  ParsedAuth out;
  const std::vector<Entry> entries = MapEntries(
      e.value, e.ValueMark(), "auth", fmt::format("in \"auth\" of {}", where), kAuthKeys, ctx.diag);
  const Entry* chosen = nullptr;
  const Entry* ttl = nullptr;
  const Entry* token_url = nullptr;
  for (const Entry& entry : entries) {
    if (entry.key == "token_command_ttl") {
      ttl = &entry;
    } else if (entry.key == "token_url") {
      token_url = &entry;
    } else if (chosen != nullptr) {
      ctx.diag.Add(entry.key_node.Mark(),
                   fmt::format("\"auth\": give only one way to authenticate, got {} and {}",
                               chosen->key, entry.key));
      out.chose_mode = true;
      return out;
    } else {
      chosen = &entry;
    }
  }
  out.chose_mode = chosen != nullptr;
  const std::optional<AuthMode> mode =
      chosen != nullptr ? ModeOfKey(chosen->key) : std::optional<AuthMode>();
  bool usable = true;
  if (ttl != nullptr && mode != AuthMode::kTokenCommand) {
    ctx.diag.Add(ttl->key_node.Mark(),
                 "\"auth.token_command_ttl\": applies only with token_command");
    usable = false;
  }
  if (token_url != nullptr && mode != AuthMode::kGoogleServiceAccount) {
    ctx.diag.Add(token_url->key_node.Mark(),
                 "\"auth.token_url\": applies only with google_service_account_file");
    usable = false;
  }
  if (!mode) {
    return out;
  }
  if (provider) {
    const std::vector<AuthMode> allowed = AllowedModes(*provider);
    if (std::find(allowed.begin(), allowed.end(), *mode) == allowed.end()) {
      std::string hint;
      if (*provider == Provider::kBedrock && *mode == AuthMode::kApiKey) {
        hint =
            " (a Bedrock API key is sent as a bearer token: use auth.bearer_token_env, e.g. "
            "AWS_BEARER_TOKEN_BEDROCK)";
      }
      ctx.diag.Add(chosen->key_node.Mark(),
                   fmt::format("\"auth.{}\": provider {} does not take {}; it takes {}{}",
                               chosen->key, NameOfProvider(*provider), DescribeMode(*mode),
                               AllowedModesText(*provider), hint));
      return out;
    }
  }
  if (ttl != nullptr) {
    if (std::optional<Millis> value =
            ReadDuration(*ttl, "auth.token_command_ttl", Sign::kPositive, ctx.diag)) {
      out.auth.token_command_ttl = *value;
    } else {
      usable = false;
    }
  }
  if (token_url != nullptr) {
    std::optional<std::string> url = ReadNonEmptyString(*token_url, "auth.token_url", ctx.diag);
    if (url) {
      if (Result<std::string> host = UrlHost(*url); !host) {
        ctx.diag.Add(token_url->ValueMark(), "\"auth.token_url\": " + host.error().message);
        usable = false;
      } else {
        out.auth.token_url = *url;
      }
    } else {
      usable = false;
    }
  }
  if (!usable) {
    return out;
  }
  const std::string path = "auth." + chosen->key;
  switch (*mode) {
    case AuthMode::kApiKey:
    case AuthMode::kBearerToken: {
      const std::string_view key = chosen->key;
      const SecretSource source = key.ends_with("_env")    ? SecretSource::kEnv
                                  : key.ends_with("_file") ? SecretSource::kFile
                                                           : SecretSource::kCredential;
      std::optional<Secret> secret = ResolveSecret(source, *chosen, path, ctx);
      if (!secret) {
        return out;
      }
      out.auth.mode = *mode;
      out.key = std::move(*secret);
      const std::string reference = chosen->value.Scalar();
      out.source = fmt::format(
          "{} from {}", *mode == AuthMode::kApiKey ? "api key" : "bearer token",
          source == SecretSource::kEnv    ? "$" + reference
          : source == SecretSource::kFile ? "file " + Resolve(ctx.folder, reference).string()
                                          : "credential " + reference);
      break;
    }
    case AuthMode::kTokenCommand:
      ReadTokenCommand(*chosen, out, ctx);
      break;
    case AuthMode::kAwsSigV4:
      ReadAws(*chosen, out, ctx);
      break;
    case AuthMode::kGoogleServiceAccount:
      ReadServiceAccount(*chosen, out, ctx);
      break;
    case AuthMode::kNone:
      break;
  }
  return out;
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
      diag.Add(e.ValueMark(),
               fmt::format("\"expect\": longer than {} characters", kMaxExpectLength));
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

constexpr std::array<std::string_view, 23> kTargetKeys = {"name",        "provider",
                                                          "model",       "provider_model",
                                                          "base_url",    "auth",
                                                          "region",      "project",
                                                          "api_version", "anthropic_version",
                                                          "api",         "openai_path_prefix",
                                                          "headers",     "labels",
                                                          "price",       "budget",
                                                          "interval",    "stream",
                                                          "max_tokens",  "prompt",
                                                          "expect",      "timeouts",
                                                          "connection"};
constexpr std::array<std::string_view, 2> kPriceKeys = {"input_per_million", "output_per_million"};
constexpr std::array<std::string_view, 2> kBudgetKeys = {"daily_tokens", "daily_cost"};
constexpr std::array<std::string_view, 3> kIdentityLabels = {"target", "provider", "model"};

// Provider details: keys that mean something to some providers only.
constexpr std::array<std::string_view, 6> kDetailKeys = {
    "region", "project", "api_version", "anthropic_version", "api", "openai_path_prefix"};

std::vector<Provider> DetailProviders(std::string_view key) {
  if (key == "region") {
    return {Provider::kBedrock, Provider::kVertex};
  }
  if (key == "project") {
    return {Provider::kVertex};
  }
  if (key == "api_version") {
    return {Provider::kAzure};
  }
  if (key == "anthropic_version") {
    return {Provider::kAnthropic};
  }
  if (key == "api") {
    return {Provider::kAzure, Provider::kBedrock, Provider::kVertex};
  }
  return {Provider::kBedrock, Provider::kVertex};  // openai_path_prefix
}

bool IsAwsRegion(const std::string& text) {
  static const std::regex kAws(
      R"(^[a-z]{2}(-gov|-iso[a-z]*)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]+$)");
  return std::regex_match(text, kAws);
}

// us-central1, europe-west4, global, and the multi-region locations us and eu.
bool IsGoogleLocation(const std::string& text) {
  static const std::regex kLocation(R"(^[a-z]+-[a-z]+[0-9]+$)");
  return text == "global" || text == "us" || text == "eu" || std::regex_match(text, kLocation);
}

bool IsProjectId(const std::string& text) {
  // Project ids (6-30 of a-z0-9-), and the legacy domain-scoped "example.com:project".
  static const std::regex kProject(R"(^([a-z0-9.-]+:)?[a-z][a-z0-9-]{3,28}[a-z0-9]$)");
  return std::regex_match(text, kProject);
}

// A version string that goes into a header or a query: no spaces, no URL syntax.
bool IsVersionText(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// The endpoint a provider is reached at when base_url is not given; empty when it has none.
std::string DefaultBaseUrl(Provider provider, const std::string& region) {
  switch (provider) {
    case Provider::kOpenAI:
      return "https://api.openai.com/v1";
    case Provider::kAnthropic:
      return "https://api.anthropic.com";
    case Provider::kGemini:
      return "https://generativelanguage.googleapis.com";
    case Provider::kBedrock:
      return fmt::format("https://bedrock-runtime.{}.amazonaws.com{}", region,
                         region.starts_with("cn-") ? ".cn" : "");
    case Provider::kVertex:
      if (region == "global") {
        return "https://aiplatform.googleapis.com";
      }
      if (region == "us" || region == "eu") {
        return fmt::format("https://aiplatform.{}.rep.googleapis.com", region);
      }
      return fmt::format("https://{}-aiplatform.googleapis.com", region);
    case Provider::kAzure:
    case Provider::kOpenAICompatible:
      break;
  }
  return "";
}

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

// Where a target's endpoint is, as read from base_url (if given).
struct Endpoint {
  std::optional<std::string> host;  // set when base_url was given and valid
  bool given = false;               // base_url was in the file, valid or not
};

// region, project, api_version, anthropic_version, api and openai_path_prefix, checked against
// `provider`; then the defaults that follow from them (region from the host, base_url).
void ReadProviderDetails(Provider provider, const std::map<std::string, const Entry*>& details,
                         const YAML::Node& node, std::string_view where, Endpoint& endpoint,
                         TargetSpec& spec, Diagnostics& diag) {
  const std::string_view name = NameOfProvider(provider);
  std::map<std::string, std::string> value;  // the detail keys that apply and read well
  for (const auto& [key, e] : details) {
    const std::vector<Provider> providers = DetailProviders(key);
    if (std::find(providers.begin(), providers.end(), provider) == providers.end()) {
      std::vector<std::string_view> names;
      for (Provider p : providers) {
        names.push_back(NameOfProvider(p));
      }
      diag.Add(e->key_node.Mark(), fmt::format("\"{}\": does not apply to provider {} (only to "
                                               "{})",
                                               key, name, fmt::join(names, ", ")));
      continue;
    }
    if (std::optional<std::string> text = ReadNonEmptyString(*e, key, diag)) {
      value[key] = *text;
    }
  }
  const auto at = [&](const std::string& key) { return details.at(key)->ValueMark(); };
  bool ok = true;

  if (auto it = value.find("region"); it != value.end()) {
    const bool valid =
        provider == Provider::kBedrock ? IsAwsRegion(it->second) : IsGoogleLocation(it->second);
    if (!valid) {
      diag.Add(
          at("region"),
          provider == Provider::kBedrock
              ? fmt::format("\"region\": \"{}\" is not an AWS region (e.g. us-east-1)", it->second)
              : fmt::format("\"region\": \"{}\" is not a Google Cloud location (e.g. "
                            "us-central1, europe-west4 or global)",
                            it->second));
      ok = false;
    } else {
      spec.region = it->second;
    }
  }
  if (auto it = value.find("project"); it != value.end()) {
    if (!IsProjectId(it->second)) {
      diag.Add(at("project"), fmt::format("\"project\": \"{}\" is not a Google Cloud project id "
                                          "(6 to 30 lower-case letters, digits and hyphens)",
                                          it->second));
      ok = false;
    } else {
      spec.project = it->second;
    }
  }
  for (const char* key : {"api_version", "anthropic_version"}) {
    if (auto it = value.find(key); it != value.end()) {
      if (!IsVersionText(it->second)) {
        diag.Add(at(key),
                 fmt::format("\"{}\": \"{}\" is not a version (e.g. {})", key, it->second,
                             std::string_view(key) == "api_version" ? "2024-10-21" : "2023-06-01"));
        ok = false;
      } else {
        (std::string_view(key) == "api_version" ? spec.api_version : spec.anthropic_version) =
            it->second;
      }
    }
  }
  std::optional<collector::ApiFlavor> api;
  if (auto it = value.find("api"); it != value.end()) {
    if (it->second == "native") {
      api = collector::ApiFlavor::kNative;
    } else if (it->second == "openai") {
      api = collector::ApiFlavor::kOpenAICompatible;
    } else {
      diag.Add(at("api"),
               fmt::format("\"api\": expected native or openai, got \"{}\"", it->second));
      ok = false;
    }
  }
  if (provider == Provider::kAzure) {
    // The deployment path carries api-version; the v1 path has none. One decides the other.
    const bool versioned = value.count("api_version") > 0;
    if (api == collector::ApiFlavor::kNative && !versioned) {
      diag.Add(at("api"),
               "\"api\": azure's native deployment path needs \"api_version\" (e.g. "
               "2024-10-21); without it the v1 path (api: openai) is used");
    } else if (api == collector::ApiFlavor::kOpenAICompatible && versioned) {
      diag.Add(at("api_version"),
               "\"api_version\": applies to azure's deployment path (api: "
               "native), not to the v1 path (api: openai)");
    }
    spec.flavor =
        versioned ? collector::ApiFlavor::kNative : collector::ApiFlavor::kOpenAICompatible;
  } else if (api) {
    spec.flavor = *api;
  }
  if (auto it = value.find("openai_path_prefix"); it != value.end()) {
    std::string prefix = it->second;
    while (prefix.size() > 1 && prefix.back() == '/') {
      prefix.pop_back();
    }
    if (spec.flavor != collector::ApiFlavor::kOpenAICompatible) {
      diag.Add(details.at("openai_path_prefix")->key_node.Mark(),
               fmt::format("\"openai_path_prefix\": applies only with api: openai"));
    } else if (!prefix.starts_with('/') || prefix.find_first_of(" \t?#") != std::string::npos) {
      diag.Add(at("openai_path_prefix"),
               "\"openai_path_prefix\": expected a path starting with / (e.g. /openai/v1)");
    } else {
      spec.openai_path_prefix = prefix;
    }
  }

  // Bedrock and Vertex put the region into every request (the SigV4 scope, the location path):
  // take it from `region`, else from a host name that carries one.
  if (provider == Provider::kBedrock || provider == Provider::kVertex) {
    std::string from_host;
    if (endpoint.host) {
      from_host = RegionFromHost(*endpoint.host);
      if (from_host == "global" && *endpoint.host != "aiplatform.googleapis.com") {
        from_host.clear();
      }
      if (provider == Provider::kVertex && endpoint.host->starts_with("aiplatform.") &&
          endpoint.host->ends_with(".rep.googleapis.com")) {
        from_host = endpoint.host->substr(11, endpoint.host->find('.', 11) - 11);
      }
    }
    if (!spec.region.empty() && !from_host.empty() && from_host != spec.region) {
      diag.Add(at("region"), fmt::format("\"region\": {} differs from the region {} of "
                                         "\"base_url\"",
                                         spec.region, from_host));
    } else if (spec.region.empty() && value.count("region") == 0) {
      if (!from_host.empty()) {
        spec.region = from_host;
      } else {
        diag.Add(node.Mark(),
                 provider == Provider::kBedrock
                     ? fmt::format("{}: provider bedrock needs \"region\" (e.g. us-east-1): it "
                                   "picks the endpoint and scopes the SigV4 signature",
                                   where)
                     : fmt::format("{}: provider vertex needs \"region\" (e.g. us-central1 or "
                                   "global): it is the location in every request path",
                                   where));
        ok = false;
      }
    }
  }
  if (provider == Provider::kVertex && value.count("project") == 0) {
    diag.Add(node.Mark(), fmt::format("{}: provider vertex needs \"project\" (the Google Cloud "
                                      "project id the requests are billed to)",
                                      where));
  }
  if (!endpoint.given) {
    const std::string url = DefaultBaseUrl(provider, spec.region);
    if (url.empty()) {
      diag.Add(node.Mark(), fmt::format("{}: missing required key \"base_url\" (provider {} has "
                                        "no default endpoint)",
                                        where, name));
    } else if (ok) {
      spec.base_url = url;
      endpoint.host = UrlHost(url).value_or("");
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
  Endpoint endpoint;
  const Entry* labels_entry = nullptr;
  const Entry* budget_entry = nullptr;
  const Entry* auth_entry = nullptr;
  std::map<std::string, const Entry*> details;
  Labels own_labels;
  bool has[3] = {false, false, false};  // name, provider, model
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
          ctx.diag.Add(e.ValueMark(),
                       fmt::format("\"provider\": unknown provider \"{}\" (valid: {})", *name,
                                   ValidProviderList()));
        }
      }
    } else if (key == "model") {
      has[2] = true;
      spec.model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (key == "provider_model") {
      spec.provider_model = ReadNonEmptyString(e, key, ctx.diag).value_or("");
    } else if (key == "base_url") {
      endpoint.given = true;
      if (std::optional<std::string> url = ReadNonEmptyString(e, key, ctx.diag)) {
        Result<std::string> url_host = UrlHost(*url);
        if (!url_host) {
          ctx.diag.Add(e.ValueMark(), "\"base_url\": " + url_host.error().message);
        } else {
          while (url->size() > 1 && url->back() == '/') {
            url->pop_back();
          }
          spec.base_url = *url;
          endpoint.host = *url_host;
        }
      }
    } else if (key == "auth") {
      auth_entry = &e;
    } else if (std::find(kDetailKeys.begin(), kDetailKeys.end(), key) != kDetailKeys.end()) {
      details[key] = &e;
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
  constexpr std::array<std::string_view, 3> kRequired = {"name", "provider", "model"};
  for (size_t i = 0; i < kRequired.size(); ++i) {
    if (!has[i]) {
      ctx.diag.Add(node.Mark(),
                   fmt::format("{}: missing required key \"{}\"", where, kRequired[i]));
    }
  }

  // Provider-specific keys wait for the provider, wherever it stands in the map.
  if (provider) {
    ReadProviderDetails(*provider, details, node, where, endpoint, spec, ctx.diag);
  }
  if (auth_entry != nullptr) {
    ParsedAuth auth = ReadAuth(*auth_entry, where, provider, ctx);
    spec.auth = std::move(auth.auth);
    spec.api_key = std::move(auth.key);
    parsed.auth_source = std::move(auth.source);
    if (!auth.chose_mode && provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(auth_entry->ValueMark(),
                   fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
    }
  } else {
    parsed.auth_source = "none";
    if (provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(node.Mark(), fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
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
  const std::string host = endpoint.host.value_or("");
  if (provider) {
    spec.provider = *provider;
    spec.labels["provider"] = std::string(NameOfProvider(*provider));
    spec.labels["cloud"] = DefaultCloud(*provider, host);
  }
  spec.labels["target"] = spec.name;
  spec.labels["model"] = spec.model;
  spec.labels["region"] =
      !spec.region.empty() ? spec.region : (host.empty() ? "global" : RegionFromHost(host));
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
constexpr std::array<std::string_view, 6> kGlobalKeys = {
    "external_labels", "max_concurrency", "max_response_bytes",
    "jitter_fraction", "shutdown_grace",  "evaluation_interval"};
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
      return Fail(
          Error::Io(fmt::format("cannot read {}: larger than {} bytes", path, kMaxFileBytes)));
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
    std::string details;
    if (target.provider == Provider::kAzure || target.provider == Provider::kBedrock ||
        target.provider == Provider::kVertex) {
      details += target.flavor == collector::ApiFlavor::kOpenAICompatible ? ", api openai"
                                                                          : ", api native";
    }
    if (!target.project.empty()) {
      details += ", project " + target.project;
    }
    if (!target.api_version.empty()) {
      details += ", api-version " + target.api_version;
    }
    if (!target.openai_path_prefix.empty()) {
      details += ", path prefix " + target.openai_path_prefix;
    }
    auto source = config.auth_sources.find(target.name);
    text +=
        fmt::format("  {}: {} {}{} (cloud {}, region {}{}) every {} at {}, auth {}\n", target.name,
                    NameOfProvider(target.provider), target.model,
                    target.provider_model == target.model ? "" : " as " + target.provider_model,
                    label("cloud"), label("region"), details, FormatPromDuration(target.interval),
                    target.base_url, source != config.auth_sources.end() ? source->second : "none");
  }
  if (config.simulator) {
    text += fmt::format("  simulator: {} on {}\n", config.simulator->scenario_path,
                        config.simulator->listen_address);
  }
  return text;
}

}  // namespace modelpulse::daemon
