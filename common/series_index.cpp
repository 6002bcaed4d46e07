#include "common/series_index.h"

#include <iterator>
#include <utility>

namespace modelpulse {

Result<std::vector<Labels>> CountingIndex::SeriesIn(const std::vector<LabelMatcher>& matchers,
                                                    int64_t from_ms, int64_t to_ms) const {
  auto found = source_.SelectAggregate(matchers, from_ms, to_ms, RangeAggregate::kCount, 0);
  if (!found) {
    return Fail(found.error());
  }
  std::vector<Labels> out;
  out.reserve(found->size());
  for (SeriesAggregate& series : *found) {
    out.push_back(std::move(series.labels));
  }
  return out;
}

Result<std::vector<Labels>> SeriesIndexUnion::SeriesIn(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms) const {
  auto first = first_.SeriesIn(matchers, from_ms, to_ms);
  if (!first) {
    return first;
  }
  auto second = second_.SeriesIn(matchers, from_ms, to_ms);
  if (!second) {
    return second;
  }
  first->insert(first->end(), std::make_move_iterator(second->begin()),
                std::make_move_iterator(second->end()));
  return first;
}

}  // namespace modelpulse
