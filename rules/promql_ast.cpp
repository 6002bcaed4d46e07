#include "rules/internal/promql_ast.h"

namespace modelpulse::rules::promql {

bool CompiledMatcher::Matches(const std::string& value) const {
  switch (matcher.type) {
    case LabelMatcher::Type::kEqual:
      return value == matcher.value;
    case LabelMatcher::Type::kNotEqual:
      return value != matcher.value;
    case LabelMatcher::Type::kRegexMatch:
      return regex->FullMatch(value);
    case LabelMatcher::Type::kRegexNoMatch:
      return !regex->FullMatch(value);
  }
  return false;
}

bool IsComparison(BinaryOp op) { return op >= BinaryOp::kEql && op <= BinaryOp::kLte; }

bool IsSetOperator(BinaryOp op) { return op >= BinaryOp::kAnd; }

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "instant vector";
    case ValueType::kMatrix:
      return "range vector";
    case ValueType::kString:
      return "string";
  }
  return "unknown";
}

}  // namespace modelpulse::rules::promql
