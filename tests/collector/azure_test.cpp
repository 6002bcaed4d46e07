// The Azure OpenAI adapter: stream decoding (content-filter chunk), classification matrix,
// header formats, request building per path and auth mode.

#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "collector/internal/auth/token_command.h"
#include "collector/internal/providers/provider.h"
#include "tests/collector/loopback_server.h"
#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using testing::DecodeEverySplit;
using testing::HeaderValue;
using testing::Recorder;
using testing::ScratchDir;
using testing::Sse;
using namespace std::chrono_literals;

const ProviderAdapter& Azure() { return *AdapterFor(Provider::kAzure); }

// Recorded shape (protocols.md §2.2): prompt_filter_results chunk with choices:[], empty id and
// model and created:0; a role chunk with content ""; content; finish; include_usage chunk; [DONE].
const std::string kAzureStream =
    Sse("",
        R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]})") +
    Sse("",
        R"({"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1765403271,"id":"chatcmpl-ClMK1","model":"gpt-4o-mini-2024-07-18","obfuscation":"1f","object":"chat.completion.chunk","system_fingerprint":"fp_efad92c60b","usage":null})") +
    Sse("",
        R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"OK"},"finish_reason":null,"index":0,"logprobs":null}],"created":1765403271,"id":"chatcmpl-ClMK1","model":"gpt-4o-mini-2024-07-18","obfuscation":"xx","object":"chat.completion.chunk","usage":null})") +
    Sse("",
        R"({"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1765403271,"id":"chatcmpl-ClMK1","model":"gpt-4o-mini-2024-07-18","object":"chat.completion.chunk","usage":null})") +
    Sse("",
        R"({"choices":[],"created":1765403271,"id":"chatcmpl-ClMK1","model":"gpt-4o-mini-2024-07-18","object":"chat.completion.chunk","usage":{"completion_tokens":220,"completion_tokens_details":{"reasoning_tokens":0},"prompt_tokens":168,"prompt_tokens_details":{"cached_tokens":0},"total_tokens":388}})") +
    "data: [DONE]\n\n";

TEST_CASE("Azure stream: the content-filter chunk is a chunk, not a token, split anywhere") {
  const Recorder r = DecodeEverySplit(Azure(), kAzureStream);
  CHECK(r.log == std::vector<std::string>{"content:OK", "usage:168/220", "done"});
  CHECK(r.chunks == 5);
  CHECK(r.usage.input_tokens == 168);
  CHECK(r.usage.output_tokens == 220);
  CHECK_FALSE(r.error.has_value());
  CHECK(r.malformed.empty());
}

TEST_CASE("Azure stream: CRLF line ends, error mid-stream, missing [DONE]") {
  std::string crlf;
  for (char c : kAzureStream) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  CHECK(DecodeEverySplit(Azure(), crlf).log ==
        std::vector<std::string>{"content:OK", "usage:168/220", "done"});

  const Recorder error = DecodeEverySplit(
      Azure(),
      Sse("", R"({"choices":[{"delta":{"content":"O"}}]})") +
          Sse("",
              R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","code":"500"}})"));
  REQUIRE(error.error.has_value());
  CHECK(error.error->message.find("server had an error") != std::string::npos);
  CHECK_FALSE(error.terminator);

  const std::string truncated = kAzureStream.substr(0, kAzureStream.find("data: [DONE]"));
  CHECK_FALSE(DecodeEverySplit(Azure(), truncated).terminator);
}

TEST_CASE("Azure non-stream body with filter results") {
  Recorder r;
  Azure().ParseBody(
      R"({"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"finish_reason":"stop","index":0,"message":{"content":"OK","role":"assistant"}}],"created":1,"id":"chatcmpl-1","model":"gpt-4o-mini","object":"chat.completion","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],"usage":{"completion_tokens":1,"prompt_tokens":9,"total_tokens":10}})",
      r);
  CHECK(r.log == std::vector<std::string>{"content:OK", "usage:9/1", "done"});
}

