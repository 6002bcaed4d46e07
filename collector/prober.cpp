// The Prober: one thread, one libcurl multi handle driven by curl_multi_socket_action over an
// epoll set, every target on its interval.
//
// Why socket_action rather than curl_multi_perform/curl_multi_poll: perform visits every easy
// handle (and polls each one's socket) and multi_poll rebuilds the whole descriptor set on every
// wake-up, so with hundreds of streams in flight each chunk cost O(streams). With socket_action
// curl only touches the connection that has bytes, and the schedule below is kept in heaps, so an
// iteration costs O(events + due probes) and the loop stays on time at 500 concurrent streams.

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/collector.h"
#include "collector/internal/transfer.h"
#include "common/heartbeat.h"

namespace modelpulse::collector {
namespace {

using MonotonicTime = Clock::MonotonicTime;
constexpr int64_t kMillisPerDay = 24LL * 3600 * 1000;
// The loop wakes at least this often, so a missed wakeup costs at most this much.
constexpr std::chrono::milliseconds kMaxPollWait{1000};
constexpr int kMaxEpollEvents = 256;

// FNV-1a: stable across runs and platforms, unlike std::hash, so a target keeps its phase.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 1469598103934665603ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

// Credentials fetched by running a command or an OAuth exchange: seconds when the cache is cold or
// the command hangs. Such a target's request is built off the event loop (see Prepare).
bool NeedsFetchedCredential(const TargetSpec& spec) {
  return spec.auth.mode == AuthMode::kTokenCommand ||
         spec.auth.mode == AuthMode::kGoogleServiceAccount;
}

int64_t UtcDay(int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / kMillisPerDay : (unix_ms - kMillisPerDay + 1) / kMillisPerDay;
}

// Runs the multi handle until `transfer` completes or passes its first-token deadline.
ProbeResult RunToCompletion(CURLM* multi, Transfer& transfer, const Clock& clock) {
  while (true) {
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == transfer.handle()) {
        const CURLcode code = msg->data.result;
        const SteadyTime end = clock.MonotonicNow();
        curl_multi_remove_handle(multi, transfer.handle());
        return transfer.Finish(code, end);
      }
    }
    auto wait = kMaxPollWait;
    if (auto deadline = transfer.FirstTokenDeadline()) {
      const auto now = clock.MonotonicNow();
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
  ProberImpl(const ProberOptions& options, ProbeSink& sink, const Clock& clock, CurlMultiPtr multi,
             int epoll_fd, int wake_fd)
      : options_(options),
        sink_(sink),
        clock_(clock),
        multi_(std::move(multi)),
        epoll_fd_(epoll_fd),
        wake_fd_(wake_fd) {
    if (options_.max_concurrency == 0) {
      options_.max_concurrency = 1;
    }
    CURLM* multi_handle = multi_.get();
    curl_multi_setopt(multi_handle, CURLMOPT_SOCKETFUNCTION, &ProberImpl::SocketCallback);
    curl_multi_setopt(multi_handle, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_handle, CURLMOPT_TIMERFUNCTION, &ProberImpl::TimerCallback);
    curl_multi_setopt(multi_handle, CURLMOPT_TIMERDATA, this);
  }

  ~ProberImpl() override {
    preparing_.clear();  // waits for running credential fetches, which may Wake()
    CancelAll();
    multi_.reset();  // closes curl's sockets (through SocketCallback) while epoll_fd_ is open
    close(wake_fd_);
    close(epoll_fd_);
  }

  void SetTargets(std::vector<TargetSpec> targets) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto now = clock_.MonotonicNow();
      std::map<std::string, std::unique_ptr<TargetState>> next;
      for (TargetSpec& spec : targets) {
        const std::string name = spec.name;
        auto old = targets_.find(name);
        std::unique_ptr<TargetState> state;
        if (old != targets_.end()) {
          state = std::move(old->second);  // schedule and budget survive a reload
        } else {
          state = std::make_unique<TargetState>();
          // Spread first probes over one interval so targets do not fire together.
          const int64_t interval_ms = std::max<int64_t>(1, spec.interval.count());
          state->next_due =
              now + std::chrono::milliseconds(static_cast<int64_t>(StableHash(name) % interval_ms));
        }
        state->configured = true;
        state->expect = CompileExpect(spec);
        state->spec = std::make_shared<const TargetSpec>(std::move(spec));
        next[name] = std::move(state);
      }
      // A removed target whose probe is still running keeps its state until the probe ends (the
      // transfer points at it); it is no longer scheduled or reported.
      for (auto& [name, state] : targets_) {
        if (state && state->in_flight) {
          state->configured = false;
          next[name] = std::move(state);
        }
      }
      targets_ = std::move(next);
      RebuildDueHeap();
    }
    Wake();
  }

