#ifndef MODELPULSE_COMMON_SAMPLE_SOURCE_H_
#define MODELPULSE_COMMON_SAMPLE_SOURCE_H_

// Where rule evaluation reads samples: the series model (Sample, Series, LabelMatcher) and the
// SampleSource interface with its pushdown of range aggregates. Here rather than in rules/ so
// that storage/ can implement the long-window reads without including rules/.

#include <cstdint>
#include <string>
#include <vector>

#include "common/labels.h"
#include "common/result.h"

namespace modelpulse {

struct Sample {
  int64_t t_ms = 0;
  double v = 0;
};

struct Series {
  Labels labels;                // includes __name__
  std::vector<Sample> samples;  // ascending by time
};

struct LabelMatcher {
  enum class Type { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  Type type = Type::kEqual;
  std::string name;
  std::string value;
  bool operator==(const LabelMatcher&) const = default;
};

// A range function a source may compute itself instead of returning raw samples (the pushdown):
// count/sum/avg/min/max/quantile_over_time, present/absent_over_time through kCount, and rate()
// and increase() (kRate, kIncrease: a series with fewer than two samples in the window yields
// none, as in the evaluator).
enum class RangeAggregate { kCount, kSum, kAvg, kMin, kMax, kQuantile, kRate, kIncrease };

// What Prometheus's extrapolatedRate reads of a series' samples in a window: the first and the
// last, how many, and what resets add (the value before each drop).
struct RateInputs {
  Sample first;
  Sample last;
  size_t count = 0;
  double resets = 0;
};
RateInputs RateInputsOf(const std::vector<Sample>& samples, bool is_counter);
// Prometheus 2.42's extrapolatedRate over the window [range_start_ms, range_end_ms]; REQUIRES
// inputs.count >= 2. The evaluator's rate/increase/delta and every source's pushdown use it, so
// they agree bit for bit.
double ExtrapolatedRate(const RateInputs& inputs, int64_t range_start_ms, int64_t range_end_ms,
                        bool is_counter, bool is_rate);

struct SeriesAggregate {
  Labels labels;  // includes __name__
  double value = 0;
};

// The evaluator's own arithmetic for one series (Prometheus 2.42's, bit for bit): `samples` in
// ascending time, none of them stale markers, at least one. `q` is quantile_over_time's argument.
// Not for kRate and kIncrease, which need the window (ExtrapolatedRate).
double AggregateSamples(RangeAggregate aggregate, double q, const std::vector<Sample>& samples);

// Prometheus's quantile() (linear interpolation between closest ranks, "type 7") over `values`
// already sorted ascending (NaN first). NaN for no values or a NaN q, -Inf/+Inf for q < 0 / > 1.
double QuantileOfSorted(double q, const std::vector<double>& values);

// Staleness. Prometheus marks a vanished series with this NaN bit pattern (StaleNaN); rule output
// series that disappear get one, sources may return one, and the evaluator treats such a sample
// as "no value".
double StaleNaN();
bool IsStaleNaN(double v);

// Neumaier-compensated summation step, as Prometheus's kahanSumInc: sum + c is the total.
struct KahanSum {
  double sum = 0;
  double c = 0;
  void Add(double inc);
};

// One series' answers to the steps of a range query's pushdown (SampleSource::
// SelectAggregateSteps): for step i, values[i] where present[i] (the series had a sample in that
// window). Series-major, so that a source computes a series' steps together and the label set is
// built once, not once a step.
struct SeriesSteps {
  Labels labels;  // includes __name__
  std::vector<double> values;
  std::vector<bool> present;
};

// What SelectAggregate answers for step `step`, from a series-major answer: the present series,
// in the order of `series`. The second form moves the labels out (an answer read at one step).
std::vector<SeriesAggregate> AggregatesAtStep(const std::vector<SeriesSteps>& series, size_t step);
std::vector<SeriesAggregate> AggregatesAtStep(std::vector<SeriesSteps>&& series, size_t step);

// Where the evaluator reads raw samples. Storage's reader, the in-memory recent window and the
// promtool-test loader each satisfy it.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Every series matching all matchers, with its samples in [from_ms, to_ms] (both inclusive).
  virtual Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers,
                                             int64_t from_ms, int64_t to_ms) const = 0;
  // For each series matching all matchers (a superset is fine: the evaluator re-applies them)
  // with at least one non-stale sample in [from_ms, to_ms], the aggregate of those samples.
  // The default calls Select and AggregateSamples, so a source that does not override it gives
  // the same bits as the evaluator without the pushdown. An override (rollups) must be exact for
  // count, min, max and quantile; for sum and avg it may differ by float rounding order.
  virtual Result<std::vector<SeriesAggregate>> SelectAggregate(
      const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
      RangeAggregate aggregate, double q) const;
  // A range query's pushdown, all steps at once: for the windows [to - range_ms, to] with to =
  // first_to_ms, first_to_ms + step_ms, ... up to last_to_ms, what SelectAggregate answers for
  // each, per series: every series present at some step, with one value slot per step (the
  // same bits as SelectAggregate at that step), in label order. The default asks SelectAggregate
  // once a step; a source over storage overrides it to read what the steps share once (the
  // rollups of the whole range, the rows at every window's edges) and to compute each series'
  // steps together.
  // REQUIRES: step_ms > 0, range_ms >= 0.
  virtual Result<std::vector<SeriesSteps>> SelectAggregateSteps(
      const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
      int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_SAMPLE_SOURCE_H_
