#include "daemon/watchdog.h"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/heartbeat.h"

namespace modelpulse::daemon {
namespace {

using std::chrono_literals::operator""ms;

// Records what the watchdog would send to systemd.
class Recorder {
 public:
  Watchdog::Notify Notify() {
    return [this](const std::string& state) {
      std::lock_guard lock(mu_);
      sent_.push_back(state);
      cv_.notify_all();
    };
  }
  size_t Count() {
    std::lock_guard lock(mu_);
    return sent_.size();
  }
  // Bounded only so that a broken watchdog fails the test instead of hanging it.
  bool WaitForCount(size_t count) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return sent_.size() >= count; });
  }
  std::vector<std::string> Sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> sent_;
};

TEST_CASE("watchdog: pings while every loop beats within the interval, stops while one is stuck") {
  ManualClock clock(1'000'000);
  Heartbeat prober(clock);
  Heartbeat rules(clock);
  Heartbeat writer(clock);
  Recorder sent;
  Watchdog watchdog({{"prober", &prober}, {"rules", &rules}, {"storage writer", &writer}}, 200ms,
                    clock, sent.Notify());

  CHECK(watchdog.Check());  // nothing started: all idle
  prober.Beat();
  rules.Beat();
  clock.Advance(199ms);
  CHECK(watchdog.Check());  // both working, within the interval
  prober.Idle();
  clock.Advance(1ms);
  CHECK_FALSE(watchdog.Check());  // rules: 200 ms on one evaluation
  clock.Advance(std::chrono::seconds(10));
  CHECK_FALSE(watchdog.Check());  // stays silent for as long as the loop is stuck
  CHECK_FALSE(watchdog.Check());
  rules.Beat();  // the evaluation ended, the next one started
  CHECK(watchdog.Check());
  writer.Beat();
  clock.Advance(250ms);
  CHECK_FALSE(watchdog.Check());  // rules and writer both stuck now
  rules.Idle();
  CHECK_FALSE(watchdog.Check());  // the writer alone is enough
  writer.Idle();
  CHECK(watchdog.Check());
  const std::vector<std::string> expected(4, "WATCHDOG=1");
  CHECK(sent.Sent() == expected);
}

TEST_CASE("watchdog: Run checks every half interval of the injected clock until stopped") {
  ManualClock clock(1'000'000);
  Heartbeat rules(clock);
  Recorder sent;
  Watchdog watchdog({{"rules", &rules}}, 200ms, clock, sent.Notify());
  // Each round takes its next deadline before it pings, so a ping seen here means the clock
  // moved below reaches that deadline.
  std::jthread thread([&](std::stop_token stop) { watchdog.Run(stop); });
  REQUIRE(sent.WaitForCount(1));  // at once
  clock.Advance(100ms);
  REQUIRE(sent.WaitForCount(2));
  clock.Advance(100ms);
  REQUIRE(sent.WaitForCount(3));
  thread.request_stop();
  thread.join();
  CHECK(sent.Count() == 3);
}

TEST_CASE("startup keep-alive: extends the start timeout every period until its limit") {
  ManualClock clock(1'000'000);
  Recorder sent;
  {
    StartupKeepAlive keep_alive("starting: migrating", 100ms, 250ms, clock, sent.Notify());
    REQUIRE(sent.WaitForCount(1));  // at once
    clock.Advance(100ms);
    REQUIRE(sent.WaitForCount(2));
    clock.Advance(100ms);
    REQUIRE(sent.WaitForCount(3));
    // Past the limit: a start that hangs is left to TimeoutStartSec=.
    clock.Advance(100ms);
    CHECK_FALSE(keep_alive.Extend());
  }
  CHECK(sent.Count() == 3);
  const std::vector<std::string> expected(3,
                                          "EXTEND_TIMEOUT_USEC=300000\nSTATUS=starting: migrating");
  CHECK(sent.Sent() == expected);
}

TEST_CASE("watchdog: RELOADING=1 carries the monotonic time systemd 253 asks for") {
  const std::string state = ReloadingState();
  REQUIRE(state.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
  const std::string usec = state.substr(state.find('=', 12) + 1);
  CHECK(!usec.empty());
  CHECK(usec.find_first_not_of("0123456789") == std::string::npos);
  CHECK(std::stoll(usec) > 0);
}

}  // namespace
}  // namespace modelpulse::daemon
