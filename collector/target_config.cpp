#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <span>
#include <utility>

#include "collector/collector.h"
#include "collector/internal/auth/aws_credentials.h"
#include "collector/internal/auth/secret_file.h"
#include "collector/internal/providers/provider.h"
#include "common/environment.h"
#include "common/yaml_reader.h"

namespace modelpulse::collector {
namespace {

namespace fs = std::filesystem;
using yaml::Diagnostics;
using yaml::Entry;
using yaml::KindName;
using yaml::MapEntries;
using yaml::ReadDuration;
using yaml::ReadNonEmptyString;
using yaml::Sign;

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
  if (const std::string_view cloud = ProfileFor(provider).cloud; !cloud.empty()) {
    return std::string(cloud);
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

}  // namespace

// us-east-1, us-gov-west-1, cn-north-1: the one place the AWS region pattern is written.
bool IsAwsRegion(const std::string& text) {
  static const std::regex kAws(
      R"(^[a-z]{2}(-gov|-iso[a-z]*)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]+$)");
  return std::regex_match(text, kAws);
}

// The region where the host name carries one: AWS (bedrock-runtime.us-east-1.amazonaws.com), GCP
// (us-central1-aiplatform.googleapis.com), OpenAI data residency (eu.api.openai.com), Azure AI
// regional endpoints (eastus.api.cognitive.microsoft.com). Otherwise "global".
std::string RegionFromHost(const std::string& host) {
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
    if (IsAwsRegion(part)) {
      return part;
    }
    if (host.ends_with(".googleapis.com") && std::regex_match(part, match, kGcp)) {
      return match[1].str();
    }
    begin = end + 1;
  }
  return "global";
}

namespace {

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
                                    ConfigReadContext& ctx) {
  std::optional<std::string> reference = ReadNonEmptyString(e, path, ctx.diag);
  if (!reference) {
    return std::nullopt;
  }
  std::string file;
  switch (source) {
    case SecretSource::kEnv: {
      if (!yaml::IsIdentifier(*reference)) {
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
      file = yaml::ResolvePath(ctx.folder, *reference).string();
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
  WarnIfSecretFileExposed(file);
  std::string value = TrimTrailingNewlines(std::move(*content));
  if (value.empty()) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": file {} is empty", path, file));
    return std::nullopt;
  }
  return Secret(std::move(value));
}

// ---------------------------------------------------------------------------------------------
// Authentication: exactly one way per target, checked against what the provider accepts.

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

const std::vector<AuthMode>& AllowedModes(Provider provider) {
  return ProfileFor(provider).auth_modes;
}

bool NeedsCredentials(Provider provider) {
  return !ProfileFor(provider).missing_credential_help.empty();
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
  const std::vector<AuthMode>& modes = AllowedModes(provider);
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
  return std::string(ProfileFor(provider).missing_credential_help);
}

// What `auth:` resolved to. `source` says where the credential came from, for DescribeConfig;
// it names variables, files and profiles, never values.
struct ParsedAuth {
  TargetAuth auth;
  Secret key;  // the API key or bearer token (TargetSpec::api_key)
  std::string source = "none";
  bool chose_mode = false;  // one mode key was given (resolved or not)
};

// `aws:` — explicit variables, or the chain of the AWS CLI and SDKs for static credentials:
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN unless a profile is named, then the
// profile (auth.aws.profile, AWS_PROFILE, "default") in the shared credentials file
// (auth.aws.credentials_file, AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials). An explicit
// profile ignores the environment, as botocore does.
void ReadAws(const Entry& e, ParsedAuth& out, ConfigReadContext& ctx) {
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
  AwsCredentials& credentials = out.auth.aws;

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
  AwsCredentialOptions options;
  YAML::Mark mark = e.ValueMark();
  if (has("credentials_file")) {
    std::optional<std::string> path =
        ReadNonEmptyString(*given["credentials_file"], "auth.aws.credentials_file", ctx.diag);
    if (!path) {
      return;
    }
    // "~/" is the resolver's to expand; anything else relative starts at the config's folder.
    options.credentials_file =
        path->starts_with("~/") ? *path : yaml::ResolvePath(ctx.folder, *path).string();
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
  Result<ResolvedAwsCredentials> resolved = ResolveAwsCredentials(options, ctx.env);
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
void ReadServiceAccount(const Entry& e, ParsedAuth& out, ConfigReadContext& ctx) {
  const std::string path = "auth.google_service_account_file";
  std::optional<std::string> reference = ReadNonEmptyString(e, path, ctx.diag);
  if (!reference) {
    return;
  }
  const std::string file = yaml::ResolvePath(ctx.folder, *reference).string();
  Result<std::string> content = ctx.env.ReadFile(file);
  if (!content) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, content.error().message));
    return;
  }
  WarnIfSecretFileExposed(file);
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

void ReadTokenCommand(const Entry& e, ParsedAuth& out, ConfigReadContext& ctx) {
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
                    ConfigReadContext& ctx) {
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
    const std::vector<AuthMode>& allowed = AllowedModes(*provider);
    if (std::find(allowed.begin(), allowed.end(), *mode) == allowed.end()) {
      const ProviderProfile& profile = ProfileFor(*provider);
      const std::string_view hint =
          profile.refused_auth_hint ? profile.refused_auth_hint(*mode) : std::string_view();
      ctx.diag.Add(chosen->key_node.Mark(),
                   fmt::format("\"auth.{}\": provider {} does not take {}; it takes {}{}",
                               chosen->key, ProviderName(*provider), DescribeMode(*mode),
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
      out.source =
          fmt::format("{} from {}", *mode == AuthMode::kApiKey ? "api key" : "bearer token",
                      source == SecretSource::kEnv ? "$" + reference
                      : source == SecretSource::kFile
                          ? "file " + yaml::ResolvePath(ctx.folder, reference).string()
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
                                                        ConfigReadContext& ctx) {
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
// Provider details: keys that mean something to some providers only.
constexpr std::array<std::string_view, 6> kDetailKeys = {
    "region", "project", "api_version", "anthropic_version", "api", "openai_path_prefix"};

// The providers that take detail `key`, in declaration order.
std::vector<Provider> DetailProviders(std::string_view key) {
  std::vector<Provider> providers;
  for (int i = 0; i <= static_cast<int>(Provider::kGemini); ++i) {  // every provider, in order
    const Provider provider = static_cast<Provider>(i);
    const std::vector<std::string_view>& keys = ProfileFor(provider).detail_keys;
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      providers.push_back(provider);
    }
  }
  return providers;
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
  return ProfileFor(provider).default_base_url(region);
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
  const std::string_view name = ProviderName(provider);
  std::map<std::string, std::string> value;  // the detail keys that apply and read well
  for (const auto& [key, e] : details) {
    const std::vector<Provider> providers = DetailProviders(key);
    if (std::find(providers.begin(), providers.end(), provider) == providers.end()) {
      std::vector<std::string_view> names;
      for (Provider p : providers) {
        names.push_back(ProviderName(p));
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

  const ProviderProfile& profile = ProfileFor(provider);
  if (auto it = value.find("region"); it != value.end()) {
    if (!profile.is_region(it->second)) {
      diag.Add(at("region"),
               fmt::format("\"region\": \"{}\" is not {}", it->second, profile.region_kind));
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
  std::optional<ApiFlavor> api;
  if (auto it = value.find("api"); it != value.end()) {
    if (it->second == "native") {
      api = ApiFlavor::kNative;
    } else if (it->second == "openai") {
      api = ApiFlavor::kOpenAICompatible;
    } else {
      diag.Add(at("api"),
               fmt::format("\"api\": expected native or openai, got \"{}\"", it->second));
      ok = false;
    }
  }
  if (provider == Provider::kAzure) {
    // The deployment path carries api-version; the v1 path has none. One decides the other.
    const bool versioned = value.count("api_version") > 0;
    if (api == ApiFlavor::kNative && !versioned) {
      diag.Add(at("api"),
               "\"api\": azure's native deployment path needs \"api_version\" (e.g. "
               "2024-10-21); without it the v1 path (api: openai) is used");
    } else if (api == ApiFlavor::kOpenAICompatible && versioned) {
      diag.Add(at("api_version"),
               "\"api_version\": applies to azure's deployment path (api: "
               "native), not to the v1 path (api: openai)");
    }
    spec.flavor = versioned ? ApiFlavor::kNative : ApiFlavor::kOpenAICompatible;
  } else if (api) {
    spec.flavor = *api;
  }
  if (auto it = value.find("openai_path_prefix"); it != value.end()) {
    std::string prefix = it->second;
    while (prefix.size() > 1 && prefix.back() == '/') {
      prefix.pop_back();
    }
    if (spec.flavor != ApiFlavor::kOpenAICompatible) {
      diag.Add(details.at("openai_path_prefix")->key_node.Mark(),
               fmt::format("\"openai_path_prefix\": applies only with api: openai"));
    } else if (!prefix.starts_with('/') || prefix.find_first_of(" \t?#") != std::string::npos) {
      diag.Add(at("openai_path_prefix"),
               "\"openai_path_prefix\": expected a path starting with / (e.g. /openai/v1)");
    } else {
      spec.openai_path_prefix = prefix;
    }
  }

  // Providers that put the region into every request take it from `region`, else from a host
  // name that carries one.
  if (profile.region_from_host) {
    const std::string from_host =
        endpoint.host ? profile.region_from_host(*endpoint.host) : std::string();
    if (!spec.region.empty() && !from_host.empty() && from_host != spec.region) {
      diag.Add(at("region"), fmt::format("\"region\": {} differs from the region {} of "
                                         "\"base_url\"",
                                         spec.region, from_host));
    } else if (spec.region.empty() && value.count("region") == 0) {
      if (!from_host.empty()) {
        spec.region = from_host;
      } else {
        diag.Add(node.Mark(), fmt::format("{}: provider {} needs \"region\" {}", where, name,
                                          profile.region_needed_because));
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

}  // namespace

std::span<const std::string_view> ProviderOwnedTargetKeys() {
  static constexpr std::array<std::string_view, 9> kKeys = {"base_url",    "auth",
                                                            "region",      "project",
                                                            "api_version", "anthropic_version",
                                                            "api",         "openai_path_prefix",
                                                            "headers"};
  return kKeys;
}

std::string ReadProviderKeys(const YAML::Node& node, std::string_view where,
                             std::optional<Provider> provider,
                             std::span<const Entry* const> entries, TargetSpec& spec,
                             ConfigReadContext& ctx) {
  Endpoint endpoint;
  const Entry* auth_entry = nullptr;
  std::map<std::string, const Entry*> details;
  for (const Entry* entry : entries) {
    const Entry& e = *entry;
    const std::string& key = e.key;
    if (key == "base_url") {
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
    } else if (key == "headers") {
      spec.headers = ReadHeaders(e, where, ctx);
    } else {
      details[key] = &e;
    }
  }

  // Provider-specific keys wait for the provider, wherever it stands in the map.
  if (provider) {
    ReadProviderDetails(*provider, details, node, where, endpoint, spec, ctx.diag);
  }
  std::string auth_source;
  if (auth_entry != nullptr) {
    ParsedAuth auth = ReadAuth(*auth_entry, where, provider, ctx);
    spec.auth = std::move(auth.auth);
    spec.api_key = std::move(auth.key);
    auth_source = std::move(auth.source);
    if (!auth.chose_mode && provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(auth_entry->ValueMark(),
                   fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
    }
  } else {
    auth_source = "none";
    if (provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(node.Mark(), fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
    }
  }

  // The series identity the provider and URL imply; the target's own labels may refine cloud and
  // region afterwards.
  const std::string host = endpoint.host.value_or("");
  if (provider) {
    spec.provider = *provider;
    spec.labels["provider"] = std::string(ProviderName(*provider));
    spec.labels["cloud"] = DefaultCloud(*provider, host);
  }
  spec.labels["region"] =
      !spec.region.empty() ? spec.region : (host.empty() ? "global" : RegionFromHost(host));
  return auth_source;
}

std::string DescribeProviderDetails(const TargetSpec& target) {
  std::string details;
  const std::vector<std::string_view>& keys = ProfileFor(target.provider).detail_keys;
  if (std::find(keys.begin(), keys.end(), "api") != keys.end()) {
    details += target.flavor == ApiFlavor::kOpenAICompatible ? ", api openai" : ", api native";
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
  return details;
}

}  // namespace modelpulse::collector
