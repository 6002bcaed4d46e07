#ifndef MODELPULSE_COMMON_RECORDED_SERIES_H_
#define MODELPULSE_COMMON_RECORDED_SERIES_H_

// The series rules write (recording outputs, ALERTS, ALERTS_FOR_STATE and their stale markers),
// as the rule engine hands them to storage, and the union of two sample sources the daemon and
// the CLI read through (the probe series beside the recorded ones). Here rather than in rules/
// or storage/ so that neither includes the other.

#include <cstdint>
#include <vector>

#include "common/labels.h"
#include "common/result.h"
#include "common/sample_source.h"

namespace modelpulse {

struct RecordedPoint {
  Labels labels;  // includes __name__
  int64_t t_ms = 0;
  double v = 0;  // StaleNaN() marks the end of a series, as in Prometheus
};

// Where the rule engine writes its outputs so that they outlive the process.
class RecordedSeriesWriter {
 public:
  virtual ~RecordedSeriesWriter() = default;
  // Stores the points of one evaluation in one transaction. A point of a series and time already
  // stored replaces it (a re-evaluation at the same timestamp).
  virtual Status AppendRecorded(const std::vector<RecordedPoint>& points) = 0;
};

// Both sources' series as one source: the probe series and the recorded ones have different
// names, so results are concatenated. A series present in both (a rule recording into a probe
// series' name) appears twice, as two sources of one name do in Prometheus's fan-out.
// REQUIRES: both sources outlive this.
class SourceUnion final : public SampleSource {
 public:
  SourceUnion(const SampleSource& first, const SampleSource& second)
      : first_(first), second_(second) {}
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override;
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override;
  Result<std::vector<SeriesSteps>> SelectAggregateSteps(const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate,
                                                        double q) const override;

 private:
  const SampleSource& first_;
  const SampleSource& second_;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_RECORDED_SERIES_H_
