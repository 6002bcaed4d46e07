#include "rules/internal/promql_ast.h"

namespace modelpulse::rules::promql {

bool CompiledMatcher::Matches(const std::string& value) const {
  switch (matcher.type) {
    case LabelMatcher::Type::kEqual:
      return value == matcher.value;
    case LabelMatcher::Type::kNotEqual:
      return value != matcher.value;
    case LabelMatcher::Type::kRegexMatch:
      return std::regex_match(value, *regex);
    case LabelMatcher::Type::kRegexNoMatch:
      return !std::regex_match(value, *regex);
  }
  return false;
}

Result<std::shared_ptr<const std::regex>> CompileAnchoredRegex(std::string_view pattern) {
  auto flags = std::regex::ECMAScript;
  std::string body(pattern);
  if (body.rfind("(?i)", 0) == 0) {
    flags |= std::regex::icase;
    body.erase(0, 4);
  }
  // RE2 constructs std::regex would misread or reject with a confusing message.
  for (std::string_view unsupported :
       {"(?P<", "(?<", "(?s", "(?m", "(?U", "\\p", "\\P", "\\z", "\\A", "\\Q"}) {
    if (body.find(unsupported) != std::string::npos) {
      return Fail(Error::Parse("regex construct \"" + std::string(unsupported) +
                               "\" is not supported: \"" + std::string(pattern) + "\""));
    }
  }
  try {
    return std::make_shared<const std::regex>("(?:" + body + ")", flags);
  } catch (const std::regex_error& e) {
    return Fail(
        Error::Parse("invalid regular expression \"" + std::string(pattern) + "\": " + e.what()));
  }
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
