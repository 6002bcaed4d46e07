#ifndef MODELPULSE_COLLECTOR_COLLECTOR_H_
#define MODELPULSE_COLLECTOR_COLLECTOR_H_

// The collector's public surface: what a target is, and the prober that probes targets.
// Light on purpose: no libcurl, no JSON headers here.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/common.h"

namespace modelpulse::collector {

enum class Provider { kOpenAI, kOpenAICompatible, kAzure, kAnthropic, kBedrock, kVertex, kGemini };

// "openai", "openai_compatible", "azure", "anthropic", "bedrock", "vertex", "gemini".
std::string_view ProviderName(Provider provider);
std::optional<Provider> ProviderFromName(std::string_view name);

struct Timeouts {
  Millis connect{5000};
  Millis first_token{20000};  // from request start to the first content token
  Millis total{60000};
};

enum class ConnectionReuse { kFresh, kKeepWarm };

// One configured endpoint, after defaults were applied and secrets resolved. Plain data.
struct TargetSpec {
  std::string name;  // unique; the `target` label
  Provider provider = Provider::kOpenAI;
  std::string model;           // the family compared across clouds; the `model` label
  std::string provider_model;  // the id sent on the wire (deployment, model id)
  std::string base_url;        // e.g. https://api.openai.com/v1
  Secret api_key;
  // Extra request headers from the config. Values are treated as secret-bearing: never logged.
  std::vector<std::pair<std::string, Secret>> headers;
  Labels labels;  // the full series label set: target, provider, cloud, region, model, own labels
  Millis interval{60000};
  bool stream = true;
  std::string prompt = "Reply with the single word OK.";
  int max_tokens = 16;
  std::string expect;  // ECMAScript regex on the answer; empty means no check. (?i) prefix = icase
  Timeouts timeouts;
  ConnectionReuse connection = ConnectionReuse::kFresh;
  std::optional<double> input_price_per_million;
  std::optional<double> output_price_per_million;
  std::optional<int64_t> daily_token_budget;
  std::optional<double> daily_cost_budget;
};

struct ProberOptions {
  size_t max_concurrency = 64;         // probes in flight at once, over all targets
  size_t max_response_bytes = 1 << 20; // a larger body is cut off and classified invalid_response
  double jitter_fraction = 0.1;        // each interval varies by up to this fraction
  Millis shutdown_grace{5000};         // in-flight probes may finish within this, then are cancelled
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

// One probe, blocking, for `modelpulse probe`. Failures are outcomes, never errors.
ProbeResult ProbeOnce(const TargetSpec& target, const ProberOptions& options, const Clock& clock);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_COLLECTOR_H_
