#ifndef MODELPULSE_COMMON_SERIES_INDEX_H_
#define MODELPULSE_COMMON_SERIES_INDEX_H_

// Which series exist, without their samples: what Prometheus's discovery endpoints (series,
// labels, label values, metadata) read. Apart from SampleSource because a source cannot always
// list what it can answer: the counter families of the probe series are derived by name only
// (a selector naming one by equality), so a generic listing through SampleSource would never
// see them, and listing them through their samples would read every probe of every target.

#include <cstdint>
#include <vector>

#include "common/labels.h"
#include "common/result.h"
#include "common/sample_source.h"

namespace modelpulse {

class SeriesIndex {
 public:
  virtual ~SeriesIndex() = default;
  // The label sets (with __name__) of the series matching all matchers that have at least one
  // non-stale sample in [from_ms, to_ms]: exactly the series a query over that range can
  // return, or a superset of them (the caller re-applies every matcher).
  virtual Result<std::vector<Labels>> SeriesIn(const std::vector<LabelMatcher>& matchers,
                                               int64_t from_ms, int64_t to_ms) const = 0;
};

// Any source's series through its count pushdown (for the recorded series, whose stored names
// are all real series). REQUIRES: `source` outlives this.
class CountingIndex final : public SeriesIndex {
 public:
  explicit CountingIndex(const SampleSource& source) : source_(source) {}
  Result<std::vector<Labels>> SeriesIn(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                       int64_t to_ms) const override;

 private:
  const SampleSource& source_;
};

// Both indexes' series, concatenated, as SourceUnion does for samples.
// REQUIRES: both outlive this.
class SeriesIndexUnion final : public SeriesIndex {
 public:
  SeriesIndexUnion(const SeriesIndex& first, const SeriesIndex& second)
      : first_(first), second_(second) {}
  Result<std::vector<Labels>> SeriesIn(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                       int64_t to_ms) const override;

 private:
  const SeriesIndex& first_;
  const SeriesIndex& second_;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_SERIES_INDEX_H_
