// The OpenAI adapter: request building, stream and body decoding, error classification.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/internal/providers/provider.h"
#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using testing::Recorder;

const ProviderAdapter& Adapter() { return *AdapterFor(Provider::kOpenAI); }

// Decodes `stream` whole, split at every byte boundary and byte by byte; all must agree.
Recorder Decode(std::string_view stream) { return testing::DecodeEverySplit(Adapter(), stream); }

std::string Chunk(const std::string& json) { return "data: " + json + "\n\n"; }

TEST_CASE("OpenAI stream: role chunk, content, finish, usage chunk, [DONE]") {
  const std::string stream =
      Chunk(
          R"({"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}],"usage":null})") +
      Chunk(
          R"({"choices":[{"index":0,"delta":{"content":"Paris"},"finish_reason":null}],"usage":null})") +
      Chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})") +
      Chunk(
          R"({"choices":[],"usage":{"prompt_tokens":13,"completion_tokens":11,"total_tokens":24}})") +
      "data: [DONE]\n\n";
  const Recorder r = Decode(stream);
  CHECK(r.log == std::vector<std::string>{"content:Paris", "usage:13/11", "done"});
  CHECK(r.chunks == 4);
  CHECK(r.usage.input_tokens == 13);
  CHECK(r.usage.output_tokens == 11);
}

TEST_CASE("Groq: usage in the finish_reason chunk (top level and x_groq)") {
  const std::string stream =
      Chunk(R"({"choices":[{"delta":{"content":"OK"}}],"x_groq":{"id":"req_01"}})") +
      Chunk(
          R"({"choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":40,"completion_tokens":2,"queue_time":0.01}},"usage":{"prompt_tokens":40,"completion_tokens":2}})") +
      "data: [DONE]\n\n";
  const Recorder r = Decode(stream);
  CHECK(r.content == "OK");
  CHECK(r.usage.input_tokens == 40);
  CHECK(r.usage.output_tokens == 2);
  CHECK(r.terminator);

  const Recorder only_groq = Decode(
      Chunk(
          R"({"choices":[{"delta":{"content":"OK"},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":7,"completion_tokens":1}}})") +
      "data: [DONE]\n\n");
  CHECK(only_groq.usage.output_tokens == 1);
}

TEST_CASE("OpenRouter: error chunk inside a 200 stream") {
  const Recorder r = Decode(
      ": OPENROUTER PROCESSING\n\n" + Chunk(R"({"choices":[{"delta":{"content":"He"}}]})") +
      Chunk(
          R"({"id":"gen-1","error":{"code":400,"message":"Token limit reached"},"choices":[{"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]})") +
      "data: [DONE]\n\n");
  REQUIRE(r.error.has_value());
  CHECK(r.error->outcome == Outcome::kInvalidResponse);
  CHECK(r.error->message.find("Token limit reached") != std::string::npos);
}

TEST_CASE("vLLM: old and new error shapes streamed as data") {
  const Recorder old_shape = Decode(Chunk(
      R"({"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400})"));
  REQUIRE(old_shape.error.has_value());
  CHECK(old_shape.error->message.find("max_tokens is too large") != std::string::npos);
  const Recorder new_shape = Decode(Chunk(
      R"({"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}})"));
  REQUIRE(new_shape.error.has_value());
}

TEST_CASE("a stream without [DONE] reports no terminator") {
  const Recorder r = Decode(Chunk(R"({"choices":[{"delta":{"content":"OK"}}]})"));
  CHECK(r.content == "OK");
  CHECK_FALSE(r.terminator);
}

TEST_CASE("a malformed JSON chunk is reported, later chunks still decode") {
  const Recorder r =
      Decode(Chunk(R"({"choices":[{"delta":{"content":"O)") +
             Chunk(R"({"choices":[{"delta":{"content":"K"}}]})") + "data: [DONE]\n\n");
  CHECK(r.malformed == "malformed JSON in stream chunk");
  CHECK(r.content == "K");
}

TEST_CASE("an empty completion has chunks but no content") {
  const Recorder r =
      Decode(Chunk(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})") +
             Chunk(R"({"choices":[{"delta":{},"finish_reason":"length"}]})") +
             Chunk(R"({"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":0}})") +
             "data: [DONE]\n\n");
  CHECK(r.content.empty());
  CHECK(r.reasoning.empty());
  CHECK(r.terminator);
  CHECK(r.chunks == 3);
}

TEST_CASE("reasoning deltas come before answer deltas") {
  const Recorder r = Decode(
      Chunk(R"({"choices":[{"delta":{"role":"assistant","content":null,"reasoning":"Let me"}}]})") +
      Chunk(R"({"choices":[{"delta":{"reasoning_content":" think"}}]})") +
      Chunk(R"({"choices":[{"delta":{"content":"OK"}}]})") + "data: [DONE]\n\n");
  CHECK(r.log ==
        std::vector<std::string>{"reasoning:Let me", "reasoning: think", "content:OK", "done"});
}

TEST_CASE("non-streaming body: content, usage, error object, malformed") {
  Recorder ok;
  Adapter().ParseBody(
      R"({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":18,"total_tokens":38}})",
      ok);
  CHECK(ok.content == "Hello!");
  CHECK(ok.usage.output_tokens == 18);
  CHECK(ok.terminator);

  Recorder error;
  Adapter().ParseBody(R"({"error":{"message":"nope","type":"server_error","code":null}})", error);
  REQUIRE(error.error.has_value());
  CHECK(error.error->outcome == Outcome::kInvalidResponse);
  CHECK_FALSE(error.terminator);

  Recorder bad;
  Adapter().ParseBody("{\"choices\":[", bad);
  CHECK_FALSE(bad.malformed.empty());
}

