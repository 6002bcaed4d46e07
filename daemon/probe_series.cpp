#include "daemon/probe_series.h"

namespace modelpulse::daemon {

const std::vector<ProbeSeriesInfo>& ProbeSeriesNames() {
  static const std::vector<ProbeSeriesInfo> kNames = {
      {"probe_success", "1 if the last probe succeeded, else 0."},
      {"probe_duration_seconds", "Total duration of the last probe."},
      {"probe_dns_seconds", "DNS lookup duration of the last probe."},
      {"probe_connect_seconds", "TCP connect duration of the last probe."},
      {"probe_tls_seconds", "TLS handshake duration of the last probe."},
      {"probe_first_byte_seconds", "Time from request start to the first response byte."},
      {"probe_ttft_seconds", "Time from request start to the first content token."},
      {"probe_first_answer_token_seconds",
       "Time from request start to the first answer (non-reasoning) token."},
      {"probe_inter_token_latency_seconds", "Mean time between output tokens in the last probe."},
      {"probe_output_tokens_per_second", "Output tokens per second in the last probe."},
      {"probe_output_tokens", "Output tokens reported by the provider for the last probe."},
      {"probe_http_status_code", "HTTP status of the last probe, 0 if none arrived."},
      {"probe_throttled", "1 if the last probe was throttled (rate limited)."},
      {"probe_overloaded", "1 if the last probe found the provider overloaded."},
      {"probe_quota_exhausted", "1 if the last probe hit a billing or quota limit."},
      {"probe_ratelimit_remaining_ratio",
       "Remaining share of the provider's rate limit after the last probe."},
      {"probe_retry_after_seconds", "Retry-after the provider asked for on the last probe."},
  };
  return kNames;
}

std::vector<ProbeSample> ProbeSamples(const ProbeResult& r) {
  std::vector<ProbeSample> out;
  out.reserve(18);
  auto add = [&out](const char* name, const std::optional<double>& value) {
    if (value) {
      out.push_back({name, "", *value});
    }
  };
  add("probe_success", r.outcome == Outcome::kOk ? 1.0 : 0.0);
  add("probe_duration_seconds", r.total_seconds);
  add("probe_dns_seconds", r.dns_seconds);
  add("probe_connect_seconds", r.connect_seconds);
  add("probe_tls_seconds", r.tls_seconds);
  add("probe_first_byte_seconds", r.first_byte_seconds);
  add("probe_ttft_seconds", r.ttft_seconds);
  add("probe_first_answer_token_seconds", r.first_answer_token_seconds);
  add("probe_inter_token_latency_seconds", r.inter_token_latency_seconds);
  add("probe_output_tokens_per_second", r.output_tokens_per_second);
  if (r.output_tokens) {
    add("probe_output_tokens", static_cast<double>(*r.output_tokens));
  }
  add("probe_http_status_code", static_cast<double>(r.http_status));
  add("probe_throttled", r.outcome == Outcome::kThrottled ? 1.0 : 0.0);
  add("probe_overloaded", r.outcome == Outcome::kOverloaded ? 1.0 : 0.0);
  add("probe_quota_exhausted", r.outcome == Outcome::kQuotaExhausted ? 1.0 : 0.0);
  for (const auto& [resource, limit] :
       {std::pair{"requests", &r.requests}, std::pair{"tokens", &r.tokens}}) {
    if (limit->limit && limit->remaining && *limit->limit > 0) {
      out.push_back(
          {"probe_ratelimit_remaining_ratio", resource, *limit->remaining / *limit->limit});
    }
  }
  add("probe_retry_after_seconds", r.retry_after_seconds);
  return out;
}

}  // namespace modelpulse::daemon
