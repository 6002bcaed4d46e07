// Lexer and parser of the PromQL subset: precedence, associativity, positions, errors, limits.
#include "rules/internal/promql_parser.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "rules/internal/promql_ast.h"
#include "rules/internal/promql_functions.h"
#include "rules/internal/promql_lexer.h"
#include "rules/promql.h"

namespace modelpulse::rules::promql {
namespace {

const char* OpName(BinaryOp op) {
  static const char* const kNames[] = {"+",  "-", "*", "/",  "%",  "^",   "atan2", "==",
                                       "!=", ">", "<", ">=", "<=", "and", "or",    "unless"};
  return kNames[static_cast<int>(op)];
}

// An s-expression of the tree, to assert its shape.
std::string Show(const Expr& e) {
  if (const auto* n = std::get_if<NumberLiteral>(&e.node)) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", n->value);
    return buf;
  }
  if (const auto* s = std::get_if<StringLiteral>(&e.node)) {
    return "\"" + s->value + "\"";
  }
  if (const auto* v = std::get_if<VectorSelector>(&e.node)) {
    std::string out = v->name.empty() ? "{}" : v->name;
    if (v->offset_ms != 0) {
      out += "@off" + std::to_string(v->offset_ms);
    }
    return out;
  }
  if (const auto* m = std::get_if<MatrixSelector>(&e.node)) {
    std::string out = m->selector.name + "[" + std::to_string(m->range_ms) + "]";
    if (m->selector.offset_ms != 0) {
      out += "@off" + std::to_string(m->selector.offset_ms);
    }
    return out;
  }
  if (const auto* b = std::get_if<Binary>(&e.node)) {
    return std::string("(") + OpName(b->op) + (b->return_bool ? " bool " : " ") + Show(*b->lhs) +
           " " + Show(*b->rhs) + ")";
  }
  if (const auto* u = std::get_if<Unary>(&e.node)) {
    return std::string("(") + (u->negate ? "neg " : "pos ") + Show(*u->expr) + ")";
  }
  if (const auto* p = std::get_if<Paren>(&e.node)) {
    return Show(*p->expr);
  }
  if (const auto* c = std::get_if<Call>(&e.node)) {
    std::string out = std::string(c->function->name) + "(";
    for (size_t i = 0; i < c->args.size(); ++i) {
      out += (i ? " " : "") + Show(*c->args[i]);
    }
    return out + ")";
  }
  const auto& a = std::get<Aggregate>(e.node);
  std::string out = "agg" + std::to_string(static_cast<int>(a.op));
  if (!a.grouping.empty() || a.without) {
    out += a.without ? " without" : " by";
    for (const auto& l : a.grouping) {
      out += " " + l;
    }
  }
  return "(" + out + (a.param ? " " + Show(*a.param) : "") + " " + Show(*a.expr) + ")";
}

std::string ParseShow(const std::string& text) {
  auto expr = ParseExpr(text);
  // Only a failed parse has an error to show: the message must not be built from a value.
  if (!expr) {
    FAIL(text << ": " << expr.error().ToString());
  }
  return Show(**expr);
}

std::string ErrorLocation(const std::string& text) {
  auto expr = ParseExpr(text);
  REQUIRE_MESSAGE(!expr.has_value(), text << " should not parse");
  CHECK(expr.error().code == Error::Code::kParse);
  return expr.error().location;
}

}  // namespace