TEST_CASE("classification table (protocols.md §0.5, §1, §7)") {
  struct Row {
    int status;
    const char* body;
    Outcome expected;
  };
  const Row rows[] = {
      {429,
       R"({"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.","type":"requests","param":null,"code":"rate_limit_exceeded"}})",
       Outcome::kThrottled},
      {429,
       R"({"error":{"message":"Rate limit reached ... on tokens per min TPM","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
       Outcome::kThrottled},
      {429,
       R"({"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})",
       Outcome::kQuotaExhausted},
      {429,
       R"({"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error","param":null,"code":null}})",
       Outcome::kOverloaded},
      {503,
       R"({"error":{"message":"The engine is currently overloaded, please try again later","type":"server_error"}})",
       Outcome::kOverloaded},
      {503, "<html>Service Unavailable</html>", Outcome::kOverloaded},
      {500,
       R"({"error":{"message":"The server had an error while processing your request.","type":"server_error"}})",
       Outcome::kServerError},
      {502, "<html>Bad gateway</html>", Outcome::kServerError},
      {401,
       R"({"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
       Outcome::kAuth},
      {403,
       R"({"error":{"message":"Project does not have access to model","type":"invalid_request_error"}})",
       Outcome::kAuth},
      {400,
       R"({"error":{"message":"Unsupported parameter: 'max_tokens'","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})",
       Outcome::kClientError},
      {404,
       R"({"error":{"message":"The model `llama-9` does not exist","type":"invalid_request_error","code":"model_not_found"}})",
       Outcome::kClientError},
      {422, R"({"detail":[{"loc":["body","messages"],"msg":"field required"}]})",
       Outcome::kClientError},
      // OpenRouter: upstream throttling, and spent credits.
      {429,
       R"({"error":{"code":429,"message":"Provider returned error","metadata":{"provider_name":"Google","raw":"gemini is temporarily rate-limited upstream"}},"user_id":"u"})",
       Outcome::kThrottled},
      {402, R"({"error":{"code":402,"message":"Insufficient credits"}})", Outcome::kQuotaExhausted},
      // Azure legacy 429 shape (code is the string "429").
      {429,
       R"({"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation ... Please retry after 6 seconds."}})",
       Outcome::kThrottled},
      // vLLM's old top-level error object.
      {400,
       R"({"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400})",
       Outcome::kClientError},
      {504, "", Outcome::kServerError},
  };
  for (const Row& row : rows) {
    CAPTURE(row.status);
    CAPTURE(row.body);
    const ProviderError error = Adapter().ClassifyHttpError(row.status, HttpHeaders{}, row.body);
    CHECK(error.outcome == row.expected);
    CHECK(error.message.rfind("HTTP " + std::to_string(row.status), 0) == 0);
  }
  const ProviderError throttled = Adapter().ClassifyHttpError(429, HttpHeaders{}, rows[0].body);
  CHECK(throttled.message.find("rate_limit_exceeded") != std::string::npos);
  const ProviderError openrouter = Adapter().ClassifyHttpError(429, HttpHeaders{}, rows[13].body);
  CHECK(openrouter.message.find("rate-limited upstream") != std::string::npos);
}

TEST_CASE("request: URL, auth, body per provider") {
  TargetSpec target;
  target.name = "t";
  target.model = "gpt-4o-mini";
  target.provider_model = "gpt-4o-mini-2024-07-18";
  target.base_url = "https://api.openai.com/v1/";
  target.api_key = Secret("sk-test");
  target.max_tokens = 16;
  auto request = Adapter().BuildRequest(target, {});
  REQUIRE(request.has_value());
  CHECK(request->url == "https://api.openai.com/v1/chat/completions");
  bool auth = false;
  for (const auto& [name, value] : request->headers) {
    auth |= name == "Authorization" && value.Reveal() == "Bearer sk-test";
  }
  CHECK(auth);
  auto body = nlohmann::json::parse(request->body);
  CHECK(body["model"] == "gpt-4o-mini-2024-07-18");
  CHECK(body["max_completion_tokens"] == 16);
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"]["include_usage"] == true);
  CHECK(body["messages"][0]["content"] == target.prompt);

  target.provider = Provider::kOpenAICompatible;
  target.provider_model.clear();
  target.api_key = Secret();
  target.stream = false;
  target.headers.emplace_back("HTTP-Referer", Secret("https://example.org"));
  auto compat = AdapterFor(Provider::kOpenAICompatible)->BuildRequest(target, {});
  REQUIRE(compat.has_value());
  auto compat_body = nlohmann::json::parse(compat->body);
  CHECK(compat_body["model"] == "gpt-4o-mini");
  CHECK(compat_body["max_tokens"] == 16);
  CHECK_FALSE(compat_body.contains("stream"));
  bool has_auth = false;
  bool has_referer = false;
  for (const auto& [name, value] : compat->headers) {
    has_auth |= name == "Authorization";
    has_referer |= name == "HTTP-Referer";
  }
  CHECK_FALSE(has_auth);
  CHECK(has_referer);

  target.base_url.clear();
  CHECK_FALSE(Adapter().BuildRequest(target, {}).has_value());
}

}  // namespace
}  // namespace modelpulse::collector
