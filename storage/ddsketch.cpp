#include "storage/ddsketch.h"

#include <algorithm>
#include <cmath>

#include "storage/internal/varint.h"

namespace modelpulse::storage {
namespace {

constexpr double kGamma = (1 + DDSketch::kRelativeAccuracy) / (1 - DDSketch::kRelativeAccuracy);
const double kLogGamma = std::log(kGamma);

}  // namespace

int DDSketch::IndexOf(double value) {
  return static_cast<int>(std::ceil(std::log(value) / kLogGamma));
}

double DDSketch::ValueOf(int index) { return 2 * std::pow(kGamma, index) / (kGamma + 1); }

void DDSketch::Add(double value, int64_t count) {
  if (count <= 0 || std::isnan(value)) {
    return;
  }
  if (!(value > kMinIndexable)) {
    zero_count_ += count;
    return;
  }
  // Infinities and huge values land in the last representable bucket rather than overflowing.
  AddToBucket(IndexOf(std::min(value, 1e300)), count);
}

void DDSketch::AddToBucket(int index, int64_t count) {
  if (counts_.empty()) {
    first_index_ = index;
    counts_.push_back(0);
  } else if (index < first_index_) {
    counts_.insert(counts_.begin(), static_cast<size_t>(first_index_ - index), 0);
    first_index_ = index;
  } else if (index >= first_index_ + static_cast<int>(counts_.size())) {
    counts_.resize(static_cast<size_t>(index - first_index_ + 1), 0);
  }
  counts_[static_cast<size_t>(index - first_index_)] += count;
  bucket_total_ += count;
}

void DDSketch::Merge(const DDSketch& other) {
  zero_count_ += other.zero_count_;
  for (size_t i = 0; i < other.counts_.size(); ++i) {
    if (other.counts_[i] != 0) {
      AddToBucket(other.first_index_ + static_cast<int>(i), other.counts_[i]);
    }
  }
}

std::optional<double> DDSketch::Quantile(double q) const {
  const int64_t n = Count();
  if (n == 0) {
    return std::nullopt;
  }
  q = std::clamp(q, 0.0, 1.0);
  return ValueAtRank(static_cast<int64_t>(std::floor(q * static_cast<double>(n - 1))));
}

std::optional<double> DDSketch::ValueAtRank(int64_t rank) const {
  const int64_t n = Count();
  if (n == 0) {
    return std::nullopt;
  }
  rank = std::clamp<int64_t>(rank, 0, n - 1);
  if (rank < zero_count_) {
    return 0.0;
  }
  int64_t seen = zero_count_;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen > rank) {
      return ValueOf(first_index_ + static_cast<int>(i));
    }
  }
  return ValueOf(first_index_ + static_cast<int>(counts_.size()) - 1);
}

int64_t DDSketch::CountAtMost(double threshold) const {
  if (!(threshold >= 0)) {
    return 0;
  }
  int64_t n = zero_count_;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (ValueOf(first_index_ + static_cast<int>(i)) > threshold) {
      break;
    }
    n += counts_[i];
  }
  return n;
}

std::string DDSketch::Encode() const {
  std::string out;
  PutVarint(out, static_cast<uint64_t>(zero_count_));
  const auto first = static_cast<int64_t>(first_index_);
  PutVarint(out, (static_cast<uint64_t>(first) << 1) ^ static_cast<uint64_t>(first >> 63));
  for (int64_t c : counts_) {
    PutVarint(out, static_cast<uint64_t>(c));
  }
  return out;
}

std::optional<DDSketch> DDSketch::Decode(std::string_view bytes) {
  DDSketch s;
  uint64_t zero = 0;
  uint64_t zigzag = 0;
  if (!GetVarint(bytes, zero) || !GetVarint(bytes, zigzag)) {
    return std::nullopt;
  }
  s.zero_count_ = static_cast<int64_t>(zero);
  const auto first = static_cast<int64_t>(zigzag >> 1) ^ -static_cast<int64_t>(zigzag & 1);
  if (first < -100'000 || first > 100'000) {
    return std::nullopt;
  }
  s.first_index_ = static_cast<int>(first);
  while (!bytes.empty()) {
    uint64_t c = 0;
    if (!GetVarint(bytes, c)) {
      return std::nullopt;
    }
    s.counts_.push_back(static_cast<int64_t>(c));
    s.bucket_total_ += static_cast<int64_t>(c);
  }
  if (s.counts_.empty()) {
    s.first_index_ = 0;
  }
  return s;
}

}  // namespace modelpulse::storage
