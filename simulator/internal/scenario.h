#ifndef MODELPULSE_SIMULATOR_INTERNAL_SCENARIO_H_
#define MODELPULSE_SIMULATOR_INTERNAL_SCENARIO_H_

// The scenario file: which simulated endpoints exist, how fast they answer and how they fail over
// time. Plain data plus the loader; the format is documented in config/scenarios/demo.yaml and
// simulator/README.md. Private to the simulator.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace modelpulse::simulator {

using Micros = std::chrono::microseconds;

// What the simulator does with one request. The names are the scenario file's `kind` values and
// the journal's `behaviour`.
enum class Behaviour {
  kOk,
  kRateLimit,          // 429 rate_limit_exceeded (injected, or the configured window ran dry)
  kInsufficientQuota,  // 429 insufficient_quota
  kOverloaded503,
  kServerError500,
  kUnauthorized401,
  kErrorIn200,       // HTTP 200 whose body (or a stream chunk) is an error object
  kTruncatedStream,  // stops half way, without the terminator
  kMalformedJson,
  kEmptyCompletion,
  kHang,              // headers are never sent
  kHangAfterHeaders,  // headers (and the role chunk) are sent, then nothing
  // Some content, then the provider's mid-stream overload error in a 200 stream (Anthropic's
  // `event: error` overloaded_error); without streaming, the provider's overload status.
  kOverloadedMidstream,
  kQuotaPerDay,         // a daily quota ran dry (Google: QuotaFailure ...PerDay...)
  kExceptionMidstream,  // half the content, then the protocol's in-stream throttling error
  kModelNotReady,       // Bedrock ModelNotReadyException (429)
};

std::string_view BehaviourName(Behaviour behaviour);
std::optional<Behaviour> BehaviourFromName(std::string_view name);

// A random quantity in the file: a bare number (constant) or {distribution: ..., ...}.
struct Distribution {
  enum class Kind { kConstant, kUniform, kNormal, kLogNormal };
  Kind kind = Kind::kConstant;
  double value = 0;   // constant
  double mean = 0;    // normal
  double stddev = 0;  // normal
  double median = 0;  // lognormal
  double sigma = 0;   // lognormal
  double min = 0;     // uniform bounds; clamps for normal and lognormal
  double max = 1e18;
};

// Draws one value, clamped to [min, max] and never negative.
double Draw(const Distribution& distribution, std::mt19937_64& rng);

struct ErrorRule {
  Behaviour kind = Behaviour::kServerError500;
  double probability = 0;  // of each request in the phase
};

struct Phase {
  std::string name;
  std::optional<Micros> duration;  // absent on the last phase: it holds forever
  std::vector<ErrorRule> errors;
  // Latency and length overrides for this phase (a slow "overload" phase, say).
  std::optional<Distribution> first_token_ms;
  std::optional<Distribution> inter_token_ms;
  std::optional<Distribution> output_tokens;
};

struct RateLimitSpec {
  int64_t requests = 0;  // 0: not limited
  int64_t tokens = 0;    // 0: not limited
  Micros window{std::chrono::seconds(60)};
};

struct EndpointSpec {
  std::string name;      // mount point: /<name>/...
  std::string protocol;  // "openai"
  std::string api_key;   // empty: any key (or none) is accepted
  std::string model;     // empty: echo the requested model
  Distribution first_token_ms;
  Distribution inter_token_ms;
  Distribution output_tokens;
  std::optional<RateLimitSpec> ratelimit;
  std::vector<Phase> phases;  // at least one
  // Protocol-specific switches (`options:` in the file), checked by the protocol at load.
  std::map<std::string, std::string> options;
  // The scenario file's folder: relative paths in `options` are relative to it.
  std::string base_dir;
};

struct Scenario {
  std::string path;
  uint64_t seed = 42;
  Micros hang_cap{std::chrono::seconds(120)};  // longest time a hanging request holds a worker
  size_t journal_size = 10000;
  std::vector<EndpointSpec> endpoints;
};

// Loads and checks a scenario file. Errors are kParse with location "file:line:column" (1-based),
// or kIo when the file cannot be read.
Result<Scenario> LoadScenario(const std::string& path);
// The same, from text; `name` is used as the file in error locations.
Result<Scenario> ParseScenario(std::string_view text, const std::string& name);

// Go time.Duration.String() style, as OpenAI's x-ratelimit-reset-* headers: "6m0s", "1.5s",
// "120ms", "0s". Millisecond resolution.
std::string FormatGoDuration(Micros duration);

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_SCENARIO_H_
