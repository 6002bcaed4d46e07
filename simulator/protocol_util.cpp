// Pieces shared by several simulator protocols; see protocol_util.h.

#include "simulator/protocol_util.h"

#include <algorithm>
#include <chrono>

namespace modelpulse::simulator {

int64_t EstimateTextTokens(std::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

std::string ContentText(int64_t tokens) {
  std::string text;
  for (int64_t i = 0; i < tokens; ++i)
    text += TokenText(i);
  return text;
}

int64_t CeilSeconds(Micros d) {
  // max(1, ceil(seconds)), in integer arithmetic.
  return std::max<int64_t>(1, (d.count() + 999'999) / 1'000'000);
}

int64_t Millis(Micros d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::string Extra(const Call& call, const std::string& key, std::string fallback) {
  const auto it = call.extras.find(key);
  return it == call.extras.end() ? fallback : it->second;
}

}  // namespace modelpulse::simulator
