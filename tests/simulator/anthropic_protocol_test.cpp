// The anthropic protocol over real loopback HTTP: the Messages event sequence and usage,
// x-api-key and Bearer auth with Anthropic's error bodies, every error kind, and the
// anthropic-ratelimit-* headers with RFC 3339 resets (protocols.md §3).

#include <doctest/doctest.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/simulator/cloud_test_util.h"

namespace modelpulse::simulator {
namespace {

using testing::CheckRefused;
using testing::Exchange;
using testing::Send;
using testing::SseEvents;
using testing::StartScenario;
using testing::TempDir;
using Json = nlohmann::json;

constexpr char kPath[] = "/claude/v1/messages";

std::string Body(bool stream, int max_tokens = 16) {
  Json body{{"model", "claude-sonnet-4-5"},
            {"max_tokens", max_tokens},
            {"messages", Json::array({Json{{"role", "user"}, {"content", "Say OK"}}})}};
  if (stream)
    body["stream"] = true;
  return body.dump();
}

const httplib::Headers kVersion = {{"anthropic-version", "2023-06-01"}};

std::string Scenario(const std::string& extra = "", const std::string& phases = "") {
  return "seed: 5\nhang_cap: 2s\nendpoints:\n"
         "  - name: claude\n    protocol: anthropic\n    model: claude-sonnet-4-5-20250929\n"
         "    first_token_ms: 20\n    inter_token_ms: 2\n    output_tokens: 4\n" +
         extra + phases;
}

std::string Phase(const std::string& kind) {
  return "    phases:\n      - errors: [{kind: " + kind + ", probability: 1}]\n";
}

std::vector<std::string> Names(const std::vector<std::pair<std::string, std::string>>& events) {
  std::vector<std::string> names;
  for (const auto& [name, data] : events)
    names.push_back(name);
  return names;
}

void CheckErrorBody(const Exchange& ex, int status, const std::string& type) {
  CHECK(ex.status == status);
  const auto body = Json::parse(ex.body);
  CHECK(body["type"] == "error");
  CHECK(body["error"]["type"] == type);
  CHECK(body["error"]["message"].is_string());
  CHECK(body["request_id"] == ex.Header("request-id"));
  CHECK(std::regex_match(ex.Header("request-id"), std::regex("req_011C[0-9A-Za-z]{20}")));
}

TEST_CASE("anthropic stream: the Messages event sequence with usage at start and cumulative end") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto ex = Send(sim->port(), kPath, Body(true), kVersion);
  REQUIRE(ex.status == 200);
  CHECK(ex.Header("Content-Type") == "text/event-stream");
  const auto events = SseEvents(ex.body);
  CHECK(Names(events) == std::vector<std::string>{
                             "message_start", "content_block_start", "ping", "content_block_delta",
                             "content_block_delta", "content_block_delta", "content_block_delta",
                             "content_block_stop", "message_delta", "message_stop"});
  REQUIRE(events.size() == 10);
  for (const auto& [name, data] : events) {
    const auto payload = Json::parse(data);  // trailing spaces included
    CHECK(payload["type"] == name);
  }
  const auto start = Json::parse(events[0].second)["message"];
  CHECK(start["model"] == "claude-sonnet-4-5-20250929");
  CHECK(std::regex_match(start["id"].get<std::string>(), std::regex("msg_01[0-9A-Za-z]{22}")));
  CHECK(start["role"] == "assistant");
  CHECK(start["content"] == Json::array());
  CHECK(start["stop_reason"].is_null());
  CHECK(start["usage"]["input_tokens"].get<int>() > 0);
  CHECK(start["usage"]["output_tokens"] == 1);  // a placeholder, as the API sends

  CHECK(Json::parse(events[1].second)["content_block"] ==
        Json::parse(R"({"type":"text","text":""})"));
  std::string text;
  for (size_t i = 3; i < 7; ++i) {
    const auto delta = Json::parse(events[i].second);
    CHECK(delta["index"] == 0);
    CHECK(delta["delta"]["type"] == "text_delta");
    text += delta["delta"]["text"].get<std::string>();
  }
  CHECK(text == "OK lorem ipsum dolor");
  const auto message_delta = Json::parse(events[8].second);
  CHECK(message_delta["delta"]["stop_reason"] == "end_turn");
  CHECK(message_delta["usage"]["output_tokens"] == 4);
  CHECK(message_delta["usage"]["input_tokens"] == start["usage"]["input_tokens"]);
  // The trailing spaces of the real API after the closing brace.
  CHECK(events[9].second.back() == ' ');
}

TEST_CASE("anthropic: max_tokens cuts the reply and says so") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto ex = Send(sim->port(), kPath, Body(true, 2), kVersion);
  const auto events = SseEvents(ex.body);
  REQUIRE(events.size() == 8);
  const auto message_delta = Json::parse(events[6].second);
  CHECK(message_delta["delta"]["stop_reason"] == "max_tokens");
  CHECK(message_delta["usage"]["output_tokens"] == 2);
}

