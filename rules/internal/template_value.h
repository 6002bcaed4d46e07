#ifndef MODELPULSE_RULES_INTERNAL_TEMPLATE_VALUE_H_
#define MODELPULSE_RULES_INTERNAL_TEMPLATE_VALUE_H_

// Private to rules/: the values a Go text/template pipeline carries (nil, bool, int, float64,
// string, a label map, a query sample, a query result), how Go prints and tests them, and Go's
// fmt.Sprintf over them. The template lexer, parser and executor all speak these.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/common.h"

namespace modelpulse::rules::text_template {

struct Nil {};
struct QuerySample {
  Labels labels;
  double value = 0;
};
using QueryResult = std::vector<QuerySample>;
// A struct and a list of values: Alertmanager's notification data (.Alerts, each alert's
// .Labels...), built from the webhook payload. Shared and immutable, so copying a value is cheap.
struct RecordFields;
struct ListItems;
struct Record {
  std::shared_ptr<const RecordFields> fields;
};
struct List {
  std::shared_ptr<const ListItems> items;
};
using TValue = std::variant<Nil, bool, int64_t, double, std::string, Labels, QuerySample,
                            QueryResult, Record, List>;
struct RecordFields {
  std::string type_name;  // as Go names it in errors: "template.Data", "template.Alert"
  std::map<std::string, TValue, std::less<>> fields;
};
struct ListItems {
  std::string type_name;  // "template.Alerts"
  std::vector<TValue> items;
};

// Go's type name, as error messages print it ("float64", "map[string]string").
std::string TypeName(const TValue& v);
// fmt's %v.
std::string Print(const TValue& v);
// text/template's truth: false, 0, "", nil and empty collections are false.
bool Truth(const TValue& v);
// Prometheus's convertToFloat.
Result<double> ToFloat(const TValue& v);
// Go's fmt.Sprintf for the verbs templates use: %v %s %d %f %F %e %E %g %G %q %t %%. A width or
// precision Go calls too large (past about 10^7 digits' worth) gives %!(NOVERB) and ends the
// format, as in Go; one over `max_size`, or a result longer than it, is an error, so a rule
// cannot make one printf allocate gigabytes.
Result<std::string> GoSprintf(std::string_view format, const std::vector<TValue>& args,
                              size_t max_size);

}  // namespace modelpulse::rules::text_template

#endif  // MODELPULSE_RULES_INTERNAL_TEMPLATE_VALUE_H_
