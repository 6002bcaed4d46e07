// Query::Parse on arbitrary text, and Evaluate on what parses, over a tiny fixed source
// (tiny_source.h) at two instants. Errors are fine; crashes, hangs and leaks are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/rules/tiny_source.h"
#include "fuzz/targets.h"
#include "rules/promql.h"

int modelpulse::fuzz::Promql(const uint8_t* data, size_t size) {
  static const modelpulse::fuzz::TinySource* const source = new modelpulse::fuzz::TinySource();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto query = modelpulse::rules::Query::Parse(text);
  if (!query)
    return 0;
  (void)query->Evaluate(source->overlay, modelpulse::fuzz::kEvalTimeMs);
  (void)query->Evaluate(source->overlay, 3 * modelpulse::fuzz::kMinuteMs + 1);
  return 0;
}
