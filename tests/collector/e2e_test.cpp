// End to end through real loopback sockets: a cpp-httplib server inside the test process plays
// an OpenAI-compatible endpoint with scripted delays and failures.

#include <curl/curl.h>
#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "tests/collector/loopback_server.h"

namespace modelpulse::collector {
namespace {

using namespace std::chrono_literals;
using testing::CollectingSink;
using testing::PollUntil;

// libcurl's global init is the program's job; this test program does it once here.
struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
} curl_global;

constexpr const char* kApiKey = "sk-test-SECRET-0123456789";
constexpr auto kFirstTokenDelay = 150ms;

std::string Chunk(const std::string& json) { return "data: " + json + "\n\n"; }

class FakeOpenAI {
 public:
  FakeOpenAI() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
    server_.Post("/ok/v1/chat/completions", [this](const httplib::Request& req,
                                                   httplib::Response& res) {
      Enter();
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_auth_ = req.get_header_value("Authorization");
        last_body_ = req.body;
      }
      res.set_header("x-ratelimit-limit-requests", "5000");
      res.set_header("x-ratelimit-remaining-requests", "4999");
      res.set_header("x-ratelimit-reset-requests", "12ms");
      res.set_header("x-ratelimit-limit-tokens", "800000");
      res.set_header("x-ratelimit-remaining-tokens", "799986");
      res.set_header("x-ratelimit-reset-tokens", "6m0s");
      res.set_header("x-request-id", "req_ca8197062dd44e208e21ceef70b46fce");
      res.set_chunked_content_provider("text/event-stream", [this](size_t,
                                                                   httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { sink.write(s.data(), s.size()); };
        write(Chunk(
            R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":null})"));
        std::this_thread::sleep_for(kFirstTokenDelay);
        write(Chunk(R"({"choices":[{"index":0,"delta":{"content":"OK"}}],"usage":null})"));
        std::this_thread::sleep_for(50ms);
        write(Chunk(R"({"choices":[{"index":0,"delta":{"content":", sure"}}],"usage":null})"));
        write(Chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})"));
        write(Chunk(
            R"({"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":5,"total_tokens":18}})"));
        // Left before the last chunk: the client may finish on it and send its next request
        // before this thread returns, which is not two requests in flight.
        Leave();
        write("data: [DONE]\n\n");
        sink.done();
        return true;
      });
    });
    server_.Post("/json/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})",
          "application/json");
    });
    server_.Post("/throttle/v1/chat/completions", [](const httplib::Request&,
                                                     httplib::Response& res) {
      res.status = 429;
      res.set_header("retry-after", "2");
      res.set_header("x-ratelimit-limit-requests", "500");
      res.set_header("x-ratelimit-remaining-requests", "0");
      res.set_header("x-ratelimit-reset-requests", "1.5s");
      res.set_header("x-request-id", "ca8197062dd44e208e21ceef70b46fce");
      res.set_content(
          R"({"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}})",
          "application/json");
    });
    server_.Post(
        "/leaky/v1/chat/completions", [](const httplib::Request& req, httplib::Response& res) {
          res.status = 401;
          // A hostile or careless server echoing the credential back must not get it stored.
          res.set_content(R"({"error":{"message":"Incorrect API key provided: )" +
                              req.get_header_value("Authorization") +
                              R"(","type":"invalid_request_error","code":"invalid_api_key"}})",
                          "application/json");
        });
    server_.Post("/hang/v1/chat/completions",
                 [this](const httplib::Request&, httplib::Response& res) {
                   res.set_chunked_content_provider(
                       "text/event-stream", [this](size_t, httplib::DataSink& sink) {
                         sink.write(": keep-alive\n\n", 14);
                         for (int i = 0; i < 300 && !stopping_ && sink.is_writable(); ++i) {
                           std::this_thread::sleep_for(10ms);
                         }
                         sink.done();
                         return true;
                       });
                 });
    server_.Post("/endless/v1/chat/completions",
                 [this](const httplib::Request&, httplib::Response& res) {
                   res.set_chunked_content_provider(
                       "text/event-stream", [this](size_t, httplib::DataSink& sink) {
                         std::string block;
                         while (block.size() < 4096) {
                           block += Chunk(R"({"choices":[{"delta":{"content":"x"}}]})");
                         }
                         for (int i = 0; i < 100000 && !stopping_; ++i) {
                           if (!sink.write(block.data(), block.size())) {
                             break;
                           }
                         }
                         sink.done();
                         return true;
                       });
                 });
    server_.Post(
        "/malformed/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
          res.set_content("data: {\"choices\":[{\"delta\":{\"content\":\"OK\"\n\ndata: [DONE]\n\n",
                          "text/event-stream");
        });
    // A 16 KiB answer (all the collector keeps for `expect`), "OK" first.
    server_.Post("/long/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
      std::string body = Chunk(R"({"choices":[{"delta":{"content":"OK\n"}}]})");
      for (int i = 0; i < 2400; ++i) {
        body += Chunk(R"({"choices":[{"delta":{"content":"lorem \n"}}]})");
      }
      res.set_content(body + "data: [DONE]\n\n", "text/event-stream");
    });
    // A malformed chunk, then nothing while the connection stays open (until the test ends).
    server_.Post("/badthenhang/v1/chat/completions",
                 [this](const httplib::Request&, httplib::Response& res) {
                   res.set_chunked_content_provider(
                       "text/event-stream", [this](size_t, httplib::DataSink& sink) {
                         const std::string bad = "data: {\"choices\":[{\"delta\":\n\n";
                         sink.write(bad.data(), bad.size());
                         for (int i = 0; i < 600 && !stopping_; ++i) {
                           std::this_thread::sleep_for(10ms);
                         }
                         sink.done();
                         return true;
                       });
                 });
    // One response header line of 150 KB, over libcurl's 100 KB line limit.
    server_.Post(
        "/hugeheader/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
          res.set_header("x-filler", std::string(150 * 1024, 'a'));
          res.set_content(R"({"choices":[{"message":{"content":"OK"}}]})", "application/json");
        });
    // Echoes the bearer token, bare, into the request id and into an error message.
    server_.Post(
        "/echo/v1/chat/completions", [](const httplib::Request& req, httplib::Response& res) {
          const std::string token = req.get_header_value("Authorization").substr(7);
          res.status = 401;
          res.set_header("x-request-id", "req_" + token);
          res.set_content(R"({"error":{"message":"key )" + token + R"( is not valid for this )" +
                              std::string(300, '.') + token +
                              R"(","type":"invalid_request_error","code":"invalid_api_key"}})",
                          "application/json");
        });
    server_.Post("/nodone/v1/chat/completions", [](const httplib::Request&,
                                                   httplib::Response& res) {
      res.set_content(Chunk(R"({"choices":[{"delta":{"content":"OK"}}]})"), "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const bool running = WaitRunning();
    REQUIRE(running);
  }

  ~FakeOpenAI() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  std::string BaseUrl(const std::string& route) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + route + "/v1";
  }
  int max_concurrent() const { return max_concurrent_.load(); }
  std::string last_auth() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_auth_;
  }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }

 private:
  bool WaitRunning() {
    for (int i = 0; i < 200 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(5ms);
    }
    return server_.is_running();
  }
  void Enter() {
    const int now = ++concurrent_;
    int seen = max_concurrent_.load();
    while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
    }
  }
  void Leave() { --concurrent_; }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
  std::mutex mu_;
  std::string last_auth_;
  std::string last_body_;
};

