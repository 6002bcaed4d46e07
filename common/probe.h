#ifndef MODELPULSE_COMMON_PROBE_H_
#define MODELPULSE_COMMON_PROBE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/labels.h"

namespace modelpulse {

// One class per probe; DESIGN.md §3 defines each. The numeric values are stored in SQLite: append
// new classes at the end, never renumber.
enum class Outcome : int {
  kOk = 0,
  kThrottled = 1,
  kQuotaExhausted = 2,
  kOverloaded = 3,
  kTimeout = 4,
  kNetwork = 5,
  kAuth = 6,
  kClientError = 7,
  kServerError = 8,
  kInvalidResponse = 9,
  kContentMismatch = 10,
};

inline constexpr std::array<Outcome, 11> kAllOutcomes = {Outcome::kOk,
                                                         Outcome::kThrottled,
                                                         Outcome::kQuotaExhausted,
                                                         Outcome::kOverloaded,
                                                         Outcome::kTimeout,
                                                         Outcome::kNetwork,
                                                         Outcome::kAuth,
                                                         Outcome::kClientError,
                                                         Outcome::kServerError,
                                                         Outcome::kInvalidResponse,
                                                         Outcome::kContentMismatch};

// "ok", "throttled", "quota_exhausted", ... as used in labels, JSON and logs.
std::string_view OutcomeName(Outcome outcome);
std::optional<Outcome> OutcomeFromName(std::string_view name);

// Headroom for one rate-limited resource (requests or tokens), as the provider reported it.
struct RateLimit {
  std::optional<double> limit;
  std::optional<double> remaining;
  std::optional<double> reset_seconds;  // time until the budget is fully replenished
};

// The unit of truth: one synthetic request to one target. dns, connect and tls are the durations
// of those phases alone (as blackbox_exporter reports them); first_byte, ttft, first_answer_token,
// last_token and total are seconds from the start of the request. A phase that did not happen (no
// TLS on http://, no token before a failure) is nullopt. Never holds a secret: `error` is built
// from status, class and provider message only.
struct ProbeResult {
  std::string target;         // the target's unique name
  Labels labels;              // target, provider, cloud, region, model and the target's own labels
  int64_t start_unix_ms = 0;  // wall clock at request start

  std::optional<double> dns_seconds;
  std::optional<double> connect_seconds;
  std::optional<double> tls_seconds;
  std::optional<double> first_byte_seconds;
  std::optional<double> ttft_seconds;                // first content delta (reasoning included)
  std::optional<double> first_answer_token_seconds;  // first answer (non-reasoning) delta
  std::optional<double> last_token_seconds;
  double total_seconds = 0;

  int http_status = 0;  // 0 when no response arrived
  Outcome outcome = Outcome::kOk;

  std::optional<int64_t> input_tokens;  // from the provider's usage, never counted
  std::optional<int64_t> output_tokens;
  std::optional<double> inter_token_latency_seconds;  // (last - first) / (output_tokens - 1)
  std::optional<double> output_tokens_per_second;
  int64_t chunk_count = 0;
  // The tokens priced at the target's configured prices, as the prober charged them to the daily
  // budget; nullopt when the target has no price. Not stored: /metrics adds it up.
  std::optional<double> estimated_cost_dollars;

  RateLimit requests;
  RateLimit tokens;
  std::optional<double> retry_after_seconds;

  std::string request_id;
  std::string error;  // short, secret-free; empty on success
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_PROBE_H_
