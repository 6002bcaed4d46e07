#include "collector/internal/auth/aws_credentials.h"

#include <cctype>
#include <map>
#include <string>
#include <utility>

#include "collector/internal/auth/secret_file.h"

namespace modelpulse::collector {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())) != 0) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())) != 0) {
    text.remove_suffix(1);
  }
  return text;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<std::string> NonEmptyEnv(const Environment& env, const std::string& name) {
  std::optional<std::string> value = env.GetEnv(name);
  if (value && value->empty()) {
    return std::nullopt;
  }
  return value;
}

// The keys of section `profile` of an INI file as configparser reads it (keys lower-cased,
// values trimmed, no inline comments, indented lines are sub-keys and skipped). nullopt when the
// section is absent.
std::optional<std::map<std::string, std::string>> ReadProfile(std::string_view content,
                                                              std::string_view profile) {
  std::optional<std::map<std::string, std::string>> found;
  bool in_profile = false;
  size_t start = 0;
  while (start < content.size()) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) {
      end = content.size();
    }
    std::string_view raw = content.substr(start, end - start);
    start = end + 1;
    if (!raw.empty() && raw.back() == '\r') {
      raw.remove_suffix(1);
    }
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') {
      continue;
    }
    if (line.front() == '[') {
      const size_t close = line.find(']');
      const std::string_view name =
          Trim(line.substr(1, close == std::string_view::npos ? line.size() - 1 : close - 1));
      in_profile = name == profile;
      if (in_profile && !found) {
        found.emplace();
      }
      continue;
    }
    if (!in_profile || std::isspace(static_cast<unsigned char>(raw.front())) != 0) {
      continue;
    }
    const size_t separator = line.find_first_of("=:");
    if (separator == std::string_view::npos) {
      continue;
    }
    (*found)[Lower(Trim(line.substr(0, separator)))] =
        std::string(Trim(line.substr(separator + 1)));
  }
  return found;
}

std::string CredentialsFilePath(const AwsCredentialOptions& options, const Environment& env) {
  std::string path = options.credentials_file;
  if (path.empty()) {
    path = NonEmptyEnv(env, "AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials");
  }
  if (path == "~" || path.rfind("~/", 0) == 0) {
    if (std::optional<std::string> home = NonEmptyEnv(env, "HOME")) {
      path = *home + path.substr(1);
    }
  }
  return path;
}

}  // namespace

Result<ResolvedAwsCredentials> ResolveAwsCredentials(const AwsCredentialOptions& options,
                                                     const Environment& env) {
  if (options.profile.empty()) {
    const std::optional<std::string> key_id = NonEmptyEnv(env, "AWS_ACCESS_KEY_ID");
    const std::optional<std::string> secret = NonEmptyEnv(env, "AWS_SECRET_ACCESS_KEY");
    if (key_id && !secret) {
      return Fail(
          Error::InvalidArgument("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
    }
    if (secret && !key_id) {
      return Fail(
          Error::InvalidArgument("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"));
    }
    if (key_id && secret) {
      ResolvedAwsCredentials out;
      out.credentials.access_key_id = Secret(*key_id);
      out.credentials.secret_access_key = Secret(*secret);
      // AWS_SECURITY_TOKEN is the older name the SDKs still read.
      std::optional<std::string> token = NonEmptyEnv(env, "AWS_SESSION_TOKEN");
      if (!token) {
        token = NonEmptyEnv(env, "AWS_SECURITY_TOKEN");
      }
      if (token) {
        out.credentials.session_token = Secret(*token);
      }
      out.source = "environment";
      return out;
    }
  }

  const std::string profile = !options.profile.empty()
                                  ? options.profile
                                  : NonEmptyEnv(env, "AWS_PROFILE").value_or("default");
  const std::string path = CredentialsFilePath(options, env);
  const std::string where = "profile '" + profile + "' in " + path;
  Result<std::string> content = env.ReadFile(path);
  if (!content) {
    if (content.error().code == Error::Code::kNotFound) {
      return Fail(Error::NotFound(
          options.profile.empty()
              ? "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and " +
                    path + " does not exist"
              : "AWS credentials file " + path + " does not exist (for profile '" + profile +
                    "')"));
    }
    return Fail(
        Error::Io("cannot read AWS credentials file " + path + " (for profile '" + profile + "')"));
  }
  WarnIfSecretFileExposed(path);
  const std::optional<std::map<std::string, std::string>> keys = ReadProfile(*content, profile);
  if (!keys) {
    return Fail(Error::NotFound("AWS " + where + " not found"));
  }
  auto value = [&](const char* key) -> std::string {
    auto it = keys->find(key);
    return it == keys->end() ? std::string() : it->second;
  };
  const std::string key_id = value("aws_access_key_id");
  const std::string secret = value("aws_secret_access_key");
  if (key_id.empty() && secret.empty()) {
    return Fail(Error::NotFound("AWS " + where +
                                " has no aws_access_key_id/aws_secret_access_key (SSO, "
                                "role and process profiles are not supported)"));
  }
  if (key_id.empty()) {
    return Fail(Error::InvalidArgument("AWS " + where + " has no aws_access_key_id"));
  }
  if (secret.empty()) {
    return Fail(Error::InvalidArgument("AWS " + where + " has no aws_secret_access_key"));
  }
  ResolvedAwsCredentials out;
  out.credentials.access_key_id = Secret(key_id);
  out.credentials.secret_access_key = Secret(secret);
  std::string token = value("aws_session_token");
  if (token.empty()) {
    token = value("aws_security_token");
  }
  out.credentials.session_token = Secret(token);
  out.source = where;
  return out;
}

}  // namespace modelpulse::collector
