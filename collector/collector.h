#ifndef MODELPULSE_COLLECTOR_COLLECTOR_H_
#define MODELPULSE_COLLECTOR_COLLECTOR_H_

// The collector's public surface: what a target is, what each provider accepts in a config file,
// and the prober that probes targets. Light on purpose: no libcurl, JSON or yaml-cpp headers here.
//
// Where things live: collector/providers/<p>.cpp holds everything about one provider (wire
// protocol, default endpoint and cloud, region rules, accepted auth forms and the help for a
// missing credential); collector/auth/ resolves every credential a config names (keys, bearer
// tokens, token commands, AWS and Google service-account credentials); collector/target_config.cpp
// reads a target's provider-owned keys from the config. Adding a provider is one adapter file.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/common.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelpulse {
class Environment;  // common/environment.h
class Heartbeat;    // common/heartbeat.h
namespace yaml {
class Diagnostics;  // common/yaml_reader.h
struct Entry;
}  // namespace yaml
}  // namespace modelpulse

namespace modelpulse::collector {

enum class Provider { kOpenAI, kOpenAICompatible, kAzure, kAnthropic, kBedrock, kVertex, kGemini };

// "openai", "openai_compatible", "azure", "anthropic", "bedrock", "vertex", "gemini".
std::string_view ProviderName(Provider provider);
std::optional<Provider> ProviderFromName(std::string_view name);
// Every provider's name, comma-separated, in declaration order: for "unknown provider" messages.
std::string ProviderNameList();

struct Timeouts {
  Millis connect{5000};
  Millis first_token{20000};  // from request start to the first content token
  Millis total{60000};
};

enum class ConnectionReuse { kFresh, kKeepWarm };

// How a probe proves who it is. The config loader resolves every reference (environment
// variable, file, AWS shared-credentials profile) into these values; a token command runs at probe
// time, since its tokens expire.
enum class AuthMode {
  kNone,
  kApiKey,        // the provider's own key header (Bearer, api-key, x-api-key, x-goog-api-key)
  kBearerToken,   // Authorization: Bearer (Azure Entra ID token, Bedrock API key)
  kTokenCommand,  // a command prints a bearer token (az / gcloud print-access-token)
  kAwsSigV4,      // AWS Signature Version 4 with `aws` credentials
  kGoogleServiceAccount,  // RS256 JWT from a service-account key, exchanged at token_url
};

struct AwsCredentials {
  Secret access_key_id;
  Secret secret_access_key;
  Secret session_token;  // empty unless temporary credentials
};

struct TargetAuth {
  AuthMode mode = AuthMode::kNone;
  std::vector<std::string> token_command;  // argv, run without a shell
  Millis token_command_ttl{300000};        // reuse a command's token this long
  AwsCredentials aws;
  Secret google_service_account_json;  // the key file's content
  std::string token_url;               // OAuth token endpoint; default from the key file
};

// Which of a cloud's APIs a target speaks, where a cloud offers more than one.
enum class ApiFlavor {
  kNative,            // Azure deployments, Bedrock Converse, Vertex Gemini generateContent
  kOpenAICompatible,  // Azure v1, Bedrock's and Vertex's OpenAI-compatible endpoints
};

// One configured endpoint, after defaults were applied and secrets resolved. Plain data.
struct TargetSpec {
  std::string name;  // unique; the `target` label
  Provider provider = Provider::kOpenAI;
  std::string model;           // the family compared across clouds; the `model` label
  std::string provider_model;  // the id sent on the wire (deployment, model id)
  std::string base_url;        // e.g. https://api.openai.com/v1
  Secret api_key;              // AuthMode::kApiKey and kBearerToken
  TargetAuth auth;             // everything beyond a static key
  // Extra request headers from the config. Values are treated as secret-bearing: never logged.
  std::vector<std::pair<std::string, Secret>> headers;
  Labels labels;  // the full series label set: target, provider, cloud, region, model, own labels
  Millis interval{60000};
  bool stream = true;
  std::string prompt = "Reply with the single word OK.";
  int max_tokens = 16;
  std::string expect;  // RE2 regex searched in the answer; empty means no check. (?i): any case
  Timeouts timeouts;
  ConnectionReuse connection = ConnectionReuse::kFresh;
  // Provider details; each is empty or default where a provider has no such notion.
  ApiFlavor flavor = ApiFlavor::kNative;
  std::string region;       // bedrock: us-east-1 (SigV4 scope); vertex: us-central1 or global
  std::string project;      // vertex: the Google Cloud project id
  std::string api_version;  // azure: api-version of the deployment path; empty = v1 path
  std::string anthropic_version = "2023-06-01";  // anthropic-version header
  std::string openai_path_prefix;  // bedrock/vertex OpenAI-compatible path prefix, e.g. /openai/v1
  std::optional<double> input_price_per_million;
  std::optional<double> output_price_per_million;
  std::optional<int64_t> daily_token_budget;
  std::optional<double> daily_cost_budget;
};

// ---------------------------------------------------------------------------------------------
// Reading a target's provider-owned keys from the main config (the daemon reads the rest).

// The keys of a target entry that the collector reads: base_url, auth, headers and the provider
// details (region, project, api_version, anthropic_version, api, openai_path_prefix).
std::span<const std::string_view> ProviderOwnedTargetKeys();

// What reading a config may use: where problems go, the outside world, and the folder relative
// paths start at.
struct ConfigReadContext {
  yaml::Diagnostics& diag;
  const Environment& env;
  std::string folder;
  // False for a syntax-only check (promtool's `check config --syntax-only`): credentials that must
  // be parsed to be checked (an AWS shared-credentials profile, a Google service-account key) are
  // checked for their form only and not read, so a config lints on a machine without them.
  bool read_credential_files = true;
};

// Reads the provider-owned keys of one target (`entries`: those of its entries whose key
// ProviderOwnedTargetKeys lists) for `provider` (nullopt when missing or unknown: only the keys
// are checked then). `node` is the target's map and `where` names it in messages ("target
// \"x\""). Fills spec.provider, base_url (given or the provider's default), headers, the provider
// details, api_key and auth (secrets resolved through ctx.env), and the `provider`, `cloud` and
// `region` labels. Problems go to ctx.diag. Returns a secret-free account of where the credential
// comes from ("api key from $OPENAI_API_KEY", "none"), for DescribeTargetDetails' callers.
std::string ReadProviderKeys(const YAML::Node& node, std::string_view where,
                             std::optional<Provider> provider,
                             std::span<const yaml::Entry* const> entries, TargetSpec& spec,
                             ConfigReadContext& ctx);

// The provider details of a target for `modelpulse check config`: ", api native, project p,
// api-version v, path prefix /x" (each part only where it applies), or "".
std::string DescribeProviderDetails(const TargetSpec& target);

struct ProberOptions {
  size_t max_concurrency = 64;          // probes in flight at once, over all targets
  size_t max_response_bytes = 1 << 20;  // a larger body is cut off and classified invalid_response
  double jitter_fraction = 0.1;         // each interval varies by up to this fraction
  Millis shutdown_grace{5000};  // in-flight probes may finish within this, then are cancelled
  // Beaten by the event loop on every round and set idle while it waits in epoll (the service
  // watchdog's view of the loop); null: none. REQUIRES: outlives the prober.
  Heartbeat* heartbeat = nullptr;
};

// Where finished probes go. Called on the prober's thread: implementations must be quick and
// must not call back into the prober.
class ProbeSink {
 public:
  virtual ~ProbeSink() = default;
  virtual void OnProbe(const ProbeResult& result) = 0;
};

// Per-target state visible to /metrics and the JSON API.
struct TargetStatus {
  std::string name;
  Labels labels;
  bool budget_paused = false;  // the daily token or cost budget is spent; resumes next UTC day
  int64_t tokens_today = 0;
  double cost_today = 0;
};

// Probes every target on its interval (start times spread, jittered), on one libcurl multi event
// loop, at most max_concurrency at once. Thread-safe: SetTargets, InFlight and Status may be called
// from any thread while Run is looping on another.
class Prober {
 public:
  // `clock` must outlive the prober. Wall time (timestamps, the budget's UTC day) may be simulated;
  // monotonic time must be real (SystemClock's), because the schedule shares the event loop with
  // libcurl's own timers and phase timings are stamped on bytes arriving on real sockets.
  static Result<std::unique_ptr<Prober>> Create(const ProberOptions& options, ProbeSink& sink,
                                                const Clock& clock);
  virtual ~Prober() = default;

  // Replaces the target set. Targets whose name is kept keep their schedule and budget state.
  virtual void SetTargets(std::vector<TargetSpec> targets) = 0;
  // Runs the event loop until `stop` is requested, then lets in-flight probes finish within
  // shutdown_grace and cancels the rest (cancelled probes are not reported).
  virtual void Run(std::stop_token stop) = 0;
  virtual size_t InFlight() const = 0;
  virtual std::vector<TargetStatus> Status() const = 0;
};

// One probe, blocking, for `modelpulse probe`. Failures are outcomes, never errors. `clock` as for
// Prober::Create.
ProbeResult ProbeOnce(const TargetSpec& target, const ProberOptions& options, const Clock& clock);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_COLLECTOR_H_
