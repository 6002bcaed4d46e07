#include "common/sample_source.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <type_traits>
#include <utility>

namespace modelpulse {
namespace {

// Prometheus's StaleNaN.
constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;

}  // namespace

double StaleNaN() { return std::bit_cast<double>(kStaleNaNBits); }

bool IsStaleNaN(double v) { return std::bit_cast<uint64_t>(v) == kStaleNaNBits; }

void KahanSum::Add(double inc) {
  const double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

double QuantileOfSorted(double q, const std::vector<double>& values) {
  if (values.empty() || std::isnan(q)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (q < 0) {
    return -std::numeric_limits<double>::infinity();
  }
  if (q > 1) {
    return std::numeric_limits<double>::infinity();
  }
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const double lower = std::max(0.0, std::floor(rank));
  const double upper = std::min(n - 1, lower + 1);
  const double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

double AggregateSamples(RangeAggregate aggregate, double q, const std::vector<Sample>& samples) {
  switch (aggregate) {
    case RangeAggregate::kAvg: {
      // 2.42: incremental mean with compensation, Inf handled like funcAvgOverTime.
      double count = 0;
      KahanSum mean;
      for (const Sample& s : samples) {
        count++;
        if (std::isinf(mean.sum)) {
          if (std::isinf(s.v) && (mean.sum > 0) == (s.v > 0)) {
            continue;
          }
          if (!std::isinf(s.v) && !std::isnan(s.v)) {
            continue;
          }
        }
        mean.Add(s.v / count - mean.sum / count);
      }
      if (std::isinf(mean.sum)) {
        return mean.sum;
      }
      return mean.sum + mean.c;
    }
    case RangeAggregate::kSum: {
      KahanSum sum;
      for (const Sample& s : samples) {
        sum.Add(s.v);
      }
      return std::isinf(sum.sum) ? sum.sum : sum.sum + sum.c;
    }
    case RangeAggregate::kCount:
      return static_cast<double>(samples.size());
    case RangeAggregate::kMin: {
      double min = samples[0].v;
      for (const Sample& s : samples) {
        if (s.v < min || std::isnan(min)) {
          min = s.v;
        }
      }
      return min;
    }
    case RangeAggregate::kMax: {
      double max = samples[0].v;
      for (const Sample& s : samples) {
        if (s.v > max || std::isnan(max)) {
          max = s.v;
        }
      }
      return max;
    }
    case RangeAggregate::kQuantile: {
      std::vector<double> values;
      values.reserve(samples.size());
      for (const Sample& s : samples) {
        values.push_back(s.v);
      }
      // NaN first, as Prometheus's sort.Float64s.
      std::sort(values.begin(), values.end(),
                [](double a, double b) { return (std::isnan(a) && !std::isnan(b)) || a < b; });
      return QuantileOfSorted(q, values);
    }
    case RangeAggregate::kRate:
    case RangeAggregate::kIncrease:
      break;  // needs the window: ExtrapolatedRate
  }
  return 0;
}

RateInputs RateInputsOf(const std::vector<Sample>& samples, bool is_counter) {
  RateInputs inputs;
  inputs.count = samples.size();
  if (samples.empty()) {
    return inputs;
  }
  inputs.first = samples.front();
  inputs.last = samples.back();
  if (is_counter) {
    double previous = 0;
    for (const Sample& s : samples) {
      if (s.v < previous) {
        inputs.resets += previous;
      }
      previous = s.v;
    }
  }
  return inputs;
}

double ExtrapolatedRate(const RateInputs& inputs, int64_t range_start_ms, int64_t range_end_ms,
                        bool is_counter, bool is_rate) {
  const Sample& first = inputs.first;
  const Sample& last = inputs.last;
  double result = last.v - first.v;
  if (is_counter) {
    result += inputs.resets;
  }
  double duration_to_start = static_cast<double>(first.t_ms - range_start_ms) / 1000;
  double duration_to_end = static_cast<double>(range_end_ms - last.t_ms) / 1000;
  double sampled_interval = static_cast<double>(last.t_ms - first.t_ms) / 1000;
  double average_between = sampled_interval / static_cast<double>(inputs.count - 1);
  if (is_counter && result > 0 && first.v >= 0) {
    double duration_to_zero = sampled_interval * (first.v / result);
    if (duration_to_zero < duration_to_start) {
      duration_to_start = duration_to_zero;
    }
  }
  double threshold = average_between * 1.1;
  double extrapolate_to = sampled_interval;
  extrapolate_to += duration_to_start < threshold ? duration_to_start : average_between / 2;
  extrapolate_to += duration_to_end < threshold ? duration_to_end : average_between / 2;
  double factor = extrapolate_to / sampled_interval;
  if (is_rate) {
    factor /= static_cast<double>(range_end_ms - range_start_ms) / 1000.0;
  }
  return result * factor;
}

Result<std::vector<SeriesAggregate>> SampleSource::SelectAggregate(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
    RangeAggregate aggregate, double q) const {
  auto series = Select(matchers, from_ms, to_ms);
  if (!series) {
    return Fail(series.error());
  }
  // What the evaluator's matrix selection keeps: the closed window, no stale markers, in time
  // order (stable, as SelectMatrix sorts).
  std::vector<SeriesAggregate> out;
  std::vector<Sample> window;
  for (Series& s : *series) {
    window.clear();
    for (const Sample& sample : s.samples) {
      if (sample.t_ms >= from_ms && sample.t_ms <= to_ms && !IsStaleNaN(sample.v)) {
        window.push_back(sample);
      }
    }
    if (window.empty()) {
      continue;
    }
    std::stable_sort(window.begin(), window.end(),
                     [](const Sample& a, const Sample& b) { return a.t_ms < b.t_ms; });
    if (aggregate == RangeAggregate::kRate || aggregate == RangeAggregate::kIncrease) {
      if (window.size() >= 2) {
        out.push_back(
            {std::move(s.labels), ExtrapolatedRate(RateInputsOf(window, true), from_ms, to_ms, true,
                                                   aggregate == RangeAggregate::kRate)});
      }
      continue;
    }
    out.push_back({std::move(s.labels), AggregateSamples(aggregate, q, window)});
  }
  return out;
}

Result<std::vector<SeriesSteps>> SampleSource::SelectAggregateSteps(
    const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
    int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const {
  // A label set a step answers twice (two sources of one name) stays two series.
  std::map<Labels, std::vector<SeriesSteps>> by_labels;
  size_t steps = 0;
  for (int64_t to = first_to_ms; to <= last_to_ms; to += step_ms) {
    auto step = SelectAggregate(matchers, to - range_ms, to, aggregate, q);
    if (!step) {
      return Fail(step.error());
    }
    for (SeriesAggregate& a : *step) {
      std::vector<SeriesSteps>& same = by_labels[a.labels];
      auto free = std::find_if(same.begin(), same.end(), [steps](const SeriesSteps& s) {
        return s.present.size() <= steps || !s.present[steps];
      });
      SeriesSteps& series = free != same.end() ? *free : same.emplace_back();
      series.values.resize(steps + 1);
      series.present.resize(steps + 1);
      series.values[steps] = a.value;
      series.present[steps] = true;
    }
    ++steps;
    if (last_to_ms - to < step_ms) {
      break;  // the next step would pass last_to_ms, or overflow
    }
  }
  std::vector<SeriesSteps> out;
  for (auto& [labels, same] : by_labels) {
    for (SeriesSteps& series : same) {
      series.labels = labels;
      series.values.resize(steps);
      series.present.resize(steps);
      out.push_back(std::move(series));
    }
  }
  return out;
}

namespace {

template <typename SeriesList>
std::vector<SeriesAggregate> TakeStep(SeriesList&& series, size_t step) {
  std::vector<SeriesAggregate> out;
  for (auto& s : series) {
    if (step < s.present.size() && s.present[step]) {
      if constexpr (std::is_const_v<std::remove_reference_t<decltype(s)>>) {
        out.push_back({s.labels, s.values[step]});
      } else {
        out.push_back({std::move(s.labels), s.values[step]});
      }
    }
  }
  return out;
}

}  // namespace

std::vector<SeriesAggregate> AggregatesAtStep(const std::vector<SeriesSteps>& series, size_t step) {
  return TakeStep(series, step);
}

std::vector<SeriesAggregate> AggregatesAtStep(std::vector<SeriesSteps>&& series, size_t step) {
  return TakeStep(series, step);
}

}  // namespace modelpulse