TargetSpec Target(const FakeOpenAI& server, const std::string& route) {
  TargetSpec target;
  target.name = route + "@fake";
  target.provider = Provider::kOpenAI;
  target.model = "gpt-4o-mini";
  target.base_url = server.BaseUrl(route);
  target.api_key = Secret(kApiKey);
  target.labels = {{"target", target.name}, {"provider", "openai"}, {"model", "gpt-4o-mini"}};
  target.expect = "(?i)\\bok\\b";
  target.timeouts.connect = 2000ms;
  target.timeouts.first_token = 1000ms;
  target.timeouts.total = 5000ms;
  return target;
}

void CheckNoSecret(const ProbeResult& result) {
  for (const std::string* field : {&result.target, &result.error, &result.request_id}) {
    CHECK(field->find(kApiKey) == std::string::npos);
    CHECK(field->find("SECRET") == std::string::npos);
  }
  for (const auto& [name, value] : result.labels) {
    CHECK(value.find("SECRET") == std::string::npos);
  }
}

TEST_CASE("e2e: a streamed answer with truthful timing, usage and headroom") {
  FakeOpenAI server;
  SystemClock clock;
  const int64_t before = clock.NowUnixMillis();
  const ProbeResult r = ProbeOnce(Target(server, "ok"), ProberOptions{}, clock);
  CheckNoSecret(r);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.error.empty());
  CHECK(r.http_status == 200);
  CHECK(r.target == "ok@fake");
  CHECK(r.labels.at("provider") == "openai");
  CHECK(r.start_unix_ms >= before);
  CHECK(r.input_tokens == 13);
  CHECK(r.output_tokens == 5);
  CHECK(r.chunk_count == 5);
  REQUIRE(r.ttft_seconds.has_value());
  CHECK(*r.ttft_seconds >= 0.150);
  CHECK(*r.ttft_seconds < 0.150 + 0.200);
  CHECK(r.first_answer_token_seconds == r.ttft_seconds);
  // Not asserted (no timing targets in unit tests); printed for the measurement in the notes.
  MESSAGE("ttft_minus_injected_ms=" << (*r.ttft_seconds - 0.150) * 1e3
                                    << " first_byte_ms=" << *r.first_byte_seconds * 1e3);
  REQUIRE(r.last_token_seconds.has_value());
  // One 50 ms gap on the server; the first token may reach us a little later than it left, so
  // the measured gap can be slightly shorter (seen: 49.96 ms under AddressSanitizer).
  CHECK(*r.last_token_seconds - *r.ttft_seconds >= 0.040);
  REQUIRE(r.inter_token_latency_seconds.has_value());
  CHECK(*r.inter_token_latency_seconds ==
        doctest::Approx((*r.last_token_seconds - *r.ttft_seconds) / 4));
  CHECK(r.output_tokens_per_second.has_value());
  REQUIRE(r.first_byte_seconds.has_value());
  CHECK(*r.first_byte_seconds < *r.ttft_seconds);
  CHECK(r.total_seconds >= *r.last_token_seconds);
  CHECK(r.dns_seconds.has_value());
  CHECK(r.connect_seconds.has_value());
  CHECK_FALSE(r.tls_seconds.has_value());  // plain http
  CHECK(r.requests.limit == 5000);
  CHECK(r.requests.remaining == 4999);
  CHECK(*r.requests.reset_seconds == doctest::Approx(0.012));
  CHECK(r.tokens.remaining == 799986);
  CHECK(*r.tokens.reset_seconds == doctest::Approx(360));
  CHECK(r.request_id == "req_ca8197062dd44e208e21ceef70b46fce");
  CHECK(server.last_auth() == std::string("Bearer ") + kApiKey);
  CHECK(server.last_body().find("\"include_usage\":true") != std::string::npos);
}

