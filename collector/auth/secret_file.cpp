#include "collector/internal/auth/secret_file.h"

#include <spdlog/spdlog.h>

#include "common/secret_reference.h"

namespace modelpulse::collector {

void WarnIfSecretFileExposed(const std::string& path) {
  if (std::optional<std::string> warning = SecretFileExposure(path)) {
    spdlog::warn("{}", *warning);
  }
}

}  // namespace modelpulse::collector
