#include "collector/internal/auth/secret_file.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

namespace modelpulse::collector {

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

void WarnIfSecretFileExposed(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return;
  }
  if (std::optional<std::string> warning =
          ExposedSecretFileWarning(path, static_cast<unsigned>(info.st_mode))) {
    spdlog::warn("{}", *warning);
  }
}

}  // namespace modelpulse::collector
