#ifndef MODELPULSE_STORAGE_PROBE_DIGEST_H_
#define MODELPULSE_STORAGE_PROBE_DIGEST_H_

// What the probe summaries (migration 9, storage/internal/summary.h) keep of one target's probes
// over a stretch of time (an hour, a UTC day, a report's period): enough for a report's
// availability, shares, percentiles, tokens/s and exact downtime minutes without the rows.
// Digests of disjoint stretches merge exactly (counts add, sketches add, minute sets unite).

#include <array>
#include <cstdint>
#include <map>
#include <optional>

#include "common/common.h"
#include "storage/ddsketch.h"

namespace modelpulse::storage {

inline constexpr size_t kOutcomeCount = kAllOutcomes.size();
inline constexpr int64_t kSummaryHourMs = 3'600'000;
inline constexpr int64_t kSummaryDayMs = 86'400'000;

// A set of outcomes, bit (1 << outcome value) each.
using OutcomeMask = uint32_t;
inline constexpr OutcomeMask MaskOf(Outcome outcome) {
  return OutcomeMask{1} << static_cast<int>(outcome);
}

struct ProbeDigest {
  int64_t probes = 0;
  std::array<int64_t, kOutcomeCount> outcomes{};  // by Outcome value; exact
  DDSketch first_token;         // ttft seconds of ok probes that have one (1 % relative error)
  DDSketch total;               // total seconds of ok probes
  double tokens_per_s_sum = 0;  // over ok probes that have output tokens per second
  int64_t tokens_per_s_count = 0;
  // The UTC minutes (start, ms) that held probes and no ok probe, each with the outcomes seen in
  // it: a minute is down for an SLO exactly when its mask is inside the SLO's bad set.
  std::map<int64_t, OutcomeMask> down_minutes;

  int64_t Count(Outcome outcome) const { return outcomes[static_cast<size_t>(outcome)]; }
  // Adds the digest of another stretch of time (minutes present in both are OR-ed, which is only
  // right when the stretches are disjoint or neither minute had an ok probe).
  void Merge(const ProbeDigest& other);
};

// Folds one target's probes, given in start order, into a digest (the minute sets need the
// order: a minute is closed when a later one begins).
class DigestFolder {
 public:
  void Add(int64_t start_ms, Outcome outcome, std::optional<double> ttft_s, double total_s,
           std::optional<double> tokens_per_s);
  // Everything added so far; the folder starts again empty.
  ProbeDigest Take();
  bool Empty() const { return digest_.probes == 0; }

 private:
  void CloseMinute();

  ProbeDigest digest_;
  int64_t minute_ = 0;
  bool minute_open_ = false;
  bool minute_ok_ = false;
  OutcomeMask minute_mask_ = 0;
};

inline int64_t FloorTo(int64_t t_ms, int64_t span_ms) {
  const int64_t q = t_ms / span_ms;
  return (t_ms % span_ms < 0 ? q - 1 : q) * span_ms;
}

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_PROBE_DIGEST_H_
