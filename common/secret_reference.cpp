#include "common/secret_reference.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <filesystem>
#include <utility>

namespace modelpulse {
namespace {

std::string TrimTrailingNewlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.pop_back();
  }
  return text;
}

// The file a file or credential reference names; nullopt (with the problem in ctx.diag) when a
// credential cannot be located.
std::optional<std::string> FileOf(SecretSource source, const yaml::Entry& e, std::string_view path,
                                  const std::string& reference, const SecretReadContext& ctx) {
  if (source == SecretSource::kFile) {
    return yaml::ResolvePath(ctx.folder, reference).string();
  }
  if (reference.find('/') != std::string::npos) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": a credential name cannot contain '/'", path));
    return std::nullopt;
  }
  std::optional<std::string> directory = ctx.env.GetEnv("CREDENTIALS_DIRECTORY");
  if (!directory || directory->empty()) {
    ctx.diag.Add(e.ValueMark(),
                 fmt::format("\"{}\": credential {} needs $CREDENTIALS_DIRECTORY, which is "
                             "not set (LoadCredential= in the systemd unit)",
                             path, reference));
    return std::nullopt;
  }
  return (std::filesystem::path(*directory) / reference).string();
}

}  // namespace

std::optional<Secret> ReadSecretReference(SecretSource source, const yaml::Entry& e,
                                          std::string_view path, const SecretReadContext& ctx) {
  std::optional<std::string> reference = yaml::ReadNonEmptyString(e, path, ctx.diag);
  if (!reference) {
    return std::nullopt;
  }
  if (source == SecretSource::kEnv) {
    if (!yaml::IsIdentifier(*reference)) {
      ctx.diag.Add(
          e.ValueMark(),
          fmt::format("\"{}\": \"{}\" is not a valid environment variable name", path, *reference));
      return std::nullopt;
    }
    std::optional<std::string> value = ctx.env.GetEnv(*reference);
    if (!value || value->empty()) {
      ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": environment variable {} is {}", path,
                                              *reference, value ? "empty" : "not set"));
      return std::nullopt;
    }
    return Secret(std::move(*value));
  }
  std::optional<std::string> file = FileOf(source, e, path, *reference, ctx);
  if (!file) {
    return std::nullopt;
  }
  Result<std::string> content = ctx.env.ReadFile(*file);
  if (!content) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", path, content.error().message));
    return std::nullopt;
  }
  if (ctx.on_file_read) {
    ctx.on_file_read(*file);
  }
  std::string value = TrimTrailingNewlines(std::move(*content));
  if (value.empty()) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": file {} is empty", path, *file));
    return std::nullopt;
  }
  return Secret(std::move(value));
}

std::optional<std::string> ExposedSecretFileWarning(const std::string& path, unsigned mode) {
  const bool others = (mode & S_IROTH) != 0;
  const bool group = (mode & S_IRGRP) != 0;
  if (!others && !group) {
    return std::nullopt;
  }
  // Like ssh's "UNPROTECTED PRIVATE KEY FILE" notice, but a warning: refusing would turn a
  // loose umask into a monitoring outage.
  return fmt::format(
      "secret file {} is readable by {} (mode {:04o}); only its owner should read "
      "it: chmod 600 {}",
      path, others ? "others" : "its group", mode & 07777U, path);
}

std::optional<std::string> SecretFileExposure(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return std::nullopt;
  }
  return ExposedSecretFileWarning(path, static_cast<unsigned>(info.st_mode));
}

}  // namespace modelpulse