TEST_CASE("lexer: tokens, offsets, keywords, numbers, durations and strings") {
  auto tokens = Lex("sum BY(x) (rate(a_b:c{l=~\"v\\\"\"}[1h30m] offset -5m)) # comment");
  REQUIRE(tokens.has_value());
  std::vector<TokenKind> kinds;
  for (const Token& t : *tokens) {
    kinds.push_back(t.kind);
  }
  std::vector<TokenKind> want = {
      TokenKind::kSum,        TokenKind::kBy,           TokenKind::kLeftParen,
      TokenKind::kIdentifier, TokenKind::kRightParen,   TokenKind::kLeftParen,
      TokenKind::kIdentifier, TokenKind::kLeftParen,    TokenKind::kIdentifier,
      TokenKind::kLeftBrace,  TokenKind::kIdentifier,   TokenKind::kEqlRegex,
      TokenKind::kString,     TokenKind::kRightBrace,   TokenKind::kLeftBracket,
      TokenKind::kDuration,   TokenKind::kRightBracket, TokenKind::kOffset,
      TokenKind::kSub,        TokenKind::kDuration,     TokenKind::kRightParen,
      TokenKind::kRightParen, TokenKind::kEof};
  CHECK(kinds == want);
  CHECK((*tokens)[4].pos.begin == 8);
  CHECK((*tokens)[8].text == "a_b:c");
  CHECK((*tokens)[12].text == "v\"");
  CHECK((*tokens)[15].text == "1h30m");

  auto numbers = Lex("1 1.5 .5 1e3 0x1F Inf nan 1E-2");
  REQUIRE(numbers.has_value());
  for (size_t i = 0; i + 1 < numbers->size(); ++i) {
    CHECK((*numbers)[i].kind == TokenKind::kNumber);
  }
  auto strings = Lex(R"('a\'b' `raw\n` "\x41\u00e9\101")");
  REQUIRE(strings.has_value());
  CHECK((*strings)[0].text == "a'b");
  CHECK((*strings)[1].text == "raw\\n");
  CHECK((*strings)[2].text ==
        "A\xc3\xa9"
        "A");
  CHECK(!Lex("5x").has_value());
  CHECK(!Lex("\"open").has_value());
  CHECK(!Lex("a ! b").has_value());
}

TEST_CASE("parser: numbers follow Go's ParseInt/ParseFloat (hex, octal, Inf, NaN)") {
  CHECK(ParseShow("0x1f") == "31");
  CHECK(ParseShow("010") == "8");
  CHECK(ParseShow("09") == "9");
  CHECK(ParseShow("1e3") == "1000");
  CHECK(ParseShow("-Inf") == "-inf");
  CHECK(ParseShow("NaN") == "nan");
}

TEST_CASE("parser: precedence and associativity match Prometheus") {
  CHECK(ParseShow("1 + 2 * 3") == "(+ 1 (* 2 3))");
  CHECK(ParseShow("1 * 2 + 3") == "(+ (* 1 2) 3)");
  CHECK(ParseShow("a - b - c") == "(- (- a b) c)");
  CHECK(ParseShow("a / b * c % d") == "(% (* (/ a b) c) d)");
  CHECK(ParseShow("a atan2 b * c") == "(* (atan2 a b) c)");
  CHECK(ParseShow("2 ^ 3 ^ 2") == "(^ 2 (^ 3 2))");
  CHECK(ParseShow("a * b ^ c") == "(* a (^ b c))");
  CHECK(ParseShow("-2 ^ 2") == "(neg (^ 2 2))");
  CHECK(ParseShow("-a ^ 2") == "(neg (^ a 2))");
  CHECK(ParseShow("-a * b") == "(* (neg a) b)");
  CHECK(ParseShow("-a + b") == "(+ (neg a) b)");
  CHECK(ParseShow("2 ^ -a") == "(^ 2 (neg a))");
  CHECK(ParseShow("-1") == "-1");
  CHECK(ParseShow("a + b > c - d") == "(> (+ a b) (- c d))");
  CHECK(ParseShow("a < b == c") == "(== (< a b) c)");
  CHECK(ParseShow("a > bool 1 + 2") == "(> bool a (+ 1 2))");
  CHECK(ParseShow("a == b and c") == "(and (== a b) c)");
  CHECK(ParseShow("a and b unless c") == "(unless (and a b) c)");
  CHECK(ParseShow("a unless b and c") == "(and (unless a b) c)");
  CHECK(ParseShow("a or b and c") == "(or a (and b c))");
  CHECK(ParseShow("a and b or c") == "(or (and a b) c)");
  CHECK(ParseShow("a or b or c") == "(or (or a b) c)");
  CHECK(ParseShow("(a or b) and c") == "(and (or a b) c)");
  CHECK(ParseShow("-x offset 5m") == "(neg x@off300000)");
  CHECK(ParseShow("x[5m] offset -1m") == "x[300000]@off-60000");
}

