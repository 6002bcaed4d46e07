#ifndef MODELPULSE_COLLECTOR_INTERNAL_AUTH_TOKEN_COMMAND_H_
#define MODELPULSE_COLLECTOR_INTERNAL_AUTH_TOKEN_COMMAND_H_

// Bearer tokens printed by a command (`az account get-access-token --query accessToken -o tsv`,
// `gcloud auth print-access-token`), for AuthMode::kTokenCommand. Private to the collector.
//
// The command's output is the credential: it is never logged and never copied into an error.
// Errors say only how the command ended (exit status, signal, timeout, output over the limit).

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/common.h"

namespace modelpulse::collector {

// Errors raised while obtaining a credential carry this location, so the transport can report
// them as an `auth` outcome rather than a client error (see IsCredentialError).
inline constexpr std::string_view kCredentialErrorLocation = "credential";

inline Error CredentialError(std::string message) {
  return Error{Error::Code::kUnavailable, std::move(message),
               std::string(kCredentialErrorLocation)};
}
inline bool IsCredentialError(const Error& error) {
  return error.location == kCredentialErrorLocation;
}

struct TokenCommandLimits {
  Millis timeout{10000};                // from start until the command has exited
  size_t max_output_bytes = 64 * 1024;  // more stdout than this is refused (and the command killed)
  // The clock `timeout` runs on; null: the system clock, as a real child runs in real time.
  // Tests inject theirs to time a command out without waiting for it.
  const Clock* clock = nullptr;
};

// Runs `argv` (argv[0] looked up in PATH, no shell) with stdin and stderr on /dev/null, in a
// process group of its own, and returns its stdout with surrounding whitespace removed. Stderr is
// discarded because tools print diagnostics that may quote credentials.
// Errors (all CredentialError): empty argv; the command could not start (errno text); it ran past
// `timeout` (its process group is killed); it printed more than max_output_bytes (killed); it
// exited non-zero ("exited with status N", output not quoted) or was killed by a signal; its
// output was empty or not one header-safe token (whitespace or control characters inside).
Result<Secret> RunTokenCommand(const std::vector<std::string>& argv,
                               const TokenCommandLimits& limits);

struct TokenCommandCacheOptions {
  TokenCommandLimits limits;
  // After a failure the command is not run again for this long; the failure is returned instead.
  // This bounds how often a hanging command can hold its target's probes back.
  Millis failure_backoff{10000};
};

// Tokens per command line, reused for the target's token_command_ttl. Thread-safe: concurrent
// callers for the same command wait for one run; callers for other commands are not blocked.
//
// Token() runs the command synchronously; the prober calls BuildRequest for such targets on a
// thread of their own, so a slow command delays only its target, by up to limits.timeout once per
// ttl (or per failure_backoff while it fails).
class TokenCommandCache {
 public:
  explicit TokenCommandCache(TokenCommandCacheOptions options = {}) : options_(options) {}
  TokenCommandCache(const TokenCommandCache&) = delete;
  TokenCommandCache& operator=(const TokenCommandCache&) = delete;

  // The cached token for `argv` while younger than `ttl` (measured on `now_unix_ms`, the caller's
  // clock), else a fresh one from RunTokenCommand. Errors are RunTokenCommand's, prefixed
  // "token command: ".
  Result<Secret> Token(const std::vector<std::string>& argv, Millis ttl, int64_t now_unix_ms);

  // Replaces every token this cache holds, wherever it occurs in `text`, with "<redacted>": for
  // provider messages that might echo a credential back.
  std::string Redact(std::string text) const;

 private:
  struct Entry {
    std::mutex mu;
    Secret token;             // Guarded by mu. Empty until the first success.
    int64_t fetched_ms = 0;   // Guarded by mu.
    int64_t retry_at_ms = 0;  // Guarded by mu. No run before this after a failure.
    Error last_error;         // Guarded by mu.
  };

  std::shared_ptr<Entry> EntryFor(const std::vector<std::string>& argv);

  const TokenCommandCacheOptions options_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::shared_ptr<Entry>> entries_;  // Guarded by mu_.
  // The most recent tokens handed out (bounded), for Redact without waiting on a running command.
  std::vector<Secret> issued_;  // Guarded by mu_.
};

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_AUTH_TOKEN_COMMAND_H_
