#include "common/probe_series.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <deque>

namespace modelpulse {
namespace {

using Kind = ProbeSeries::Kind;
using N = ProbeNumber;
using F = ProbeField;

constexpr ProbeSeries Number(F field, const char* name, const char* help, N input) {
  return {field, name, help, "", Kind::kNumber, input, input, Outcome::kOk};
}
constexpr ProbeSeries OutcomeIs(F field, const char* name, const char* help, Outcome outcome) {
  return {field, name, help, "", Kind::kOutcomeIs, N::kOutcome, N::kOutcome, outcome};
}

constexpr const char* kRemainingRatio = "probe_ratelimit_remaining_ratio";
constexpr const char* kRemainingRatioHelp =
    "Remaining share of the provider's rate limit after the last probe.";

constexpr std::array<ProbeSeries, kProbeFieldCount> kTable = {
    OutcomeIs(F::kSuccess, "probe_success", "1 if the last probe succeeded, else 0.", Outcome::kOk),
    Number(F::kTotal, "probe_duration_seconds", "Total duration of the last probe.",
           N::kTotalSeconds),
    Number(F::kDns, "probe_dns_seconds", "DNS lookup duration of the last probe.", N::kDnsSeconds),
    Number(F::kConnect, "probe_connect_seconds", "TCP connect duration of the last probe.",
           N::kConnectSeconds),
    Number(F::kTls, "probe_tls_seconds", "TLS handshake duration of the last probe.",
           N::kTlsSeconds),
    Number(F::kFirstByte, "probe_first_byte_seconds",
           "Time from request start to the first response byte.", N::kFirstByteSeconds),
    Number(F::kTtft, "probe_ttft_seconds", "Time from request start to the first content token.",
           N::kTtftSeconds),
    Number(F::kFirstAnswer, "probe_first_answer_token_seconds",
           "Time from request start to the first answer (non-reasoning) token.",
           N::kFirstAnswerSeconds),
    Number(F::kInterTokenLatency, "probe_inter_token_latency_seconds",
           "Mean time between output tokens in the last probe.", N::kInterTokenLatencySeconds),
    Number(F::kOutputTokensPerSecond, "probe_output_tokens_per_second",
           "Output tokens per second in the last probe.", N::kOutputTokensPerSecond),
    Number(F::kOutputTokens, "probe_output_tokens",
           "Output tokens reported by the provider for the last probe.", N::kOutputTokens),
    Number(F::kHttpStatus, "probe_http_status_code",
           "HTTP status of the last probe, 0 if none arrived.", N::kHttpStatus),
    OutcomeIs(F::kThrottled, "probe_throttled", "1 if the last probe was throttled (rate limited).",
              Outcome::kThrottled),
    OutcomeIs(F::kOverloaded, "probe_overloaded",
              "1 if the last probe found the provider overloaded.", Outcome::kOverloaded),
    OutcomeIs(F::kQuotaExhausted, "probe_quota_exhausted",
              "1 if the last probe hit a billing or quota limit.", Outcome::kQuotaExhausted),
    ProbeSeries{F::kRequestsRemainingRatio, kRemainingRatio, kRemainingRatioHelp, "requests",
                Kind::kRatio, N::kRequestsRemaining, N::kRequestsLimit, Outcome::kOk},
    ProbeSeries{F::kTokensRemainingRatio, kRemainingRatio, kRemainingRatioHelp, "tokens",
                Kind::kRatio, N::kTokensRemaining, N::kTokensLimit, Outcome::kOk},
    Number(F::kRetryAfter, "probe_retry_after_seconds",
           "Retry-after the provider asked for on the last probe.", N::kRetryAfterSeconds),
    // Last, as field ids never change. Its own series so that an availability SLO can leave
    // auth failures out (ours to fix, not the provider's) in PromQL over the gauges.
    OutcomeIs(F::kAuthFailed, "probe_auth_failed",
              "1 if the last probe's credentials were refused (auth).", Outcome::kAuth),
};

constexpr bool IndexedByField() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].field) != i) {
      return false;
    }
  }
  return true;
}
static_assert(IndexedByField(), "kTable must be indexed by field id");

}  // namespace

