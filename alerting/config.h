#ifndef MODELPULSE_ALERTING_CONFIG_H_
#define MODELPULSE_ALERTING_CONFIG_H_

// Reading the main file's `alerting:` section (issue 8) into AlertingConfig. Includes yaml-cpp
// through common/yaml_reader.h, so only the daemon's config loader includes it.

#include <functional>
#include <string>
#include <string_view>

#include "alerting/alerting.h"
#include "common/environment.h"
#include "common/yaml_reader.h"

namespace modelpulse::alerting {

// Fills config.alertmanagers and config.receivers from `section`, reporting every problem with
// its position: unknown keys, bad durations, URLs, matchers, group_by labels, duplicate receiver
// names, secrets that cannot be read (named by variable or file, never by content). Relative
// paths start at `folder`. external_url and external_labels are the caller's (global section).
// `check_template` parses a template receiver's body (the daemon passes the rules module's
// CheckNotificationTemplate; null: not checked).
using TemplateCheck = std::function<Status(std::string_view name, std::string_view text)>;
void ReadAlertingSection(const yaml::Entry& section, const Environment& env,
                         const std::string& folder, AlertingConfig& config, yaml::Diagnostics& diag,
                         const TemplateCheck& check_template = nullptr);

// True for an absolute http:// or https:// URL with a host.
bool IsHttpUrl(std::string_view url);

}  // namespace modelpulse::alerting

#endif  // MODELPULSE_ALERTING_CONFIG_H_