TEST_CASE("e2e: failures are classified") {
  FakeOpenAI server;
  SystemClock clock;
  ProberOptions options;

  SUBCASE("429 with headers") {
    const ProbeResult r = ProbeOnce(Target(server, "throttle"), options, clock);
    CheckNoSecret(r);
    CHECK(r.outcome == Outcome::kThrottled);
    CHECK(r.http_status == 429);
    CHECK(r.retry_after_seconds == 2.0);
    CHECK(r.requests.remaining == 0);
    CHECK(r.requests.limit == 500);
    CHECK(*r.requests.reset_seconds == doctest::Approx(1.5));
    CHECK(r.request_id == "ca8197062dd44e208e21ceef70b46fce");
    CHECK(r.error.find("rate_limit_exceeded") != std::string::npos);
    CHECK(r.error.size() <= 200);
    CHECK_FALSE(r.ttft_seconds.has_value());
  }
  SUBCASE("an echoed key never reaches the result") {
    const ProbeResult r = ProbeOnce(Target(server, "leaky"), options, clock);
    CHECK(r.outcome == Outcome::kAuth);
    CheckNoSecret(r);
  }
  SUBCASE("a hang times out at the first-token deadline") {
    TargetSpec target = Target(server, "hang");
    target.timeouts.first_token = 300ms;
    const auto start = std::chrono::steady_clock::now();
    const ProbeResult r = ProbeOnce(target, options, clock);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.http_status == 200);
    CHECK(r.total_seconds >= 0.300);
    CHECK(elapsed < 0.300 + 0.700);
    CHECK(r.error.find("first token") != std::string::npos);
  }
  SUBCASE("an endless body is cut off at the cap") {
    options.max_response_bytes = 64 * 1024;
    const ProbeResult r = ProbeOnce(Target(server, "endless"), options, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("cut off") != std::string::npos);
    CHECK(r.chunk_count > 0);
    CHECK(r.chunk_count < 64 * 1024 / 40);
  }
  SUBCASE("malformed JSON") {
    const ProbeResult r = ProbeOnce(Target(server, "malformed"), options, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("malformed") != std::string::npos);
  }
  SUBCASE("stream closed without [DONE]") {
    const ProbeResult r = ProbeOnce(Target(server, "nodone"), options, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("terminator") != std::string::npos);
  }
  SUBCASE("expect miss is content_mismatch; a broken regex does not crash") {
    TargetSpec target = Target(server, "json");
    target.stream = false;
    target.expect = "^pong$";
    ProbeResult r = ProbeOnce(target, options, clock);
    CHECK(r.outcome == Outcome::kContentMismatch);
    target.expect = "([unclosed";
    r = ProbeOnce(target, options, clock);
    CHECK(r.outcome == Outcome::kContentMismatch);
    target.expect = "(?i)^ok$";
    r = ProbeOnce(target, options, clock);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output_tokens == 1);
    CHECK(r.ttft_seconds.has_value());
  }
  SUBCASE("connection refused is network") {
    TargetSpec target = Target(server, "ok");
    target.base_url = "http://127.0.0.1:1/v1";
    const ProbeResult r = ProbeOnce(target, options, clock);
    CHECK(r.outcome == Outcome::kNetwork);
    CHECK(r.http_status == 0);
    CheckNoSecret(r);
  }
  SUBCASE("an unsupported provider is a client_error, not a crash") {
    TargetSpec target = Target(server, "ok");
    target.provider = Provider::kBedrock;
    const ProbeResult r = ProbeOnce(target, options, clock);
    CHECK(r.outcome == Outcome::kClientError);
  }
}

