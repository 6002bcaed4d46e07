#ifndef MODELPULSE_RULES_INTERNAL_TEMPLATE_PARSER_H_
#define MODELPULSE_RULES_INTERNAL_TEMPLATE_PARSER_H_

// Private to rules/: the parse tree of a Go text/template subset and its parser, which splits the
// text at "{{" / "}}" (with trim markers and comments), parses each action's pipeline, and then
// rejects unknown functions and undefined variables as Go's parser does.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "rules/internal/template_value.h"

namespace modelpulse::rules::text_template {

struct Pipeline;

// An operand: a literal, a function name, a variable/dot/parenthesised pipeline with a field chain.
struct Operand {
  enum class Kind { kLiteral, kFunction, kVariable, kDot, kPipeline };
  Kind kind = Kind::kLiteral;
  TValue literal;
  std::string name;                 // function or variable
  std::vector<std::string> fields;  // field chain after the operand
  std::shared_ptr<Pipeline> pipeline;
};

struct Command {
  std::vector<Operand> operands;
};

struct Pipeline {
  std::vector<std::string> declared;  // "$x" or "$i", "$x" for range
  bool assign = false;                // `=` rather than `:=`
  std::vector<Command> commands;
};

struct Node;
using NodeList = std::vector<Node>;

struct Node {
  enum class Kind { kText, kAction, kIf, kRange, kWith };
  Kind kind = Kind::kText;
  std::string text;
  Pipeline pipeline;
  std::shared_ptr<NodeList> body;
  std::shared_ptr<NodeList> else_body;
  int line = 1;
};

// Nesting bound for blocks and parentheses, so hostile templates cannot exhaust the stack.
constexpr int kMaxDepth = 64;

// Parses `text`, after Prometheus's variable prelude ($labels, $externalLabels, $externalURL,
// $value) when `prelude` (alert templates; notification templates have none), and checks its
// names. Errors are kInvalidArgument in Go's wording.
Result<NodeList> ParseTemplate(const std::string& name, std::string_view text, bool prelude = true);

}  // namespace modelpulse::rules::text_template

#endif  // MODELPULSE_RULES_INTERNAL_TEMPLATE_PARSER_H_
