// The simulator over real loopback HTTP: a cpp-httplib client, OpenAI shapes checked with
// nlohmann_json, SSE split by hand (no code shared with collector/).

#include "simulator/simulator.h"

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/simulator/cloud_test_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using testing::StartScenario;
using testing::TempDir;

std::string ChatBody(bool stream, bool include_usage = false) {
  Json body{{"model", "gpt-4o-mini"},
            {"messages",
             Json::array({Json{{"role", "user"}, {"content", "Reply with the single word OK."}}})},
            {"max_completion_tokens", 16}};
  if (stream) {
    body["stream"] = true;
    if (include_usage)
      body["stream_options"] = {{"include_usage", true}};
  }
  return body.dump();
}

struct Exchange {
  int status = 0;
  httplib::Headers headers;
  std::string body;
  // Seconds from sending the request to each received piece of body.
  std::vector<std::pair<double, std::string>> pieces;
  bool transport_error = false;
};

Exchange Send(int port, const std::string& path, const std::string& body,
              const httplib::Headers& headers = {}, std::chrono::seconds read_timeout = 10s) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(read_timeout);
  Exchange ex;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.headers = headers;
  req.set_header("Content-Type", "application/json");
  req.body = body;
  const auto t0 = SteadyClock::now();
  req.response_handler = [&](const httplib::Response& res) {
    ex.status = res.status;
    ex.headers = res.headers;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    ex.pieces.emplace_back(std::chrono::duration<double>(SteadyClock::now() - t0).count(),
                           std::string(data, n));
    ex.body.append(data, n);
    return true;
  };
  auto result = client.send(req);
  ex.transport_error = !result;
  return ex;
}

std::string Header(const Exchange& ex, const std::string& name) {
  const auto it = ex.headers.find(name);
  return it == ex.headers.end() ? "" : it->second;
}

// The payloads of the SSE events, in order ("[DONE]" included).
std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\n\n", pos);
    if (end == std::string::npos)
      end = body.size();
    const auto event = body.substr(pos, end - pos);
    if (event.rfind("data: ", 0) == 0)
      out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

Json Parse(const std::string& text) { return Json::parse(text, nullptr, false); }

constexpr const char* kBasic = R"(seed: 1
endpoints:
  - name: east
    first_token_ms: 200
    inter_token_ms: 10
    output_tokens: 5
)";

TEST_CASE("non-streaming chat completion has the OpenAI shape and headers") {
  TempDir dir;
  auto sim = StartScenario(dir, kBasic);
  CHECK(sim->BaseUrl() == "http://127.0.0.1:" + std::to_string(sim->port()));
  const auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false));
  REQUIRE(ex.status == 200);
  const Json body = Parse(ex.body);
  REQUIRE(body.is_object());
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "gpt-4o-mini");
  CHECK(body["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  REQUIRE(body["choices"].size() == 1);
  const auto content = body["choices"][0]["message"]["content"].get<std::string>();
  CHECK(std::regex_search(content, std::regex(R"(\bOK\b)", std::regex::icase)));
  CHECK(body["choices"][0]["message"]["role"] == "assistant");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["completion_tokens"] == 5);
  CHECK(body["usage"]["prompt_tokens"].get<int>() > 0);
  CHECK(body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"].get<int>() + 5);
  CHECK(std::regex_match(Header(ex, "x-request-id"), std::regex("req_[0-9a-f]{32}")));
  CHECK_FALSE(Header(ex, "openai-processing-ms").empty());
  // The body comes after the whole generation: 200 ms + 4 x 10 ms.
  REQUIRE_FALSE(ex.pieces.empty());
  CHECK(ex.pieces.front().first >= 0.240);
}

TEST_CASE("streaming: role chunk, one chunk per token, finish, [DONE], usage only when asked") {
  TempDir dir;
  auto sim = StartScenario(dir, kBasic);
  for (const bool include_usage : {false, true}) {
    CAPTURE(include_usage);
    const auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(true, include_usage));
    REQUIRE(ex.status == 200);
    CHECK(Header(ex, "Content-Type").rfind("text/event-stream", 0) == 0);
    const auto events = SseData(ex.body);
    REQUIRE(events.size() == (include_usage ? 9u : 8u));
    CHECK(events.back() == "[DONE]");
    const Json first = Parse(events[0]);
    CHECK(first["object"] == "chat.completion.chunk");
    CHECK(first["choices"][0]["delta"]["role"] == "assistant");
    CHECK(first["choices"][0]["delta"]["content"] == "");
    std::string text;
    for (size_t i = 1; i <= 5; ++i) {
      const Json chunk = Parse(events[i]);
      REQUIRE(chunk.is_object());
      CHECK(chunk["choices"][0]["finish_reason"].is_null());
      text += chunk["choices"][0]["delta"]["content"].get<std::string>();
      CHECK(chunk.contains("usage") == include_usage);
    }
    CHECK(text.rfind("OK", 0) == 0);
    const Json finish = Parse(events[6]);
    CHECK(finish["choices"][0]["finish_reason"] == "stop");
    CHECK(finish["choices"][0]["delta"].empty());
    if (include_usage) {
      const Json usage = Parse(events[7]);
      CHECK(usage["choices"].empty());
      CHECK(usage["usage"]["completion_tokens"] == 5);
      CHECK(usage["usage"]["prompt_tokens"].get<int>() > 0);
    }
    if (!include_usage) {
      for (const auto& e : events)
        CHECK(e.find("\"choices\":[]") == std::string::npos);
    }
  }
}

