#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_SECRET_FILE_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_SECRET_FILE_H_

// The permission check ssh makes on a private key, for every file a credential is read from
// (api_key_file, bearer_token_file, systemd credentials, service-account keys, AWS shared
// credentials). Private to the collector.

#include <optional>
#include <string>

namespace modelpulse::collector {

// Logs common/secret_reference.h's SecretFileExposure for `path` as a warning. Called where a
// config load reads the file, so it is said once per load (and reload), never per probe. Silent
// when the file cannot be stat'ed (reading it reported that) or is not a regular file.
void WarnIfSecretFileExposed(const std::string& path);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_SECRET_FILE_H_
