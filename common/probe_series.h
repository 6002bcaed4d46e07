#ifndef MODELPULSE_COMMON_PROBE_SERIES_H_
#define MODELPULSE_COMMON_PROBE_SERIES_H_

// The probe series of DESIGN.md §3, defined once: their names, help texts and resource labels,
// the field ids the rollup table stores, and how each is computed from a probe. /metrics, the
// storage rollups and narrow reads, and the rule engine's sample source all read this table.
// Beside the per-probe gauges, the same table defines the counters and histograms
// (ProbeCounterFamilies: names, help, inputs and buckets) that /metrics exports and that the rule
// engine derives from the stored probes, so rules over them travel to Prometheus.

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/probe.h"

namespace modelpulse {

// The numbers of a probe record that the series are computed from. Storage keeps one column per
// number, in this order (storage/rollup.h names them).
enum class ProbeNumber : int {
  kOutcome = 0,  // static_cast<int>(Outcome)
  kHttpStatus,
  kTotalSeconds,
  kDnsSeconds,
  kConnectSeconds,
  kTlsSeconds,
  kFirstByteSeconds,
  kTtftSeconds,
  kFirstAnswerSeconds,
  kInterTokenLatencySeconds,
  kOutputTokensPerSecond,
  kOutputTokens,
  kRequestsRemaining,
  kRequestsLimit,
  kTokensRemaining,
  kTokensLimit,
  kRetryAfterSeconds,
};
inline constexpr size_t kProbeNumberCount = 17;
using ProbeNumbers = std::array<std::optional<double>, kProbeNumberCount>;

// The numbers of one probe as it was measured (NaN stays NaN; storage turns it into none).
ProbeNumbers ProbeNumbersOf(const ProbeResult& probe);

// The id of each series, stored in the rollup table: append only, never renumber.
enum class ProbeField : int {
  kSuccess = 0,  // 1 when the outcome is ok, else 0
  kTotal = 1,
  kDns = 2,
  kConnect = 3,
  kTls = 4,
  kFirstByte = 5,
  kTtft = 6,
  kFirstAnswer = 7,
  kInterTokenLatency = 8,
  kOutputTokensPerSecond = 9,
  kOutputTokens = 10,
  kHttpStatus = 11,
  kThrottled = 12,               // outcome throttled
  kOverloaded = 13,              // outcome overloaded
  kQuotaExhausted = 14,          // outcome quota_exhausted
  kRequestsRemainingRatio = 15,  // requests remaining / limit, when both are known and limit > 0
  kTokensRemainingRatio = 16,
  kRetryAfter = 17,
  kAuthFailed = 18,  // outcome auth
};
inline constexpr int kProbeFieldCount = 19;

// One series (one name and resource) and how a probe yields its value.
struct ProbeSeries {
  enum class Kind {
    kNumber,     // the number `input` itself
    kOutcomeIs,  // 1 when the outcome is `outcome`, else 0
    kRatio,      // input / divisor, when both are known and divisor > 0
  };
  ProbeField field;
  const char* name;
  const char* help;
  const char* resource;  // the `resource` label; empty for every series but the rate limit's
  Kind kind;
  ProbeNumber input;
  ProbeNumber divisor;  // kRatio only
  Outcome outcome;      // kOutcomeIs only
};

// Every series, indexed by field id (and so in /metrics order).
std::span<const ProbeSeries> ProbeSeriesTable();
inline const ProbeSeries& ProbeSeriesOf(ProbeField field) {
  return ProbeSeriesTable()[static_cast<size_t>(field)];
}

// The series' value from its input (and divisor) numbers; nullopt when the probe has none (a
// phase that did not happen). NaN passes through.
std::optional<double> ProbeSeriesValue(const ProbeSeries& series, std::optional<double> input,
                                       std::optional<double> divisor);
inline std::optional<double> ProbeSeriesValue(const ProbeSeries& series,
                                              const ProbeNumbers& numbers) {
  return ProbeSeriesValue(series, numbers[static_cast<size_t>(series.input)],
                          numbers[static_cast<size_t>(series.divisor)]);
}

// One sample a probe contributes to one series. `resource` is the extra label of
// probe_ratelimit_remaining_ratio and empty otherwise.
struct ProbeSample {
  const char* name;
  const char* resource;
  double value;
};

// The samples one probe yields, blackbox-style, in field order; phases that did not happen yield
// none, so /metrics and the rule engine see exactly the same series.
std::vector<ProbeSample> ProbeSamples(const ProbeResult& result);

// The distinct series names with their help texts, in field order.
struct ProbeSeriesInfo {
  const char* name;
  const char* help;
};
const std::vector<ProbeSeriesInfo>& ProbeSeriesNames();

// The counters and histograms of DESIGN.md §3's per-probe numbers, defined once beside the
// gauges: /metrics exports them (prometheus-cpp counters and histograms, reset at each daemon
// start), and the rule engine derives the same series from the stored probes (a counter's value
// at T is the count of stored probes of that series up to T since the target's history began).
// rate(), increase() and histogram_quantile() agree between the two: they read differences
// within the window, Prometheus repairs the /metrics resets, and stored history has none.
struct ProbeCounterFamily {
  enum class Type {
    kCounterByOutcome,  // one counter per outcome class, label outcome="<OutcomeName>"
    kHistogram,         // _bucket{le}, _sum, _count of `input`: successful probes that have it
  };
  const char* name;  // the family name (histogram series append _bucket, _sum, _count)
  const char* help;
  Type type;
  ProbeNumber input;                // kHistogram only
  std::span<const double> buckets;  // kHistogram only: upper bounds, ascending, +Inf implied
};
std::span<const ProbeCounterFamily> ProbeCounterFamilies();

// Bucket bounds, stated once: LLM latency from a fast model's 50 ms to a minute, and output
// speed from 1 to 1000 tokens per second.
std::span<const double> ProbeLatencyBuckets();
std::span<const double> ProbeTokensPerSecondBuckets();

// One series of the counter families: its name (with the histogram suffix) and its one extra
// label ("outcome" or "le", empty for _sum and _count). Slots are numbered densely across all
// families, in family order.
struct ProbeCounterSlot {
  const char* name;
  const char* label_name;
  std::string label_value;
  size_t family;
};
const std::vector<ProbeCounterSlot>& ProbeCounterSlots();
// The slot of a series name: the slots whose name equals `name`, as [first, last).
std::pair<size_t, size_t> ProbeCounterSlotsNamed(std::string_view name);

// A histogram bound as Prometheus writes it in `le` ("0.05", "1", "+Inf").
std::string FormatBucketBound(double bound);

// Calls add(slot, increment) for every series one probe moves, increments of 0 included (a
// histogram observation creates every bucket, as a client library does). A histogram observes
// successful probes only; one whose input the probe lacks (or is NaN) is not observed.
template <typename Add>
void ForEachProbeIncrement(const ProbeNumbers& numbers, Add&& add);

// The histogram value of `family` in a probe, nullopt when not observed (failed, no value).
std::optional<double> ProbeHistogramValue(const ProbeCounterFamily& family,
                                          const ProbeNumbers& numbers);
// The first slot of each family.
size_t ProbeCounterFirstSlot(size_t family);

template <typename Add>
void ForEachProbeIncrement(const ProbeNumbers& numbers, Add&& add) {
  const auto families = ProbeCounterFamilies();
  for (size_t f = 0; f < families.size(); ++f) {
    const ProbeCounterFamily& family = families[f];
    const size_t first = ProbeCounterFirstSlot(f);
    if (family.type == ProbeCounterFamily::Type::kCounterByOutcome) {
      const auto outcome = numbers[static_cast<size_t>(ProbeNumber::kOutcome)];
      if (outcome && *outcome >= 0 && *outcome < static_cast<double>(kAllOutcomes.size())) {
        add(first + static_cast<size_t>(*outcome), 1.0);
      }
      continue;
    }
    const auto value = ProbeHistogramValue(family, numbers);
    if (!value) {
      continue;
    }
    size_t slot = first;
    for (const double bound : family.buckets) {
      add(slot++, *value <= bound ? 1.0 : 0.0);
    }
    add(slot++, 1.0);     // le="+Inf"
    add(slot++, *value);  // _sum
    add(slot, 1.0);       // _count
  }
}

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_PROBE_SERIES_H_
