#ifndef MODELPULSE_RULES_INTERNAL_PROMQL_FUNCTIONS_H_
#define MODELPULSE_RULES_INTERNAL_PROMQL_FUNCTIONS_H_

// The function table of the PromQL subset (private to rules/): names and signatures for the
// parser, implementations for the evaluator.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "rules/internal/promql_ast.h"
#include "rules/promql.h"

namespace modelpulse::rules::promql {

// What an implementation receives: the call node (for selector ranges and matchers), the
// evaluated arguments in order, and the evaluation time.
using FunctionImpl = Result<Value> (*)(const Call& call, const std::vector<Value>& args,
                                       int64_t t_ms);

struct FunctionSpec {
  std::string_view name;
  std::array<ValueType, 5> arg_types{};
  int num_arg_types = 0;
  // 0: exactly num_arg_types arguments; n > 0: up to n trailing optional arguments of the last
  // type; -1: any number of the last type (label_join). Mirrors Prometheus's Function.Variadic.
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
  FunctionImpl impl = nullptr;
  // Whether the result keeps the input's __name__ (last_over_time, label_replace, ...).
  bool keeps_metric_name = false;
};

// The function called `name`, or null when it is not in the subset.
const FunctionSpec* FindFunction(std::string_view name);

// True for names Prometheus 2.42 knows but this engine does not implement (to tell
// "unsupported" from "unknown" in parse errors).
bool IsKnownUnsupportedFunction(std::string_view name);

// Linear interpolation between closest ranks (Prometheus's quantile(), "type 7"). Sorts `values`.
double Quantile(double q, std::vector<double>& values);

}  // namespace modelpulse::rules::promql

#endif  // MODELPULSE_RULES_INTERNAL_PROMQL_FUNCTIONS_H_
