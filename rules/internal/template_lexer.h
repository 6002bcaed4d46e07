#ifndef MODELPULSE_RULES_INTERNAL_TEMPLATE_LEXER_H_
#define MODELPULSE_RULES_INTERNAL_TEMPLATE_LEXER_H_

// Private to rules/: the tokens of one template action (the text between "{{" and "}}", trim
// markers and comments already removed by the parser, which owns the delimiters and line count).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace modelpulse::rules::text_template {

struct Token {
  enum class Kind {
    kIdent,
    kVariable,
    kField,
    kDot,
    kString,
    kNumber,
    kBool,
    kNil,
    kPipe,
    kLParen,
    kRParen,
    kDeclare,
    kAssign,
    kComma,
    kEnd
  };
  Kind kind = Kind::kEnd;
  std::string text;  // identifier, variable name ("$x", "$"), field chain ".A.b", literal value
  // A field chain written right after ")": it applies to the parenthesised value. With a space
  // between ("(len .Alerts) .Status") the chain is an argument of its own, as in Go.
  bool after_paren = false;
};

// Tokenizes one action. Errors are kInvalidArgument "template: <name>:<line>: <message>", as Go's
// parser words them.
Result<std::vector<Token>> LexAction(std::string_view s, const std::string& template_name,
                                     int line);

}  // namespace modelpulse::rules::text_template

#endif  // MODELPULSE_RULES_INTERNAL_TEMPLATE_LEXER_H_
