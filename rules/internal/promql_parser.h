#ifndef MODELPULSE_RULES_INTERNAL_PROMQL_PARSER_H_
#define MODELPULSE_RULES_INTERNAL_PROMQL_PARSER_H_

// PromQL parser (private to rules/): tokens -> immutable, type-checked AST.

#include <string_view>

#include "common/result.h"
#include "rules/internal/promql_ast.h"

namespace modelpulse::rules::promql {

// Nesting bound: deeper expressions are a parse error, never a stack overflow (in the parser or
// in the recursive evaluator, which walks the same tree).
inline constexpr int kMaxDepth = 200;

// Parses and type-checks `text`. Errors are kParse with location "offset N" (N = byte offset of
// the offending token) and a message saying what was expected.
Result<ExprPtr> ParseExpr(std::string_view text);

}  // namespace modelpulse::rules::promql

#endif  // MODELPULSE_RULES_INTERNAL_PROMQL_PARSER_H_