TEST_CASE("max_completion_tokens cuts the answer with finish_reason length") {
  TempDir dir;
  auto sim = StartScenario(dir, kBasic);
  Json body = Parse(ChatBody(false));
  body["max_completion_tokens"] = 2;
  const auto ex = Send(sim->port(), "/east/v1/chat/completions", body.dump());
  const Json reply = Parse(ex.body);
  CHECK(reply["usage"]["completion_tokens"] == 2);
  CHECK(reply["choices"][0]["finish_reason"] == "length");
}

TEST_CASE("the journal records the injected delay, and no token arrives before it") {
  TempDir dir;
  auto sim = StartScenario(dir, R"(endpoints:
  - name: east
    first_token_ms: {distribution: uniform, min: 150, max: 250}
    inter_token_ms: 20
    output_tokens: 4
)");
  const auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(true, true));
  REQUIRE(ex.status == 200);
  const auto journal = sim->Journal();
  REQUIRE(journal.size() == 1);
  const auto& entry = journal[0];
  CHECK(entry.endpoint == "east");
  CHECK(entry.behaviour == "ok");
  CHECK(entry.http_status == 200);
  CHECK(entry.stream);
  CHECK(entry.output_tokens == 4);
  CHECK(entry.input_tokens > 0);
  CHECK(entry.first_token_delay_seconds >= 0.150);
  CHECK(entry.first_token_delay_seconds <= 0.250);
  CHECK(entry.total_seconds >= entry.first_token_delay_seconds + 3 * 0.020);
  // The first piece holding content must not come before the injected delay.
  double first_content = -1;
  for (const auto& [at, piece] : ex.pieces) {
    if (piece.find("\"content\":\"OK\"") != std::string::npos) {
      first_content = at;
      break;
    }
  }
  REQUIRE(first_content > 0);
  CHECK(first_content >= entry.first_token_delay_seconds);
  // The role chunk went out long before it: headers and first chunk are not held back.
  CHECK(ex.pieces.front().first < entry.first_token_delay_seconds);

  httplib::Client client("127.0.0.1", sim->port());
  auto res = client.Get("/_simulator/journal");
  REQUIRE(res);
  const Json listed = Parse(res->body);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["first_token_delay_seconds"] == entry.first_token_delay_seconds);
  res = client.Get("/_simulator/health");
  REQUIRE(res);
  CHECK(Parse(res->body)["status"] == "ok");
}

// A tiny Go duration reader for the test's own use ("1.5s", "480ms", "0s").
double GoSeconds(const std::string& text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    return std::stod(text.substr(0, text.size() - 2)) / 1000;
  }
  REQUIRE(text.back() == 's');
  REQUIRE(text.find('m') == std::string::npos);
  return std::stod(text.substr(0, text.size() - 1));
}

