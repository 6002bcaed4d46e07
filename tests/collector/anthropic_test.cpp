// The Anthropic adapter: Messages stream events, classification matrix, anthropic-ratelimit-*
// headers with RFC 3339 resets, request building per auth mode.

#include <doctest/doctest.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
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

const ProviderAdapter& Anthropic() { return *AdapterFor(Provider::kAnthropic); }

// The llm-anthropic recording of protocols.md §3 (trailing spaces after the JSON kept), with a
// second delta and a ping between.
const std::string kStream =
    Sse("message_start",
        R"({"type":"message_start","message":{"model":"claude-sonnet-4-5-20250929","id":"msg_014Z","type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":17,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}  })") +
    Sse("content_block_start",
        R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})") +
    Sse("content_block_delta",
        R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"-"}       })") +
    Sse("ping", R"({"type": "ping"})") +
    Sse("content_block_delta",
        R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" OK"}})") +
    Sse("content_block_stop", R"({"type":"content_block_stop","index":0             })") +
    Sse("message_delta",
        R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":17,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":10}})") +
    Sse("message_stop", R"({"type":"message_stop"               })");

TEST_CASE("Anthropic stream: usage from message_start and message_delta, split anywhere") {
  const Recorder r = DecodeEverySplit(Anthropic(), kStream);
  CHECK(r.log ==
        std::vector<std::string>{"usage:17/-1", "content:-", "content: OK", "usage:17/10", "done"});
  CHECK(r.chunks == 7);  // every event but the ping
  CHECK(r.content == "- OK");
  CHECK(r.usage.input_tokens == 17);
  CHECK(r.usage.output_tokens == 10);
  CHECK(r.malformed.empty());
}

TEST_CASE("Anthropic stream: thinking deltas are reasoning, signature deltas nothing") {
  const std::string stream =
      Sse("message_start",
          R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":40,"output_tokens":1}}})") +
      Sse("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants OK."}})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}})") +
      Sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      Sse("content_block_start",
          R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"OK"}})") +
      Sse("content_block_stop", R"({"type":"content_block_stop","index":1})") +
      Sse("some_future_event", R"({"type":"some_future_event","x":1})") +
      Sse("message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":25}})") +
      Sse("message_stop", R"({"type":"message_stop"})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"after stop"}})");
  const Recorder r = DecodeEverySplit(Anthropic(), stream);
  CHECK(r.log == std::vector<std::string>{"usage:40/-1", "reasoning:The user wants OK.",
                                          "content:OK", "usage:-1/25", "done"});
}

TEST_CASE("Anthropic stream: event: error mid-stream, missing message_stop, bad JSON") {
  const Recorder overloaded = DecodeEverySplit(
      Anthropic(),
      Sse("message_start", R"({"type":"message_start","message":{"usage":{"input_tokens":5}}})") +
          Sse("content_block_delta",
              R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"O"}})") +
          Sse("error",
              R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})"));
  REQUIRE(overloaded.error.has_value());
  CHECK(overloaded.error->outcome == Outcome::kOverloaded);
  CHECK(overloaded.error->message == "error event in stream: overloaded_error: Overloaded");
  CHECK_FALSE(overloaded.terminator);

  const Recorder api = DecodeEverySplit(
      Anthropic(),
      Sse("error",
          R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})"));
  REQUIRE(api.error.has_value());
  CHECK(api.error->outcome == Outcome::kServerError);

  const std::string truncated = kStream.substr(0, kStream.find("event: message_stop"));
  const Recorder cut = DecodeEverySplit(Anthropic(), truncated);
  CHECK(cut.content == "- OK");
  CHECK_FALSE(cut.terminator);

  const Recorder bad = DecodeEverySplit(
      Anthropic(), Sse("content_block_delta",
                       R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"O)") +
                       Sse("message_stop", R"({"type":"message_stop"})"));
  CHECK(bad.malformed == "malformed JSON in stream event");
  CHECK(bad.terminator);
}

