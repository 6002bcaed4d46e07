#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_AWS_CREDENTIALS_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_AWS_CREDENTIALS_H_

// Resolves AWS credentials the way the AWS CLI and SDKs do for the cases modelpulse supports:
// environment variables, then the shared credentials file and profile. Called while a target's
// `auth:` is read; the environment and the file system are injected so tests need neither.
// Errors name the variable, profile and file, never a credential value.

#include <string>

#include "collector/collector.h"
#include "common/environment.h"
#include "common/result.h"

namespace modelpulse::collector {

struct AwsCredentialOptions {
  // A profile named in the config. When set, environment credentials are ignored and this
  // profile must exist (botocore's rule for an explicit profile). Empty: AWS_PROFILE, then
  // "default".
  std::string profile;
  // The shared credentials file. Empty: AWS_SHARED_CREDENTIALS_FILE, then ~/.aws/credentials.
  // A leading "~/" is expanded with HOME.
  std::string credentials_file;
};

struct ResolvedAwsCredentials {
  AwsCredentials credentials;
  // Where they came from, safe to print: "environment" or "profile 'dev' in
  // /home/u/.aws/credentials".
  std::string source;
};

// Environment first (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) unless
// options.profile is set; then the profile's aws_access_key_id, aws_secret_access_key and
// aws_session_token in the shared credentials file. Fails with kNotFound when no source has
// credentials, kInvalidArgument when a source is incomplete (a key id without its secret), and
// kIo when the file exists but cannot be read.
Result<ResolvedAwsCredentials> ResolveAwsCredentials(const AwsCredentialOptions& options,
                                                     const Environment& env);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_AWS_CREDENTIALS_H_
