#ifndef MODELPULSE_DAEMON_PROCESS_STATS_H_
#define MODELPULSE_DAEMON_PROCESS_STATS_H_

#include <optional>
#include <string>
#include <string_view>

#include "common/common.h"

namespace modelpulse::daemon {

// The process_* series every Prometheus client library exports, read from /proc at scrape time
// as client_golang's process collector does.
struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double start_time_seconds = 0;  // unix time
  std::optional<double> open_fds;
  std::optional<double> max_fds;
};

// Parses /proc/<pid>/stat (`stat`) and the btime line of /proc/stat (`proc_stat`), with the
// clock ticks per second and page size of the machine. kParse when a field is missing.
Result<ProcessStats> ParseProcessStat(std::string_view stat, std::string_view proc_stat,
                                      double ticks_per_second, double page_size);

// Reads this process's stats from `proc_root` ("/proc"): stat, the open descriptors in
// self/fd and the soft RLIMIT_NOFILE from self/limits.
Result<ProcessStats> ReadProcessStats(const std::string& proc_root);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_PROCESS_STATS_H_
