#ifndef MODELPULSE_STORAGE_DDSKETCH_H_
#define MODELPULSE_STORAGE_DDSKETCH_H_

// A mergeable quantile sketch for the probe summaries (storage/probe_digest.h, issue 10 item 4),
// after DDSketch (Masson, Rim, Lee, VLDB 2019). Positive values fall into logarithmic buckets
// [gamma^(i-1), gamma^i) with gamma = (1 + a) / (1 - a); a bucket answers 2 gamma^i / (gamma + 1),
// which is within relative error `a` of every value in it. So a quantile read from a sketch is
// within `a` (kRelativeAccuracy, 1%) of the exact value of the same rank, sketches merge by adding
// counts (an hour's sketches sum to the day's, exactly as if the day had been sketched at once),
// and the size is bounded by the range of values, not their number (10 ms to 10 min at 1% is
// about 550 buckets; an hour of one target's latencies is typically a few dozen).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace modelpulse::storage {

class DDSketch {
 public:
  static constexpr double kRelativeAccuracy = 0.01;
  // Values at or below this (zero, negatives, sub-nanosecond times) are counted as 0.
  static constexpr double kMinIndexable = 1e-9;

  void Add(double value, int64_t count = 1);
  void Merge(const DDSketch& other);

  int64_t Count() const { return zero_count_ + bucket_total_; }
  bool Empty() const { return Count() == 0; }

  // The lower q-quantile (the value of rank floor(q * (count - 1)) in sorted order), within
  // kRelativeAccuracy of it; nullopt when empty. q is clamped to [0, 1].
  std::optional<double> Quantile(double q) const;
  // The value of rank `rank` (0-based, clamped to [0, count - 1]) in sorted order, within
  // kRelativeAccuracy of it; nullopt when empty.
  std::optional<double> ValueAtRank(int64_t rank) const;
  // How many values are at most `threshold`, counting each value as its bucket's estimate: exact
  // except for values within kRelativeAccuracy of the threshold, which may land on either side.
  int64_t CountAtMost(double threshold) const;

  // A compact byte string for a BLOB column: varints of the zero count, the first bucket index
  // (zigzag) and each bucket's count from there. Decode returns nullopt for bytes Encode cannot
  // produce.
  std::string Encode() const;
  static std::optional<DDSketch> Decode(std::string_view bytes);

  bool operator==(const DDSketch& other) const = default;

 private:
  static int IndexOf(double value);
  static double ValueOf(int index);
  void AddToBucket(int index, int64_t count);

  int64_t zero_count_ = 0;
  int64_t bucket_total_ = 0;
  int first_index_ = 0;          // index of counts_[0]
  std::vector<int64_t> counts_;  // dense from first_index_; no leading or trailing zeros
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_DDSKETCH_H_
