#include "simulator/simulator.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <variant>

#include "common/listen_address.h"
#include "simulator/internal/connection.h"
#include "simulator/internal/endpoint.h"
#include "simulator/internal/protocol.h"
#include "simulator/internal/scenario.h"

namespace modelpulse::simulator {
namespace {

using TimePoint = Clock::MonotonicTime;

// httplib 0.11 listens with a backlog of 5, compiled into the library; a benchmark opening
// hundreds of streams at once would see SYNs dropped and retried a second later.
constexpr int kListenBacklog = 1024;
// How often a hanging request looks whether its client has left.
constexpr auto kPeerPollInterval = std::chrono::milliseconds(100);

double Seconds(TimePoint::duration d) { return std::chrono::duration<double>(d).count(); }

// Chunks due at the same moment go out in one write, as one send() would carry them.
std::vector<TimedChunk> Coalesce(std::vector<TimedChunk> chunks) {
  std::vector<TimedChunk> out;
  for (auto& chunk : chunks) {
    if (!out.empty() && out.back().at == chunk.at) {
      out.back().bytes += chunk.bytes;
    } else {
      out.push_back(std::move(chunk));
    }
  }
  return out;
}

nlohmann::json ToJson(const InjectedResponse& r) {
  return nlohmann::json{{"endpoint", r.endpoint},
                        {"received_unix_ms", r.received_unix_ms},
                        {"http_status", r.http_status},
                        {"behaviour", r.behaviour},
                        {"first_token_delay_seconds", r.first_token_delay_seconds},
                        {"total_seconds", r.total_seconds},
                        {"output_tokens", r.output_tokens},
                        {"input_tokens", r.input_tokens},
                        {"stream", r.stream}};
}

class SimulatorImpl final : public Simulator {
 public:
  SimulatorImpl(Scenario scenario, size_t worker_threads, const Clock& clock)
      : scenario_(std::move(scenario)),
        worker_threads_(std::max<size_t>(1, worker_threads)),
        clock_(clock) {}

  SimulatorImpl(const SimulatorImpl&) = delete;
  SimulatorImpl& operator=(const SimulatorImpl&) = delete;

  ~SimulatorImpl() override {
    {
      std::lock_guard lock(wait_mu_);
      stopping_ = true;
    }
    wait_cv_.notify_all();
    server_.stop();
    if (thread_.joinable())
      thread_.join();
  }

