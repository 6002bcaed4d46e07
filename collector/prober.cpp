// The Prober: one thread, one libcurl multi handle, every target on its interval.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include "collector/collector.h"
#include "collector/transfer.h"

namespace modelpulse::collector {
namespace {

using Clock_ = std::chrono::steady_clock;
constexpr int64_t kMillisPerDay = 24LL * 3600 * 1000;
// The loop wakes at least this often, so a missed wakeup costs at most this much.
constexpr std::chrono::milliseconds kMaxPollWait{1000};

// FNV-1a: stable across runs and platforms, unlike std::hash, so a target keeps its phase.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 1469598103934665603ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

int64_t UtcDay(int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / kMillisPerDay : (unix_ms - kMillisPerDay + 1) / kMillisPerDay;
}

// Runs the multi handle until `transfer` completes or passes its first-token deadline.
ProbeResult RunToCompletion(CURLM* multi, Transfer& transfer) {
  while (true) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == transfer.handle()) {
        const CURLcode code = msg->data.result;
        curl_multi_remove_handle(multi, transfer.handle());
        return transfer.Finish(code);
      }
    }
    auto wait = kMaxPollWait;
    if (auto deadline = transfer.FirstTokenDeadline()) {
      const auto now = Clock_::now();
      if (now >= *deadline) {
        curl_multi_remove_handle(multi, transfer.handle());
        transfer.MarkFirstTokenTimeout();
        return transfer.Finish(CURLE_OPERATION_TIMEDOUT);
      }
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*deadline - now));
    }
    curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait.count()), nullptr);
  }
}

class ProberImpl final : public Prober {
 public:
  ProberImpl(const ProberOptions& options, ProbeSink& sink, const Clock& clock, CurlMultiPtr multi)
      : options_(options), sink_(sink), clock_(clock), multi_(std::move(multi)) {
    if (options_.max_concurrency == 0) {
      options_.max_concurrency = 1;
    }
  }

  ~ProberImpl() override { CancelAll(); }