TEST_CASE("Azure classification matrix (protocols.md §0.5, §2.4)") {
  struct Row {
    int status;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    Outcome outcome;
    std::string in_message;
  };
  const std::vector<Row> rows = {
      {429,
       {{"retry-after", "6"}},
       R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."}})",
       Outcome::kThrottled,
       "HTTP 429: Requests to the ChatCompletions_Create"},
      {429,
       {},
       R"({"error":{"message":"Your requests to gpt-5.4-mini for buyermoment-extractor in eastus2 have exceeded rate limit.","type":"too_many_requests","param":null,"code":"rate_limit_exceeded"}})",
       Outcome::kThrottled,
       "HTTP 429 rate_limit_exceeded"},
      {429,
       {},
       R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded call rate limit of your current AIServices S0 pricing tier. Please retry after 86400 seconds."}})",
       Outcome::kQuotaExhausted,
       "86400"},
      {429,
       {{"retry-after", "86400"}},
       R"({"error":{"code":"429","message":"Rate limit exceeded."}})",
       Outcome::kQuotaExhausted,
       ""},
      {429,
       {},
       R"({"error":{"code":"insufficient_quota","message":"You exceeded your current quota."}})",
       Outcome::kQuotaExhausted,
       "insufficient_quota"},
      {429,
       {},
       R"({"error":{"code":"429","message":"The system is experiencing high demand, please try again later."}})",
       Outcome::kOverloaded,
       "high demand"},
      {503,
       {},
       R"({"error":{"code":"ServiceUnavailable","message":"The service is temporarily unavailable."}})",
       Outcome::kOverloaded,
       "ServiceUnavailable"},
      {401,
       {},
       R"({"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})",
       Outcome::kAuth,
       "Access denied"},
      {403,
       {},
       R"({"error":{"code":"PermissionDenied","message":"Principal does not have access to API/Operation."}})",
       Outcome::kAuth,
       "PermissionDenied"},
      {400,
       {},
       R"({"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}})",
       Outcome::kClientError,
       "content_filter"},
      {400,
       {},
       R"({"error":{"message":"Sorry! We've encountered an issue with repetitive patterns in your prompt.","type":"invalid_request_error","param":"prompt","code":"invalid_prompt"}})",
       Outcome::kClientError,
       "invalid_prompt"},
      {404,
       {},
       R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}})",
       Outcome::kClientError,
       "DeploymentNotFound"},
      {500,
       {},
       R"({"error":{"message":"The server had an error while processing your request.","type":"server_error","code":"500"}})",
       Outcome::kServerError,
       "server_error"},
      {504, {}, "<html>Gateway Timeout</html>", Outcome::kTimeout, "Gateway Timeout"},
      {404,
       {{"x-ms-error-code", "DeploymentNotFound"}},
       "",
       Outcome::kClientError,
       "HTTP 404 DeploymentNotFound"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.body);
    HttpHeaders headers;
    for (const auto& [name, value] : row.headers) {
      headers.Add(name, value);
    }
    const ProviderError error = Azure().ClassifyHttpError(row.status, headers, row.body);
    CHECK(error.outcome == row.outcome);
    CHECK(error.message.find(row.in_message) != std::string::npos);
  }
  const ProviderError legacy = Azure().ClassifyHttpError(429, HttpHeaders{}, rows[0].body);
  CHECK(legacy.retry_after_seconds == 6);
  const ProviderError shaped = Azure().ClassifyHttpError(429, HttpHeaders{}, rows[1].body);
  CHECK_FALSE(shaped.retry_after_seconds.has_value());
}

