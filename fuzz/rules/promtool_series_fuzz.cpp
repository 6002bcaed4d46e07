// The promtool test-file notations: the first line is a series (`name{a="b"}`), the rest an
// expanding value list (`1+2x3 _ stale -1x2`). Both parsers see the input; errors are fine,
// crashes and unbounded allocations are not (the sample cap is lowered to keep runs fast).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/targets.h"
#include "rules/internal/unit_test.h"

int modelpulse::fuzz::PromtoolSeries(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t newline = text.find('\n');
  std::string_view series = text.substr(0, newline);
  std::string_view values = newline == std::string_view::npos ? text : text.substr(newline + 1);
  (void)modelpulse::rules::ParseSeriesLabels(series);
  (void)modelpulse::rules::ExpandSeriesValues(values, 100'000);
  return 0;
}