ProbeNumbers ProbeNumbersOf(const ProbeResult& p) {
  ProbeNumbers n;
  auto set = [&n](N which, std::optional<double> value) { n[static_cast<size_t>(which)] = value; };
  set(N::kOutcome, static_cast<double>(static_cast<int>(p.outcome)));
  set(N::kHttpStatus, static_cast<double>(p.http_status));
  set(N::kTotalSeconds, p.total_seconds);
  set(N::kDnsSeconds, p.dns_seconds);
  set(N::kConnectSeconds, p.connect_seconds);
  set(N::kTlsSeconds, p.tls_seconds);
  set(N::kFirstByteSeconds, p.first_byte_seconds);
  set(N::kTtftSeconds, p.ttft_seconds);
  set(N::kFirstAnswerSeconds, p.first_answer_token_seconds);
  set(N::kInterTokenLatencySeconds, p.inter_token_latency_seconds);
  set(N::kOutputTokensPerSecond, p.output_tokens_per_second);
  if (p.output_tokens) {
    set(N::kOutputTokens, static_cast<double>(*p.output_tokens));
  }
  set(N::kRequestsRemaining, p.requests.remaining);
  set(N::kRequestsLimit, p.requests.limit);
  set(N::kTokensRemaining, p.tokens.remaining);
  set(N::kTokensLimit, p.tokens.limit);
  set(N::kRetryAfterSeconds, p.retry_after_seconds);
  return n;
}

std::span<const ProbeSeries> ProbeSeriesTable() { return kTable; }

std::optional<double> ProbeSeriesValue(const ProbeSeries& series, std::optional<double> input,
                                       std::optional<double> divisor) {
  switch (series.kind) {
    case Kind::kNumber:
      return input;
    case Kind::kOutcomeIs:
      if (!input) {
        return std::nullopt;
      }
      return static_cast<int>(*input) == static_cast<int>(series.outcome) ? 1.0 : 0.0;
    case Kind::kRatio:
      if (input && divisor && *divisor > 0) {
        return *input / *divisor;
      }
      return std::nullopt;
  }
  return std::nullopt;
}

std::vector<ProbeSample> ProbeSamples(const ProbeResult& result) {
  const ProbeNumbers numbers = ProbeNumbersOf(result);
  std::vector<ProbeSample> out;
  out.reserve(kTable.size());
  for (const ProbeSeries& series : kTable) {
    if (auto value = ProbeSeriesValue(series, numbers)) {
      out.push_back({series.name, series.resource, *value});
    }
  }
  return out;
}

const std::vector<ProbeSeriesInfo>& ProbeSeriesNames() {
  static const std::vector<ProbeSeriesInfo> kNames = [] {
    std::vector<ProbeSeriesInfo> names;
    for (const ProbeSeries& series : kTable) {
      if (names.empty() || std::strcmp(names.back().name, series.name) != 0) {
        names.push_back({series.name, series.help});
      }
    }
    return names;
  }();
  return kNames;
}

namespace {

constexpr double kLatencyBuckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60};
constexpr double kTokensPerSecondBuckets[] = {1,  2,   5,   10,  20,  35,  50,
                                              75, 100, 150, 250, 500, 1000};

using CounterType = ProbeCounterFamily::Type;
const ProbeCounterFamily kCounterFamilies[] = {
    {"modelpulse_probes_total",
     "Probes finished, by outcome class.",
     CounterType::kCounterByOutcome,
     N::kOutcome,
     {}},
    {"modelpulse_probe_ttft_seconds",
     "Time from request start to the first content token, of successful probes.",
     CounterType::kHistogram, N::kTtftSeconds, kLatencyBuckets},
    {"modelpulse_probe_duration_seconds", "Total duration of each successful probe.",
     CounterType::kHistogram, N::kTotalSeconds, kLatencyBuckets},
    {"modelpulse_probe_output_tokens_per_second",
     "Output tokens per second of each successful probe.", CounterType::kHistogram,
     N::kOutputTokensPerSecond, kTokensPerSecondBuckets},
};