TEST_CASE("Azure headers: bare-second resets, -1/0 sentinels, retry-after-ms, apim-request-id") {
  HttpHeaders headers;
  headers.Add("apim-request-id", "1249216d-0e54-4d4c-9942-67b9c59e8f3c");
  headers.Add("x-request-id", "dbbf34c7-0000");
  headers.Add("x-ratelimit-limit-requests", "240");
  headers.Add("x-ratelimit-remaining-requests", "237");
  headers.Add("x-ratelimit-reset-requests", "7");
  headers.Add("x-ratelimit-limit-tokens", "-1");
  headers.Add("x-ratelimit-remaining-tokens", "-1");
  headers.Add("x-ratelimit-reset-tokens", "0");
  headers.Add("retry-after-ms", "1500");
  headers.Add("retry-after", "2");
  const HeaderInfo info = Azure().ReadHeaders(headers, 0);
  CHECK(info.request_id == "1249216d-0e54-4d4c-9942-67b9c59e8f3c");
  CHECK(info.requests.limit == 240);
  CHECK(info.requests.remaining == 237);
  CHECK(info.requests.reset_seconds == 7);
  CHECK_FALSE(info.tokens.limit.has_value());
  CHECK_FALSE(info.tokens.remaining.has_value());
  CHECK_FALSE(info.tokens.reset_seconds.has_value());  // 0 beside unknown counters is unknown
  CHECK(info.retry_after_seconds == doctest::Approx(1.5));

  HttpHeaders only_remaining;  // 2024 recordings carry remaining-* only
  only_remaining.Add("x-request-id", "dbbf34c7-0000");
  only_remaining.Add("x-ratelimit-remaining-tokens", "239952");
  only_remaining.Add("x-ratelimit-reset-tokens", "0");
  const HeaderInfo partial = Azure().ReadHeaders(only_remaining, 0);
  CHECK(partial.request_id == "dbbf34c7-0000");
  CHECK(partial.tokens.remaining == 239952);
  CHECK(partial.tokens.reset_seconds == 0);
  CHECK_FALSE(partial.retry_after_seconds.has_value());
}

TargetSpec AzureTarget() {
  TargetSpec target;
  target.name = "azure";
  target.provider = Provider::kAzure;
  target.model = "gpt-4o-mini";
  target.provider_model = "my deploy";
  target.base_url = "https://res.openai.azure.com/";
  target.api_key = Secret("azure-key-SECRET-123");
  target.auth.mode = AuthMode::kApiKey;
  return target;
}

TEST_CASE("Azure request: deployment path with api-version, v1 path, body fields") {
  TargetSpec target = AzureTarget();
  target.api_version = "2024-10-21";
  Result<HttpRequest> classic = Azure().BuildRequest(target, {});
  REQUIRE(classic.has_value());
  CHECK(classic->url ==
        "https://res.openai.azure.com/openai/deployments/my%20deploy/chat/completions"
        "?api-version=2024-10-21");
  CHECK(HeaderValue(*classic, "api-key") == "azure-key-SECRET-123");
  CHECK_FALSE(HeaderValue(*classic, "Authorization").has_value());
  auto body = nlohmann::json::parse(classic->body);
  CHECK(body["model"] == "my deploy");
  CHECK(body["max_completion_tokens"] == 16);
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"]["include_usage"] == true);
  CHECK(body["messages"][0]["content"] == target.prompt);

  target.api_version = "2024-02-01";  // before max_completion_tokens and stream_options existed
  Result<HttpRequest> old = Azure().BuildRequest(target, {});
  REQUIRE(old.has_value());
  body = nlohmann::json::parse(old->body);
  CHECK(body["max_tokens"] == 16);
  CHECK_FALSE(body.contains("max_completion_tokens"));
  CHECK_FALSE(body.contains("stream_options"));

  target.api_version.clear();
  target.stream = false;
  for (const std::string base :
       {"https://res.openai.azure.com", "https://res.openai.azure.com/openai/v1/",
        "https://res.openai.azure.com/openai"}) {
    target.base_url = base;
    Result<HttpRequest> v1 = Azure().BuildRequest(target, {});
    REQUIRE(v1.has_value());
    CHECK(v1->url == "https://res.openai.azure.com/openai/v1/chat/completions");
    body = nlohmann::json::parse(v1->body);
    CHECK(body["model"] == "my deploy");
    CHECK_FALSE(body.contains("stream"));
    CHECK(HeaderValue(*v1, "Accept") == "application/json");
  }

  target.base_url.clear();
  CHECK_FALSE(Azure().BuildRequest(target, {}).has_value());
}

