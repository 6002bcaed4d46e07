#ifndef MODELPULSE_RULES_INTERNAL_RULE_FILE_H_
#define MODELPULSE_RULES_INTERNAL_RULE_FILE_H_

// Private to rules/: rule files are parsed by ParseRuleFile/LoadRuleFile, declared in
// rules/rules.h with the types they produce. This header exists so the unit has one.
#include "rules/rules.h"

#endif  // MODELPULSE_RULES_INTERNAL_RULE_FILE_H_
