#include "alerting/internal/grouping.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "alerting/internal/payload.h"

namespace modelpulse::alerting {
namespace {

using nlohmann::json;

bool IsResolved(const AlertEvent& alert, int64_t now_ms) {
  return alert.resolved || alert.ends_at_ms <= now_ms;
}

bool IsSubset(const std::set<std::string>& subset, const std::set<std::string>& of) {
  return std::includes(of.begin(), of.end(), subset.begin(), subset.end());
}

}  // namespace

Labels GroupLabels(const Labels& labels, const std::vector<std::string>& group_by) {
  if (std::find(group_by.begin(), group_by.end(), "...") != group_by.end()) {
    return labels;
  }
  Labels out;
  for (const std::string& name : group_by) {
    auto it = labels.find(name);
    if (it != labels.end() && !it->second.empty()) {
      out.insert(*it);
    }
  }
  return out;
}

std::string RouteKey(const std::string& matchers_string) {
  return matchers_string.empty() ? "{}" : "{}/" + matchers_string;
}

std::string GroupKey(const std::string& route_key, const Labels& group_labels) {
  return route_key + ":" + LabelSetString(group_labels);
}

void AddAlert(AggregationGroup& group, const AlertEvent& alert, const GroupTimings& timings,
              int64_t now_ms) {
  if (group.alerts.empty() && !group.notified && group.next_flush_ms == 0) {
    group.next_flush_ms = now_ms + timings.group_wait.count();
  }
  const std::string fingerprint = Fingerprint(alert.labels);
  auto it = group.alerts.find(fingerprint);
  if (it == group.alerts.end()) {
    group.alerts.emplace(fingerprint, alert);
    return;
  }
  // Alertmanager's merge keeps the earliest start.
  const int64_t starts = std::min(it->second.starts_at_ms, alert.starts_at_ms);
  it->second = alert;
  it->second.starts_at_ms = starts;
}

FlushOutcome Flush(AggregationGroup& group, const GroupTimings& timings, int64_t now_ms) {
  FlushOutcome out;
  std::set<std::string> firing;
  std::set<std::string> resolved;
  for (const auto& [fingerprint, alert] : group.alerts) {
    (IsResolved(alert, now_ms) ? resolved : firing).insert(fingerprint);
  }
  bool notify = false;
  if (!group.notified) {
    notify = !firing.empty();
  } else if (!IsSubset(firing, group.notified_firing)) {
    notify = true;
  } else if (firing.empty()) {
    // Every alert resolved: said even without send_resolved, to clear the log.
    notify = !group.notified_firing.empty();
  } else if (timings.send_resolved && !IsSubset(resolved, group.notified_resolved)) {
    notify = true;
  } else {
    notify = group.notified_at_ms + timings.repeat_interval.count() <= now_ms;
  }
  if (notify) {
    for (const auto& [fingerprint, alert] : group.alerts) {
      if (timings.send_resolved || firing.count(fingerprint) > 0) {
        out.alerts.push_back(alert);
      }
    }
    out.notify = !out.alerts.empty();
    group.notified = true;
    group.notified_at_ms = now_ms;
    group.notified_firing = firing;
    group.notified_resolved = resolved;
  }
  // Resolved alerts are forgotten once a flush has seen them, as Alertmanager deletes them when
  // its pipeline succeeds (sent, or nothing to send).
  for (const std::string& fingerprint : resolved) {
    group.alerts.erase(fingerprint);
  }
  group.next_flush_ms = now_ms + timings.group_interval.count();
  out.group_empty = group.alerts.empty();
  return out;
}

std::string EncodeGroup(const AggregationGroup& group) {
  json alerts = json::array();
  for (const auto& [fingerprint, alert] : group.alerts) {
    alerts.push_back(EncodeAlertEvent(alert));
  }
  const json doc = {{"key", group.key},
                    {"group_labels", group.group_labels},
                    {"alerts", alerts},
                    {"next_flush_ms", group.next_flush_ms},
                    {"notified", group.notified},
                    {"notified_at_ms", group.notified_at_ms},
                    {"notified_firing", group.notified_firing},
                    {"notified_resolved", group.notified_resolved}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<AggregationGroup> DecodeGroup(std::string_view text) {
  try {
    const json doc = json::parse(text);
    AggregationGroup group;
    group.key = doc.at("key").get<std::string>();
    group.group_labels = doc.at("group_labels").get<Labels>();
    for (const json& item : doc.at("alerts")) {
      auto alert = DecodeAlertEvent(item.get<std::string>());
      if (!alert) {
        return Fail(alert.error());
      }
      group.alerts.emplace(Fingerprint(alert->labels), std::move(*alert));
    }
    group.next_flush_ms = doc.at("next_flush_ms").get<int64_t>();
    group.notified = doc.at("notified").get<bool>();
    group.notified_at_ms = doc.at("notified_at_ms").get<int64_t>();
    group.notified_firing = doc.at("notified_firing").get<std::set<std::string>>();
    group.notified_resolved = doc.at("notified_resolved").get<std::set<std::string>>();
    return group;
  } catch (const json::exception& e) {
    return Fail(Error::Parse(std::string("unreadable aggregation group: ") + e.what()));
  }
}

int64_t BackoffMs(int64_t attempts, Millis initial, Millis max, double unit) {
  int64_t delay = initial.count();
  for (int64_t i = 1; i < attempts && delay < max.count(); ++i) {
    delay *= 2;
  }
  delay = std::min(delay, max.count());
  return delay / 2 + static_cast<int64_t>(static_cast<double>(delay / 2) * unit);
}

}  // namespace modelpulse::alerting
