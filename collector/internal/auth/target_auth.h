#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_TARGET_AUTH_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_TARGET_AUTH_H_

// Resolving the credentials a config names, while a target is read: a secret by reference (an
// environment variable, a file, a systemd credential) and a target's `auth:` (exactly one way to
// authenticate, checked against what the provider accepts, with AWS and Google service-account
// credentials read through the injected environment). Messages name variables, files and
// profiles, never a value. Private to the collector; collector/target_config.cpp is the caller.

#include <optional>
#include <string>
#include <string_view>

#include "collector/collector.h"
#include "common/secret_reference.h"

namespace modelpulse::collector {

// common/secret_reference.h's ReadSecretReference in ctx, warning (WarnIfSecretFileExposed) about
// each file others may read.
std::optional<Secret> ResolveSecret(SecretSource source, const yaml::Entry& e,
                                    std::string_view path, ConfigReadContext& ctx);

// What `auth:` resolved to. `source` says where the credential came from, for DescribeConfig;
// it names variables, files and profiles, never values.
struct ParsedAuth {
  TargetAuth auth;
  Secret key;  // the API key or bearer token (TargetSpec::api_key)
  std::string source = "none";
  bool chose_mode = false;  // one mode key was given (resolved or not)
};

// Reads `auth:` of a target (`e`; `where` names the target in messages). With `provider` known, a
// mode the provider does not accept is an error at its key, and the credential is not resolved.
ParsedAuth ReadAuth(const yaml::Entry& e, std::string_view where, std::optional<Provider> provider,
                    ConfigReadContext& ctx);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_TARGET_AUTH_H_
