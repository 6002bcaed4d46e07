// Resolving the credentials a config names: secrets by reference (environment variable, file,
// systemd credential) and a target's `auth:` (see internal/auth/target_auth.h).

#include "collector/internal/auth/target_auth.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "collector/internal/auth/aws_credentials.h"
#include "collector/internal/auth/secret_file.h"
#include "collector/internal/http_util.h"
#include "collector/internal/providers/provider.h"
#include "common/environment.h"
#include "common/secret_reference.h"
#include "common/yaml_reader.h"

namespace modelpulse::collector {
namespace {

using yaml::Entry;
using yaml::KindName;
using yaml::MapEntries;
using yaml::ReadDuration;
using yaml::ReadNonEmptyString;
using yaml::Sign;

}  // namespace

std::optional<Secret> ResolveSecret(SecretSource source, const Entry& e, std::string_view path,
                                    ConfigReadContext& ctx) {
  return ReadSecretReference(source, e, path,
                             {ctx.diag, ctx.env, ctx.folder, WarnIfSecretFileExposed});
}

namespace {

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
  if (!ctx.read_credential_files) {
    out.auth.mode = AuthMode::kAwsSigV4;
    out.source = "aws sigv4, credential chain not read (syntax only)";
    return;
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
  if (!ctx.read_credential_files) {
    out.auth.mode = AuthMode::kGoogleServiceAccount;
    out.source = fmt::format("google service account from {} (not read: syntax only)", file);
    return;
  }
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

}  // namespace

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

}  // namespace modelpulse::collector
