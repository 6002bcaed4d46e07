#ifndef MODELPULSE_RULES_TEMPLATE_H_
#define MODELPULSE_RULES_TEMPLATE_H_

// Private to rules/: the number formatting behind alert templates and promtool's reports, exposed
// for unit tests. The template engine's entry points are in rules/rules.h.

#include <string>
#include <string_view>

namespace modelpulse::rules {

// strconv.FormatFloat(v, 'E', -1, 64): "3E+00", "1.5E-01", "NaN", "+Inf".
std::string FormatGoFloatE(double v);
// C-style "%.4g" as Go prints it (identical to printf for finite values; "NaN", "+Inf", "-Inf").
std::string FormatGo4g(double v);

// strconv.Quote for the ASCII range (other bytes pass through).
std::string GoQuote(std::string_view s);

std::string Humanize(double v);
std::string Humanize1024(double v);
std::string HumanizeDuration(double v);
std::string HumanizePercentage(double v);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_TEMPLATE_H_
