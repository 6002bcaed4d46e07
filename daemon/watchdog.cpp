#include "daemon/watchdog.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <ctime>
#include <utility>

namespace modelpulse::daemon {

Watchdog::Watchdog(std::vector<WatchedLoop> loops, std::chrono::microseconds interval,
                   const Clock& clock, Notify notify)
    : loops_(std::move(loops)), interval_(interval), clock_(clock), notify_(std::move(notify)) {}

bool Watchdog::Check() {
  const Clock::MonotonicTime now = clock_.MonotonicNow();
  for (const WatchedLoop& loop : loops_) {
    const std::chrono::nanoseconds stalled = loop.heartbeat->StalledFor(now);
    if (stalled >= interval_) {
      if (stalled_loop_ != loop.name) {
        spdlog::error(
            "watchdog: the {} loop has made no progress for {:.3f}s (watchdog interval {:.3f}s); "
            "no longer telling systemd that the service is alive",
            loop.name, std::chrono::duration<double>(stalled).count(),
            std::chrono::duration<double>(interval_).count());
      }
      stalled_loop_ = loop.name;
      return false;
    }
  }
  if (!stalled_loop_.empty()) {
    spdlog::warn("watchdog: every loop makes progress again");
    stalled_loop_.clear();
  }
  notify_("WATCHDOG=1");
  return true;
}

void Watchdog::Run(std::stop_token stop) {
  std::stop_callback wake_on_stop(stop, [this] {
    std::lock_guard lock(mu_);
    wake_.notify_all();
  });
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const Clock::MonotonicTime next = clock_.MonotonicNow() + interval_ / 2;
    lock.unlock();
    Check();
    lock.lock();
    while (!stop.stop_requested() && clock_.MonotonicNow() < next) {
      clock_.WaitUntil(wake_, lock, next);
    }
  }
}

std::optional<std::chrono::microseconds> SystemdWatchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(static_cast<int64_t>(usec));
}

void NotifySystemd(const std::string& state) { sd_notify(0, state.c_str()); }

std::string ReloadingState() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t usec = static_cast<int64_t>(now.tv_sec) * 1'000'000 + now.tv_nsec / 1000;
  return fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec);
}

}  // namespace modelpulse::daemon