TEST_CASE("parser: aggregations, calls, matching modifiers") {
  CHECK(ParseShow("sum by (b, a) (x)") == "(agg0 by a b x)");
  CHECK(ParseShow("sum(x) without (a,)") == "(agg0 without a x)");
  CHECK(ParseShow("topk(3, x)") == "(agg8 3 x)");
  CHECK(ParseShow("count_values(\"v\", x)") == "(agg10 \"v\" x)");
  CHECK(ParseShow("rate(x[5m])") == "rate(x[300000])");
  CHECK(ParseShow("round(x)") == "round(x)");
  CHECK(ParseShow("round(x, 0.5)") == "round(x 0.5)");
  CHECK(ParseShow("label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")") ==
        "label_join(x \"d\" \",\" \"a\" \"b\" \"c\")");
  CHECK(ParseShow("{__name__=~\"a|b\", on=\"1\"}") == "{}");

  auto expr = ParseExpr("a * on(x, y) group_left(z) b");
  REQUIRE(expr.has_value());
  const auto& binary = std::get<Binary>((*expr)->node);
  CHECK(binary.matching.on);
  CHECK(binary.matching.card == Cardinality::kManyToOne);
  CHECK(binary.matching.matching_labels == std::vector<std::string>{"x", "y"});
  CHECK(binary.matching.include == std::vector<std::string>{"z"});
  auto set = ParseExpr("a and ignoring(x) b");
  REQUIRE(set.has_value());
  CHECK(std::get<Binary>((*set)->node).matching.card == Cardinality::kManyToMany);
}

TEST_CASE("parser: every node carries its source range") {
  auto expr = ParseExpr("sum(rate(x[5m])) > 1");
  REQUIRE(expr.has_value());
  CHECK((*expr)->pos.begin == 0);
  CHECK((*expr)->pos.end == 20);
  const auto& binary = std::get<Binary>((*expr)->node);
  CHECK(binary.lhs->pos.begin == 0);
  CHECK(binary.lhs->pos.end == 16);
  CHECK(binary.rhs->pos.begin == 19);
  const auto& aggregate = std::get<Aggregate>(binary.lhs->node);
  CHECK(aggregate.expr->pos.begin == 4);
  CHECK(aggregate.expr->pos.end == 15);
  const auto& call = std::get<Call>(aggregate.expr->node);
  CHECK(call.args[0]->pos.begin == 9);
  CHECK(call.args[0]->pos.end == 14);
}