  void SetTargets(std::vector<TargetSpec> targets) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = Clock_::now();
      std::map<std::string, TargetState> next;
      for (TargetSpec& spec : targets) {
        const std::string name = spec.name;
        auto old = targets_.find(name);
        TargetState state;
        if (old != targets_.end()) {
          state = std::move(old->second);  // schedule and budget survive a reload
        } else {
          // Spread first probes over one interval so targets do not fire together.
          const int64_t interval_ms = std::max<int64_t>(1, spec.interval.count());
          state.next_due = now + std::chrono::milliseconds(
                                     static_cast<int64_t>(StableHash(name) % interval_ms));
        }
        state.spec = std::make_shared<const TargetSpec>(std::move(spec));
        next[name] = std::move(state);
      }
      targets_ = std::move(next);
    }
    curl_multi_wakeup(multi_.get());
  }

  void Run(std::stop_token stop) override {
    std::stop_callback wake(stop, [this] { curl_multi_wakeup(multi_.get()); });
    bool stopping = false;
    Clock_::time_point grace_end;
    std::vector<ProbeResult> done;
    while (true) {
      auto now = Clock_::now();
      if (!stopping && stop.stop_requested()) {
        stopping = true;
        grace_end = now + options_.shutdown_grace;
      }
      if (stopping && (transfers_.empty() || now >= grace_end)) {
        break;
      }
      if (!stopping) {
        StartDueProbes(now, done);
      }
      int running = 0;
      curl_multi_perform(multi_.get(), &running);
      DrainFinished(done);
      AbortLateFirstTokens(done);
      for (const ProbeResult& result : done) {
        sink_.OnProbe(result);
      }
      done.clear();
      now = Clock_::now();
      auto wait = NextWakeup(now, stopping);
      if (stopping) {
        wait = std::min(wait, std::max(Clock_::duration::zero(), grace_end - now));
      }
      const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
      curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(std::max<int64_t>(0, wait_ms)),
                      nullptr);
    }
    CancelAll();
  }

  size_t InFlight() const override { return in_flight_.load(); }

  std::vector<TargetStatus> Status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TargetStatus> out;
    out.reserve(targets_.size());
    for (const auto& [name, state] : targets_) {
      TargetStatus status;
      status.name = name;
      status.labels = state.spec->labels;
      status.budget_paused = state.paused;
      status.tokens_today = state.tokens_today;
      status.cost_today = state.cost_today;
      out.push_back(std::move(status));
    }
    return out;
  }

 private:
  struct TargetState {
    std::shared_ptr<const TargetSpec> spec;
    Clock_::time_point next_due;
    int64_t day = -1;  // the UTC day the counters below belong to
    int64_t tokens_today = 0;
    double cost_today = 0;
    bool paused = false;
  };

  Clock_::duration JitteredInterval(const TargetSpec& spec) {
    const double fraction = std::clamp(options_.jitter_fraction, 0.0, 0.9);
    std::uniform_real_distribution<double> dist(-fraction, fraction);
    const double ms = static_cast<double>(spec.interval.count()) * (1.0 + dist(rng_));
    return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(ms)));
  }

  // REQUIRES: mu_ is held.
  void RollDay(TargetState& state, int64_t today) {
    if (state.day == today) {
      return;
    }
    state.day = today;
    state.tokens_today = 0;
    state.cost_today = 0;
    if (state.paused) {
      state.paused = false;
      spdlog::info("target {}: daily budget renewed, probing resumes", state.spec->name);
    }
  }

  void StartDueProbes(Clock_::time_point now, std::vector<ProbeResult>& done) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<Clock_::time_point, TargetState*>> due;
    for (auto& [name, state] : targets_) {
      if (state.next_due <= now && in_flight_names_.count(name) == 0) {
        due.emplace_back(state.next_due, &state);
      }
    }
    // Longest-waiting first, so a concurrency cap delays probes fairly rather than starving one.
    std::sort(due.begin(), due.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    const int64_t today = UtcDay(clock_.NowUnixMillis());
    for (auto& [scheduled, state] : due) {
      if (transfers_.size() >= options_.max_concurrency) {
        break;  // the rest stay due and start as slots free up
      }
      Clock_::time_point next = scheduled + JitteredInterval(*state->spec);
      state->next_due = next > now ? next : now + JitteredInterval(*state->spec);
      RollDay(*state, today);
      if (state->paused) {
        continue;
      }
      auto transfer = std::make_unique<Transfer>(state->spec, options_, clock_);
      if (transfer->handle() == nullptr) {
        done.push_back(transfer->Finish(CURLE_OK));
        continue;
      }
      transfer->MarkStarted();
      if (curl_multi_add_handle(multi_.get(), transfer->handle()) != CURLM_OK) {
        done.push_back(transfer->Finish(CURLE_FAILED_INIT));
        continue;
      }
      in_flight_names_.insert(state->spec->name);
      transfers_.emplace(transfer->handle(), std::move(transfer));
      in_flight_.store(transfers_.size());
    }
  }

  void DrainFinished(std::vector<ProbeResult>& done) {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) {
        continue;
      }
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_.get(), easy);
      auto it = transfers_.find(easy);
      if (it == transfers_.end()) {
        continue;
      }
      Complete(std::move(it->second), code, done);
      transfers_.erase(it);
    }
  }

  void AbortLateFirstTokens(std::vector<ProbeResult>& done) {
    const auto now = Clock_::now();
    for (auto it = transfers_.begin(); it != transfers_.end();) {
      auto deadline = it->second->FirstTokenDeadline();
      if (deadline && *deadline <= now) {
        curl_multi_remove_handle(multi_.get(), it->first);
        it->second->MarkFirstTokenTimeout();
        Complete(std::move(it->second), CURLE_OPERATION_TIMEDOUT, done);
        it = transfers_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The handle is already out of the multi handle.
  void Complete(std::unique_ptr<Transfer> transfer, CURLcode code,
                std::vector<ProbeResult>& done) {
    ProbeResult result = transfer->Finish(code);
    in_flight_names_.erase(transfer->target().name);
    in_flight_.store(transfers_.size() - 1);
    ChargeBudget(transfer->target(), result);
    done.push_back(std::move(result));
  }

  void ChargeBudget(const TargetSpec& spec, const ProbeResult& result) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = targets_.find(spec.name);
    if (it == targets_.end()) {
      return;  // removed while in flight
    }
    TargetState& state = it->second;
    RollDay(state, UtcDay(result.start_unix_ms));
    const int64_t in = result.input_tokens.value_or(0);
    const int64_t out = result.output_tokens.value_or(0);
    state.tokens_today += in + out;
    const TargetSpec& current = *state.spec;
    state.cost_today += static_cast<double>(in) * current.input_price_per_million.value_or(0) / 1e6 +
                        static_cast<double>(out) * current.output_price_per_million.value_or(0) / 1e6;
    const bool tokens_spent =
        current.daily_token_budget && state.tokens_today >= *current.daily_token_budget;
    const bool cost_spent =
        current.daily_cost_budget && state.cost_today >= *current.daily_cost_budget;
    if (!state.paused && (tokens_spent || cost_spent)) {
      state.paused = true;
      spdlog::info("target {}: daily {} budget spent ({} tokens, {:.4f} cost today); paused until "
                   "the next UTC day",
                   spec.name, tokens_spent ? "token" : "cost", state.tokens_today, state.cost_today);
    }
  }

  Clock_::duration NextWakeup(Clock_::time_point now, bool stopping) {
    Clock_::duration wait = kMaxPollWait;
    for (const auto& [easy, transfer] : transfers_) {
      if (auto deadline = transfer->FirstTokenDeadline()) {
        wait = std::min(wait, *deadline - now);
      }
    }
    if (!stopping && transfers_.size() < options_.max_concurrency) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [name, state] : targets_) {
        if (in_flight_names_.count(name) == 0) {
          wait = std::min(wait, state.next_due - now);
        }
      }
    }
    return std::max(wait, Clock_::duration::zero());
  }

  void CancelAll() {
    for (auto& [easy, transfer] : transfers_) {
      curl_multi_remove_handle(multi_.get(), easy);
    }
    transfers_.clear();
    in_flight_names_.clear();
    in_flight_.store(0);
  }

  // Constant after construction.
  ProberOptions options_;
  ProbeSink& sink_;
  const Clock& clock_;
  CurlMultiPtr multi_;

  mutable std::mutex mu_;
  std::map<std::string, TargetState> targets_;  // GUARDED_BY(mu_)

  // Event-loop thread only.
  std::map<CURL*, std::unique_ptr<Transfer>> transfers_;
  std::set<std::string> in_flight_names_;
  std::mt19937_64 rng_{std::random_device{}()};

  std::atomic<size_t> in_flight_{0};
};

}  // namespace

Result<std::unique_ptr<Prober>> Prober::Create(const ProberOptions& options, ProbeSink& sink,
                                               const Clock& clock) {
  CurlMultiPtr multi(curl_multi_init());
  if (!multi) {
    return Fail(Error::Internal("curl_multi_init failed (was curl_global_init called?)"));
  }
  return std::unique_ptr<Prober>(new ProberImpl(options, sink, clock, std::move(multi)));
}

ProbeResult ProbeOnce(const TargetSpec& target, const ProberOptions& options, const Clock& clock) {
  Transfer transfer(std::make_shared<const TargetSpec>(target), options, clock);
  if (transfer.handle() == nullptr) {
    return transfer.Finish(CURLE_OK);
  }
  CurlMultiPtr multi(curl_multi_init());
  if (!multi) {
    return transfer.Finish(CURLE_FAILED_INIT);
  }
  transfer.MarkStarted();
  if (curl_multi_add_handle(multi.get(), transfer.handle()) != CURLM_OK) {
    return transfer.Finish(CURLE_FAILED_INIT);
  }
  return RunToCompletion(multi.get(), transfer);
}

}  // namespace modelpulse::collector