TEST_CASE("Azure request: each auth mode") {
  TargetSpec target = AzureTarget();
  target.headers.emplace_back("x-ms-client-request-id", Secret("probe-1"));

  target.auth.mode = AuthMode::kBearerToken;
  target.api_key = Secret("entra-token-SECRET");
  Result<HttpRequest> bearer = Azure().BuildRequest(target, {});
  REQUIRE(bearer.has_value());
  CHECK(HeaderValue(*bearer, "Authorization") == "Bearer entra-token-SECRET");
  CHECK_FALSE(HeaderValue(*bearer, "api-key").has_value());
  CHECK(HeaderValue(*bearer, "x-ms-client-request-id") == "probe-1");

  target.api_key = Secret();
  Result<HttpRequest> no_token = Azure().BuildRequest(target, {});
  REQUIRE_FALSE(no_token.has_value());
  CHECK(IsCredentialError(no_token.error()));

  ScratchDir dir;
  target.auth.mode = AuthMode::kTokenCommand;
  target.auth.token_command = {dir.Script("az.sh", "echo cmd-token-SECRET-42")};
  Result<HttpRequest> command = Azure().BuildRequest(target, {1'000});
  REQUIRE(command.has_value());
  CHECK(HeaderValue(*command, "Authorization") == "Bearer cmd-token-SECRET-42");
  // A provider echoing the command's token back gets it redacted before it is stored.
  const ProviderError echoed = Azure().ClassifyHttpError(
      401, HttpHeaders{},
      R"({"error":{"code":"401","message":"token cmd-token-SECRET-42 expired"}})");
  CHECK(echoed.message.find("cmd-token-SECRET-42") == std::string::npos);
  CHECK(echoed.outcome == Outcome::kAuth);

  target.auth.token_command = {dir.Script("az-fail.sh", "echo cmd-token-SECRET-43\nexit 2")};
  Result<HttpRequest> failing = Azure().BuildRequest(target, {1'000});
  REQUIRE_FALSE(failing.has_value());
  CHECK(IsCredentialError(failing.error()));
  CHECK(failing.error().message.find("exited with status 2") != std::string::npos);
  CHECK(failing.error().message.find("SECRET") == std::string::npos);

  target.auth.mode = AuthMode::kAwsSigV4;
  CHECK_FALSE(Azure().BuildRequest(target, {}).has_value());
}

std::vector<std::string> SplitEvents(const std::string& stream) {
  std::vector<std::string> parts;
  for (size_t start = 0; start < stream.size();) {
    const size_t end = stream.find("\n\n", start);
    parts.push_back(stream.substr(start, end + 2 - start));
    start = end + 2;
  }
  return parts;
}

constexpr const char* kE2eKey = "azure-e2e-key-SECRET-77";

TargetSpec E2eTarget(const testing::LoopbackServer& server) {
  TargetSpec target = AzureTarget();
  target.provider_model = "gpt-4o-mini-dep";
  target.base_url = server.BaseUrl();
  target.api_key = Secret(kE2eKey);
  target.labels = {{"target", "azure"}, {"provider", "azure"}, {"model", "gpt-4o-mini"}};
  target.expect = "(?i)\\bok\\b";
  target.timeouts.connect = 2000ms;
  target.timeouts.first_token = 3000ms;
  target.timeouts.total = 5000ms;
  return target;
}

TEST_CASE("Azure e2e: deployment stream, v1 non-stream with a token command, 429 and 401") {
  testing::CurlGlobalInit curl;
  testing::LoopbackServer server;
  ScratchDir dir;
  constexpr auto kFilterPause = 100ms;
  server.Post("/openai/deployments/gpt-4o-mini-dep/chat/completions", [&](const httplib::Request&,
                                                                          httplib::Response& res) {
    res.set_header("apim-request-id", "1249216d-0e54-4d4c-9942-67b9c59e8f3c");
    res.set_header("x-request-id", "dbbf34c7-0000");
    res.set_header("x-ratelimit-remaining-requests", "237");
    res.set_header("x-ratelimit-remaining-tokens", "239952");
    res.set_header("x-ms-region", "East US");
    // The content-filter chunk first, then a pause: the first token comes after it.
    testing::StreamParts(res, "text/event-stream", SplitEvents(kAzureStream), 0, kFilterPause);
  });
  server.Post("/openai/v1/chat/completions", [](const httplib::Request& req,
                                                httplib::Response& res) {
    const std::string auth = req.get_header_value("Authorization");
    if (auth != "Bearer cmd-token-SECRET-e2e") {
      res.status = 401;
      // Echoes the credential without its "Bearer " prefix: it still must not be stored.
      res.set_content(R"({"error":{"code":"401","message":"Invalid token )" +
                          auth.substr(std::min<size_t>(7, auth.size())) + R"("}})",
                      "application/json");
      return;
    }
    const auto body = nlohmann::json::parse(req.body);
    if (body.value("model", "") == "throttled") {
      res.status = 429;
      res.set_header("retry-after-ms", "1500");
      res.set_header("apim-request-id", "req-429");
      res.set_content(
          R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-02-01 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds."}})",
          "application/json");
      return;
    }
    res.set_header("x-request-id", "v1-req");
    res.set_content(
        R"({"choices":[{"content_filter_results":{},"finish_reason":"stop","index":0,"message":{"content":"OK","role":"assistant"}}],"id":"chatcmpl-2","model":"gpt-4o-mini","object":"chat.completion","prompt_filter_results":[],"usage":{"completion_tokens":1,"prompt_tokens":9,"total_tokens":10}})",
        "application/json");
  });
  server.Start();
  SystemClock clock;

  TargetSpec classic = E2eTarget(server);
  classic.api_version = "2024-10-21";
  const ProbeResult streamed = ProbeOnce(classic, ProberOptions{}, clock);
  CHECK(streamed.outcome == Outcome::kOk);
  CHECK(streamed.error.empty());
  CHECK(streamed.request_id == "1249216d-0e54-4d4c-9942-67b9c59e8f3c");
  CHECK(streamed.input_tokens == 168);
  CHECK(streamed.output_tokens == 220);
  CHECK(streamed.chunk_count == 5);
  CHECK(streamed.requests.remaining == 237);
  CHECK(streamed.tokens.remaining == 239952);
  REQUIRE(streamed.ttft_seconds.has_value());
  CHECK(*streamed.ttft_seconds >= 0.100);  // not the filter chunk that came before the pause
  CHECK(streamed.first_answer_token_seconds == streamed.ttft_seconds);
  const testing::SeenRequest seen = server.last();
  CHECK(seen.Header("api-key") == kE2eKey);
  CHECK_FALSE(seen.HasHeader("Authorization"));
  CHECK(seen.params.find("api-version")->second == "2024-10-21");
  CHECK(testing::AllText(streamed).find("SECRET") == std::string::npos);

  TargetSpec v1 = E2eTarget(server);
  v1.stream = false;
  v1.auth.mode = AuthMode::kTokenCommand;
  v1.auth.token_command = {dir.Script("az.sh", "echo cmd-token-SECRET-e2e")};
  const ProbeResult plain = ProbeOnce(v1, ProberOptions{}, clock);
  CHECK(plain.outcome == Outcome::kOk);
  CHECK(plain.request_id == "v1-req");
  CHECK(plain.output_tokens == 1);
  CHECK_FALSE(server.last().HasHeader("api-key"));
  CHECK(testing::AllText(plain).find("SECRET") == std::string::npos);

  TargetSpec throttled = v1;
  throttled.provider_model = "throttled";
  const ProbeResult limited = ProbeOnce(throttled, ProberOptions{}, clock);
  CHECK(limited.outcome == Outcome::kThrottled);
  CHECK(limited.http_status == 429);
  CHECK(limited.retry_after_seconds == doctest::Approx(1.5));
  CHECK(limited.request_id == "req-429");
  CHECK(limited.error.find("exceeded token rate limit") != std::string::npos);

  TargetSpec wrong = v1;
  wrong.auth.token_command = {dir.Script("az-wrong.sh", "echo cmd-wrong-SECRET-e2e")};
  const ProbeResult denied = ProbeOnce(wrong, ProberOptions{}, clock);
  CHECK(denied.outcome == Outcome::kAuth);
  CHECK(denied.error.find("Invalid token") != std::string::npos);
  CHECK(testing::AllText(denied).find("SECRET") == std::string::npos);

  TargetSpec broken = v1;
  broken.auth.token_command = {dir.Script("az-broken.sh", "echo cmd-token-SECRET-e2e\nexit 4")};
  const ProbeResult no_token = ProbeOnce(broken, ProberOptions{}, clock);
  // client_error until the transport maps IsCredentialError to auth (asked of the lead).
  CHECK(no_token.outcome != Outcome::kOk);
  CHECK(no_token.http_status == 0);
  CHECK(no_token.error.find("exited with status 4") != std::string::npos);
  CHECK(testing::AllText(no_token).find("SECRET") == std::string::npos);
}