TEST_CASE("rate-limit headers count down, the empty bucket gives a real 429, then it refills") {
  TempDir dir;
  // Budgets refill on the simulator's clock, which the test moves; no latency, so that no reply
  // waits for it.
  ManualClock clock(0);
  auto sim = StartScenario(dir, R"(endpoints:
  - name: east
    first_token_ms: 0
    inter_token_ms: 0
    output_tokens: 5
    ratelimit: {requests: 3, window: 1s}
  - name: tok
    first_token_ms: 0
    inter_token_ms: 0
    output_tokens: 5
    ratelimit: {tokens: 1000, window: 60s}
)",
                           SimulatorOptions{}.worker_threads, clock);
  for (int expected = 2; expected >= 0; --expected) {
    const auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false));
    REQUIRE(ex.status == 200);
    CHECK(Header(ex, "x-ratelimit-limit-requests") == "3");
    CHECK(Header(ex, "x-ratelimit-remaining-requests") == std::to_string(expected));
    CHECK(GoSeconds(Header(ex, "x-ratelimit-reset-requests")) > 0);
  }
  const auto refused = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false));
  REQUIRE(refused.status == 429);
  const Json error = Parse(refused.body);
  CHECK(error["error"]["code"] == "rate_limit_exceeded");
  CHECK(error["error"]["type"] == "requests");
  CHECK(Header(refused, "x-ratelimit-remaining-requests") == "0");
  CHECK_FALSE(Header(refused, "retry-after").empty());
  const double reset = GoSeconds(Header(refused, "x-ratelimit-reset-requests"));
  CHECK(reset > 0);
  CHECK(reset <= 1.0);
  // The advertised reset is the behaviour under test: the bucket is full again after exactly that.
  clock.Advance(std::chrono::ceil<std::chrono::microseconds>(std::chrono::duration<double>(reset)));
  const auto after = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false));
  CHECK(after.status == 200);
  CHECK(Header(after, "x-ratelimit-remaining-requests") == "2");
  auto journal = sim->Journal();
  REQUIRE(journal.size() == 5);
  CHECK(journal[3].behaviour == "rate_limit");
  CHECK(journal[3].http_status == 429);

  // The token budget goes down by prompt + completion tokens per request.
  int64_t last = 1000;
  for (int i = 0; i < 3; ++i) {
    const auto ex = Send(sim->port(), "/tok/v1/chat/completions", ChatBody(false));
    REQUIRE(ex.status == 200);
    CHECK(Header(ex, "x-ratelimit-limit-tokens") == "1000");
    CHECK(Header(ex, "x-ratelimit-remaining-requests").empty());
    const int64_t used = Parse(ex.body)["usage"]["total_tokens"].get<int64_t>();
    const int64_t remaining = std::stoll(Header(ex, "x-ratelimit-remaining-tokens"));
    CHECK(remaining <= last - used + 1);  // a refill of under one token may have come in
    CHECK(remaining >= last - used);
    last = remaining;
  }
}

std::string OneKind(const std::string& kind) {
  return R"(hang_cap: 300ms
endpoints:
  - name: x
    first_token_ms: 20
    inter_token_ms: 1
    output_tokens: 6
    phases:
      - errors: [{kind: )" +
         kind + R"(, probability: 1}]
)";
}

TEST_CASE("each HTTP error kind gives OpenAI's status and body") {
  struct Case {
    const char* kind;
    int status;
    const char* type;
    const char* code;  // nullptr: JSON null
  };
  const Case cases[] = {
      {"rate_limit", 429, "requests", "rate_limit_exceeded"},
      {"insufficient_quota", 429, "insufficient_quota", "insufficient_quota"},
      {"overloaded_503", 503, "server_error", nullptr},
      {"server_error_500", 500, "server_error", nullptr},
      {"unauthorized_401", 401, "invalid_request_error", "invalid_api_key"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.kind);
    TempDir dir;
    auto sim = StartScenario(dir, OneKind(c.kind));
    for (const bool stream : {false, true}) {
      const auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(stream));
      CHECK(ex.status == c.status);
      const Json body = Parse(ex.body);
      REQUIRE(body.is_object());
      CHECK(body["error"]["type"] == c.type);
      if (c.code == nullptr) {
        CHECK(body["error"]["code"].is_null());
      } else {
        CHECK(body["error"]["code"] == c.code);
      }
      CHECK(body["error"]["param"].is_null());
      CHECK(std::regex_match(Header(ex, "x-request-id"), std::regex("req_[0-9a-f]{32}")));
      if (std::string(c.kind) == "rate_limit") {
        CHECK_FALSE(Header(ex, "retry-after").empty());
        CHECK(Header(ex, "x-ratelimit-remaining-requests") == "0");
      }
    }
    const auto journal = sim->Journal();
    REQUIRE(journal.size() == 2);
    CHECK(journal[0].behaviour == c.kind);
    CHECK(journal[0].http_status == c.status);
  }
}

