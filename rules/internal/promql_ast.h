#ifndef MODELPULSE_RULES_INTERNAL_PROMQL_AST_H_
#define MODELPULSE_RULES_INTERNAL_PROMQL_AST_H_

// The immutable PromQL AST (private to rules/). Every node carries the byte range of the source
// text it came from. Nodes are built once by the parser and never modified; the AST holds no
// evaluation state, so one tree can be evaluated from many threads at once.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/regex.h"
#include "rules/internal/promql_lexer.h"
#include "rules/promql.h"

namespace modelpulse::rules::promql {

enum class ValueType { kScalar, kVector, kMatrix, kString };

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEql,
  kNeq,
  kGtr,
  kLss,
  kGte,
  kLte,
  kAnd,
  kOr,
  kUnless,
};

enum class AggregateOp {
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

struct Expr;
using ExprPtr = std::unique_ptr<const Expr>;

// A label matcher with its regex compiled once, fully anchored (^(?:re)$ semantics).
struct CompiledMatcher {
  LabelMatcher matcher;
  std::optional<Regex> regex;  // set for =~ and !~
  bool Matches(const std::string& value) const;
};

struct NumberLiteral {
  double value = 0;
};

struct StringLiteral {
  std::string value;
};

struct VectorSelector {
  std::string name;                       // empty when only {...} was written
  std::vector<CompiledMatcher> matchers;  // includes __name__="name" when a name was written
  int64_t offset_ms = 0;
};

struct MatrixSelector {
  VectorSelector selector;
  int64_t range_ms = 0;
};

struct FunctionSpec;  // defined in promql_functions.h

struct Call {
  const FunctionSpec* function = nullptr;
  std::vector<ExprPtr> args;
};

struct Aggregate {
  AggregateOp op = AggregateOp::kSum;
  ExprPtr param;  // topk/bottomk/quantile: scalar; count_values: string; else null
  ExprPtr expr;
  std::vector<std::string> grouping;  // sorted
  bool without = false;
};

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;
  std::vector<std::string> matching_labels;  // on(...) / ignoring(...)
  bool on = false;                   // true: matching_labels are on(...); false: ignoring(...)
  std::vector<std::string> include;  // group_left(...)/group_right(...) extra labels
};

struct Binary {
  BinaryOp op = BinaryOp::kAdd;
  ExprPtr lhs;
  ExprPtr rhs;
  bool return_bool = false;
  VectorMatching matching;  // meaningful only when both sides are vectors
};

struct Unary {
  bool negate = false;  // unary '+' is kept as a node for positions but changes nothing
  ExprPtr expr;
};

struct Paren {
  ExprPtr expr;
};

struct Expr {
  PosRange pos;
  ValueType type = ValueType::kScalar;
  int height = 1;  // longest path to a leaf, bounded by kMaxDepth
  std::variant<NumberLiteral, StringLiteral, VectorSelector, MatrixSelector, Call, Aggregate,
               Binary, Unary, Paren>
      node;
};

bool IsComparison(BinaryOp op);
bool IsSetOperator(BinaryOp op);
std::string_view ValueTypeName(ValueType type);

}  // namespace modelpulse::rules::promql

namespace modelpulse::rules {

// The parsed query behind Query's shared_ptr.
class ParsedExpr {
 public:
  explicit ParsedExpr(promql::ExprPtr root) : root_(std::move(root)) {}
  const promql::Expr& root() const { return *root_; }

 private:
  promql::ExprPtr root_;
};

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_PROMQL_AST_H_
