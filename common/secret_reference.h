#ifndef MODELPULSE_COMMON_SECRET_REFERENCE_H_
#define MODELPULSE_COMMON_SECRET_REFERENCE_H_

// A secret a config names by reference (an environment variable, a file, a systemd credential),
// read the same way for a target's API key (collector/) and a receiver's token or HMAC secret
// (alerting/). Messages name the key, the variable and the file, never what they hold. Includes
// yaml_reader.h, so only config readers include it.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/environment.h"
#include "common/secret.h"
#include "common/yaml_reader.h"

namespace modelpulse {

// Where a secret a config names is kept.
enum class SecretSource { kEnv, kFile, kCredential };

struct SecretReadContext {
  yaml::Diagnostics& diag;
  const Environment& env;
  const std::string& folder;  // a relative file is relative to the config file's folder
  // Called with each file a secret was read from, so the caller can warn when others may read it
  // (SecretFileExposure); may be empty.
  std::function<void(const std::string& file)> on_file_read;
};

// Resolves the reference at `e` (a variable name, a file path, or a systemd credential name under
// $CREDENTIALS_DIRECTORY); trailing line breaks of a file are dropped. `path` names the key in
// messages. Problems (unset or empty variable, unreadable or empty file) go to ctx.diag and give
// nullopt.
std::optional<Secret> ReadSecretReference(SecretSource source, const yaml::Entry& e,
                                          std::string_view path, const SecretReadContext& ctx);

// The warning for a secret file whose permission bits `mode` let its group or anyone else read
// it ("secret file F is readable by others (mode 0644): chmod 600 F"), or nullopt when only its
// owner can. Names the file and its mode, never its content.
std::optional<std::string> ExposedSecretFileWarning(const std::string& path, unsigned mode);

// ExposedSecretFileWarning for the file at `path` as it is on disk; nullopt also when it cannot be
// stat'ed (reading it reported that) or is not a regular file.
std::optional<std::string> SecretFileExposure(const std::string& path);

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_SECRET_REFERENCE_H_
