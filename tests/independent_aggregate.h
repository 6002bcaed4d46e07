#ifndef MODELPULSE_TESTS_INDEPENDENT_AGGREGATE_H_
#define MODELPULSE_TESTS_INDEPENDENT_AGGREGATE_H_

// The range functions computed from their definitions, without the evaluator's code, so that a
// wrong fold in AggregateSamples (common/sample_source.h) cannot agree with itself. Sums are
// added in time order (a different summation than the evaluator's may differ in the last bits);
// quantile_over_time is Prometheus's linear interpolation between the closest ranks, for q in
// [0, 1]. Test-only.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "common/sample_source.h"

namespace modelpulse::testing {

// REQUIRES: `window` is not empty.
inline double IndependentAggregate(RangeAggregate kind, double q,
                                   const std::vector<Sample>& window) {
  std::vector<double> values;
  double sum = 0;
  for (const Sample& s : window) {
    values.push_back(s.v);
    sum += s.v;
  }
  const double count = static_cast<double>(values.size());
  std::sort(values.begin(), values.end());
  switch (kind) {
    case RangeAggregate::kCount:
      return count;
    case RangeAggregate::kSum:
      return sum;
    case RangeAggregate::kAvg:
      return sum / count;
    case RangeAggregate::kMin:
      return values.front();
    case RangeAggregate::kMax:
      return values.back();
    case RangeAggregate::kQuantile: {
      const double rank = q * (count - 1);
      const size_t lower = static_cast<size_t>(std::max(0.0, std::floor(rank)));
      const size_t upper = std::min(values.size() - 1, lower + 1);
      const double weight = rank - std::floor(rank);
      return values[lower] * (1 - weight) + values[upper] * weight;
    }
    case RangeAggregate::kRate:
    case RangeAggregate::kIncrease:
      break;  // not an aggregate of values alone
  }
  return std::nan("");
}

}  // namespace modelpulse::testing

#endif  // MODELPULSE_TESTS_INDEPENDENT_AGGREGATE_H_
