#ifndef MODELPULSE_RULES_INTERNAL_TEMPLATE_H_
#define MODELPULSE_RULES_INTERNAL_TEMPLATE_H_

// Private to rules/: the number formatting of Prometheus's humanize* template functions, exposed
// for unit tests with the Go formats they build on (go_compat.h). The template engine's entry
// points are in rules/rules.h; its units are template_lexer, template_parser, template_value and
// the executor in template.cpp.

#include <string>

#include "rules/internal/go_compat.h"

namespace modelpulse::rules {

// Prometheus's humanize, humanize1024, humanizeDuration and humanizePercentage.
std::string Humanize(double v);
std::string Humanize1024(double v);
std::string HumanizeDuration(double v);
std::string HumanizePercentage(double v);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_TEMPLATE_H_
