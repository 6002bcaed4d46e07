#ifndef MODELPULSE_RULES_INTERNAL_PROMQL_LEXER_H_
#define MODELPULSE_RULES_INTERNAL_PROMQL_LEXER_H_

// PromQL lexer (private to rules/). Turns the whole query into tokens up front; the parser then
// works on a vector. Depends only on std and common/result.h.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace modelpulse::rules::promql {

enum class TokenKind {
  kEof,
  kIdentifier,  // metric names, label names, function names (may contain ':')
  kNumber,      // 1, 1.5, 1e3, 0x1f, Inf, NaN
  kDuration,    // 5m, 1h30m
  kString,      // "...", '...', `...`; Token::text holds the unquoted value
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAt,
  // Label matchers.
  kAssign,    // =
  kEqlRegex,  // =~
  kNeqRegex,  // !~
  // Operators.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqlc,  // ==
  kNeq,   // !=
  kLss,
  kLte,
  kGtr,
  kGte,
  // Keywords (matched case-insensitively, as Prometheus does).
  kAnd,
  kOr,
  kUnless,
  kAtan2,
  kBy,
  kWithout,
  kOn,
  kIgnoring,
  kGroupLeft,
  kGroupRight,
  kBool,
  kOffset,
  // Aggregation operators (also keywords).
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
};

// A byte range of the query text: where a token or an expression is, for error locations.
struct PosRange {
  uint32_t begin = 0;
  uint32_t end = 0;  // one past the last byte
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;  // source text; for strings the unescaped value
  PosRange pos;      // where the token is in the query
};

// Queries longer than this are refused before lexing (a bound on every later phase).
inline constexpr size_t kMaxQueryBytes = 64 * 1024;

// Tokenizes `text`. The last token is always kEof. Errors are kParse with location "offset N".
Result<std::vector<Token>> Lex(std::string_view text);

// True for aggregation-operator token kinds (sum ... quantile).
bool IsAggregator(TokenKind kind);
// True for keyword kinds, which may still be used as label names inside {} and grouping lists.
bool IsKeyword(TokenKind kind);
// A short human name for error messages ("\"(\"", "identifier", "end of input").
std::string_view TokenKindName(TokenKind kind);

// "offset N", the location format of every PromQL error.
std::string OffsetLocation(uint32_t offset);

}  // namespace modelpulse::rules::promql

#endif  // MODELPULSE_RULES_INTERNAL_PROMQL_LEXER_H_
