// The alert state machine of §2 (Prometheus 2.42 rules/alerting.go): identity by label set,
// pending -> firing after `for`, keep_firing_for, resolved alerts kept 15m and re-sent, ALERTS and
// ALERTS_FOR_STATE samples, and exact state export/import for restarts.
#include "rules/internal/alerts.h"

#include <algorithm>

#include "rules/internal/go_compat.h"
#include "rules/rules.h"

namespace modelpulse::rules {

std::string LabelsText(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) {
      out += ", ";
    }
    first = false;
    out += k + "=" + GoQuote(v);
  }
  return out + "}";
}

std::string_view AlertStateName(AlertState state) {
  switch (state) {
    case AlertState::kInactive:
      return "inactive";
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
  }
  return "inactive";
}

Status MemoryAlertStateStore::SaveAlertStates(std::string_view group,
                                              const std::vector<AlertStateSnapshot>& alerts) {
  by_group_[std::string(group)] = alerts;
  return {};
}

Result<std::vector<AlertStateSnapshot>> MemoryAlertStateStore::LoadAlertStates() {
  std::vector<AlertStateSnapshot> out;
  for (const auto& [group, alerts] : by_group_) {
    out.insert(out.end(), alerts.begin(), alerts.end());
  }
  return out;
}

AlertingRule::AlertingRule(RuleDef def, AlertingOptions options)
    : def_(std::move(def)), options_(std::move(options)) {}

