#ifndef MODELPULSE_DAEMON_STATUS_PAGE_H_
#define MODELPULSE_DAEMON_STATUS_PAGE_H_

// The status page (issue 10 item 6): GET /status on the daemon and `modelpulse report
// --format=status-html` (the same page as a static file), both rendered by RenderStatusPage.
// Per model x cloud (target): the current state, 90 daily uptime bars with a tooltip per day,
// the current incidents and the SLO budget left. No scripts, no external assets, relative links
// only, so it works offline and behind a proxy path.
//
// Daily availability comes from the daily probe summaries (storage::Archive::DailyCounts; the
// hourly rollups in a database older than schema 9), never from the probes, and counts as the
// generated SLO rules do (rules/slo.h OutcomeGauges): good = ok probes; throttled, overloaded,
// quota_exhausted and auth probes are left out unless the target's availability SLO counts them
// as the provider's fault; every other failure is bad. So a day's figure equals the JSON
// report's `days` entry whenever the SLO leaves out no other outcome.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/common.h"
#include "rules/slo.h"
#include "storage/archive.h"

namespace modelpulse::daemon {

inline constexpr int kStatusDays = 90;

struct StatusDay {
  int64_t day_ms = 0;  // 00:00 UTC
  int64_t good = 0;
  int64_t bad = 0;  // good + bad == 0: no probes that day
};

struct StatusTarget {
  std::string name;
  Labels labels;
  std::string state = "unknown";  // "up", "down" or "unknown" (no recent probe)
  std::string last_outcome;       // empty without a probe
  int64_t last_probe_ms = 0;
  double objective = 0.999;     // of the target's availability SLO: the bars' green line
  std::vector<StatusDay> days;  // kStatusDays, oldest first, today last
};

struct StatusIncident {
  std::string alertname;
  Labels labels;
  int64_t starts_ms = 0;
};

struct StatusSlo {
  std::string name;
  std::string kind;
  std::string window;
  double objective = 0;
  int64_t events = 0;
  int64_t bad = 0;
  std::optional<double> budget_left;  // 1 - bad / (events x error budget); nullopt: unknown
};

struct StatusPage {
  int64_t now_ms = 0;
  std::vector<StatusTarget> targets;
  std::vector<StatusIncident> incidents;  // firing now
  std::vector<StatusSlo> slos;
  std::string note;  // a line under the SLO table (how the figures were computed), may be empty
};

// One self-contained HTML document.
std::string RenderStatusPage(const StatusPage& page);

// The SLO row from events and bad events over its window.
StatusSlo StatusSloOf(const rules::SloSpec& spec, int64_t events, int64_t bad);

// The first availability SLO selecting `labels`, else the default one (the report's rule).
const rules::SloSpec& AvailabilitySloFor(const std::vector<rules::SloSpec>& slos,
                                         const Labels& labels);

// Each target's last kStatusDays days from the rollups, caching the settled ones (a day is
// settled 15 minutes after it ends, when its last probes have committed), so after the first
// read a page reads only today's (and, briefly, yesterday's) rollups. Thread-safe.
class StatusDays {
 public:
  // By target id, for every (target id, its availability SLO) of `targets`: one read of the
  // rollups for all of them, from the earliest day any of them has not cached.
  Result<std::map<int64_t, std::vector<StatusDay>>> ReadAll(
      const storage::Archive& archive,
      const std::vector<std::pair<int64_t, const rules::SloSpec*>>& targets, int64_t now_ms);
  Result<std::vector<StatusDay>> Read(const storage::Archive& archive, int64_t target_id,
                                      const rules::SloSpec& availability, int64_t now_ms);

 private:
  std::mutex mu_;
  std::map<std::pair<int64_t, int64_t>, storage::DayCounts> settled_;  // (target id, day)
};

// The static page of `modelpulse report --format=status-html`: days from the daily probe
// summaries, the state from each target's last stored probe of the last hour, incidents from the
// stored alert history still firing, and every SLO's budget from the probe summaries since the
// day its window starts, counted as the report counts them (SloEventsOf).
Result<StatusPage> BuildStaticStatusPage(const std::string& storage_path,
                                         const std::vector<rules::SloSpec>& slos, int64_t now_ms);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_STATUS_PAGE_H_