TEST_CASE("Anthropic non-stream body") {
  Recorder r;
  Anthropic().ParseBody(
      R"({"model":"claude-sonnet-5","id":"msg_011CdeLUqPNHAAuSPYFJEED2","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"Simple.","signature":"x"},{"type":"text","text":"2"}],"stop_reason":"end_turn","stop_sequence":null,"stop_details":null,"usage":{"input_tokens":30,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":3,"output_tokens_details":{"thinking_tokens":0},"service_tier":"standard","inference_geo":"global"}})",
      r);
  CHECK(r.log == std::vector<std::string>{"reasoning:Simple.", "content:2", "usage:30/3", "done"});

  Recorder error;
  Anthropic().ParseBody(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", error);
  REQUIRE(error.error.has_value());
  CHECK(error.error->outcome == Outcome::kOverloaded);
  CHECK_FALSE(error.terminator);

  Recorder junk;
  Anthropic().ParseBody("not json", junk);
  CHECK(junk.malformed == "malformed JSON body");
}

std::string ErrorBody(const std::string& type, const std::string& message) {
  return R"({"type":"error","error":{"type":")" + type + R"(","message":")" + message +
         R"("},"request_id":"req_011CYK5n67SytMUxm8WMZUWY"})";
}

TEST_CASE("Anthropic classification matrix (protocols.md §0.5, §3)") {
  struct Row {
    int status;
    std::string body;
    Outcome outcome;
    std::string message;
  };
  const std::vector<Row> rows = {
      {429,
       ErrorBody("rate_limit_error",
                 "This request would exceed your organization's rate limit of 20,000,000 prompt "
                 "bytes per hour."),
       Outcome::kThrottled, "HTTP 429 rate_limit_error: This request would exceed"},
      {529, ErrorBody("overloaded_error", "Overloaded"), Outcome::kOverloaded,
       "HTTP 529 overloaded_error: Overloaded"},
      {400,
       ErrorBody("invalid_request_error",
                 "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
                 "Billing to upgrade or purchase credits."),
       Outcome::kQuotaExhausted, "HTTP 400 invalid_request_error: Your credit balance"},
      {402, ErrorBody("billing_error", "Billing issue."), Outcome::kQuotaExhausted,
       "billing_error"},
      {401, ErrorBody("authentication_error", "invalid x-api-key"), Outcome::kAuth,
       "HTTP 401 authentication_error: invalid x-api-key"},
      {403,
       ErrorBody("permission_error",
                 "Your API key does not have permission to use the specified resource."),
       Outcome::kAuth, "permission_error"},
      {400, ErrorBody("invalid_request_error", "max_tokens: Field required"), Outcome::kClientError,
       "max_tokens: Field required"},
      {404, ErrorBody("not_found_error", "model: claude-nope"), Outcome::kClientError,
       "not_found_error"},
      {413, ErrorBody("request_too_large", "Request exceeds the maximum allowed number of bytes."),
       Outcome::kClientError, "request_too_large"},
      {413, "<html><body>413 Request Entity Too Large</body></html>", Outcome::kClientError,
       "HTTP 413: <html>"},
      {500, ErrorBody("api_error", "Internal server error"), Outcome::kServerError, "api_error"},
      {504, ErrorBody("timeout_error", "Request timed out"), Outcome::kTimeout, "timeout_error"},
      {503, "", Outcome::kOverloaded, "HTTP 503"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.body);
    const ProviderError error = Anthropic().ClassifyHttpError(row.status, HttpHeaders{}, row.body);
    CHECK(error.outcome == row.outcome);
    CHECK(error.message.find(row.message) != std::string::npos);
  }
}

// 2026-08-02T17:43:56Z in Unix ms.
constexpr int64_t kResetMs = 1785692636000;