TEST_CASE("e2e: expect runs in linear time on a 16 KiB answer (std::regex recursed per char)") {
  FakeOpenAI server;
  SystemClock clock;
  TargetSpec target = Target(server, "long");
  // `(.|\n)*` is what crashed std::regex (a stack frame per character) on this answer.
  target.expect = "(.|\n)*OK";
  ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.error == "");
  CHECK(r.outcome == Outcome::kOk);
  target.expect = "(.|\n)*NOPE";
  r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.outcome == Outcome::kContentMismatch);
  // Case-insensitive as before, with RE2's "(?i)".
  target.expect = "(?i)^ok$";
  r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.outcome == Outcome::kContentMismatch);  // ^ and $ are the whole answer's ends
  target.expect = "(?i)\\Aok\\n";
  r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.outcome == Outcome::kOk);
}

TEST_CASE("e2e: a decoder failure ends the transfer at once, classified by the decoder") {
  FakeOpenAI server;
  SystemClock clock;
  // The server never closes: before the fix the probe waited for the first-token deadline
  // (timeout) or the total one, whatever the stream had already shown.
  TargetSpec target = Target(server, "badthenhang");
  target.timeouts.first_token = 4000ms;
  target.timeouts.total = 5000ms;

  SUBCASE("ProbeOnce (decoded on arrival)") {
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("malformed") != std::string::npos);
    CHECK(r.http_status == 200);
  }
  SUBCASE("the prober (decoded after the socket reads)") {
    CollectingSink sink;
    auto prober = Prober::Create(ProberOptions{}, sink, clock);
    REQUIRE(prober.has_value());
    target.interval = 50ms;  // first start within 50 ms
    (*prober)->SetTargets({target});
    std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
    // Bounded only so a regression fails instead of hanging; the outcome is the assertion.
    const bool done = PollUntil([&] { return !sink.results().empty(); }, 10000ms);
    loop.request_stop();
    loop.join();
    REQUIRE(done);
    const ProbeResult r = sink.results()[0];
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("malformed") != std::string::npos);
  }
}

TEST_CASE("e2e: a response header line over libcurl's limit is invalid_response, not network") {
  FakeOpenAI server;
  SystemClock clock;
  TargetSpec target = Target(server, "hugeheader");
  target.stream = false;
  const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.outcome == Outcome::kInvalidResponse);
  CHECK(r.error == "response header line over libcurl's 100 KB limit");
}