Result<AlertRuleOutput> AlertingRule::Update(const Vector& result, int64_t ts_ms, int64_t limit,
                                             const TemplateQueryFunc& query) {
  const std::string tmpl_name = "__alert_" + def_.name;
  std::map<Labels, Alert> seen;
  for (const VectorSample& s : result) {
    TemplateData data{s.labels, s.value, options_.external_labels, options_.external_url};
    auto expand = [&](const std::string& text) {
      auto out = ExpandTemplate(tmpl_name, text, data, query);
      // A template error does not fail the rule: the text says what went wrong.
      return out ? *out : "<error expanding template: " + out.error().message + ">";
    };
    Labels labels = s.labels;
    labels.erase("__name__");
    for (const auto& [k, v] : def_.labels) {
      std::string value = expand(v);
      if (value.empty()) {
        labels.erase(k);
      } else {
        labels[k] = std::move(value);
      }
    }
    labels["alertname"] = def_.name;
    Labels annotations;
    for (const auto& [k, v] : def_.annotations) {
      annotations[k] = expand(v);
    }
    if (seen.count(labels) != 0) {
      return Fail(Error::InvalidArgument(
          "vector contains metrics with the same labelset after applying alert labels"));
    }
    Alert alert;
    alert.labels = labels;
    alert.annotations = std::move(annotations);
    alert.value = s.value;
    alert.state = AlertState::kPending;
    alert.active_at_ms = ts_ms;
    seen.emplace(std::move(labels), std::move(alert));
  }

  for (auto& [labels, fresh] : seen) {
    auto it = active_.find(labels);
    if (it != active_.end() && it->second.state != AlertState::kInactive) {
      it->second.value = fresh.value;
      it->second.annotations = fresh.annotations;
    } else {
      // New, or a resolved alert kept for re-sending comes back: `for` starts again.
      active_[labels] = std::move(fresh);
    }
  }

  AlertRuleOutput out;
  const int64_t for_ms = def_.for_duration.count();
  const int64_t keep_ms = def_.keep_firing_for.count();
  for (auto it = active_.begin(); it != active_.end();) {
    Alert& a = it->second;
    if (seen.count(it->first) == 0) {
      bool keep = false;
      if (a.state == AlertState::kFiring && keep_ms > 0) {
        if (!a.keep_firing_since_ms) {
          a.keep_firing_since_ms = ts_ms;
        }
        keep = ts_ms - *a.keep_firing_since_ms < keep_ms;
      }
      if (a.state == AlertState::kPending ||
          (a.resolved_at_ms && ts_ms - *a.resolved_at_ms > options_.resolved_retention.count())) {
        it = active_.erase(it);
        continue;
      }
      if (a.state != AlertState::kInactive && !keep) {
        a.state = AlertState::kInactive;
        a.resolved_at_ms = ts_ms;
      }
      if (!keep) {
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since_ms.reset();
    }
    ++out.active_count;
    if (a.state == AlertState::kPending && ts_ms - a.active_at_ms >= for_ms) {
      a.state = AlertState::kFiring;
      a.fired_at_ms = ts_ms;
    }
    // ALERTS / ALERTS_FOR_STATE start from the rule's raw labels, then the alert's (§2.7).
    Labels base = def_.labels;
    for (const auto& [k, v] : a.labels) {
      base[k] = v;
    }
    Labels alerts_labels = base;
    alerts_labels["__name__"] = "ALERTS";
    alerts_labels["alertstate"] = std::string(AlertStateName(a.state));
    out.samples.push_back({std::move(alerts_labels), 1.0, ts_ms});
    base["__name__"] = "ALERTS_FOR_STATE";
    out.samples.push_back({std::move(base), static_cast<double>(a.active_at_ms) / 1000.0, ts_ms});
    ++it;
  }
  if (limit > 0 && out.active_count > limit) {
    active_.clear();
    return Fail(Error::InvalidArgument("exceeded limit of " + std::to_string(limit) + " with " +
                                       std::to_string(out.active_count) + " alerts"));
  }
  return out;
}

std::vector<AlertNotification> AlertingRule::TakeAlertsToSend(int64_t ts_ms,
                                                              Millis group_interval) {
  std::vector<AlertNotification> out;
  const int64_t resend = options_.resend_delay.count();
  for (auto& [labels, a] : active_) {
    if (a.state == AlertState::kPending) {
      continue;
    }
    const bool just_resolved =
        a.resolved_at_ms && (!a.last_sent_at_ms || *a.resolved_at_ms > *a.last_sent_at_ms);
    // Strictly before: with 1m evaluations and 1m resend delay, every 2m (§2.6).
    const bool due = !a.last_sent_at_ms || *a.last_sent_at_ms + resend < ts_ms;
    if (!just_resolved && !due) {
      continue;
    }
    const bool first_send = !a.last_sent_at_ms.has_value();
    a.last_sent_at_ms = ts_ms;
    a.valid_until_ms = ts_ms + 4 * std::max(group_interval.count(), resend);
    AlertNotification n;
    n.labels = a.labels;
    n.annotations = a.annotations;
    n.starts_at_ms = a.fired_at_ms.value_or(a.active_at_ms);
    n.resolved = a.resolved_at_ms.has_value();
    n.ends_at_ms = n.resolved ? *a.resolved_at_ms : *a.valid_until_ms;
    n.changed = first_send || just_resolved;
    n.expr = def_.expr_text;
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<Alert> AlertingRule::Alerts() const {
  std::vector<Alert> out;
  for (const auto& [labels, a] : active_) {
    out.push_back(a);
  }
  return out;
}

std::vector<Alert> AlertingRule::FiringAlerts() const {
  std::vector<Alert> out;
  for (const auto& [labels, a] : active_) {
    if (a.state == AlertState::kFiring && !a.resolved_at_ms) {
      out.push_back(a);
    }
  }
  return out;
}

std::vector<AlertStateSnapshot> AlertingRule::Snapshot(std::string_view group,
                                                       int64_t now_ms) const {
  std::vector<AlertStateSnapshot> out;
  for (const auto& [labels, a] : active_) {
    out.push_back({std::string(group), def_.name, def_.labels, a, now_ms});
  }
  return out;
}

void AlertingRule::Restore(const std::vector<AlertStateSnapshot>& snapshots, std::string_view group,
                           int64_t now_ms) {
  active_.clear();
  for (const AlertStateSnapshot& s : snapshots) {
    if (s.group != group || s.rule != def_.name || s.rule_labels != def_.labels) {
      continue;
    }
    // Pending time from before a long outage is not trusted (Prometheus's for-outage-tolerance);
    // firing and resolved alerts are kept so that startsAt stays the same and nobody is re-paged.
    if (s.alert.state == AlertState::kPending &&
        now_ms - s.saved_at_ms > options_.for_outage_tolerance.count()) {
      continue;
    }
    active_[s.alert.labels] = s.alert;
  }
}

}  // namespace modelpulse::rules
