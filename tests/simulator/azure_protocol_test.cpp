// The azure protocol over real loopback HTTP: routes and api-version, api-key and bearer auth
// with Azure's 401 bodies, the content-filter chunk before the role chunk, both 429 shapes,
// every error kind and the x-ratelimit-* variants (protocols.md §2).

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "simulator/internal/scenario.h"
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

constexpr char kDeploymentPath[] =
    "/az/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";

std::string Body(bool stream, bool include_usage = false, bool with_model = false) {
  Json body{{"messages", Json::array({Json{{"role", "user"}, {"content", "Say OK"}}})},
            {"max_tokens", 16}};
  if (with_model)
    body["model"] = "gpt-4o-mini";
  if (stream)
    body["stream"] = true;
  if (include_usage)
    body["stream_options"] = {{"include_usage", true}};
  return body.dump();
}

std::string Scenario(const std::string& extra = "", const std::string& phases = "") {
  return "seed: 3\nhang_cap: 2s\nendpoints:\n"
         "  - name: az\n    protocol: azure\n    model: gpt-4o-mini-2024-07-18\n"
         "    first_token_ms: 20\n    inter_token_ms: 2\n    output_tokens: 4\n" +
         extra + phases;
}

std::string Phase(const std::string& kind) {
  return "    phases:\n      - errors: [{kind: " + kind + ", probability: 1}]\n";
}

std::vector<Json> DataChunks(const std::string& body) {
  std::vector<Json> out;
  for (const auto& [name, data] : SseEvents(body)) {
    CHECK(name.empty());
    if (data == "[DONE]")
      continue;
    out.push_back(Json::parse(data));
  }
  return out;
}

TEST_CASE(
    "azure stream: the content-filter chunk comes first, then the role chunk, tokens, usage") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("    ratelimit: {requests: 100, tokens: 10000}\n"));
  const auto ex = Send(sim->port(), kDeploymentPath, Body(true, true), {{"api-key", "anything"}});
  REQUIRE(ex.status == 200);
  CHECK(ex.Header("Content-Type") == "text/event-stream");
  CHECK(ex.body.size() > 13);
  CHECK(ex.body.substr(ex.body.size() - 14) == "data: [DONE]\n\n");
  const auto chunks = DataChunks(ex.body);
  REQUIRE(chunks.size() == 4 + 4);  // filter, role, 4 tokens, finish, usage

  const Json& filter = chunks[0];
  CHECK(filter["choices"] == Json::array());
  CHECK(filter["id"] == "");
  CHECK(filter["model"] == "");
  CHECK(filter["object"] == "");
  CHECK(filter["created"] == 0);
  CHECK(filter["prompt_filter_results"][0]["prompt_index"] == 0);
  CHECK(filter["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] == false);
  CHECK(filter["prompt_filter_results"][0]["content_filter_results"]["jailbreak"]["detected"] ==
        false);

  const Json& role = chunks[1];
  CHECK(role["object"] == "chat.completion.chunk");
  CHECK(role["model"] == "gpt-4o-mini-2024-07-18");
  CHECK(role["choices"][0]["delta"]["role"] == "assistant");
  CHECK(role["choices"][0]["delta"]["content"] == "");
  CHECK(role["choices"][0]["content_filter_results"] == Json::object());
  CHECK(role["usage"].is_null());

  std::string text;
  for (size_t i = 2; i < 6; ++i) {
    text += chunks[i]["choices"][0]["delta"]["content"].get<std::string>();
    CHECK(chunks[i]["choices"][0]["content_filter_results"]["violence"]["severity"] == "safe");
  }
  CHECK(text == "OK lorem ipsum dolor");
  CHECK(chunks[6]["choices"][0]["finish_reason"] == "stop");
  CHECK(chunks[7]["choices"] == Json::array());
  CHECK(chunks[7]["usage"]["completion_tokens"] == 4);
  CHECK(chunks[7]["usage"]["prompt_tokens"].get<int>() > 0);

  // Headers: Azure's request ids and region, the deployment, remaining and limit counters, and
  // no reset counters (absent from every recording).
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  CHECK(std::regex_match(ex.Header("apim-request-id"), uuid));
  CHECK(ex.Header("x-ms-region") == "East US");
  CHECK(ex.Header("x-ms-deployment-name") == "gpt-4o-mini");
  CHECK(ex.Header("x-ratelimit-remaining-requests") == "99");
  CHECK(ex.Header("x-ratelimit-limit-requests") == "100");
  CHECK(ex.Header("x-ratelimit-limit-tokens") == "10000");
  CHECK_FALSE(ex.HasHeader("x-ratelimit-reset-requests"));
  CHECK_FALSE(ex.HasHeader("x-ratelimit-reset-tokens"));
}

TEST_CASE("azure non-stream body carries prompt and completion filter results") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto ex =
      Send(sim->port(), kDeploymentPath, Body(false), {{"x-ms-client-request-id", "c-1"}});
  REQUIRE(ex.status == 200);
  const auto body = Json::parse(ex.body);
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == "gpt-4o-mini-2024-07-18");
  CHECK(body["prompt_filter_results"][0]["content_filter_results"]["sexual"]["filtered"] == false);
  CHECK(body["choices"][0]["content_filter_results"]["self_harm"]["severity"] == "safe");
  CHECK(body["choices"][0]["message"]["content"] == "OK lorem ipsum dolor");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["completion_tokens"] == 4);
  CHECK(ex.Header("x-ms-client-request-id") == "c-1");
}