TEST_CASE("e2e: a credential of any shape echoed back is masked in the request id and error") {
  FakeOpenAI server;
  SystemClock clock;
  TargetSpec target = Target(server, "echo");
  target.stream = false;
  // Not sk-shaped: the old shape-based masking let it through into the request id.
  const std::string key = "gsk_SECRETkey0123456789abcdefABCDEF";
  target.api_key = Secret(key);
  const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(r.outcome == Outcome::kAuth);
  CHECK(r.request_id == "req_<redacted>");
  CHECK(r.error.find("<redacted>") != std::string::npos);
  for (const std::string* field : {&r.error, &r.request_id}) {
    CHECK(field->find("SECRET") == std::string::npos);
    CHECK(field->find("gsk_") == std::string::npos);
  }
}

TEST_CASE("e2e: the prober probes two targets with a concurrency cap of 1") {
  FakeOpenAI server;
  SystemClock clock;
  CollectingSink sink;
  ProberOptions options;
  options.max_concurrency = 1;
  options.shutdown_grace = 2000ms;
  auto prober = Prober::Create(options, sink, clock);
  REQUIRE(prober.has_value());
  TargetSpec a = Target(server, "ok");
  a.name = "a";
  a.interval = 300ms;
  TargetSpec b = a;
  b.name = "b";
  (*prober)->SetTargets({a, b});

  std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
  size_t max_in_flight = 0;
  const bool both = PollUntil(
      [&] {
        max_in_flight = std::max(max_in_flight, (*prober)->InFlight());
        return sink.CountFor("a") >= 2 && sink.CountFor("b") >= 2;
      },
      5000ms);
  loop.request_stop();
  loop.join();
  CHECK(both);
  CHECK(max_in_flight <= 1);
  CHECK(server.max_concurrent() == 1);
  for (const ProbeResult& r : sink.results()) {
    CHECK(r.outcome == Outcome::kOk);
    CheckNoSecret(r);
  }
  CHECK((*prober)->InFlight() == 0);
  const auto status = (*prober)->Status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].tokens_today >= 36);
}

TEST_CASE("e2e: shutdown lets in-flight probes finish within the grace, then cancels") {
  FakeOpenAI server;
  SystemClock clock;

  SUBCASE("nothing in flight: Run returns at once") {
    CollectingSink sink;
    auto prober = Prober::Create(ProberOptions{}, sink, clock);
    REQUIRE(prober.has_value());
    std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
    const auto stop_at = std::chrono::steady_clock::now();
    loop.request_stop();
    loop.join();
    CHECK(std::chrono::steady_clock::now() - stop_at < 500ms);
    CHECK(sink.results().empty());
  }
  SUBCASE("in flight at stop") {
    for (const bool hang : {false, true}) {
      CAPTURE(hang);
      CollectingSink sink;
      ProberOptions options;
      options.shutdown_grace = hang ? 200ms : 3000ms;
      auto prober = Prober::Create(options, sink, clock);
      REQUIRE(prober.has_value());
      TargetSpec target = Target(server, hang ? "hang" : "ok");
      target.interval = 50ms;  // first start within 50 ms
      target.timeouts.first_token = 5000ms;
      (*prober)->SetTargets({target});
      std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
      REQUIRE(PollUntil([&] { return (*prober)->InFlight() == 1; }, 2000ms));
      const auto stop_at = std::chrono::steady_clock::now();
      loop.request_stop();
      loop.join();
      const double took =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_at).count();
      if (hang) {
        CHECK(sink.results().empty());  // cancelled probes are not reported
        CHECK(took >= 0.2);
        CHECK(took < 0.2 + 0.8);
      } else {
        REQUIRE(sink.results().size() == 1);
        CHECK(sink.results()[0].outcome == Outcome::kOk);
      }
      CHECK((*prober)->InFlight() == 0);
    }
  }
}

TEST_CASE("e2e: keep-warm reuses the connection, fresh does not") {
  FakeOpenAI server;
  SystemClock clock;
  for (const bool warm : {true, false}) {
    CAPTURE(warm);
    CollectingSink sink;
    auto prober = Prober::Create(ProberOptions{}, sink, clock);
    REQUIRE(prober.has_value());
    TargetSpec target = Target(server, "json");
    target.stream = false;
    target.interval = 50ms;
    target.connection = warm ? ConnectionReuse::kKeepWarm : ConnectionReuse::kFresh;
    (*prober)->SetTargets({target});
    std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
    REQUIRE(PollUntil([&] { return sink.CountFor(target.name) >= 3; }, 5000ms));
    loop.request_stop();
    loop.join();
    const std::vector<ProbeResult> results = sink.results();
    CHECK(results[0].connect_seconds.has_value());
    CHECK(results[2].outcome == Outcome::kOk);
    CHECK(results[2].connect_seconds.has_value() == !warm);
  }
}