TEST_CASE("invalid responses behind HTTP 200") {
  SUBCASE("error_in_200") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("error_in_200"));
    auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(false));
    CHECK(ex.status == 200);
    CHECK(Parse(ex.body)["error"]["type"] == "server_error");
    ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true));
    CHECK(ex.status == 200);
    const auto events = SseData(ex.body);
    REQUIRE_FALSE(events.empty());
    CHECK(Parse(events.back()).contains("error"));
    CHECK(events.back() != "[DONE]");
  }
  SUBCASE("truncated_stream") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("truncated_stream"));
    auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true));
    CHECK(ex.status == 200);
    const auto events = SseData(ex.body);
    REQUIRE(events.size() == 4);  // role + 3 of 6 tokens
    for (const auto& e : events)
      CHECK(Parse(e).is_object());
    REQUIRE_FALSE(sim->Journal().empty());
    CHECK(sim->Journal().back().output_tokens == 3);
    ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(false));
    CHECK(ex.status == 200);
    CHECK(Parse(ex.body).is_discarded());
  }
  SUBCASE("malformed_json") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("malformed_json"));
    auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true));
    const auto events = SseData(ex.body);
    REQUIRE(events.size() >= 3);
    CHECK(events.back() == "[DONE]");
    CHECK(Parse(events[1]).is_discarded());
    ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(false));
    CHECK(Parse(ex.body).is_discarded());
  }
  SUBCASE("empty_completion") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("empty_completion"));
    auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true, true));
    const auto events = SseData(ex.body);
    REQUIRE(events.size() == 4);  // role, finish, usage, [DONE]
    CHECK(Parse(events[2])["usage"]["completion_tokens"] == 0);
    ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(false));
    const Json body = Parse(ex.body);
    CHECK(body["choices"][0]["message"]["content"] == "");
    CHECK(body["usage"]["completion_tokens"] == 0);
    REQUIRE_FALSE(sim->Journal().empty());
    CHECK(sim->Journal().back().first_token_delay_seconds == 0);
  }
}

TEST_CASE("hangs are bounded: the cap, the client leaving, and the server stopping") {
  SUBCASE("hang before headers ends at the cap") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("hang"));
    const auto t0 = SteadyClock::now();
    const auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true));
    const double took = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    CHECK(ex.status == 504);
    CHECK(took >= 0.3);
    CHECK(took < 5.0);
    REQUIRE_FALSE(sim->Journal().empty());
    CHECK(sim->Journal().back().behaviour == "hang");
  }
  SUBCASE("hang after headers: 200 and the role chunk, then silence until the cap") {
    TempDir dir;
    auto sim = StartScenario(dir, OneKind("hang_after_headers"));
    const auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(true));
    CHECK(ex.status == 200);
    REQUIRE_FALSE(ex.pieces.empty());
    CHECK(ex.pieces.front().first < 0.2);
    const auto events = SseData(ex.body);
    REQUIRE(events.size() == 1);
    CHECK(Parse(events[0])["choices"][0]["delta"]["role"] == "assistant");
    const auto deadline = SteadyClock::now() + 5s;
    while (sim->Journal().empty() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    REQUIRE_FALSE(sim->Journal().empty());
    CHECK(sim->Journal().back().behaviour == "hang_after_headers");
  }
  SUBCASE("a client that gives up frees the worker long before the cap") {
    TempDir dir;
    auto sim = StartScenario(dir, R"(hang_cap: 60s
endpoints:
  - name: x
    phases:
      - errors: [{kind: hang, probability: 1}]
)");
    const auto ex = Send(sim->port(), "/x/v1/chat/completions", ChatBody(false), {}, 1s);
    CHECK(ex.transport_error);
    const auto deadline = SteadyClock::now() + 10s;
    while (sim->Journal().empty() && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
    REQUIRE(sim->Journal().size() == 1);
    CHECK(sim->Journal()[0].total_seconds < 5.0);
  }
  SUBCASE("destroying the simulator cuts hanging requests promptly") {
    TempDir dir;
    auto sim = StartScenario(dir, R"(hang_cap: 60s
endpoints:
  - name: x
    phases:
      - errors: [{kind: hang, probability: 0.5}, {kind: hang_after_headers, probability: 0.5}]
)");
    std::vector<std::thread> clients;
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back(
          [port = sim->port()] { Send(port, "/x/v1/chat/completions", ChatBody(true), {}, 30s); });
    }
    std::this_thread::sleep_for(200ms);  // let the requests reach their hang
    const auto t0 = SteadyClock::now();
    sim.reset();
    CHECK(std::chrono::duration<double>(SteadyClock::now() - t0).count() < 3.0);
    for (auto& t : clients)
      t.join();
  }
}