TEST_CASE("Anthropic headers: RFC 3339 resets, tightest token family, request-id") {
  HttpHeaders headers;
  headers.Add("anthropic-ratelimit-requests-limit", "10000");
  headers.Add("anthropic-ratelimit-requests-remaining", "9999");
  headers.Add("anthropic-ratelimit-requests-reset", "2026-08-02T17:43:56Z");
  headers.Add("anthropic-ratelimit-tokens-limit", "12000000");
  headers.Add("anthropic-ratelimit-tokens-remaining", "12000000");
  headers.Add("anthropic-ratelimit-tokens-reset", "2026-08-02T17:43:56Z");
  headers.Add("anthropic-ratelimit-input-tokens-limit", "10000000");
  headers.Add("anthropic-ratelimit-input-tokens-remaining", "9000000");
  headers.Add("anthropic-ratelimit-input-tokens-reset", "2026-08-02T17:43:57.5Z");
  headers.Add("anthropic-ratelimit-output-tokens-limit", "2000000");
  headers.Add("anthropic-ratelimit-output-tokens-remaining", "100000");
  headers.Add("anthropic-ratelimit-output-tokens-reset", "2026-08-02T19:44:00+02:00");
  headers.Add("request-id", "req_011CYK5n67SytMUxm8WMZUWY");
  headers.Add("retry-after", "33");  // seen on a 200 stream: recorded, not an error
  const HeaderInfo info = Anthropic().ReadHeaders(headers, kResetMs - 2'000);
  CHECK(info.requests.limit == 10000);
  CHECK(info.requests.remaining == 9999);
  CHECK(info.requests.reset_seconds == doctest::Approx(2.0));
  // output-tokens has 5% left, the least headroom of the three token families.
  CHECK(info.tokens.limit == 2000000);
  CHECK(info.tokens.remaining == 100000);
  CHECK(info.tokens.reset_seconds == doctest::Approx(6.0));
  CHECK(info.request_id == "req_011CYK5n67SytMUxm8WMZUWY");
  CHECK(info.retry_after_seconds == 33);

  // A reset already past is 0; families are optional (no requests-*).
  HttpHeaders partial;
  partial.Add("anthropic-ratelimit-input-tokens-limit", "400000");
  partial.Add("anthropic-ratelimit-input-tokens-remaining", "399000");
  partial.Add("anthropic-ratelimit-input-tokens-reset", "2026-08-02T17:43:56Z");
  partial.Add("anthropic-ratelimit-tokens-reset", "garbage");
  partial.Add("x-should-retry", "false");
  partial.Add("retry-after", "20");
  const HeaderInfo later = Anthropic().ReadHeaders(partial, kResetMs + 60'000);
  CHECK_FALSE(later.requests.limit.has_value());
  CHECK(later.tokens.limit == 400000);
  CHECK(later.tokens.reset_seconds == 0);
  CHECK_FALSE(later.retry_after_seconds.has_value());  // x-should-retry: false
  CHECK(later.request_id.empty());

  HttpHeaders retry;
  retry.Add("x-should-retry", "true");
  retry.Add("retry-after", "20");
  CHECK(Anthropic().ReadHeaders(retry, 0).retry_after_seconds == 20);
}

TargetSpec AnthropicTarget() {
  TargetSpec target;
  target.name = "anthropic";
  target.provider = Provider::kAnthropic;
  target.model = "claude-sonnet-4-5";
  target.provider_model = "claude-sonnet-4-5-20250929";
  target.base_url = "https://api.anthropic.com";
  target.api_key = Secret("sk-ant-api03-SECRET");
  target.auth.mode = AuthMode::kApiKey;
  return target;
}

TEST_CASE("Anthropic request: path, version, body, auth modes") {
  TargetSpec target = AnthropicTarget();
  Result<HttpRequest> request = Anthropic().BuildRequest(target, {});
  REQUIRE(request.has_value());
  CHECK(request->url == "https://api.anthropic.com/v1/messages");
  CHECK(HeaderValue(*request, "x-api-key") == "sk-ant-api03-SECRET");
  CHECK(HeaderValue(*request, "anthropic-version") == "2023-06-01");
  CHECK_FALSE(HeaderValue(*request, "Authorization").has_value());
  const auto body = nlohmann::json::parse(request->body);
  CHECK(
      body ==
      nlohmann::json::parse(
          R"({"model":"claude-sonnet-4-5-20250929","max_tokens":16,"messages":[{"role":"user","content":"Reply with the single word OK."}],"stream":true})"));

  target.stream = false;
  target.base_url = "https://res.services.ai.azure.com/anthropic/v1/";
  target.anthropic_version = "2024-01-01";
  Result<HttpRequest> foundry = Anthropic().BuildRequest(target, {});
  REQUIRE(foundry.has_value());
  CHECK(foundry->url == "https://res.services.ai.azure.com/anthropic/v1/messages");
  CHECK(HeaderValue(*foundry, "anthropic-version") == "2024-01-01");
  CHECK_FALSE(nlohmann::json::parse(foundry->body).contains("stream"));

  target.auth.mode = AuthMode::kBearerToken;
  Result<HttpRequest> bearer = Anthropic().BuildRequest(target, {});
  REQUIRE(bearer.has_value());
  CHECK(HeaderValue(*bearer, "Authorization") == "Bearer sk-ant-api03-SECRET");
  CHECK_FALSE(HeaderValue(*bearer, "x-api-key").has_value());

  ScratchDir dir;
  target.auth.mode = AuthMode::kTokenCommand;
  target.auth.token_command = {dir.Script("fail.sh", "echo tok-SECRET >&2\nexit 5")};
  Result<HttpRequest> failing = Anthropic().BuildRequest(target, {});
  REQUIRE_FALSE(failing.has_value());
  CHECK(IsCredentialError(failing.error()));
  CHECK(failing.error().message.find("status 5") != std::string::npos);
  CHECK(failing.error().message.find("SECRET") == std::string::npos);

  target.auth.mode = AuthMode::kGoogleServiceAccount;
  CHECK_FALSE(Anthropic().BuildRequest(target, {}).has_value());
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

// An RFC 3339 instant `seconds_ahead` from now, as the reset headers carry it.
std::string Rfc3339FromNow(int64_t seconds_ahead) {
  const std::time_t t = std::time(nullptr) + seconds_ahead;
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

constexpr const char* kE2eKey = "sk-ant-api03-e2e-SECRET-99";

TEST_CASE("Anthropic e2e: stream with thinking, non-stream, 529, error event mid-stream") {
  testing::CurlGlobalInit curl;
  testing::LoopbackServer server;
  constexpr auto kThinkingPause = 100ms;
  const std::string thinking_stream =
      Sse("message_start",
          R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":40,"output_tokens":1}}})") +
      Sse("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Say OK."}})") +
      Sse("content_block_stop", R"({"type":"content_block_stop","index":0})") +
      Sse("ping", R"({"type": "ping"})") +
      Sse("content_block_start",
          R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})") +
      Sse("content_block_delta",
          R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"OK"}})") +
      Sse("content_block_stop", R"({"type":"content_block_stop","index":1})") +
      Sse("message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}})") +
      Sse("message_stop", R"({"type":"message_stop"})");
  server.Post("/v1/messages", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("x-api-key") != kE2eKey) {
      res.status = 401;
      res.set_content(
          R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_401"})",
          "application/json");
      return;
    }
    const auto body = nlohmann::json::parse(req.body);
    const std::string model = body.value("model", "");
    res.set_header("request-id", "req_011CdeLUqPNHAAuSPYFJEED2");
    res.set_header("anthropic-ratelimit-requests-limit", "50");
    res.set_header("anthropic-ratelimit-requests-remaining", "49");
    res.set_header("anthropic-ratelimit-requests-reset", Rfc3339FromNow(30));
    res.set_header("anthropic-ratelimit-output-tokens-limit", "8000");
    res.set_header("anthropic-ratelimit-output-tokens-remaining", "7988");
    res.set_header("anthropic-ratelimit-output-tokens-reset", Rfc3339FromNow(30));
    if (model == "overloaded") {
      res.status = 529;
      res.set_header("x-should-retry", "true");
      res.set_content(
          R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_529"})",
          "application/json");
    } else if (model == "midstream") {
      res.set_content(
          kStream.substr(0, kStream.find("event: content_block_stop")) +
              Sse("error",
                  R"({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})"),
          "text/event-stream; charset=utf-8");
    } else if (body.value("stream", false)) {
      res.set_header("retry-after", "33");  // on a 200: not an error
      testing::StreamParts(res, "text/event-stream; charset=utf-8", SplitEvents(thinking_stream), 2,
                           kThinkingPause);
    } else {
      res.set_content(
          R"({"model":"claude-sonnet-4-5","id":"msg_2","type":"message","role":"assistant","content":[{"type":"text","text":"OK"}],"stop_reason":"end_turn","usage":{"input_tokens":30,"output_tokens":3}})",
          "application/json");
    }
  });
  server.Start();
  SystemClock clock;

  TargetSpec target = AnthropicTarget();
  target.base_url = server.BaseUrl();
  target.api_key = Secret(kE2eKey);
  target.labels = {{"target", "anthropic"}, {"provider", "anthropic"}, {"model", "claude"}};
  target.expect = "(?i)\\bok\\b";
  target.timeouts.connect = 2000ms;
  target.timeouts.first_token = 3000ms;
  target.timeouts.total = 5000ms;

  const ProbeResult streamed = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(streamed.outcome == Outcome::kOk);
  CHECK(streamed.error.empty());
  CHECK(streamed.http_status == 200);
  CHECK(streamed.input_tokens == 40);
  CHECK(streamed.output_tokens == 12);
  CHECK(streamed.chunk_count == 9);  // the ping is not a chunk
  CHECK(streamed.request_id == "req_011CdeLUqPNHAAuSPYFJEED2");
  CHECK(streamed.retry_after_seconds == 33);
  CHECK(streamed.requests.limit == 50);
  CHECK(streamed.requests.remaining == 49);
  REQUIRE(streamed.requests.reset_seconds.has_value());
  CHECK(*streamed.requests.reset_seconds > 0);
  CHECK(*streamed.requests.reset_seconds <= 31);
  CHECK(streamed.tokens.remaining == 7988);
  REQUIRE(streamed.ttft_seconds.has_value());
  REQUIRE(streamed.first_answer_token_seconds.has_value());
  // Thinking counts for the first token; the answer came after the injected pause. The first
  // token is stamped when its chunk is read, which can lag its write by a few ms (seen: 0.5 ms
  // under ASan), so the measured gap may fall that much short of the pause, never near zero.
  CHECK(*streamed.first_answer_token_seconds - *streamed.ttft_seconds >= 0.090);
  const testing::SeenRequest seen = server.last();
  CHECK(seen.Header("anthropic-version") == "2023-06-01");
  CHECK(seen.Header("x-api-key") == kE2eKey);
  CHECK(testing::AllText(streamed).find("SECRET") == std::string::npos);

  target.stream = false;
  const ProbeResult plain = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(plain.outcome == Outcome::kOk);
  CHECK(plain.output_tokens == 3);
  CHECK_FALSE(nlohmann::json::parse(server.last().body).contains("stream"));

  target.stream = true;
  target.provider_model = "overloaded";
  const ProbeResult overloaded = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(overloaded.outcome == Outcome::kOverloaded);
  CHECK(overloaded.http_status == 529);
  CHECK(overloaded.error == "HTTP 529 overloaded_error: Overloaded");

  target.provider_model = "midstream";
  const ProbeResult midstream = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(midstream.outcome == Outcome::kOverloaded);
  CHECK(midstream.http_status == 200);
  CHECK(midstream.error.find("overloaded_error") != std::string::npos);

  target.api_key = Secret("sk-ant-wrong-SECRET");
  const ProbeResult denied = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(denied.outcome == Outcome::kAuth);
  CHECK(denied.error == "HTTP 401 authentication_error: invalid x-api-key");
  CHECK(testing::AllText(denied).find("SECRET") == std::string::npos);
}

}  // namespace
}  // namespace modelpulse::collector
