#include "daemon/watchdog.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdint>
#include <ctime>
#include <utility>

namespace modelpulse::daemon {
namespace {

// Calls `step` at once, then every `period` of `clock`, until `stop` is requested or `step`
// returns false. `wake` (under `mu`) is signalled on stop, so the wait ends at once.
void RunEvery(std::stop_token stop, std::chrono::microseconds period, const Clock& clock,
              std::mutex& mu, std::condition_variable& wake, const std::function<bool()>& step) {
  std::stop_callback wake_on_stop(stop, [&] {
    std::lock_guard lock(mu);
    wake.notify_all();
  });
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    const Clock::MonotonicTime next = clock.MonotonicNow() + period;
    lock.unlock();
    if (!step()) {
      return;
    }
    lock.lock();
    while (!stop.stop_requested() && clock.MonotonicNow() < next) {
      clock.WaitUntil(wake, lock, next);
    }
  }
}

}  // namespace

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
  RunEvery(stop, interval_ / 2, clock_, mu_, wake_, [this] {
    Check();
    return true;
  });
}

StartupKeepAlive::StartupKeepAlive(std::string status, std::chrono::microseconds period,
                                   std::chrono::microseconds limit, const Clock& clock,
                                   Notify notify)
    : status_(std::move(status)),
      period_(period),
      limit_(limit),
      clock_(clock),
      notify_(std::move(notify)),
      started_(clock.MonotonicNow()),
      thread_([this](std::stop_token stop) { Run(stop); }) {}

StartupKeepAlive::~StartupKeepAlive() {
  thread_.request_stop();
  thread_.join();
}

bool StartupKeepAlive::Extend() {
  if (clock_.MonotonicNow() - started_ > limit_) {
    return false;
  }
  notify_(fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", (3 * period_).count(), status_));
  return true;
}

void StartupKeepAlive::Run(std::stop_token stop) {
  RunEvery(stop, period_, clock_, mu_, wake_, [this] { return Extend(); });
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
