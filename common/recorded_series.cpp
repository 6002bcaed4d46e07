#include "common/recorded_series.h"

#include <iterator>
#include <utility>

namespace modelpulse {
namespace {

template <typename T>
Result<std::vector<T>> Concatenate(Result<std::vector<T>> first, Result<std::vector<T>> second) {
  if (!first) {
    return first;
  }
  if (!second) {
    return second;
  }
  first->insert(first->end(), std::make_move_iterator(second->begin()),
                std::make_move_iterator(second->end()));
  return first;
}

}  // namespace

Result<std::vector<Series>> SourceUnion::Select(const std::vector<LabelMatcher>& matchers,
                                                int64_t from_ms, int64_t to_ms) const {
  return Concatenate(first_.Select(matchers, from_ms, to_ms),
                     second_.Select(matchers, from_ms, to_ms));
}

Result<std::vector<SeriesAggregate>> SourceUnion::SelectAggregate(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
    RangeAggregate aggregate, double q) const {
  return Concatenate(first_.SelectAggregate(matchers, from_ms, to_ms, aggregate, q),
                     second_.SelectAggregate(matchers, from_ms, to_ms, aggregate, q));
}

Result<std::vector<SeriesSteps>> SourceUnion::SelectAggregateSteps(
    const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
    int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const {
  return Concatenate(first_.SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms,
                                                 range_ms, aggregate, q),
                     second_.SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms,
                                                  range_ms, aggregate, q));
}

}  // namespace modelpulse