TEST_CASE("anthropic non-stream message body") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto ex = Send(sim->port(), kPath, Body(false), kVersion);
  REQUIRE(ex.status == 200);
  const auto body = Json::parse(ex.body);
  CHECK(body["type"] == "message");
  CHECK(body["role"] == "assistant");
  CHECK(body["content"] == Json::parse(R"([{"type":"text","text":"OK lorem ipsum dolor"}])"));
  CHECK(body["stop_reason"] == "end_turn");
  CHECK(body["stop_sequence"].is_null());
  CHECK(body["usage"]["output_tokens"] == 4);
  CHECK(body["usage"]["input_tokens"].get<int>() > 0);
}

TEST_CASE("anthropic auth: x-api-key or Bearer, failures are authentication_error") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("    api_key: sk-ant-sim\n"));
  const int port = sim->port();
  CHECK(Send(port, kPath, Body(false),
             {{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-ant-sim"}})
            .status == 200);
  CHECK(Send(port, kPath, Body(false),
             {{"anthropic-version", "2026-10-21"}, {"Authorization", "Bearer sk-ant-sim"}})
            .status == 200);

  const auto missing = Send(port, kPath, Body(false), kVersion);
  CheckErrorBody(missing, 401, "authentication_error");
  CHECK(Json::parse(missing.body)["error"]["message"] == "x-api-key header is required");

  const auto wrong = Send(port, kPath, Body(false),
                          {{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-bad"}});
  CheckErrorBody(wrong, 401, "authentication_error");
  CHECK(Json::parse(wrong.body)["error"]["message"] == "invalid x-api-key");
  CHECK(wrong.body.find("sk-bad") == std::string::npos);

  const auto wrong_bearer =
      Send(port, kPath, Body(false),
           {{"anthropic-version", "2023-06-01"}, {"Authorization", "Bearer x"}});
  CheckErrorBody(wrong_bearer, 401, "authentication_error");
}

TEST_CASE("anthropic refuses a request without anthropic-version or max_tokens") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto no_version = Send(sim->port(), kPath, Body(false));
  CHECK(no_version.status == 400);
  CHECK(Json::parse(no_version.body)["error"] == Json::parse(R"({"type":"invalid_request_error",
                        "message":"anthropic-version: header is required"})"));
  Json body = Json::parse(Body(false));
  body.erase("max_tokens");
  const auto no_max = Send(sim->port(), kPath, body.dump(), kVersion);
  CHECK(no_max.status == 400);
  CHECK(Json::parse(no_max.body)["error"]["message"] == "max_tokens: Field required");
  CHECK(Send(sim->port(), kPath, "{oops", kVersion).status == 400);
}

TEST_CASE("anthropic rate-limit headers: four families, RFC 3339 resets in the future") {
  TempDir dir;
  auto sim =
      StartScenario(dir, Scenario("    ratelimit: {requests: 50, tokens: 10000, window: 60s}\n"));
  const auto before = std::time(nullptr);
  const auto ex = Send(sim->port(), kPath, Body(false), kVersion);
  REQUIRE(ex.status == 200);
  const std::regex rfc3339("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z");
  for (const std::string family : {"requests", "tokens", "input-tokens", "output-tokens"}) {
    CAPTURE(family);
    const auto prefix = "anthropic-ratelimit-" + family;
    CHECK(std::stol(ex.Header(prefix + "-limit")) > 0);
    CHECK(std::stol(ex.Header(prefix + "-remaining")) <= std::stol(ex.Header(prefix + "-limit")));
    const auto reset = ex.Header(prefix + "-reset");
    REQUIRE(std::regex_match(reset, rfc3339));
    std::tm tm{};
    strptime(reset.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
    const auto at = timegm(&tm);
    CHECK(at >= before);
    CHECK(at <= before + 120);
  }
  CHECK(ex.Header("anthropic-ratelimit-requests-limit") == "50");
  CHECK(ex.Header("anthropic-ratelimit-requests-remaining") == "49");
  CHECK(ex.Header("anthropic-ratelimit-tokens-limit") == "10000");
  CHECK_FALSE(ex.HasHeader("retry-after"));
}

TEST_CASE("anthropic 429: rate_limit_error with retry-after, from a dry budget or injected") {
  TempDir dir;
  {
    auto sim = StartScenario(dir, Scenario("    ratelimit: {requests: 1, window: 60s}\n"));
    CHECK(Send(sim->port(), kPath, Body(false), kVersion).status == 200);
    const auto ex = Send(sim->port(), kPath, Body(true), kVersion);
    CheckErrorBody(ex, 429, "rate_limit_error");
    CHECK(std::stoi(ex.Header("retry-after")) >= 1);
    CHECK(ex.Header("x-should-retry") == "true");
    CHECK(ex.Header("anthropic-ratelimit-requests-remaining") == "0");
  }
  {
    auto sim = StartScenario(dir, Scenario("", Phase("rate_limit")));
    const auto ex = Send(sim->port(), kPath, Body(false), kVersion);
    CheckErrorBody(ex, 429, "rate_limit_error");
    CHECK(ex.Header("retry-after") == "1");
  }
}

TEST_CASE("anthropic: retry-after on a 200 when the scenario says so") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("    options: {retry_after_on_200: 33}\n"));
  const auto ex = Send(sim->port(), kPath, Body(true), kVersion);
  CHECK(ex.status == 200);
  CHECK(ex.Header("retry-after") == "33");
  CHECK(SseEvents(ex.body).back().first == "message_stop");
}

TEST_CASE("anthropic options and error kinds are checked when the scenario loads") {
  TempDir dir;
  CheckRefused(dir, Scenario("", Phase("model_not_ready")), "model_not_ready");
  CheckRefused(dir, Scenario("    options: {retry_after_on_200: soon}\n"), "retry_after_on_200");
}

TEST_CASE("anthropic error kinds") {
  TempDir dir;
  auto send = [&](const std::string& kind, bool stream, const std::string& options = "") {
    auto sim = StartScenario(dir, Scenario(options, Phase(kind)));
    return Send(sim->port(), kPath, Body(stream), kVersion);
  };
  SUBCASE("overloaded_503 is 529 overloaded_error") {
    CheckErrorBody(send("overloaded_503", false), 529, "overloaded_error");
  }
  SUBCASE("server_error_500 is 500 api_error") {
    CheckErrorBody(send("server_error_500", true), 500, "api_error");
  }
  SUBCASE("unauthorized_401 injected") {
    CheckErrorBody(send("unauthorized_401", false), 401, "authentication_error");
  }
  SUBCASE("insufficient_quota is the 400 credit-balance error, or 402 billing_error") {
    const auto credit = send("insufficient_quota", false);
    CheckErrorBody(credit, 400, "invalid_request_error");
    CHECK(Json::parse(credit.body)["error"]["message"].get<std::string>().rfind(
              "Your credit balance is too low", 0) == 0);
    CheckErrorBody(send("insufficient_quota", false, "    options: {quota_error: billing_error}\n"),
                   402, "billing_error");
  }
  SUBCASE("overloaded_midstream: text, then event: error overloaded_error, no message_stop") {
    const auto ex = send("overloaded_midstream", true);
    CHECK(ex.status == 200);
    const auto events = SseEvents(ex.body);
    CHECK(Names(events) == std::vector<std::string>{"message_start", "content_block_start", "ping",
                                                    "content_block_delta", "content_block_delta",
                                                    "error"});
    REQUIRE_FALSE(events.empty());
    CHECK(Json::parse(events.back().second) ==
          Json::parse(
              R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"));
    CheckErrorBody(send("overloaded_midstream", false), 529, "overloaded_error");
  }
  SUBCASE("error_in_200: event: error api_error before any text") {
    const auto ex = send("error_in_200", true);
    CHECK(ex.status == 200);
    CHECK(Names(SseEvents(ex.body)) == std::vector<std::string>{"message_start", "ping", "error"});
    const auto plain = send("error_in_200", false);
    CHECK(plain.status == 200);
    CHECK(Json::parse(plain.body)["error"]["type"] == "api_error");
  }
  SUBCASE("truncated_stream: half the text and no message_stop") {
    const auto ex = send("truncated_stream", true);
    const auto names = Names(SseEvents(ex.body));
    CHECK(names.size() == 5);
    CHECK(names.back() == "content_block_delta");
  }
  SUBCASE("malformed_json: the first content_block_delta does not parse") {
    const auto events = SseEvents(send("malformed_json", true).body);
    REQUIRE(events.size() == 10);
    CHECK_FALSE(Json::accept(events[3].second));
    CHECK(Json::accept(events[4].second));
  }
  SUBCASE("empty_completion: no content block, zero output tokens") {
    const auto events = SseEvents(send("empty_completion", true).body);
    CHECK(Names(events) ==
          std::vector<std::string>{"message_start", "ping", "message_delta", "message_stop"});
    REQUIRE(events.size() == 4);
    CHECK(Json::parse(events[2].second)["usage"]["output_tokens"] == 0);
  }
  SUBCASE("hang_after_headers: message_start, then silence until the cap") {
    const auto ex = send("hang_after_headers", true);
    CHECK(ex.status == 200);
    CHECK(Names(SseEvents(ex.body)) == std::vector<std::string>{"message_start"});
  }
}

}  // namespace
}  // namespace modelpulse::simulator