TEST_CASE(
    "azure routes: api-version is required on deployments, v1 takes the model from the body") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario());
  const auto missing =
      Send(sim->port(), "/az/openai/deployments/gpt-4o-mini/chat/completions", Body(false));
  CHECK(missing.status == 404);
  CHECK(Json::parse(missing.body) ==
        Json::parse(R"({"error":{"code":"404","message":"Resource not found"}})"));

  const auto v1 = Send(sim->port(), "/az/openai/v1/chat/completions", Body(false, false, true));
  CHECK(v1.status == 200);
  CHECK(v1.Header("x-ms-deployment-name") == "gpt-4o-mini");

  const auto v1_without_model = Send(sim->port(), "/az/openai/v1/chat/completions", Body(false));
  CHECK(v1_without_model.status == 400);
  CHECK(Json::parse(v1_without_model.body)["error"]["type"] == "invalid_request_error");

  const auto bad_json = Send(sim->port(), kDeploymentPath, "{not json");
  CHECK(bad_json.status == 400);
}

TEST_CASE("azure auth: api-key or Entra bearer, failures get Azure's own 401 bodies") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("    api_key: az-key-1\n"));
  const int port = sim->port();
  CHECK(Send(port, kDeploymentPath, Body(false), {{"api-key", "az-key-1"}}).status == 200);
  CHECK(Send(port, kDeploymentPath, Body(false), {{"Authorization", "Bearer az-key-1"}}).status ==
        200);

  const auto missing = Send(port, kDeploymentPath, Body(false));
  CHECK(missing.status == 401);
  const auto missing_body = Json::parse(missing.body);
  CHECK(missing_body["error"]["code"] == "401");
  CHECK(missing_body["error"]["message"].get<std::string>().rfind(
            "Access denied due to invalid subscription key or wrong API endpoint.", 0) == 0);

  const auto wrong_key = Send(port, kDeploymentPath, Body(false), {{"api-key", "nope"}});
  CHECK(wrong_key.status == 401);
  CHECK(Json::parse(wrong_key.body) == missing_body);
  CHECK(wrong_key.body.find("nope") == std::string::npos);

  const auto wrong_token =
      Send(port, kDeploymentPath, Body(false), {{"Authorization", "Bearer expired"}});
  CHECK(wrong_token.status == 401);
  const auto token_body = Json::parse(wrong_token.body);
  CHECK(token_body["error"]["code"] == "401");
  CHECK(token_body["error"]["message"].get<std::string>().rfind(
            "Unauthorized. Access token is missing, invalid, audience is incorrect", 0) == 0);
  CHECK(wrong_token.body.find("expired") != std::string::npos);  // "...or have expired."
  CHECK(wrong_token.body.find("Bearer") == std::string::npos);
}

TEST_CASE("azure 429: the legacy body by default, with retry-after and retry-after-ms") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("", Phase("rate_limit")));
  const auto ex = Send(sim->port(), kDeploymentPath, Body(false));
  REQUIRE(ex.status == 429);
  const auto body = Json::parse(ex.body);
  CHECK(body["error"]["code"] == "429");  // a string, not a number
  CHECK_FALSE(body["error"].contains("type"));
  const auto message = body["error"]["message"].get<std::string>();
  CHECK(message.find("under Azure OpenAI API version 2024-10-21") != std::string::npos);
  CHECK(message.find("Please retry after 1 second.") != std::string::npos);
  CHECK(ex.Header("retry-after") == "1");
  CHECK(ex.Header("retry-after-ms") == "1000");
  CHECK(ex.Header("x-ratelimit-remaining-requests") == "0");
}

