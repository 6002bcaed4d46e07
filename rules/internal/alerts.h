#ifndef MODELPULSE_RULES_INTERNAL_ALERTS_H_
#define MODELPULSE_RULES_INTERNAL_ALERTS_H_

// Private to rules/: helpers shared by the alert state machine and the promtool runner.
#include <string>

#include "common/labels.h"

namespace modelpulse::rules {

// labels.Labels.String(): {a="b", c="d"} with Go-quoted values.
std::string LabelsText(const Labels& labels);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_ALERTS_H_