// A wall clock the test moves while the prober reads it from its own thread. Monotonic time is
// real: the prober schedules and times real transfers to a real server.
class SteppedClock final : public Clock {
 public:
  explicit SteppedClock(int64_t start) : now_(start) {}
  int64_t NowUnixMillis() const override { return now_.load(); }
  MonotonicTime MonotonicNow() const override { return real_.MonotonicNow(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) const override {
    real_.WaitUntil(cv, lock, deadline);
  }
  void Set(int64_t ms) { now_.store(ms); }

 private:
  std::atomic<int64_t> now_;
  SystemClock real_;
};

TEST_CASE("e2e: a priced target's probe carries the cost the prober charged to its budget") {
  FakeOpenAI server;
  CollectingSink sink;
  SystemClock clock;
  auto prober = Prober::Create(ProberOptions{}, sink, clock);
  REQUIRE(prober.has_value());
  TargetSpec priced = Target(server, "ok");
  priced.input_price_per_million = 2.5;
  priced.output_price_per_million = 10;
  priced.interval = 100ms;
  TargetSpec unpriced = Target(server, "ok");
  unpriced.name = "unpriced";
  unpriced.interval = 100ms;
  (*prober)->SetTargets({priced, unpriced});
  std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
  REQUIRE(PollUntil(
      [&] { return sink.CountFor(priced.name) >= 1 && sink.CountFor(unpriced.name) >= 1; },
      5000ms));
  loop.request_stop();
  loop.join();

  for (const ProbeResult& result : sink.results()) {
    if (result.target == unpriced.name) {
      CHECK_FALSE(result.estimated_cost_dollars.has_value());
      continue;
    }
    REQUIRE(result.input_tokens.has_value());
    REQUIRE(result.output_tokens.has_value());
    REQUIRE(result.estimated_cost_dollars.has_value());
    CHECK(*result.estimated_cost_dollars ==
          doctest::Approx(static_cast<double>(*result.input_tokens) * 2.5 / 1e6 +
                          static_cast<double>(*result.output_tokens) * 10 / 1e6));
  }
  const std::vector<TargetStatus> status = (*prober)->Status();
  REQUIRE(status.size() == 2);
  double charged = 0;
  for (const ProbeResult& result : sink.results()) {
    charged += result.estimated_cost_dollars.value_or(0);
  }
  CHECK(status[0].cost_today + status[1].cost_today == doctest::Approx(charged));
  CHECK(charged > 0);
}

TEST_CASE("e2e: a spent daily token budget pauses the target until the next UTC day") {
  FakeOpenAI server;
  constexpr int64_t kDay = 86400000;
  SteppedClock clock(20000 * kDay + 1000);
  CollectingSink sink;
  auto prober = Prober::Create(ProberOptions{}, sink, clock);
  REQUIRE(prober.has_value());
  TargetSpec target = Target(server, "ok");
  target.interval = 100ms;
  target.daily_token_budget = 10;  // one probe uses 18
  (*prober)->SetTargets({target});
  std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });

  REQUIRE(PollUntil([&] { return (*prober)->Status().at(0).budget_paused; }, 5000ms));
  // Paused: several intervals pass without a probe.
  std::this_thread::sleep_for(500ms);
  CHECK(sink.CountFor(target.name) == 1);
  CHECK((*prober)->Status().at(0).tokens_today == 18);
  // A reload that keeps the name keeps the budget state; a new name starts afresh.
  TargetSpec other = target;
  other.name = "other";
  other.interval = 60000ms;
  (*prober)->SetTargets({target, other});
  const std::vector<TargetStatus> status = (*prober)->Status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].name == "ok@fake");
  CHECK(status[0].budget_paused);
  CHECK(status[0].tokens_today == 18);
  CHECK(status[1].name == "other");
  CHECK_FALSE(status[1].budget_paused);
  CHECK(status[1].tokens_today == 0);

  clock.Set(20001 * kDay + 5);
  CHECK(PollUntil([&] { return sink.CountFor(target.name) >= 2; }, 5000ms));
  loop.request_stop();
  loop.join();
}

}  // namespace
}  // namespace modelpulse::collector