  Status Listen(const std::string& host, int port) {
    const auto start = clock_.MonotonicNow();
    for (const auto& spec : scenario_.endpoints) {
      auto protocol = MakeProtocol(spec.protocol);
      if (auto configured = protocol->Configure(spec); !configured) {
        return Fail(
            Error::Parse(fmt::format("endpoint {}: {}", spec.name, configured.error().message)));
      }
      endpoints_.push_back(std::make_unique<Endpoint>(
          spec, std::move(protocol),
          scenario_.seed + 7919 * static_cast<uint64_t>(endpoints_.size()), start));
    }
    host_ = host;
    const size_t workers = worker_threads_;
    server_.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    server_.set_tcp_nodelay(true);
    server_.set_keep_alive_max_count(1000);
    server_.set_socket_options([this](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listen_fd_ = sock;
    });
    for (auto& endpoint : endpoints_) {
      for (const auto& suffix : endpoint->protocol().PostRoutes()) {
        Endpoint* ep = endpoint.get();
        server_.Post("/" + ep->spec().name + suffix,
                     [this, ep](const httplib::Request& req, httplib::Response& res) {
                       Serve(*ep, req, res);
                     });
      }
    }
    server_.Get("/_simulator/journal", [this](const httplib::Request&, httplib::Response& res) {
      auto list = nlohmann::json::array();
      for (const auto& entry : Journal())
        list.push_back(ToJson(entry));
      res.set_content(list.dump(), "application/json");
    });
    // The demo's alert receiver (config/demo.yaml): prints each webhook notification it gets,
    // so the demo shows an alert leaving the process and arriving, with no other program.
    server_.Post("/_simulator/webhook", [](const httplib::Request& req, httplib::Response& res) {
      const auto message = nlohmann::json::parse(req.body, nullptr, false);
      if (message.is_discarded() || !message.contains("alerts")) {
        res.status = 400;
        return;
      }
      for (const auto& alert : message["alerts"]) {
        spdlog::info("webhook received: {} {} {} (key {})", alert.value("status", ""),
                     alert["labels"].value("alertname", ""),
                     alert["annotations"].value("summary", ""),
                     req.get_header_value("Idempotency-Key"));
      }
    });
    server_.Get("/_simulator/health", [this](const httplib::Request&, httplib::Response& res) {
      auto list = nlohmann::json::array();
      const auto now = clock_.MonotonicNow();
      for (const auto& ep : endpoints_) {
        list.push_back({{"name", ep->spec().name},
                        {"protocol", ep->spec().protocol},
                        {"phase", ep->PhaseAt(now).name}});
      }
      res.set_content(nlohmann::json{{"status", "ok"}, {"endpoints", list}}.dump(),
                      "application/json");
    });

    if (port == 0) {
      port_ = server_.bind_to_any_port(host);
      if (port_ < 0) {
        return Fail(Error::Unavailable(fmt::format("simulator: cannot bind {}:0", host)));
      }
    } else {
      if (!server_.bind_to_port(host, port)) {
        return Fail(Error::Unavailable(fmt::format("simulator: cannot bind {}:{}", host, port)));
      }
      port_ = port;
    }
    if (listen_fd_ >= 0) {
      // Listening again on a listening socket only changes its backlog.
      ::listen(listen_fd_, kListenBacklog);
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs, so the destructor must not race ahead of it.
    // This waits for a real thread, whatever the clock, for up to about five seconds.
    for (int i = 0; i < 5000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    spdlog::info("simulator: serving {} endpoint(s) from {} at {}", endpoints_.size(),
                 scenario_.path, BaseUrl());
    return {};
  }

  int port() const override { return port_; }

  std::string BaseUrl() const override {
    return host_.find(':') != std::string::npos ? fmt::format("http://[{}]:{}", host_, port_)
                                                : fmt::format("http://{}:{}", host_, port_);
  }

  std::vector<InjectedResponse> Journal() const override {
    std::lock_guard lock(journal_mu_);
    return {journal_.begin(), journal_.end()};
  }

 private:
  enum class Wake { kDue, kStopping, kPeerGone };

  // Sleeps until `deadline` on the injected clock. Returns early when the simulator stops or, with
  // a watch, when the client leaves (looked at every kPeerPollInterval of that clock).
  Wake WaitUntil(TimePoint deadline, PeerWatch* watch) {
    std::unique_lock lock(wait_mu_);
    while (!stopping_) {
      auto until = deadline;
      if (watch != nullptr) {
        lock.unlock();
        if (watch->Closed())
          return Wake::kPeerGone;
        lock.lock();
        if (stopping_)
          break;
        until = std::min(deadline, clock_.MonotonicNow() + kPeerPollInterval);
      }
      clock_.WaitUntil(wait_cv_, lock, until);
      if (stopping_)
        break;
      if (clock_.MonotonicNow() >= deadline)
        return Wake::kDue;
    }
    return Wake::kStopping;
  }

  void Record(InjectedResponse entry) {
    std::lock_guard lock(journal_mu_);
    while (journal_.size() >= scenario_.journal_size)
      journal_.pop_front();
    journal_.push_back(std::move(entry));
  }

  static HttpRequest ToHttpRequest(const httplib::Request& req, const std::string& mount,
                                   TimePoint arrival) {
    HttpRequest out;
    out.arrival = arrival;
    out.method = req.method;
    out.path = req.path.substr(std::min(req.path.size(), mount.size()));
    out.body = req.body;
    out.target = req.target;
    for (const auto& [name, value] : req.params)
      out.query.emplace_back(name, value);
    for (const auto& [name, value] : req.headers) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      out.headers.emplace_back(std::move(lower), value);
    }
    return out;
  }

  void Serve(Endpoint& ep, const httplib::Request& req, httplib::Response& res) {
    const TimePoint arrival = clock_.MonotonicNow();
    InjectedResponse entry;
    entry.endpoint = ep.spec().name;
    entry.received_unix_ms = clock_.NowUnixMillis();

    auto parsed = ep.protocol().Parse(ToHttpRequest(req, "/" + ep.spec().name, arrival), ep.spec());
    Reply reply;
    if (auto* immediate = std::get_if<Reply>(&parsed)) {
      reply = std::move(*immediate);
      entry.behaviour = "invalid_request";
    } else {
      const Call& call = std::get<Call>(parsed);
      const Plan plan = ep.Decide(call, arrival);
      reply = ep.protocol().Render(call, plan);
      entry.behaviour = std::string(BehaviourName(plan.behaviour));
      entry.input_tokens = plan.input_tokens;
      entry.stream = call.stream;
    }
    entry.output_tokens = reply.sent_output_tokens;
    if (reply.first_token_at) {
      entry.first_token_delay_seconds =
          std::chrono::duration<double>(*reply.first_token_at).count();
    }

    switch (reply.mode) {
      case Reply::Mode::kHang: {
        PeerWatch watch(req.local_port, req.remote_addr, req.remote_port);
        const auto wake = WaitUntil(arrival + scenario_.hang_cap, &watch);
        entry.http_status = 0;
        if (wake == Wake::kDue) {
          // The cap is ours, not the provider's: say so plainly rather than imitate a body.
          res.status = 504;
          res.set_content(
              R"({"error":{"message":"simulator hang cap reached","type":"server_error","param":null,"code":null}})",
              "application/json");
          entry.http_status = 504;
        }
        entry.total_seconds = Seconds(clock_.MonotonicNow() - arrival);
        Record(std::move(entry));
        return;
      }
      case Reply::Mode::kBody: {
        if (WaitUntil(arrival + reply.body_at, nullptr) != Wake::kDue) {
          res.status = 503;
          entry.http_status = 503;
          entry.behaviour = "stopped";
          Record(std::move(entry));
          return;
        }
        res.status = reply.status;
        for (const auto& [name, value] : reply.headers)
          res.set_header(name, value);
        res.set_content(reply.body, reply.content_type);
        entry.http_status = reply.status;
        entry.total_seconds = Seconds(clock_.MonotonicNow() - arrival);
        Record(std::move(entry));
        return;
      }
      case Reply::Mode::kStream:
        Stream(std::move(reply), std::move(entry), arrival, req, res);
        return;
    }
  }

  struct StreamState {
    std::vector<TimedChunk> chunks;
    bool hang_after_chunks = false;
    TimePoint arrival;
    TimePoint last_byte;
    InjectedResponse entry;
    int local_port = 0;
    std::string remote_addr;
    int remote_port = 0;
    bool recorded = false;
  };

  void Stream(Reply reply, InjectedResponse entry, TimePoint arrival, const httplib::Request& req,
              httplib::Response& res) {
    auto state = std::make_shared<StreamState>();
    state->chunks = Coalesce(std::move(reply.chunks));
    state->hang_after_chunks = reply.hang_after_chunks;
    state->arrival = arrival;
    state->last_byte = arrival;
    state->entry = std::move(entry);
    state->entry.http_status = reply.status;
    state->local_port = req.local_port;
    state->remote_addr = req.remote_addr;
    state->remote_port = req.remote_port;

    res.status = reply.status;
    for (const auto& [name, value] : reply.headers)
      res.set_header(name, value);
    res.set_chunked_content_provider(
        reply.content_type,
        [this, state](size_t /*offset*/, httplib::DataSink& sink) {
          for (size_t i = 0; i < state->chunks.size(); ++i) {
            const auto& chunk = state->chunks[i];
            if (WaitUntil(state->arrival + chunk.at, nullptr) != Wake::kDue)
              return false;
            state->last_byte = clock_.MonotonicNow();
            // The journal entry goes in before the last byte leaves, so that a client which has
            // read the whole stream always finds it.
            if (i + 1 == state->chunks.size() && !state->hang_after_chunks)
              Finish(*state);
            if (!sink.write(chunk.bytes.data(), chunk.bytes.size()))
              return false;
          }
          if (state->hang_after_chunks) {
            PeerWatch watch(state->local_port, state->remote_addr, state->remote_port);
            WaitUntil(state->arrival + scenario_.hang_cap, &watch);
            return false;
          }
          if (state->chunks.empty())
            Finish(*state);
          sink.done();
          return true;
        },
        [this, state](bool /*success*/) { Finish(*state); });
  }

  // Records a stream's journal entry once, however it ended.
  void Finish(StreamState& state) {
    if (state.recorded)
      return;
    state.recorded = true;
    state.entry.total_seconds = Seconds(state.last_byte - state.arrival);
    Record(state.entry);
  }

  const Scenario scenario_;
  const size_t worker_threads_;
  const Clock& clock_;
  std::string host_;
  int port_ = -1;
  socket_t listen_fd_ = -1;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool stopping_ = false;  // Guarded by wait_mu_.

  mutable std::mutex journal_mu_;
  std::deque<InjectedResponse> journal_;  // Guarded by journal_mu_.

  // Declared last: destroyed first, after the destructor has stopped and joined it.
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace

Result<SimulatorOptions> OptionsFromSettings(const SimulatorSettings& settings) {
  auto where = ParseListenAddress(settings.listen_address);
  if (!where) {
    return Fail(where.error());
  }
  SimulatorOptions options;
  options.scenario_path = settings.scenario_path;
  options.host = where->host;
  options.port = where->port;
  options.worker_threads = settings.worker_threads;
  return options;
}

Result<std::unique_ptr<Simulator>> Simulator::Start(const SimulatorOptions& options,
                                                    const Clock& clock) {
  auto scenario = LoadScenario(options.scenario_path);
  if (!scenario)
    return Fail(scenario.error());
  auto simulator =
      std::make_unique<SimulatorImpl>(std::move(*scenario), options.worker_threads, clock);
  if (auto status = simulator->Listen(options.host, options.port); !status) {
    return Fail(status.error());
  }
  return std::unique_ptr<Simulator>(std::move(simulator));
}

}  // namespace modelpulse::simulator
