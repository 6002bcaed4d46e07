#ifndef MODELPULSE_FUZZ_RULES_TINY_SOURCE_H_
#define MODELPULSE_FUZZ_RULES_TINY_SOURCE_H_

// The fixed in-memory data the PromQL and template fuzzers evaluate against: a few series over
// ten minutes at 1m steps, with a counter reset, a stale marker and a NaN, so that rate(),
// aggregations, joins and staleness all have something to chew on. Small on purpose: each
// fuzz input is evaluated in microseconds.

#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>
#include <vector>

#include "rules/promql.h"
#include "rules/rules.h"

namespace modelpulse::fuzz {

class EmptySource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    return std::vector<Series>{};
  }
};

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kEvalTimeMs = 10 * kMinuteMs;

// Owns the overlay and its empty base; the overlay honours matchers and windows.
struct TinySource {
  EmptySource base;
  rules::SeriesOverlay overlay{base};

  TinySource() {
    const Labels a{{"__name__", "probe_total"}, {"target", "a"}, {"job", "x"}};
    const Labels b{{"__name__", "probe_total"}, {"target", "b"}, {"job", "x"}};
    const Labels up_a{{"__name__", "up"}, {"target", "a"}, {"instance", "h:1"}};
    const Labels up_b{{"__name__", "up"}, {"target", "b"}, {"instance", "h:2"}};
    const Labels lat{{"__name__", "latency_seconds"}, {"target", "a"}, {"le", "0.5"}};
    for (int64_t i = 0; i <= 10; ++i) {
      const int64_t t = i * kMinuteMs;
      const auto x = static_cast<double>(i);
      overlay.Append(a, t, i < 6 ? x * 10 : x);  // a counter reset at 6m
      overlay.Append(b, t, i == 7 ? StaleNaN() : x * 3);
      overlay.Append(up_a, t, 1);
      overlay.Append(up_b, t, static_cast<double>(i % 2));
      overlay.Append(lat, t, i == 4 ? std::numeric_limits<double>::quiet_NaN() : 0.1 * x);
    }
  }
};

// An instant query for templates' `query` function, over the same data.
inline rules::TemplateQueryFunc QueryOver(const SampleSource& source) {
  return [&source](std::string_view expr) -> Result<rules::Vector> {
    auto query = rules::Query::Parse(expr);
    if (!query)
      return Fail(query.error());
    auto value = query->Evaluate(source, kEvalTimeMs);
    if (!value)
      return Fail(value.error());
    if (auto* vector = std::get_if<rules::Vector>(&*value))
      return *vector;
    return rules::Vector{};
  };
}

}  // namespace modelpulse::fuzz

#endif  // MODELPULSE_FUZZ_RULES_TINY_SOURCE_H_
