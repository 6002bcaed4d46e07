#ifndef MODELPULSE_TESTS_COLLECTOR_LOOPBACK_SERVER_H_
#define MODELPULSE_TESTS_COLLECTOR_LOOPBACK_SERVER_H_

// A cpp-httplib server on 127.0.0.1, port 0, for end-to-end adapter tests: routes are registered
// before Start(); the last request's headers, query and body are kept for assertions.

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"

namespace modelpulse::collector::testing {

// libcurl's global init is the program's job; it is reference-counted, so each test file may
// hold one.
struct CurlGlobalInit {
  CurlGlobalInit() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobalInit() { curl_global_cleanup(); }
  CurlGlobalInit(const CurlGlobalInit&) = delete;
  CurlGlobalInit& operator=(const CurlGlobalInit&) = delete;
};

struct SeenRequest {
  httplib::Headers headers;
  httplib::Params params;
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  bool HasHeader(const std::string& name) const { return headers.count(name) > 0; }
};

class LoopbackServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  LoopbackServer() = default;
  ~LoopbackServer() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  void Post(const std::string& path, Handler handler) {
    server_.Post(path, [this, handler](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_.headers = req.headers;
        last_.params = req.params;
        last_.body = req.body;
      }
      handler(req, res);
    });
  }

  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 400 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(server_.is_running());
  }

  std::string BaseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  SeenRequest last() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  SeenRequest last_;  // Guarded by mu_.
};

// Streams `parts` as a chunked body, pausing `pause` after the part at index `pause_after`.
inline void StreamParts(httplib::Response& res, const std::string& content_type,
                        std::vector<std::string> parts, size_t pause_after,
                        std::chrono::milliseconds pause) {
  res.set_chunked_content_provider(content_type, [parts = std::move(parts), pause_after, pause](
                                                     size_t, httplib::DataSink& sink) {
    for (size_t i = 0; i < parts.size(); ++i) {
      sink.write(parts[i].data(), parts[i].size());
      if (i == pause_after) {
        std::this_thread::sleep_for(pause);
      }
    }
    sink.done();
    return true;
  });
}

// Collects results on the prober's thread; read from the test thread.
class CollectingSink final : public ProbeSink {
 public:
  void OnProbe(const ProbeResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(result);
  }
  std::vector<ProbeResult> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }
  size_t CountFor(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& r : results_) {
      n += r.target == name ? 1 : 0;
    }
    return n;
  }

 private:
  std::mutex mu_;
  std::vector<ProbeResult> results_;
};

// Polls `done` until it holds or `limit` passes: a bound against hanging, not a timing claim.
template <typename Predicate>
bool PollUntil(Predicate done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Every text field of a probe result, for "no secret anywhere" checks.
inline std::string AllText(const ProbeResult& r) {
  std::string text = r.target + "\n" + r.error + "\n" + r.request_id;
  for (const auto& [name, value] : r.labels) {
    text += "\n" + name + "=" + value;
  }
  return text;
}

}  // namespace modelpulse::collector::testing

#endif  // MODELPULSE_TESTS_COLLECTOR_LOOPBACK_SERVER_H_