TEST_CASE("azure 429: the OpenAI-shaped body when the scenario asks for it") {
  TempDir dir;
  auto sim = StartScenario(
      dir, Scenario("    options: {rate_limit_body: openai, region: Sweden Central}\n",
                    Phase("rate_limit")));
  const auto ex = Send(sim->port(), kDeploymentPath, Body(true));
  REQUIRE(ex.status == 429);
  const auto body = Json::parse(ex.body);
  CHECK(body["error"]["code"] == "rate_limit_exceeded");
  CHECK(body["error"]["type"] == "too_many_requests");
  CHECK(body["error"]["message"] ==
        "Your requests to gpt-4o-mini-2024-07-18 for gpt-4o-mini in swedencentral have exceeded "
        "rate limit.");
  CHECK(ex.Header("x-ms-region") == "Sweden Central");
}

TEST_CASE("azure: an exhausted request budget is a real 429 naming the call rate limit") {
  TempDir dir;
  auto sim = StartScenario(dir, Scenario("    ratelimit: {requests: 2, window: 60s}\n"));
  CHECK(Send(sim->port(), kDeploymentPath, Body(false)).status == 200);
  CHECK(Send(sim->port(), kDeploymentPath, Body(false)).status == 200);
  const auto third = Send(sim->port(), kDeploymentPath, Body(false));
  REQUIRE(third.status == 429);
  CHECK(Json::parse(third.body)["error"]["message"].get<std::string>().find(
            "have exceeded call rate limit") != std::string::npos);
  CHECK(std::stoi(third.Header("retry-after")) >= 1);
  CHECK(std::stoi(third.Header("retry-after-ms")) > 0);
}

TEST_CASE("azure x-ratelimit variants: no limits, integer resets, Responses-API sentinels") {
  TempDir dir;
  const std::string budget = "    ratelimit: {requests: 10, tokens: 1000, window: 60s}\n";
  {
    auto sim =
        StartScenario(dir, Scenario(budget + "    options: {ratelimit_limit_headers: 'false', "
                                             "ratelimit_reset_headers: seconds}\n"));
    const auto ex = Send(sim->port(), kDeploymentPath, Body(false));
    CHECK_FALSE(ex.HasHeader("x-ratelimit-limit-requests"));
    CHECK(ex.Header("x-ratelimit-remaining-requests") == "9");
    CHECK(std::regex_match(ex.Header("x-ratelimit-reset-requests"), std::regex("[0-9]+")));
    CHECK(std::regex_match(ex.Header("x-ratelimit-reset-tokens"), std::regex("[0-9]+")));
  }
  {
    auto sim =
        StartScenario(dir, Scenario(budget + "    options: {ratelimit_reset_headers: sentinel}\n"));
    const auto ex = Send(sim->port(), kDeploymentPath, Body(false));
    CHECK(ex.Header("x-ratelimit-limit-tokens") == "-1");
    CHECK(ex.Header("x-ratelimit-remaining-tokens") == "-1");
    CHECK(ex.Header("x-ratelimit-reset-tokens") == "0");
    CHECK(ex.Header("x-ratelimit-remaining-requests") == "9");
  }
}

TEST_CASE("azure options are checked when the scenario loads") {
  TempDir dir;
  CheckRefused(dir, Scenario("    options: {rate_limit_body: json}\n"), "rate_limit_body");
  CheckRefused(dir, Scenario("    options: {colour: blue}\n"), "colour");
}