TEST_CASE("auth: a configured key is required, a wrong one gets 401 invalid_api_key") {
  TempDir dir;
  auto sim = StartScenario(dir, R"(endpoints:
  - name: east
    api_key: sk-sim-east
    first_token_ms: 1
)");
  auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false));
  CHECK(ex.status == 401);
  CHECK(Parse(ex.body)["error"]["code"].is_null());
  ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false),
            {{"Authorization", "Bearer sk-wrong-secret"}});
  CHECK(ex.status == 401);
  CHECK(Parse(ex.body)["error"]["code"] == "invalid_api_key");
  CHECK(ex.body.find("sk-wrong-secret") == std::string::npos);
  ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(false),
            {{"Authorization", "Bearer sk-sim-east"}});
  CHECK(ex.status == 200);
}

TEST_CASE("a body that is not JSON gets OpenAI's 400") {
  TempDir dir;
  auto sim = StartScenario(dir, kBasic);
  const auto ex = Send(sim->port(), "/east/v1/chat/completions", "{not json");
  CHECK(ex.status == 400);
  CHECK(Parse(ex.body)["error"]["type"] == "invalid_request_error");
  REQUIRE_FALSE(sim->Journal().empty());
  CHECK(sim->Journal().back().behaviour == "invalid_request");
}

TEST_CASE("phases switch on time and the last one holds") {
  TempDir dir;
  // The timeline runs on the simulator's clock, which the test moves; no latency, so that no reply
  // waits for it.
  ManualClock clock(0);
  auto sim = StartScenario(dir, R"(endpoints:
  - name: east
    first_token_ms: 0
    output_tokens: 1
    phases:
      - {name: healthy, duration: 300ms}
      - {name: broken, duration: 300ms, errors: [{kind: server_error_500, probability: 1}]}
      - {name: recovered}
)",
                           SimulatorOptions{}.worker_threads, clock);
  auto status = [&] {
    return Send(sim->port(), "/east/v1/chat/completions", ChatBody(false)).status;
  };
  CHECK(status() == 200);
  clock.Advance(299ms);
  CHECK(status() == 200);
  clock.Advance(1ms);
  CHECK(status() == 500);
  clock.Advance(299ms);
  CHECK(status() == 500);
  clock.Advance(1ms);
  REQUIRE(status() == 200);
  httplib::Client client("127.0.0.1", sim->port());
  const auto health = client.Get("/_simulator/health");
  REQUIRE(health);
  CHECK(Parse(health->body)["endpoints"][0]["phase"] == "recovered");
  // Recovered is the last phase: it holds.
  clock.Advance(std::chrono::hours(24));
  for (int i = 0; i < 5; ++i)
    CHECK(status() == 200);
}

TEST_CASE("50 concurrent streams are served side by side") {
  TempDir dir;
  auto sim = StartScenario(dir, R"(endpoints:
  - name: east
    first_token_ms: 300
    inter_token_ms: 20
    output_tokens: 5
)");
  constexpr int kStreams = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  const auto t0 = SteadyClock::now();
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&] {
      const auto ex = Send(sim->port(), "/east/v1/chat/completions", ChatBody(true, true));
      const auto events = SseData(ex.body);
      if (ex.status == 200 && !events.empty() && events.back() == "[DONE]")
        ++ok;
    });
  }
  for (auto& t : clients)
    t.join();
  const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  CHECK(ok == kStreams);
  // One stream takes 0.38 s; served one after another, 50 would take 19 s.
  CHECK(wall < 4.0);
  const auto journal = sim->Journal();
  CHECK(journal.size() == kStreams);
}

TEST_CASE("OptionsFromSettings serves the settings' scenario on their listen address") {
  SimulatorSettings settings;
  settings.scenario_path = "/etc/modelpulse/demo.yml";
  settings.listen_address = "[::1]:9466";
  settings.worker_threads = 8;
  Result<SimulatorOptions> options = OptionsFromSettings(settings);
  REQUIRE(options.has_value());
  CHECK(options->scenario_path == "/etc/modelpulse/demo.yml");
  CHECK(options->host == "::1");
  CHECK(options->port == 9466);
  CHECK(options->worker_threads == 8);

  // The defaults are the simulator's own: loopback, its demo port, 64 workers.
  Result<SimulatorOptions> defaults = OptionsFromSettings({});
  REQUIRE(defaults.has_value());
  CHECK(defaults->host == "127.0.0.1");
  CHECK(defaults->port == 9465);
  CHECK(defaults->worker_threads == SimulatorOptions{}.worker_threads);

  settings.listen_address = "localhost";
  Result<SimulatorOptions> bad = OptionsFromSettings(settings);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == Error::Code::kInvalidArgument);
  CHECK(bad.error().message.find("\"localhost\"") != std::string::npos);
}

}  // namespace
}  // namespace modelpulse::simulator
