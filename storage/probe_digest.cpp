#include "storage/probe_digest.h"

namespace modelpulse::storage {

void ProbeDigest::Merge(const ProbeDigest& other) {
  probes += other.probes;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    outcomes[i] += other.outcomes[i];
  }
  first_token.Merge(other.first_token);
  total.Merge(other.total);
  tokens_per_s_sum += other.tokens_per_s_sum;
  tokens_per_s_count += other.tokens_per_s_count;
  for (const auto& [minute, mask] : other.down_minutes) {
    down_minutes[minute] |= mask;
  }
}

void DigestFolder::CloseMinute() {
  if (minute_open_ && !minute_ok_) {
    digest_.down_minutes[minute_] |= minute_mask_;
  }
  minute_open_ = false;
}

void DigestFolder::Add(int64_t start_ms, Outcome outcome, std::optional<double> ttft_s,
                       double total_s, std::optional<double> tokens_per_s) {
  const int64_t minute = FloorTo(start_ms, 60'000);
  if (!minute_open_ || minute != minute_) {
    CloseMinute();
    minute_ = minute;
    minute_open_ = true;
    minute_ok_ = false;
    minute_mask_ = 0;
  }
  ++digest_.probes;
  const auto index = static_cast<size_t>(outcome);
  if (index < kOutcomeCount) {
    ++digest_.outcomes[index];
  }
  if (outcome == Outcome::kOk) {
    minute_ok_ = true;
    if (ttft_s) {
      digest_.first_token.Add(*ttft_s);
    }
    digest_.total.Add(total_s);
    if (tokens_per_s) {
      digest_.tokens_per_s_sum += *tokens_per_s;
      ++digest_.tokens_per_s_count;
    }
  } else {
    minute_mask_ |= MaskOf(outcome);
  }
}

ProbeDigest DigestFolder::Take() {
  CloseMinute();
  ProbeDigest out = std::move(digest_);
  digest_ = ProbeDigest();
  return out;
}

}  // namespace modelpulse::storage
