#ifndef MODELPULSE_DAEMON_WATCHDOG_H_
#define MODELPULSE_DAEMON_WATCHDOG_H_

// The service manager's side of `modelpulse run` (sd_notify(3)): READY=1 once serving,
// RELOADING=1 and READY=1 around every reload, STOPPING=1 on the way out, and a watchdog that
// sends WATCHDOG=1 only while the prober, the rule loop and the storage writer all make progress.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/heartbeat.h"

namespace modelpulse::daemon {

struct WatchedLoop {
  std::string name;  // as the log names it: "prober", "rules", "storage writer"
  const Heartbeat* heartbeat;
};

// Pings every half interval, as sd_watchdog_enabled(3) advises, while no watched loop has been
// stalled (working without a beat) for the whole watchdog interval, and stays silent otherwise: a
// stuck loop then makes systemd (WatchdogSec=) restart the service, where pinging from a thread of
// its own would only prove that this thread runs.
class Watchdog {
 public:
  using Notify = std::function<void(const std::string& state)>;

  // REQUIRES: the heartbeats and `clock` outlive the watchdog.
  Watchdog(std::vector<WatchedLoop> loops, std::chrono::microseconds interval, const Clock& clock,
           Notify notify);

  // One check: sends WATCHDOG=1 when every loop is alive and returns whether it did. A loop found
  // stalled is logged as an error once (not on every check), and so is the recovery.
  bool Check();
  // Checks every half interval until `stop` is requested.
  void Run(std::stop_token stop);

 private:
  std::vector<WatchedLoop> loops_;
  std::chrono::microseconds interval_;
  const Clock& clock_;
  Notify notify_;
  std::string stalled_loop_;  // found by the previous check; empty: none. Check's thread only.
  std::mutex mu_;
  std::condition_variable wake_;  // signalled on stop
};

// Keeps a slow start from being killed: opening the database after an upgrade migrates it, which
// takes minutes for a large file (bench/README.md: about 7 s a million probes for migrations 10
// to 12), while systemd gives a start TimeoutStartSec= (90 s by default) and then kills it,
// rolling the migration back on every restart. Sends EXTEND_TIMEOUT_USEC= of three periods and
// STATUS=`status` every period until destroyed, for at most `limit` in all, so that a start that
// hangs still ends in a restart. (WatchdogSec= only counts once READY=1 is sent.)
class StartupKeepAlive {
 public:
  using Notify = Watchdog::Notify;

  // Sends the first extension at once. REQUIRES: `clock` outlives the keep-alive.
  StartupKeepAlive(std::string status, std::chrono::microseconds period,
                   std::chrono::microseconds limit, const Clock& clock, Notify notify);
  // Stops extending; the start's own READY=1 (or the exit) follows.
  ~StartupKeepAlive();
  StartupKeepAlive(const StartupKeepAlive&) = delete;
  StartupKeepAlive& operator=(const StartupKeepAlive&) = delete;

  // One extension, unless `limit` has passed since construction: returns whether it was sent.
  bool Extend();

 private:
  void Run(std::stop_token stop);

  std::string status_;
  std::chrono::microseconds period_;
  std::chrono::microseconds limit_;
  const Clock& clock_;
  Notify notify_;
  Clock::MonotonicTime started_;
  std::mutex mu_;
  std::condition_variable wake_;  // signalled on stop
  std::jthread thread_;           // last: started once everything above is set
};

// $WATCHDOG_USEC when the service manager expects watchdog pings from this process (and
// $WATCHDOG_PID, if set, is this process); nullopt otherwise.
std::optional<std::chrono::microseconds> SystemdWatchdogInterval();
// Sends `state` to $NOTIFY_SOCKET; does nothing when the process was not started by systemd with
// Type=notify.
void NotifySystemd(const std::string& state);
// "RELOADING=1" with the MONOTONIC_USEC= (CLOCK_MONOTONIC now) that systemd 253's
// Type=notify-reload requires and older versions ignore.
std::string ReloadingState();

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_WATCHDOG_H_