TEST_CASE("parser: errors name the byte offset of the offending token") {
  CHECK(ErrorLocation("sum(x") == "offset 5");
  CHECK(ErrorLocation("x{a=1}") == "offset 4");
  CHECK(ErrorLocation("rate(x)") == "offset 5");
  CHECK(ErrorLocation("1 +") == "offset 3");
  CHECK(ErrorLocation("x offset") == "offset 8");
  CHECK(ErrorLocation("(x) offset 5m") == "offset 4");
  CHECK(ErrorLocation("1 > 2") == "offset 2");
  CHECK(ErrorLocation("x + bool y") == "offset 2");
  CHECK(ErrorLocation("foo(x)") == "offset 0");
  CHECK(ErrorLocation("x[5m] + 1") == "offset 0");
  CHECK(ErrorLocation("{}") == "offset 0");
  CHECK(ErrorLocation("{a=\"\"}") == "offset 0");
  CHECK(ErrorLocation("x{a=~\"(\"}") == "offset 5");
  CHECK(ErrorLocation("sum(x) by") == "offset 9");
  CHECK(ErrorLocation("x + on(a) group_left(a) y") == "offset 2");
  CHECK(ErrorLocation("x and 1") == "offset 2");
  CHECK(ErrorLocation("x and on(a) group_left y") == "offset 2");
  CHECK(ErrorLocation("1 + on(a) x") == "offset 2");
  CHECK(ErrorLocation("x !") == "offset 2");
  CHECK(ErrorLocation("\"open") == "offset 0");
  CHECK(ErrorLocation("x y") == "offset 2");
  CHECK(ErrorLocation("x{__name__=\"y\"}") == "offset 2");
  CHECK(ErrorLocation("topk(x)") == "offset 0");
  CHECK(ErrorLocation("round(x, 1, 2)") == "offset 0");
  CHECK(ErrorLocation("x[5]") == "offset 2");
  CHECK(ErrorLocation("5m") == "offset 0");
  CHECK(ErrorLocation("sum(x[5m])") == "offset 4");
}

TEST_CASE("parser: features outside the subset are errors, not wrong answers") {
  auto subquery = ParseExpr("rate(x[5m])[30m:1m]");
  REQUIRE(!subquery.has_value());
  CHECK(subquery.error().message.find("subqueries are not supported") != std::string::npos);
  CHECK(subquery.error().location == "offset 11");
  auto at = ParseExpr("x @ 1609746000");
  REQUIRE(!at.has_value());
  CHECK(at.error().message.find("@ modifier") != std::string::npos);
  auto holt = ParseExpr("holt_winters(x[5m], 0.5, 0.5)");
  REQUIRE(!holt.has_value());
  CHECK(holt.error().message.find("not supported") != std::string::npos);
  // Regexes are RE2's (Go's) dialect: named groups and (?i) parse, Perl's lookaheads do not.
  CHECK(ParseExpr("x{a=~\"(?P<n>.)\"}").has_value());
  CHECK(ParseExpr("x{a=~\"(?i)abc\"}").has_value());
  auto lookahead = ParseExpr("x{a=~\"a(?=b)\"}");
  REQUIRE(!lookahead.has_value());
  CHECK(lookahead.error().message.find("invalid perl operator") != std::string::npos);
  CHECK(lookahead.error().location == "offset 5");
}

TEST_CASE("parser: depth and length limits turn hostile input into errors") {
  std::string deep_parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  CHECK(!ParseExpr(deep_parens).has_value());
  std::string deep_unary = std::string(5000, '-') + "x";
  CHECK(!ParseExpr(deep_unary).has_value());
  std::string long_chain = "x";
  for (int i = 0; i < 1000; ++i) {
    long_chain += " + x";
  }
  CHECK(!ParseExpr(long_chain).has_value());
  std::string deep_calls;
  for (int i = 0; i < 500; ++i) {
    deep_calls += "abs(";
  }
  deep_calls += "x" + std::string(500, ')');
  CHECK(!ParseExpr(deep_calls).has_value());
  std::string ok_parens = std::string(100, '(') + "1" + std::string(100, ')');
  CHECK(ParseExpr(ok_parens).has_value());
  std::string huge(kMaxQueryBytes + 1, ' ');
  auto too_long = ParseExpr(huge);
  REQUIRE(!too_long.has_value());
  CHECK(too_long.error().code == Error::Code::kParse);
}

TEST_CASE("Query: parse once, keep the text, report kParse errors") {
  auto query = Query::Parse("sum(x)");
  REQUIRE(query.has_value());
  CHECK(query->text() == "sum(x)");
  auto bad = Query::Parse("sum(");
  REQUIRE(!bad.has_value());
  CHECK(bad.error().code == Error::Code::kParse);
  CHECK(bad.error().location == "offset 4");
}

}  // namespace modelpulse::rules::promql
