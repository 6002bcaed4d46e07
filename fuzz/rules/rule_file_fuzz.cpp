// The rule-file loader (YAML, expressions, durations, label and annotation templates) on
// arbitrary text. Errors are fine; crashes and hangs are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/targets.h"
#include "rules/rules.h"

int modelpulse::fuzz::RuleFile(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)modelpulse::rules::ParseRuleFile(text, "fuzz.rules.yml");
  return 0;
}
