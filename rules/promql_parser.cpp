#include "rules/internal/promql_parser.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <utility>

#include "common/duration.h"
#include "rules/internal/go_compat.h"
#include "rules/internal/promql_functions.h"
#include "rules/internal/promql_lexer.h"

namespace modelpulse::rules::promql {
namespace {

// Binding powers, lowest to highest (Prometheus generated_parser.y: or < and,unless <
// comparisons < + - < * / % atan2 < ^). Unary minus binds like '*' (%prec MUL), so its operand
// is parsed at kPowPower: only '^' binds tighter (-2^2 == -(2^2)).
constexpr int kPowPower = 6;

struct InfixInfo {
  TokenKind token;
  BinaryOp op;
  int power;
  bool right_assoc;
};

constexpr std::array kInfixTable = {
    InfixInfo{TokenKind::kOr, BinaryOp::kOr, 1, false},
    InfixInfo{TokenKind::kAnd, BinaryOp::kAnd, 2, false},
    InfixInfo{TokenKind::kUnless, BinaryOp::kUnless, 2, false},
    InfixInfo{TokenKind::kEqlc, BinaryOp::kEql, 3, false},
    InfixInfo{TokenKind::kNeq, BinaryOp::kNeq, 3, false},
    InfixInfo{TokenKind::kLte, BinaryOp::kLte, 3, false},
    InfixInfo{TokenKind::kLss, BinaryOp::kLss, 3, false},
    InfixInfo{TokenKind::kGte, BinaryOp::kGte, 3, false},
    InfixInfo{TokenKind::kGtr, BinaryOp::kGtr, 3, false},
    InfixInfo{TokenKind::kAdd, BinaryOp::kAdd, 4, false},
    InfixInfo{TokenKind::kSub, BinaryOp::kSub, 4, false},
    InfixInfo{TokenKind::kMul, BinaryOp::kMul, 5, false},
    InfixInfo{TokenKind::kDiv, BinaryOp::kDiv, 5, false},
    InfixInfo{TokenKind::kMod, BinaryOp::kMod, 5, false},
    InfixInfo{TokenKind::kAtan2, BinaryOp::kAtan2, 5, false},
    InfixInfo{TokenKind::kPow, BinaryOp::kPow, kPowPower, true},
};

constexpr std::optional<InfixInfo> FindInfix(TokenKind kind) {
  for (const InfixInfo& info : kInfixTable) {
    if (info.token == kind) {
      return info;
    }
  }
  return std::nullopt;
}

AggregateOp ToAggregateOp(TokenKind kind) {
  switch (kind) {
    case TokenKind::kSum:
      return AggregateOp::kSum;
    case TokenKind::kAvg:
      return AggregateOp::kAvg;
    case TokenKind::kCount:
      return AggregateOp::kCount;
    case TokenKind::kMin:
      return AggregateOp::kMin;
    case TokenKind::kMax:
      return AggregateOp::kMax;
    case TokenKind::kGroup:
      return AggregateOp::kGroup;
    case TokenKind::kStddev:
      return AggregateOp::kStddev;
    case TokenKind::kStdvar:
      return AggregateOp::kStdvar;
    case TokenKind::kTopk:
      return AggregateOp::kTopk;
    case TokenKind::kBottomk:
      return AggregateOp::kBottomk;
    case TokenKind::kCountValues:
      return AggregateOp::kCountValues;
    default:
      return AggregateOp::kQuantile;
  }
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Go's strconv.ParseInt(s, 0, 64) then ParseFloat(s, 64), as Prometheus's parseNumber does: so
// "010" is octal 8 and "0x1f" is 31.
std::optional<double> ParseNumber(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "inf") {
    return std::numeric_limits<double>::infinity();
  }
  if (lower == "nan") {
    return std::numeric_limits<double>::quiet_NaN();
  }
  auto parse_int = [&](std::string_view digits, int base) -> std::optional<double> {
    if (digits.empty()) {
      return std::nullopt;
    }
    std::string copy(digits);
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(copy.c_str(), &end, base);
    if (errno != 0 || end != copy.c_str() + copy.size()) {
      return std::nullopt;
    }
    return static_cast<double>(v);
  };
  if (lower.size() > 2 && lower[0] == '0' && lower[1] == 'x') {
    return parse_int(std::string_view(lower).substr(2), 16);
  }
  bool all_digits =
      std::all_of(lower.begin(), lower.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (all_digits) {
    if (lower.size() > 1 && lower[0] == '0') {
      if (auto octal = parse_int(std::string_view(lower).substr(1), 8)) {
        return octal;
      }
    } else if (auto decimal = parse_int(lower, 10)) {
      return decimal;
    }
  }
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(lower.c_str(), &end);
  if (end != lower.c_str() + lower.size() || lower.empty()) {
    return std::nullopt;
  }
  // Go's ParseFloat returns ±Inf with a range error for overflow; Prometheus rejects that.
  if (errno == ERANGE && std::isinf(v)) {
    return std::nullopt;
  }
  return v;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Result<ExprPtr> Run() {
    auto expr = ParseExpr(0, 0);
    if (!expr) {
      return expr;
    }
    if (Peek().kind != TokenKind::kEof) {
      return Fail(Unexpected(Peek(), "end of input or an operator"));
    }
    return expr;
  }

 private:
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Advance() {
    const Token& token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) {
      ++pos_;
    }
    return token;
  }
  uint32_t PrevEnd() const { return pos_ == 0 ? 0 : tokens_[pos_ - 1].pos.end; }

  static Error ErrorAt(uint32_t offset, std::string message) {
    return Error::Parse(std::move(message), OffsetLocation(offset));
  }
  static Error Unexpected(const Token& token, std::string_view expected) {
    std::string what = token.kind == TokenKind::kEof      ? "end of input"
                       : token.kind == TokenKind::kString ? "string"
                                                          : "\"" + token.text + "\"";
    return ErrorAt(token.pos.begin, "unexpected " + what + ", expected " + std::string(expected));
  }

  Status Expect(TokenKind kind, std::string_view expected) {
    if (Peek().kind != kind) {
      return Fail(Unexpected(Peek(), expected));
    }
    Advance();
    return {};
  }

  static Result<ExprPtr> Finish(Expr expr) {
    if (expr.height > kMaxDepth) {
      return Fail(ErrorAt(expr.pos.begin,
                          "expression nests deeper than " + std::to_string(kMaxDepth) + " levels"));
    }
    return std::make_unique<const Expr>(std::move(expr));
  }

  static Status ExpectType(const Expr& expr, ValueType want, std::string_view context) {
    if (expr.type != want) {
      return Fail(ErrorAt(expr.pos.begin, "expected type " + std::string(ValueTypeName(want)) +
                                              " in " + std::string(context) + ", got " +
                                              std::string(ValueTypeName(expr.type))));
    }
    return {};
  }

  // expr ::= unary (binop modifiers expr)*     -- a Pratt loop over kInfixTable
  Result<ExprPtr> ParseExpr(int min_power, int depth) {
    if (depth > kMaxDepth) {
      return Fail(ErrorAt(Peek().pos.begin,
                          "expression nests deeper than " + std::to_string(kMaxDepth) + " levels"));
    }
    auto lhs = ParseUnary(depth);
    if (!lhs) {
      return lhs;
    }
    while (true) {
      const Token& op_token = Peek();
      std::optional<InfixInfo> info = FindInfix(op_token.kind);
      if (!info || info->power < min_power) {
        return lhs;
      }
      Advance();
      Binary binary;
      binary.op = info->op;
      if (auto status = ParseBinaryModifiers(binary); !status) {
        return Fail(status.error());
      }
      auto rhs = ParseExpr(info->right_assoc ? info->power : info->power + 1, depth + 1);
      if (!rhs) {
        return rhs;
      }
      binary.lhs = std::move(*lhs);
      binary.rhs = std::move(*rhs);
      auto built = BuildBinary(std::move(binary), op_token.pos.begin);
      if (!built) {
        return built;
      }
      lhs = std::move(built);
    }
  }

  // modifiers ::= [bool] [(on|ignoring) labels [(group_left|group_right) [labels]]]
  Status ParseBinaryModifiers(Binary& binary) {
    if (Peek().kind == TokenKind::kBool) {
      Advance();
      binary.return_bool = true;
    }
    TokenKind kind = Peek().kind;
    if (kind != TokenKind::kOn && kind != TokenKind::kIgnoring) {
      return {};
    }
    Advance();
    binary.matching.on = kind == TokenKind::kOn;
    auto labels = ParseLabelList();
    if (!labels) {
      return Fail(labels.error());
    }
    binary.matching.matching_labels = std::move(*labels);
    kind = Peek().kind;
    if (kind == TokenKind::kGroupLeft || kind == TokenKind::kGroupRight) {
      Advance();
      binary.matching.card =
          kind == TokenKind::kGroupLeft ? Cardinality::kManyToOne : Cardinality::kOneToMany;
      if (Peek().kind == TokenKind::kLeftParen) {
        auto include = ParseLabelList();
        if (!include) {
          return Fail(include.error());
        }
        binary.matching.include = std::move(*include);
      }
    }
    return {};
  }

  // Type rules of Prometheus's checkAST for binary expressions.
  Result<ExprPtr> BuildBinary(Binary binary, uint32_t op_offset) {
    const Expr& lhs = *binary.lhs;
    const Expr& rhs = *binary.rhs;
    BinaryOp op = binary.op;
    if (binary.return_bool && !IsComparison(op)) {
      return Fail(ErrorAt(op_offset, "bool modifier can only be used on comparison operators"));
    }
    bool lhs_scalar = lhs.type == ValueType::kScalar;
    bool rhs_scalar = rhs.type == ValueType::kScalar;
    if (IsComparison(op) && !binary.return_bool && lhs_scalar && rhs_scalar) {
      return Fail(ErrorAt(op_offset, "comparisons between scalars must use BOOL modifier"));
    }
    if (binary.matching.on) {
      for (const std::string& label : binary.matching.matching_labels) {
        if (std::find(binary.matching.include.begin(), binary.matching.include.end(), label) !=
            binary.matching.include.end()) {
          return Fail(ErrorAt(
              op_offset, "label \"" + label + "\" must not occur in ON and GROUP clause at once"));
        }
      }
    }
    for (const Expr* side : {&lhs, &rhs}) {
      if (side->type != ValueType::kScalar && side->type != ValueType::kVector) {
        return Fail(ErrorAt(side->pos.begin,
                            "binary expression must contain only scalar and instant vector types"));
      }
    }
    bool both_vectors = !lhs_scalar && !rhs_scalar;
    if (!both_vectors && !binary.matching.matching_labels.empty()) {
      return Fail(ErrorAt(op_offset, "vector matching only allowed between instant vectors"));
    }
    if (IsSetOperator(op)) {
      if (lhs_scalar || rhs_scalar) {
        return Fail(ErrorAt(op_offset, "set operator not allowed in binary scalar expression"));
      }
      if (binary.matching.card == Cardinality::kManyToOne ||
          binary.matching.card == Cardinality::kOneToMany) {
        return Fail(ErrorAt(op_offset, "no grouping allowed for set operations"));
      }
      binary.matching.card = Cardinality::kManyToMany;
    }
    Expr expr;
    expr.pos = {lhs.pos.begin, rhs.pos.end};
    expr.type =
        both_vectors || !lhs_scalar || !rhs_scalar ? ValueType::kVector : ValueType::kScalar;
    if (lhs_scalar && rhs_scalar) {
      expr.type = ValueType::kScalar;
    }
    expr.height = std::max(lhs.height, rhs.height) + 1;
    expr.node = std::move(binary);
    return Finish(std::move(expr));
  }

  // unary ::= ('-' | '+') expr@pow | postfix
  Result<ExprPtr> ParseUnary(int depth) {
    const Token& token = Peek();
    if (token.kind != TokenKind::kSub && token.kind != TokenKind::kAdd) {
      return ParsePostfix(depth);
    }
    Advance();
    bool negate = token.kind == TokenKind::kSub;
    uint32_t begin = token.pos.begin;
    auto operand = ParseExpr(kPowPower, depth + 1);
    if (!operand) {
      return operand;
    }
    if (const auto* number = std::get_if<NumberLiteral>(&(*operand)->node)) {
      // Prometheus folds a sign into a number literal.
      Expr folded;
      folded.pos = {begin, (*operand)->pos.end};
      folded.type = ValueType::kScalar;
      folded.node = NumberLiteral{negate ? -number->value : number->value};
      return Finish(std::move(folded));
    }
    if ((*operand)->type != ValueType::kScalar && (*operand)->type != ValueType::kVector) {
      return Fail(ErrorAt((*operand)->pos.begin,
                          "unary expression only allowed on expressions of type scalar or "
                          "instant vector, got " +
                              std::string(ValueTypeName((*operand)->type))));
    }
    Expr expr;
    expr.pos = {begin, (*operand)->pos.end};
    expr.type = (*operand)->type;
    expr.height = (*operand)->height + 1;
    expr.node = Unary{negate, std::move(*operand)};
    return Finish(std::move(expr));
  }

  // postfix ::= primary ('[' duration ']' | offset ['-'] duration)*
  Result<ExprPtr> ParsePostfix(int depth) {
    auto primary = ParsePrimary(depth);
    if (!primary) {
      return primary;
    }
    ExprPtr expr = std::move(*primary);
    bool offset_seen = false;
    while (true) {
      const Token& token = Peek();
      if (token.kind == TokenKind::kLeftBracket) {
        Advance();
        const Token& range_token = Peek();
        if (range_token.kind != TokenKind::kDuration) {
          if (range_token.kind == TokenKind::kColon) {
            return Fail(ErrorAt(token.pos.begin, "subqueries are not supported"));
          }
          return Fail(Unexpected(range_token, "a duration in range selector"));
        }
        Advance();
        if (Peek().kind == TokenKind::kColon) {
          return Fail(ErrorAt(token.pos.begin, "subqueries are not supported"));
        }
        if (auto status = Expect(TokenKind::kRightBracket, "\"]\""); !status) {
          return Fail(status.error());
        }
        const auto* selector = std::get_if<VectorSelector>(&expr->node);
        if (selector == nullptr) {
          return Fail(ErrorAt(token.pos.begin, "ranges only allowed for vector selectors"));
        }
        if (offset_seen) {
          return Fail(ErrorAt(token.pos.begin, "no offset modifiers allowed before range"));
        }
        MatrixSelector matrix;
        matrix.selector = *selector;
        matrix.range_ms = ParsePromDuration(range_token.text)->count();
        Expr out;
        out.pos = {expr->pos.begin, PrevEnd()};
        out.type = ValueType::kMatrix;
        out.node = std::move(matrix);
        expr = std::make_unique<const Expr>(std::move(out));
        continue;
      }
      if (token.kind == TokenKind::kOffset) {
        Advance();
        bool negative = false;
        if (Peek().kind == TokenKind::kSub) {
          Advance();
          negative = true;
        }
        const Token& duration = Peek();
        if (duration.kind != TokenKind::kDuration) {
          return Fail(Unexpected(duration, "a duration after offset"));
        }
        Advance();
        if (offset_seen) {
          return Fail(ErrorAt(token.pos.begin, "offset may not be set multiple times"));
        }
        int64_t offset_ms = ParsePromDuration(duration.text)->count() * (negative ? -1 : 1);
        Expr out;
        out.pos = {expr->pos.begin, PrevEnd()};
        out.type = expr->type;
        if (const auto* selector = std::get_if<VectorSelector>(&expr->node)) {
          VectorSelector copy = *selector;
          copy.offset_ms = offset_ms;
          out.node = std::move(copy);
        } else if (const auto* matrix = std::get_if<MatrixSelector>(&expr->node)) {
          MatrixSelector copy = *matrix;
          copy.selector.offset_ms = offset_ms;
          out.node = std::move(copy);
        } else {
          return Fail(ErrorAt(token.pos.begin,
                              "offset modifier must be preceded by an instant vector selector "
                              "or range vector selector"));
        }
        offset_seen = true;
        expr = std::make_unique<const Expr>(std::move(out));
        continue;
      }
      if (token.kind == TokenKind::kAt) {
        return Fail(ErrorAt(token.pos.begin, "the @ modifier is not supported"));
      }
      return expr;
    }
  }

  // primary ::= number | string | '(' expr ')' | aggregation | function-call | selector
  Result<ExprPtr> ParsePrimary(int depth) {
    const Token& token = Peek();
    switch (token.kind) {
      case TokenKind::kNumber: {
        Advance();
        std::optional<double> value = ParseNumber(token.text);
        if (!value) {
          return Fail(ErrorAt(token.pos.begin, "bad number syntax: \"" + token.text + "\""));
        }
        Expr expr;
        expr.pos = token.pos;
        expr.type = ValueType::kScalar;
        expr.node = NumberLiteral{*value};
        return Finish(std::move(expr));
      }
      case TokenKind::kString: {
        Advance();
        Expr expr;
        expr.pos = token.pos;
        expr.type = ValueType::kString;
        expr.node = StringLiteral{token.text};
        return Finish(std::move(expr));
      }
      case TokenKind::kLeftParen: {
        Advance();
        auto inner = ParseExpr(0, depth + 1);
        if (!inner) {
          return inner;
        }
        if (auto status = Expect(TokenKind::kRightParen, "\")\""); !status) {
          return Fail(status.error());
        }
        Expr expr;
        expr.pos = {token.pos.begin, PrevEnd()};
        expr.type = (*inner)->type;
        expr.height = (*inner)->height + 1;
        expr.node = Paren{std::move(*inner)};
        return Finish(std::move(expr));
      }
      case TokenKind::kLeftBrace:
        return ParseSelector(depth);
      case TokenKind::kIdentifier:
        if (Peek(1).kind == TokenKind::kLeftParen) {
          return ParseCall(depth);
        }
        return ParseSelector(depth);
      case TokenKind::kDuration:
        return Fail(ErrorAt(token.pos.begin, "unexpected duration \"" + token.text +
                                                 "\": durations are only allowed in [...] and "
                                                 "after offset"));
      default:
        if (IsAggregator(token.kind)) {
          return ParseAggregate(depth);
        }
        return Fail(Unexpected(token, "an expression"));
    }
  }

  // labels ::= '(' [label (',' label)* [',']] ')'
  Result<std::vector<std::string>> ParseLabelList() {
    if (auto status = Expect(TokenKind::kLeftParen, "\"(\" before a label list"); !status) {
      return Fail(status.error());
    }
    std::vector<std::string> labels;
    while (Peek().kind != TokenKind::kRightParen) {
      const Token& token = Peek();
      if ((token.kind != TokenKind::kIdentifier && !IsKeyword(token.kind)) ||
          !IsValidLabelName(token.text)) {
        return Fail(Unexpected(token, "a label name"));
      }
      labels.push_back(Advance().text);
      if (Peek().kind == TokenKind::kComma) {
        Advance();
      } else if (Peek().kind != TokenKind::kRightParen) {
        return Fail(Unexpected(Peek(), "\",\" or \")\""));
      }
    }
    Advance();
    return labels;
  }

  // selector ::= [metric] '{' [matcher (',' matcher)* [',']] '}' | metric
  // matcher  ::= label ('=' | '!=' | '=~' | '!~') string
  Result<ExprPtr> ParseSelector(int /*depth*/) {
    uint32_t begin = Peek().pos.begin;
    VectorSelector selector;
    if (Peek().kind == TokenKind::kIdentifier) {
      selector.name = Advance().text;
      CompiledMatcher name_matcher;
      name_matcher.matcher = {LabelMatcher::Type::kEqual, "__name__", selector.name};
      selector.matchers.push_back(std::move(name_matcher));
    }
    if (Peek().kind == TokenKind::kLeftBrace) {
      Advance();
      while (Peek().kind != TokenKind::kRightBrace) {
        const Token& label = Peek();
        if ((label.kind != TokenKind::kIdentifier && !IsKeyword(label.kind)) ||
            !IsValidLabelName(label.text)) {
          return Fail(Unexpected(label, "a label name in label matching"));
        }
        Advance();
        const Token& op = Peek();
        LabelMatcher::Type type;
        switch (op.kind) {
          case TokenKind::kAssign:
            type = LabelMatcher::Type::kEqual;
            break;
          case TokenKind::kNeq:
            type = LabelMatcher::Type::kNotEqual;
            break;
          case TokenKind::kEqlRegex:
            type = LabelMatcher::Type::kRegexMatch;
            break;
          case TokenKind::kNeqRegex:
            type = LabelMatcher::Type::kRegexNoMatch;
            break;
          default:
            return Fail(Unexpected(op, "one of \"=\", \"!=\", \"=~\", \"!~\""));
        }
        Advance();
        const Token& value = Peek();
        if (value.kind != TokenKind::kString) {
          return Fail(Unexpected(value, "a quoted label value"));
        }
        Advance();
        auto compiled = CompileMatcher({type, label.text, value.text}, value.pos.begin);
        if (!compiled) {
          return Fail(compiled.error());
        }
        if (label.text == "__name__" && !selector.name.empty()) {
          return Fail(ErrorAt(label.pos.begin, "metric name must not be set twice: \"" +
                                                   selector.name + "\" or \"" + value.text + "\""));
        }
        selector.matchers.push_back(std::move(*compiled));
        if (Peek().kind == TokenKind::kComma) {
          Advance();
        } else if (Peek().kind != TokenKind::kRightBrace) {
          return Fail(Unexpected(Peek(), "\",\" or \"}\" in label matching"));
        }
      }
      Advance();
    }
    bool non_empty = std::any_of(selector.matchers.begin(), selector.matchers.end(),
                                 [](const CompiledMatcher& m) { return !m.Matches(""); });
    if (!non_empty) {
      return Fail(ErrorAt(begin, "vector selector must contain at least one non-empty matcher"));
    }
    for (const CompiledMatcher& m : selector.matchers) {
      if (m.matcher.name == "__name__" && m.matcher.type == LabelMatcher::Type::kEqual) {
        selector.name = m.matcher.value;
      }
    }
    Expr expr;
    expr.pos = {begin, PrevEnd()};
    expr.type = ValueType::kVector;
    expr.node = std::move(selector);
    return Finish(std::move(expr));
  }

  static Result<CompiledMatcher> CompileMatcher(LabelMatcher matcher, uint32_t value_offset) {
    CompiledMatcher compiled;
    if (matcher.type == LabelMatcher::Type::kRegexMatch ||
        matcher.type == LabelMatcher::Type::kRegexNoMatch) {
      auto regex = CompileAnchoredRegex(matcher.value);
      if (!regex) {
        return Fail(ErrorAt(value_offset, regex.error().message));
      }
      compiled.regex.emplace(std::move(*regex));
    }
    compiled.matcher = std::move(matcher);
    return compiled;
  }

  // args ::= [expr (',' expr)* [',']] ')', after the '(' of a call or an aggregation; `context`
  // names which in the error for a missing separator.
  Result<std::vector<ExprPtr>> ParseArgs(int depth, std::string_view context) {
    std::vector<ExprPtr> args;
    while (Peek().kind != TokenKind::kRightParen) {
      auto arg = ParseExpr(0, depth + 1);
      if (!arg) {
        return Fail(arg.error());
      }
      args.push_back(std::move(*arg));
      if (Peek().kind == TokenKind::kComma) {
        Advance();
      } else if (Peek().kind != TokenKind::kRightParen) {
        return Fail(Unexpected(Peek(), "\",\" or \")\" in " + std::string(context)));
      }
    }
    Advance();
    return args;
  }

  // call ::= function '(' args
  Result<ExprPtr> ParseCall(int depth) {
    const Token& name = Advance();
    const FunctionSpec* spec = FindFunction(name.text);
    if (spec == nullptr) {
      if (IsKnownUnsupportedFunction(name.text)) {
        return Fail(ErrorAt(name.pos.begin, "function \"" + name.text +
                                                "\" is not supported by this PromQL subset"));
      }
      return Fail(ErrorAt(name.pos.begin, "unknown function with name \"" + name.text + "\""));
    }
    Advance();  // '('
    auto parsed = ParseArgs(depth, "function call");
    if (!parsed) {
      return Fail(parsed.error());
    }
    std::vector<ExprPtr> args = std::move(*parsed);
    uint32_t end = PrevEnd();
    int given = static_cast<int>(args.size());
    int declared = spec->num_arg_types;
    std::string fn = "\"" + std::string(spec->name) + "\"";
    if (spec->variadic == 0) {
      if (given != declared) {
        return Fail(ErrorAt(name.pos.begin, "expected " + std::to_string(declared) +
                                                " argument(s) in call to " + fn + ", got " +
                                                std::to_string(given)));
      }
    } else {
      int min_args = declared - 1;
      if (given < min_args) {
        return Fail(ErrorAt(name.pos.begin, "expected at least " + std::to_string(min_args) +
                                                " argument(s) in call to " + fn + ", got " +
                                                std::to_string(given)));
      }
      if (spec->variadic > 0 && given > min_args + spec->variadic) {
        return Fail(ErrorAt(name.pos.begin, "expected at most " +
                                                std::to_string(min_args + spec->variadic) +
                                                " argument(s) in call to " + fn + ", got " +
                                                std::to_string(given)));
      }
    }
    int height = 1;
    for (int i = 0; i < given; ++i) {
      ValueType want = spec->arg_types[static_cast<size_t>(std::min(i, declared - 1))];
      if (auto status = ExpectType(*args[static_cast<size_t>(i)], want, "call to function " + fn);
          !status) {
        return Fail(status.error());
      }
      height = std::max(height, args[static_cast<size_t>(i)]->height + 1);
    }
    Expr expr;
    expr.pos = {name.pos.begin, end};
    expr.type = spec->return_type;
    expr.height = height;
    expr.node = Call{spec, std::move(args)};
    return Finish(std::move(expr));
  }

  // aggregation ::= op [grouping] '(' [param ','] expr ')' [grouping]
  // grouping    ::= (by | without) labels
  Result<ExprPtr> ParseAggregate(int depth) {
    const Token& op_token = Advance();
    Aggregate aggregate;
    aggregate.op = ToAggregateOp(op_token.kind);
    bool grouping_seen = false;
    auto parse_grouping = [&]() -> Status {
      aggregate.without = Advance().kind == TokenKind::kWithout;
      auto labels = ParseLabelList();
      if (!labels) {
        return Fail(labels.error());
      }
      aggregate.grouping = std::move(*labels);
      grouping_seen = true;
      return {};
    };
    if (Peek().kind == TokenKind::kBy || Peek().kind == TokenKind::kWithout) {
      if (auto status = parse_grouping(); !status) {
        return Fail(status.error());
      }
    }
    if (auto status = Expect(TokenKind::kLeftParen, "\"(\" after aggregation"); !status) {
      return Fail(status.error());
    }
    auto parsed = ParseArgs(depth, "aggregation");
    if (!parsed) {
      return Fail(parsed.error());
    }
    std::vector<ExprPtr> args = std::move(*parsed);
    if (!grouping_seen && (Peek().kind == TokenKind::kBy || Peek().kind == TokenKind::kWithout)) {
      if (auto status = parse_grouping(); !status) {
        return Fail(status.error());
      }
    }
    uint32_t end = PrevEnd();
    bool takes_param =
        aggregate.op == AggregateOp::kTopk || aggregate.op == AggregateOp::kBottomk ||
        aggregate.op == AggregateOp::kQuantile || aggregate.op == AggregateOp::kCountValues;
    size_t want = takes_param ? 2 : 1;
    if (args.empty()) {
      return Fail(ErrorAt(op_token.pos.begin, "no arguments for aggregate expression provided"));
    }
    if (args.size() != want) {
      return Fail(ErrorAt(op_token.pos.begin,
                          "wrong number of arguments for aggregate expression provided, expected " +
                              std::to_string(want) + ", got " + std::to_string(args.size())));
    }
    if (takes_param) {
      aggregate.param = std::move(args[0]);
      ValueType param_type =
          aggregate.op == AggregateOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (auto status = ExpectType(*aggregate.param, param_type, "aggregation parameter");
          !status) {
        return Fail(status.error());
      }
    }
    aggregate.expr = std::move(args.back());
    if (auto status = ExpectType(*aggregate.expr, ValueType::kVector, "aggregation expression");
        !status) {
      return Fail(status.error());
    }
    std::sort(aggregate.grouping.begin(), aggregate.grouping.end());
    Expr expr;
    expr.pos = {op_token.pos.begin, end};
    expr.type = ValueType::kVector;
    expr.height = aggregate.expr->height + 1;
    if (aggregate.param) {
      expr.height = std::max(expr.height, aggregate.param->height + 1);
    }
    expr.node = std::move(aggregate);
    return Finish(std::move(expr));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

Result<ExprPtr> ParseExpr(std::string_view text) {
  auto tokens = Lex(text);
  if (!tokens) {
    return Fail(tokens.error());
  }
  return Parser(std::move(*tokens)).Run();
}

}  // namespace modelpulse::rules::promql