  void Run(std::stop_token stop) override {
    std::stop_callback wake(stop, [this] { Wake(); });
    bool stopping = false;
    MonotonicTime grace_end;
    std::vector<epoll_event> events(kMaxEpollEvents);
    BeatIfWatched(options_.heartbeat);
    while (true) {
      auto now = clock_.MonotonicNow();
      if (!stopping && stop.stop_requested()) {
        stopping = true;
        grace_end = now + options_.shutdown_grace;
      }
      if (stopping && (transfers_.empty() || now >= grace_end)) {
        break;
      }
      ReapPreparations();
      if (!stopping) {
        StartPrepared();
        StartDueProbes(now);
      }
      now = clock_.MonotonicNow();
      auto wait = NextWakeup(now, stopping);
      if (stopping) {
        wait = std::min(wait, std::max(MonotonicTime::duration::zero(), grace_end - now));
      }
      const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
      IdleIfWatched(options_.heartbeat);
      const int ready = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                   static_cast<int>(std::max<int64_t>(0, wait_ms)));
      BeatIfWatched(options_.heartbeat);
      for (int i = 0; i < ready; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake_fd_) {
          uint64_t count = 0;
          [[maybe_unused]] const ssize_t n = read(wake_fd_, &count, sizeof(count));
          continue;
        }
        int mask = 0;
        if (events[i].events & EPOLLIN)
          mask |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT)
          mask |= CURL_CSELECT_OUT;
        if (events[i].events & (EPOLLERR | EPOLLHUP))
          mask |= CURL_CSELECT_ERR;
        SocketAction(fd, mask);
      }
      if (curl_timer_ && *curl_timer_ <= clock_.MonotonicNow()) {
        // curl's timer is one-shot: it calls TimerCallback again only when its next timeout
        // changes, so a fired timer is forgotten here, before curl may set the next one.
        curl_timer_.reset();
        SocketAction(CURL_SOCKET_TIMEOUT, 0);
      }
      // Every ready socket has been read and stamped; now decode what arrived.
      for (Transfer* transfer : pending_decode_) {
        transfer->DecodePending();
        if (transfer->DecoderFailed()) {
          EndFailedDecode(*transfer);
        }
      }
      pending_decode_.clear();
      AbortLateFirstTokens();
      DeliverFinished();
    }
    IdleIfWatched(options_.heartbeat);
    CancelAll();
  }

  size_t InFlight() const override { return in_flight_.load(); }

  std::vector<TargetStatus> Status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<TargetStatus> out;
    out.reserve(targets_.size());
    for (const auto& [name, state] : targets_) {
      if (!state->configured) {
        continue;
      }
      TargetStatus status;
      status.name = name;
      status.labels = state->spec->labels;
      status.budget_paused = state->paused;
      status.tokens_today = state->tokens_today;
      status.cost_today = state->cost_today;
      out.push_back(std::move(status));
    }
    return out;
  }

 private:
  struct TargetState {
    std::shared_ptr<const TargetSpec> spec;
    std::shared_ptr<const Regex> expect;  // spec->expect compiled, once per SetTargets
    MonotonicTime next_due;
    int64_t day = -1;  // the UTC day the counters below belong to
    int64_t tokens_today = 0;
    double cost_today = 0;
    bool paused = false;
    bool in_flight = false;   // at most one probe per target (counting one being prepared)
    bool preparing = false;   // its request is being built off the loop (Prepare)
    uint64_t prepare_id = 0;  // which preparation is current: a stale one is dropped
    bool configured = true;   // false once a reload removed it while its probe ran
  };

  // A target waiting for its next probe, ordered by due time (earliest on top).
  struct DueEntry {
    MonotonicTime due;
    TargetState* state;
    bool operator>(const DueEntry& other) const { return due > other.due; }
  };
  // A running transfer's first-token deadline; `id` tells a stale entry from a live one.
  struct DeadlineEntry {
    MonotonicTime deadline;
    uint64_t id;
    CURL* easy;
    bool operator>(const DeadlineEntry& other) const { return deadline > other.deadline; }
  };
  struct Running {
    std::unique_ptr<Transfer> transfer;
    TargetState* state;
    uint64_t id;
  };
  // A request built off the loop, waiting for the loop to start it.
  struct Prepared {
    std::string name;
    uint64_t id;
    std::unique_ptr<Transfer> transfer;
  };
  // A transfer curl reported done (or the loop aborted), with the moment that happened.
  struct Finished {
    Running running;
    CURLcode code;
    std::optional<SteadyTime> end;
  };

  static int SocketCallback(CURL* /*easy*/, curl_socket_t socket, int what, void* self_ptr,
                            void* socket_ptr) {
    auto* self = static_cast<ProberImpl*>(self_ptr);
    if (what == CURL_POLL_REMOVE) {
      // The descriptor may already be closed (epoll dropped it then): nothing to undo.
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, socket, nullptr);
      return 0;
    }
    epoll_event event{};
    event.events =
        ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    event.data.fd = socket;
    const bool known = socket_ptr != nullptr;
    if (epoll_ctl(self->epoll_fd_, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, &event) != 0) {
      // A descriptor number reused behind curl's back: try the other operation.
      epoll_ctl(self->epoll_fd_, known ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event);
    }
    if (!known) {
      curl_multi_assign(self->multi_.get(), socket, self);
    }
    return 0;
  }

  // NOLINTNEXTLINE(google-runtime-int): libcurl's type
  static int TimerCallback(CURLM* /*multi*/, long timeout_ms, void* self_ptr) {
    auto* self = static_cast<ProberImpl*>(self_ptr);
    if (timeout_ms < 0) {
      self->curl_timer_.reset();
    } else {
      // curl truncates the time left to whole milliseconds; firing early would run nothing and
      // curl would not ask again for the same deadline, so round up.
      self->curl_timer_ = self->clock_.MonotonicNow() +
                          std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms + 1 : 0);
    }
    return 0;
  }

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof(one));
  }

  // Lets curl act on one socket (or its expired timers) and collects what it finished, stamped
  // with the time curl returned: classifying the result comes later, off the timing path.
  void SocketAction(curl_socket_t socket, int mask) {
    int running = 0;
    curl_multi_socket_action(multi_.get(), socket, mask, &running);
    int queued = 0;
    std::optional<SteadyTime> end;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) {
        continue;
      }
      if (!end) {
        end = clock_.MonotonicNow();
      }
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_.get(), easy);
      auto it = transfers_.find(easy);
      if (it == transfers_.end()) {
        continue;
      }
      finished_.push_back({std::move(it->second), code, end});
      transfers_.erase(it);
      in_flight_.store(transfers_.size());
    }
  }

  MonotonicTime::duration JitteredInterval(const TargetSpec& spec) {
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

  // REQUIRES: mu_ is held.
  void RebuildDueHeap() {
    std::vector<DueEntry> entries;
    entries.reserve(targets_.size());
    for (auto& [name, state] : targets_) {
      if (state->configured && !state->in_flight) {
        entries.push_back({state->next_due, state.get()});
      }
    }
    due_ = DueHeap(std::greater<>(), std::move(entries));
  }

  void StartDueProbes(MonotonicTime now) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t today = UtcDay(clock_.NowUnixMillis());
    // The heap yields the longest-waiting target first, so a concurrency cap delays probes fairly
    // rather than starving one; the rest stay due and start as slots free up.
    while (!due_.empty() && due_.top().due <= now &&
           transfers_.size() + preparing_.size() < options_.max_concurrency) {
      const DueEntry entry = due_.top();
      due_.pop();
      TargetState& state = *entry.state;
      const MonotonicTime next = entry.due + JitteredInterval(*state.spec);
      state.next_due = next > now ? next : now + JitteredInterval(*state.spec);
      RollDay(state, today);
      if (state.paused) {
        due_.push({state.next_due, &state});
        continue;
      }
      if (NeedsFetchedCredential(*state.spec)) {
        Prepare(state);
        continue;
      }
      Launch(std::make_unique<Transfer>(state.spec, state.expect, options_, clock_), state);
    }
  }

  // REQUIRES: mu_ is held.
  // Builds the target's request on a thread of its own: running a token command or exchanging
  // an OAuth assertion takes up to the command's timeout, during which the loop keeps every
  // other target on schedule (and /metrics, which needs mu_, keeps answering). The target waits
  // for its own credential; StartPrepared launches the request when it is ready.
  void Prepare(TargetState& state) {
    state.in_flight = true;
    state.preparing = true;
    const uint64_t id = ++next_prepare_id_;
    state.prepare_id = id;
    preparing_.push_back(
        std::async(std::launch::async, [this, spec = state.spec, expect = state.expect, id] {
          auto transfer = std::make_unique<Transfer>(spec, expect, options_, clock_);
          {
            std::lock_guard<std::mutex> lock(prepared_mu_);
            prepared_.push_back({spec->name, id, std::move(transfer)});
          }
          Wake();
        }));
  }

  void ReapPreparations() {
    std::erase_if(preparing_, [](const std::future<void>& job) {
      return job.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
  }

  void StartPrepared() {
    std::vector<Prepared> ready;
    {
      std::lock_guard<std::mutex> lock(prepared_mu_);
      ready.swap(prepared_);
    }
    if (ready.empty()) {
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (Prepared& item : ready) {
      auto it = targets_.find(item.name);
      if (it == targets_.end() || !it->second->preparing || it->second->prepare_id != item.id) {
        continue;  // cancelled (shutdown) since it was started
      }
      TargetState& state = *it->second;
      state.preparing = false;
      if (!state.configured) {
        targets_.erase(it);  // removed by a reload while its credential was fetched
        continue;
      }
      Launch(std::move(item.transfer), state);
    }
  }

  // REQUIRES: mu_ is held.
  void Launch(std::unique_ptr<Transfer> transfer, TargetState& state) {
    state.in_flight = true;
    if (transfer->handle() == nullptr) {
      finished_.push_back({{std::move(transfer), &state, 0}, CURLE_OK, std::nullopt});
      return;
    }
    // Stamp, hand over and let curl start right away (a fresh connection's connect() happens
    // inside the socket_action below), so the start stamp is the request's real start even
    // when many targets fall due together.
    transfer->DeferDecodingTo(&pending_decode_);
    transfer->MarkStarted();
    CURL* easy = transfer->handle();
    if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK) {
      finished_.push_back({{std::move(transfer), &state, 0}, CURLE_FAILED_INIT, std::nullopt});
      return;
    }
    const uint64_t id = ++next_id_;
    if (auto deadline = transfer->FirstTokenDeadline()) {
      deadlines_.push({*deadline, id, easy});
    }
    transfers_.emplace(easy, Running{std::move(transfer), &state, id});
    in_flight_.store(transfers_.size());
    SocketAction(CURL_SOCKET_TIMEOUT, 0);
  }

  // The decoder has decided the outcome: end the transfer now rather than wait for a server that
  // may keep the stream open until the total timeout.
  void EndFailedDecode(Transfer& transfer) {
    auto it = transfers_.find(transfer.handle());
    if (it == transfers_.end()) {
      return;  // curl finished it in this iteration already
    }
    const SteadyTime end = clock_.MonotonicNow();
    curl_multi_remove_handle(multi_.get(), transfer.handle());
    finished_.push_back({std::move(it->second), CURLE_WRITE_ERROR, end});
    transfers_.erase(it);
    in_flight_.store(transfers_.size());
  }

  void AbortLateFirstTokens() {
    const auto now = clock_.MonotonicNow();
    while (!deadlines_.empty() && deadlines_.top().deadline <= now) {
      const DeadlineEntry entry = deadlines_.top();
      deadlines_.pop();
      auto it = transfers_.find(entry.easy);
      if (it == transfers_.end() || it->second.id != entry.id) {
        continue;  // finished already
      }
      auto deadline = it->second.transfer->FirstTokenDeadline();
      if (!deadline || *deadline > now) {
        continue;  // a token arrived, or the response does not stream tokens
      }
      curl_multi_remove_handle(multi_.get(), entry.easy);
      it->second.transfer->MarkFirstTokenTimeout();
      finished_.push_back({std::move(it->second), CURLE_OPERATION_TIMEDOUT, std::nullopt});
      transfers_.erase(it);
      in_flight_.store(transfers_.size());
    }
  }

  // Classifies what finished this iteration, charges budgets, frees the targets for their next
  // probe and hands the results to the sink.
  void DeliverFinished() {
    if (finished_.empty()) {
      return;
    }
    std::vector<Finished> batch;
    batch.swap(finished_);
    std::vector<ProbeResult> results;
    results.reserve(batch.size());
    for (Finished& item : batch) {
      results.push_back(item.running.transfer->Finish(item.code, item.end));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        TargetState& state = *batch[i].running.state;
        state.in_flight = false;
        if (!state.configured) {
          targets_.erase(state.spec->name);  // removed while in flight
          continue;
        }
        ChargeBudget(state, results[i]);
        due_.push({state.next_due, &state});
      }
    }
    batch.clear();
    for (const ProbeResult& result : results) {
      sink_.OnProbe(result);
    }
  }

  // REQUIRES: mu_ is held.
  // Also records the probe's estimated cost on `result` when the target has a price.
  void ChargeBudget(TargetState& state, ProbeResult& result) {
    RollDay(state, UtcDay(result.start_unix_ms));
    const int64_t in = result.input_tokens.value_or(0);
    const int64_t out = result.output_tokens.value_or(0);
    state.tokens_today += in + out;
    const TargetSpec& current = *state.spec;
    const double cost =
        static_cast<double>(in) * current.input_price_per_million.value_or(0) / 1e6 +
        static_cast<double>(out) * current.output_price_per_million.value_or(0) / 1e6;
    state.cost_today += cost;
    if (current.input_price_per_million || current.output_price_per_million) {
      result.estimated_cost_dollars = cost;
    }
    const bool tokens_spent =
        current.daily_token_budget && state.tokens_today >= *current.daily_token_budget;
    const bool cost_spent =
        current.daily_cost_budget && state.cost_today >= *current.daily_cost_budget;
    if (!state.paused && (tokens_spent || cost_spent)) {
      state.paused = true;
      spdlog::info(
          "target {}: daily {} budget spent ({} tokens, {:.4f} cost today); paused until "
          "the next UTC day",
          current.name, tokens_spent ? "token" : "cost", state.tokens_today, state.cost_today);
    }
  }

  MonotonicTime::duration NextWakeup(MonotonicTime now, bool stopping) {
    MonotonicTime::duration wait = kMaxPollWait;
    if (!finished_.empty()) {
      return MonotonicTime::duration::zero();
    }
    if (curl_timer_) {
      wait = std::min(wait, *curl_timer_ - now);
    }
    if (!deadlines_.empty()) {
      wait = std::min(wait, deadlines_.top().deadline - now);
    }
    if (!stopping && transfers_.size() + preparing_.size() < options_.max_concurrency) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!due_.empty()) {
        wait = std::min(wait, due_.top().due - now);
      }
    }
    return std::max(wait, MonotonicTime::duration::zero());
  }

  void CancelAll() {
    pending_decode_.clear();
    for (auto& [easy, running] : transfers_) {
      curl_multi_remove_handle(multi_.get(), easy);
    }
    transfers_.clear();
    finished_.clear();
    deadlines_ = DeadlineHeap();
    {
      // Preparations still running are not waited for here; what they deliver later is stale
      // (preparing is reset below) and dropped.
      std::lock_guard<std::mutex> lock(prepared_mu_);
      prepared_.clear();
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = targets_.begin(); it != targets_.end();) {
      it->second->in_flight = false;
      it->second->preparing = false;
      it = it->second->configured ? std::next(it) : targets_.erase(it);
    }
    RebuildDueHeap();
    in_flight_.store(0);
  }

  using DueHeap = std::priority_queue<DueEntry, std::vector<DueEntry>, std::greater<>>;
  using DeadlineHeap =
      std::priority_queue<DeadlineEntry, std::vector<DeadlineEntry>, std::greater<>>;

  // Constant after construction.
  ProberOptions options_;
  ProbeSink& sink_;
  const Clock& clock_;
  CurlMultiPtr multi_;
  const int epoll_fd_;
  const int wake_fd_;  // an eventfd in the epoll set: SetTargets and stop wake the loop with it

  mutable std::mutex mu_;
  // Each state lives at a stable address: the heap and running transfers point at it.
  std::map<std::string, std::unique_ptr<TargetState>> targets_;  // GUARDED_BY(mu_)
  DueHeap due_;  // GUARDED_BY(mu_): configured targets not in flight, by next_due

  // Event-loop thread only.
  std::unordered_map<CURL*, Running> transfers_;
  std::vector<Finished> finished_;
  std::vector<Transfer*> pending_decode_;     // transfers with undecoded stream bytes
  std::vector<std::future<void>> preparing_;  // Prepare's threads, until reaped
  uint64_t next_prepare_id_ = 0;              // GUARDED_BY(mu_)
  DeadlineHeap deadlines_;
  std::optional<MonotonicTime> curl_timer_;  // when curl wants socket_action(TIMEOUT)
  uint64_t next_id_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};

  std::atomic<size_t> in_flight_{0};

  std::mutex prepared_mu_;
  std::vector<Prepared> prepared_;  // GUARDED_BY(prepared_mu_): built, not started yet
};

}  // namespace

Result<std::unique_ptr<Prober>> Prober::Create(const ProberOptions& options, ProbeSink& sink,
                                               const Clock& clock) {
  CurlMultiPtr multi(curl_multi_init());
  if (!multi) {
    return Fail(Error::Internal("curl_multi_init failed (was curl_global_init called?)"));
  }
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    return Fail(Error::Internal("epoll_create1 failed"));
  }
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    close(epoll_fd);
    return Fail(Error::Internal("eventfd failed"));
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_fd;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0) {
    close(wake_fd);
    close(epoll_fd);
    return Fail(Error::Internal("epoll_ctl failed"));
  }
  return std::unique_ptr<Prober>(
      new ProberImpl(options, sink, clock, std::move(multi), epoll_fd, wake_fd));
}

ProbeResult ProbeOnce(const TargetSpec& target, const ProberOptions& options, const Clock& clock) {
  Transfer transfer(std::make_shared<const TargetSpec>(target), CompileExpect(target), options,
                    clock);
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
  return RunToCompletion(multi.get(), transfer, clock);
}

}  // namespace modelpulse::collector