// Outcome slots are indexed by the outcome's value.
constexpr bool OutcomesIndexed() {
  for (size_t i = 0; i < kAllOutcomes.size(); ++i) {
    if (static_cast<size_t>(kAllOutcomes[i]) != i) {
      return false;
    }
  }
  return true;
}
static_assert(OutcomesIndexed(), "kAllOutcomes must be in value order");

struct SlotTable {
  std::vector<ProbeCounterSlot> slots;
  std::vector<size_t> first;
};

const SlotTable& Slots() {
  static const SlotTable kSlots = [] {
    SlotTable t;
    static std::deque<std::string> names;  // the suffixed names, alive for the process
    for (size_t f = 0; f < std::size(kCounterFamilies); ++f) {
      const ProbeCounterFamily& family = kCounterFamilies[f];
      t.first.push_back(t.slots.size());
      if (family.type == CounterType::kCounterByOutcome) {
        for (const Outcome outcome : kAllOutcomes) {
          t.slots.push_back({family.name, "outcome", std::string(OutcomeName(outcome)), f});
        }
        continue;
      }
      names.push_back(std::string(family.name) + "_bucket");
      const char* bucket = names.back().c_str();
      names.push_back(std::string(family.name) + "_sum");
      const char* sum = names.back().c_str();
      names.push_back(std::string(family.name) + "_count");
      const char* count = names.back().c_str();
      for (const double bound : family.buckets) {
        t.slots.push_back({bucket, "le", FormatBucketBound(bound), f});
      }
      t.slots.push_back({bucket, "le", "+Inf", f});
      t.slots.push_back({sum, "", "", f});
      t.slots.push_back({count, "", "", f});
    }
    return t;
  }();
  return kSlots;
}

}  // namespace

std::span<const double> ProbeLatencyBuckets() { return kLatencyBuckets; }
std::span<const double> ProbeTokensPerSecondBuckets() { return kTokensPerSecondBuckets; }
std::span<const ProbeCounterFamily> ProbeCounterFamilies() { return kCounterFamilies; }
const std::vector<ProbeCounterSlot>& ProbeCounterSlots() { return Slots().slots; }
size_t ProbeCounterFirstSlot(size_t family) { return Slots().first[family]; }

std::pair<size_t, size_t> ProbeCounterSlotsNamed(std::string_view name) {
  const auto& slots = ProbeCounterSlots();
  size_t first = 0;
  while (first < slots.size() && name != slots[first].name) {
    ++first;
  }
  size_t last = first;
  while (last < slots.size() && name == slots[last].name) {
    ++last;
  }
  return {first, last};
}

std::string FormatBucketBound(double bound) {
  if (std::isinf(bound)) {
    return bound > 0 ? "+Inf" : "-Inf";
  }
  return fmt::format("{}", bound);  // shortest round trip, as Go's FormatFloat(v, 'g', -1)
}

std::optional<double> ProbeHistogramValue(const ProbeCounterFamily& family,
                                          const ProbeNumbers& numbers) {
  // Successful probes only: a failure's timing (a 429 answered in 40 ms, a timeout at the
  // limit) says nothing about the provider's latency and would skew histogram_quantile(); the
  // report's percentiles and the latency SLOs (rules/slo.h ClassifyProbe) count successes only.
  const auto outcome = numbers[static_cast<size_t>(ProbeNumber::kOutcome)];
  if (!outcome || *outcome != static_cast<double>(static_cast<int>(Outcome::kOk))) {
    return std::nullopt;
  }
  const auto value = numbers[static_cast<size_t>(family.input)];
  if (family.type != CounterType::kHistogram || !value || std::isnan(*value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace modelpulse
