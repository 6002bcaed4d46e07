#ifndef MODELPULSE_ALERTING_INTERNAL_GROUPING_H_
#define MODELPULSE_ALERTING_INTERNAL_GROUPING_H_

// Private to alerting/: Alertmanager's aggregation groups for one receiver (AM 0.25
// dispatch/dispatch.go aggrGroup, notify/notify.go DedupStage.needsUpdate): alerts wait
// group_wait before the first notification, later changes are sent at most every
// group_interval, and an unchanged group is repeated after repeat_interval.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "alerting/alerting.h"
#include "common/alert_event.h"

namespace modelpulse::alerting {

struct GroupTimings {
  Millis group_wait{30000};
  Millis group_interval{300000};
  Millis repeat_interval{4LL * 3600 * 1000};
  bool send_resolved = true;
};

struct AggregationGroup {
  std::string key;  // <route key>:<group labels>
  Labels group_labels;
  std::map<std::string, AlertEvent> alerts;  // by fingerprint
  int64_t next_flush_ms = 0;
  // What the last notification said (Alertmanager's notification log).
  bool notified = false;
  int64_t notified_at_ms = 0;
  std::set<std::string> notified_firing;
  std::set<std::string> notified_resolved;
};

// The labels of `group_by` that `labels` has; every label for ["..."].
Labels GroupLabels(const Labels& labels, const std::vector<std::string>& group_by);
// "{}" for a receiver without matchers (Alertmanager's root route), else "{}/{matchers}" (a
// child route of the root).
std::string RouteKey(const std::string& matchers_string);
std::string GroupKey(const std::string& route_key, const Labels& group_labels);

// Adds or replaces one alert; a new group starts its group_wait at `now_ms`.
void AddAlert(AggregationGroup& group, const AlertEvent& alert, const GroupTimings& timings,
              int64_t now_ms);

struct FlushOutcome {
  bool notify = false;
  std::vector<AlertEvent> alerts;  // what the notification holds (resolved ones only with
                                   // send_resolved)
  bool group_empty = false;        // nothing left: the group can be deleted
};
// REQUIRES: now_ms >= group.next_flush_ms. Decides as needsUpdate does, records the notification,
// drops the resolved alerts it covered and schedules the next flush.
FlushOutcome Flush(AggregationGroup& group, const GroupTimings& timings, int64_t now_ms);

std::string EncodeGroup(const AggregationGroup& group);
Result<AggregationGroup> DecodeGroup(std::string_view text);

// The wait before retry number `attempts` (1-based): initial * 2^(attempts-1), capped at
// `max`, then scaled into [1/2, 1) of itself by `unit` in [0, 1) (jitter, so receivers coming
// back are not hit by every sender at once).
int64_t BackoffMs(int64_t attempts, Millis initial, Millis max, double unit);

}  // namespace modelpulse::alerting

#endif  // MODELPULSE_ALERTING_INTERNAL_GROUPING_H_