TEST_CASE("azure error kinds") {
  TempDir dir;
  auto status_of = [&](const std::string& kind, bool stream) {
    auto sim = StartScenario(dir, Scenario("", Phase(kind)));
    return Send(sim->port(), kDeploymentPath, Body(stream));
  };
  SUBCASE("insufficient_quota: legacy 429 asking for a day") {
    const auto ex = status_of("insufficient_quota", false);
    CHECK(ex.status == 429);
    CHECK(Json::parse(ex.body)["error"]["message"].get<std::string>().find(
              "retry after 86400 seconds") != std::string::npos);
    CHECK(ex.Header("retry-after") == "86400");
  }
  SUBCASE("quota_per_day: the same day-long legacy 429") {
    const auto ex = status_of("quota_per_day", false);
    CHECK(ex.status == 429);
    CHECK(ex.Header("retry-after") == "86400");
  }
  SUBCASE("overloaded_503") {
    const auto ex = status_of("overloaded_503", false);
    CHECK(ex.status == 503);
    CHECK(Json::parse(ex.body)["error"]["type"] == "server_error");
  }
  SUBCASE("server_error_500") {
    const auto ex = status_of("server_error_500", false);
    CHECK(ex.status == 500);
    CHECK(Json::parse(ex.body)["error"]["type"] == "server_error");
  }
  SUBCASE("unauthorized_401 injected on an open endpoint") {
    const auto ex = status_of("unauthorized_401", false);
    CHECK(ex.status == 401);
    CHECK(Json::parse(ex.body)["error"]["code"] == "401");
  }
  SUBCASE("error_in_200: an error object after the filter and role chunks") {
    const auto ex = status_of("error_in_200", true);
    CHECK(ex.status == 200);
    const auto chunks = DataChunks(ex.body);
    REQUIRE(chunks.size() == 3);
    CHECK(chunks[2]["error"]["type"] == "server_error");
    CHECK(ex.body.find("[DONE]") == std::string::npos);
    const auto plain = status_of("error_in_200", false);
    CHECK(plain.status == 200);
    CHECK(Json::parse(plain.body).contains("error"));
  }
  SUBCASE("overloaded_midstream: some content, then an error object") {
    const auto ex = status_of("overloaded_midstream", true);
    CHECK(ex.status == 200);
    const auto chunks = DataChunks(ex.body);
    REQUIRE(chunks.size() == 2 + 2 + 1);
    CHECK(chunks[2]["choices"][0]["delta"]["content"] == "OK");
    CHECK(chunks.back()["error"]["message"].get<std::string>().find("overloaded") !=
          std::string::npos);
    CHECK(status_of("overloaded_midstream", false).status == 503);
  }
  SUBCASE("truncated_stream: half the tokens, no finish and no [DONE]") {
    const auto ex = status_of("truncated_stream", true);
    CHECK(ex.status == 200);
    CHECK(DataChunks(ex.body).size() == 2 + 2);
    CHECK(ex.body.find("[DONE]") == std::string::npos);
  }
  SUBCASE("malformed_json: the first content chunk does not parse") {
    const auto ex = status_of("malformed_json", true);
    const auto events = SseEvents(ex.body);
    REQUIRE(events.size() > 3);
    CHECK_FALSE(Json::accept(events[2].second));
    CHECK(Json::accept(events[1].second));
  }
  SUBCASE("empty_completion: no content, still finished") {
    const auto ex = status_of("empty_completion", true);
    const auto chunks = DataChunks(ex.body);
    REQUIRE(chunks.size() == 3);
    CHECK(chunks[2]["choices"][0]["finish_reason"] == "stop");
  }
  SUBCASE("hang_after_headers: filter and role chunks, then silence until the cap") {
    const auto ex = status_of("hang_after_headers", true);
    CHECK(ex.status == 200);
    CHECK(DataChunks(ex.body).size() == 2);
  }
}

TEST_CASE("the shipped clouds scenario loads and serves every protocol it names") {
  const auto path =
      (std::filesystem::path(MODELPULSE_SOURCE_ROOT) / "config" / "scenarios" / "clouds.yaml")
          .string();
  auto scenario = LoadScenario(path);
  if (!scenario)
    FAIL(scenario.error().ToString());
  std::vector<std::string> protocols;
  for (const auto& endpoint : scenario->endpoints)
    protocols.push_back(endpoint.protocol);
  CHECK(protocols == std::vector<std::string>{"openai", "azure", "azure", "anthropic"});
  auto sim = Simulator::Start({.scenario_path = path}, testing::RealClock());
  if (!sim)
    FAIL(sim.error().ToString());
  // The first phase of each is healthy; the anthropic endpoint's retry-after option shows.
  const auto az = Send((*sim)->port(),
                       "/azure-east/openai/deployments/gpt-4o-mini/chat/completions"
                       "?api-version=2024-10-21",
                       Body(false));
  CHECK(az.status == 200);
  const auto claude = Send(
      (*sim)->port(), "/anthropic/v1/messages",
      R"({"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]})",
      {{"anthropic-version", "2023-06-01"}});
  CHECK(claude.status == 200);
  CHECK(claude.Header("retry-after") == "33");
}

}  // namespace
}  // namespace modelpulse::simulator