TEST_CASE("Azure prober: a slow token command delays only its own target") {
  testing::CurlGlobalInit curl;
  testing::LoopbackServer server;
  ScratchDir dir;
  server.Post("/openai/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        R"({"choices":[{"finish_reason":"stop","index":0,"message":{"content":"OK","role":"assistant"}}],"usage":{"completion_tokens":1,"prompt_tokens":9,"total_tokens":10}})",
        "application/json");
  });
  server.Start();

  const std::string gate = (dir.path() / "gate").string();
  TargetSpec slow = E2eTarget(server);
  slow.name = "slow";
  slow.stream = false;
  slow.interval = 50ms;
  slow.auth.mode = AuthMode::kTokenCommand;
  // Prints its token only once the test opens the gate (bounded by the command timeout, 10 s).
  slow.auth.token_command = {dir.Script(
      "gated.sh", "while [ ! -e '" + gate + "' ]; do sleep 0.01; done\necho cmd-token-SECRET")};
  TargetSpec fast = slow;
  fast.name = "fast";
  fast.auth.mode = AuthMode::kApiKey;
  fast.auth.token_command.clear();

  SystemClock clock;
  testing::CollectingSink sink;
  ProberOptions options;
  options.shutdown_grace = 3000ms;
  auto prober = Prober::Create(options, sink, clock);
  REQUIRE(prober.has_value());
  (*prober)->SetTargets({slow, fast});
  std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });

  // While the slow target's command is blocked, the fast one probes again and again, and the
  // prober's state stays readable. The loop used to run the command itself: nothing else moved.
  const bool fast_kept_going =
      testing::PollUntil([&] { return sink.CountFor("fast") >= 3; }, 5000ms);
  CHECK(fast_kept_going);
  CHECK(sink.CountFor("slow") == 0);
  CHECK((*prober)->Status().size() == 2);

  std::ofstream(gate) << "open\n";
  const bool slow_done = testing::PollUntil([&] { return sink.CountFor("slow") >= 1; }, 12000ms);
  loop.request_stop();
  loop.join();
  REQUIRE(slow_done);
  for (const ProbeResult& r : sink.results()) {
    CAPTURE(r.target);
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.error.empty());
  }
}

}  // namespace
}  // namespace modelpulse::collector
