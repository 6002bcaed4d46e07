#ifndef MODELPULSE_COMMON_ENVIRONMENT_H_
#define MODELPULSE_COMMON_ENVIRONMENT_H_

// What the config loader and credential resolvers may ask of the outside world: environment
// variables, files (including systemd credentials under $CREDENTIALS_DIRECTORY) and globs. One
// interface, injected by reference, so tests need neither setenv nor real files.

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace modelpulse {

// Implementations must not put file contents into error messages: files may hold secrets.
class Environment {
 public:
  virtual ~Environment() = default;
  // The value of the environment variable, or nullopt when it is not set.
  virtual std::optional<std::string> GetEnv(const std::string& name) const = 0;
  // The whole file. Fails with kNotFound or kIo and a message that names the path only.
  virtual Result<std::string> ReadFile(const std::string& path) const = 0;
  // The paths that match a shell glob pattern, sorted; empty when nothing matches (a pattern
  // without wildcards matches itself when that file exists). Fails with kIo on a read error.
  virtual Result<std::vector<std::string>> Glob(const std::string& pattern) const = 0;
};

// getenv(3), the file system and glob(3). Stateless and thread-safe.
class SystemEnvironment final : public Environment {
 public:
  std::optional<std::string> GetEnv(const std::string& name) const override;
  Result<std::string> ReadFile(const std::string& path) const override;
  Result<std::vector<std::string>> Glob(const std::string& pattern) const override;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_ENVIRONMENT_H_
