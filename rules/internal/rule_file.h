#ifndef MODELPULSE_RULES_INTERNAL_RULE_FILE_H_
#define MODELPULSE_RULES_INTERNAL_RULE_FILE_H_

// Private to rules/: rule files are parsed by ParseRuleFile/LoadRuleFile, declared in
// rules/rules.h with the types they produce; the strict decoding they share with promtool's unit
// test files is here.

#include <span>
#include <string_view>

#include "rules/rules.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace modelpulse::yaml {
class Diagnostics;
}  // namespace modelpulse::yaml

namespace modelpulse::rules {

// Strict decoding in Prometheus's words (Go's yaml.UnmarshalStrict into `type`, e.g.
// "rulefmt.RuleNode"), not yaml::MapEntries' "unknown key" with a suggestion: promtool's output is
// matched byte for byte. Reports each key of `map` outside `known` at the key, in file order.
void CheckKnownFields(const YAML::Node& map, std::span<const std::string_view> known,
                      std::string_view type, yaml::Diagnostics& diag);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_RULE_FILE_H_
