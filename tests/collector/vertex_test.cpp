// The Google adapter (Vertex AI and the Gemini Developer API): requests, the alt=sse stream split
// at every byte boundary, bodies, the §0.5 classification rows, and whole probes against a
// loopback server that also plays the OAuth token endpoint.

#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "collector/internal/providers/provider.h"
#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;
using testing::HeaderValue;
using testing::Recorder;
using namespace std::chrono_literals;

const ProviderAdapter& Vertex() { return *AdapterFor(Provider::kVertex); }
const ProviderAdapter& Gemini() { return *AdapterFor(Provider::kGemini); }

// Decodes `stream` whole, split in two at every byte boundary, and byte by byte: all must report
// the same events.
Recorder Decode(const ProviderAdapter& adapter, std::string_view stream) {
  return testing::DecodeEverySplit(adapter, stream);
}

std::string Event(const std::string& data) { return "data: " + data + "\r\n\r\n"; }

// Shapes from the real Vertex stream in protocols.md §5.3 (gemini-3-flash-preview, thinking).
const std::string kThoughtChunk =
    R"({"candidates": [{"content": {"role": "model","parts": [{"text": "The user wants OK.","thought": true}]}}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 105,"thoughtsTokenCount": 100},"modelVersion": "gemini-3-flash-preview","responseId": "a9--aa6MOKL4vdIPz7X2iQ4"})";
const std::string kEmptyChunk =
    R"({"candidates": [{"content": {"role": "model","parts": [{"text": "","thoughtSignature": "CiQB"}]}}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 5}})";
const std::string kAnswerChunk =
    R"({"candidates": [{"content": {"role": "model","parts": [{"text": "O"}]}}],"usageMetadata": {"promptTokenCount": 5,"totalTokenCount": 105,"thoughtsTokenCount": 100}})";
const std::string kFinalChunk =
    R"({"candidates": [{"content": {"role": "model","parts": [{"text": "K","thoughtSignature": "CiQB"}]},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 2,"totalTokenCount": 107,"trafficType": "ON_DEMAND_FLEX","thoughtsTokenCount": 100},"modelVersion": "gemini-3-flash-preview","createTime": "2026-03-21T18:11:55.919086Z","responseId": "a9--aa6MOKL4vdIPz7X2iQ4"})";

// A whole generateContent answer.
const std::string kWholeBody =
    R"({"candidates": [{"content": {"role": "model","parts": [{"text": "OK"}]},"finishReason": "STOP","avgLogprobs": -0.01}],"usageMetadata": {"promptTokenCount": 5,"candidatesTokenCount": 1,"totalTokenCount": 106,"thoughtsTokenCount": 100},"modelVersion": "gemini-2.5-flash","responseId": "x1"})";

TEST_CASE(
    "Gemini stream: thoughts, empty parts, answer, finishReason, \\r\\n\\r\\n split anywhere") {
  const std::string stream =
      Event(kThoughtChunk) + Event(kEmptyChunk) + Event(kAnswerChunk) + Event(kFinalChunk);
  const Recorder r = Decode(Vertex(), stream);
  CHECK(r.reasoning == "The user wants OK.");
  CHECK(r.content == "OK");
  CHECK(r.chunks == 4);
  CHECK(r.terminator);
  CHECK(r.malformed.empty());
  CHECK_FALSE(r.error.has_value());
  // The last chunk's counts win; output counts the thinking tokens too.
  CHECK(r.usage.input_tokens == 5);
  CHECK(r.usage.output_tokens == 102);
  // Reasoning before the first answer text, the empty part reported as nothing.
  REQUIRE(r.log.size() >= 4);
  CHECK(r.log[0] == "reasoning:The user wants OK.");
  CHECK(r.log.back() == "done");
}

TEST_CASE("Gemini stream: closed without a finishReason chunk is truncated") {
  const Recorder r = Decode(Gemini(), Event(kThoughtChunk) + Event(kAnswerChunk));
  CHECK_FALSE(r.terminator);
  CHECK(r.malformed == "stream closed before a chunk with finishReason");
  CHECK(r.content == "O");
  // A final chunk cut off before its blank line never arrived either.
  const Recorder cut = Decode(Gemini(), Event(kAnswerChunk) + "data: " + kFinalChunk);
  CHECK_FALSE(cut.terminator);
  CHECK(cut.malformed == "stream closed before a chunk with finishReason");
}

TEST_CASE("Gemini stream: bad JSON, an error chunk and over-long lines") {
  const Recorder bad = Decode(Gemini(), Event(R"({"candidates": [)") + Event(kFinalChunk));
  CHECK(bad.malformed == "malformed JSON in stream chunk");

  const Recorder error = Decode(
      Vertex(),
      Event(kAnswerChunk) +
          Event(
              R"({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})"));
  REQUIRE(error.error.has_value());
  CHECK(error.error->outcome == Outcome::kOverloaded);
  CHECK(error.error->message ==
        "error in 200 response UNAVAILABLE: The model is overloaded. Please try again later.");
  CHECK_FALSE(error.terminator);
  CHECK(error.malformed.empty());

  DecoderLimits limits;
  limits.max_line_bytes = 64;
  Recorder over;
  auto decoder = Gemini().NewStreamDecoder(limits);
  decoder->Feed(Event(kFinalChunk), over);
  decoder->Finish(over);
  CHECK(over.malformed == "SSE line over the limit");
  CHECK_FALSE(over.terminator);
}

TEST_CASE("Vertex stream: the OpenAI-compatible endpoint's chunks go through the OpenAI decoder") {
  const std::string stream =
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"object\":"
      "\"chat.completion.chunk\"}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"}}],\"object\":\"chat."
      "completion.chunk\"}\n\n"
      "data: "
      "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"OK\"},\"finish_reason\":\"stop\"}],"
      "\"object\":\"chat.completion.chunk\"}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  const Recorder r = Decode(Vertex(), stream);
  CHECK(r.content == "OK");
  CHECK(r.reasoning == "hm");
  CHECK(r.usage.input_tokens == 7);
  CHECK(r.usage.output_tokens == 3);
  CHECK(r.terminator);
  CHECK(r.malformed.empty());
  const Recorder no_done = Decode(Vertex(), stream.substr(0, stream.size() - 14));
  CHECK_FALSE(no_done.terminator);
}

TEST_CASE("Gemini body: object, streamGenerateContent array, missing finishReason, blocked") {
  Recorder whole;
  Gemini().ParseBody(kFinalChunk, whole);
  CHECK(whole.content == "K");
  CHECK(whole.terminator);
  CHECK(whole.usage.output_tokens == 102);

  Recorder array;
  Gemini().ParseBody(
      "[" + kThoughtChunk + "\n,\r\n" + kAnswerChunk + "\n,\r\n" + kFinalChunk + "\n]", array);
  CHECK(array.reasoning == "The user wants OK.");
  CHECK(array.content == "OK");
  CHECK(array.terminator);

  Recorder unfinished;
  Gemini().ParseBody(kAnswerChunk, unfinished);
  CHECK_FALSE(unfinished.terminator);
  CHECK(unfinished.malformed == "response without finishReason");

  Recorder blocked;
  Gemini().ParseBody(
      R"({"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8}})",
      blocked);
  REQUIRE(blocked.error.has_value());
  CHECK(blocked.error->outcome == Outcome::kClientError);
  CHECK(blocked.error->message == "prompt blocked: SAFETY");

  Recorder openai;
  Vertex().ParseBody(
      R"({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"OK"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1}})",
      openai);
  CHECK(openai.content == "OK");
  CHECK(openai.terminator);

  Recorder garbage;
  Gemini().ParseBody("<html>", garbage);
  CHECK(garbage.malformed == "malformed JSON body");
}

struct ErrorRow {
  const char* name;
  int status;
  const char* body;
  Outcome outcome;
  std::optional<double> retry_after;
};

TEST_CASE("Vertex/Gemini errors: protocols.md §0.5 rows") {
  const std::vector<ErrorRow> rows =
      {
          {"per-minute quota with RetryInfo", 429,
           R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. * Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-flash Please retry in 37.5s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"10"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}})",
           Outcome::kThrottled, 37.0},
          {"per-day quota, limit 0", 429,
           R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. * Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day, limit: 0 Please retry in 24.18s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_requests_per_model_per_day","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3600s"}]}})",
           Outcome::kQuotaExhausted, 3600.0},
          {"per-day quota id only", 429,
           R"({"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel"}]}]}})",
           Outcome::kQuotaExhausted, std::nullopt},
          {"quota value 0", 429,
           R"({"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier","quotaValue":"0"}]}]}})",
           Outcome::kQuotaExhausted, std::nullopt},
          {"retry delay only in the message", 429,
           R"({"error":{"code":429,"message":"Quota exceeded for metric: x, limit: 15. Please retry in 24.180878813s.","status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kThrottled, 24.180878813},
          {"Vertex PayGo shared capacity", 429,
           R"({"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kOverloaded, std::nullopt},
          {"Vertex PayGo, comma wording, array-wrapped", 429,
           R"([{"error":{"code":429,"message":"Resource exhausted, please try again later.","status":"RESOURCE_EXHAUSTED"}}])",
           Outcome::kOverloaded, std::nullopt},
          {"Vertex temporarily out of capacity", 429,
           R"({"error":{"code":429,"message":"Unable to submit request because the service is temporarily out of capacity. Try again later.","status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kOverloaded, std::nullopt},
          {"old Gemini quota wording", 429,
           R"({"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kThrottled, std::nullopt},
          {"Vertex 429 with rateLimitExceeded errors list, array-wrapped", 429,
           R"([{"error":{"code":429,"message":"Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.","errors":[{"message":"Resource exhausted. Please try again later.","domain":"global","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}])",
           Outcome::kOverloaded, std::nullopt},
          {"Provisioned Throughput exceeded", 429,
           R"({"error":{"code":429,"message":"Too many requests. Exceeded the Provisioned Throughput.","status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kThrottled, std::nullopt},
          {"rateLimitExceeded variant", 429,
           R"({"error":{"code":429,"message":"Rate limit exceeded.","errors":[{"reason":"rateLimitExceeded","domain":"global"}],"status":"RESOURCE_EXHAUSTED"}})",
           Outcome::kThrottled, std::nullopt},
          {"unavailable", 503,
           R"({"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}})",
           Outcome::kOverloaded, std::nullopt},
          {"unauthenticated", 401, R"({"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED"}})",
           Outcome::kAuth, std::nullopt},
          {"permission denied", 403,
           R"({"error":{"code":403,"message":"Permission 'aiplatform.endpoints.predict' denied on resource.","status":"PERMISSION_DENIED"}})",
           Outcome::kAuth, std::nullopt},
          {"Gemini bad API key is a 400", 400,
           R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}})",
           Outcome::kAuth, std::nullopt},
          {"invalid argument", 400,
           R"({"error":{"code":400,"message":"Unable to submit request because it has an empty contents field.","status":"INVALID_ARGUMENT"}})",
           Outcome::kClientError, std::nullopt},
          {"failed precondition", 400,
           R"({"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}})",
           Outcome::kClientError, std::nullopt},
          {"not found", 404,
           R"({"error":{"code":404,"message":"Publisher Model `projects/p/locations/us-central1/publishers/google/models/gemini-9` not found.","status":"NOT_FOUND"}})",
           Outcome::kClientError, std::nullopt},
          {"internal", 500,
           R"({"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}})",
           Outcome::kServerError, std::nullopt},
          {"deadline exceeded", 504,
           R"({"error":{"code":504,"message":"Deadline expired before operation could complete.","status":"DEADLINE_EXCEEDED"}})",
           Outcome::kTimeout, std::nullopt},
          {"HTML from a front end", 502, "<html><body>Bad Gateway</body></html>",
           Outcome::kServerError, std::nullopt},
          {"OpenAI-shaped body from the compatible endpoint", 400,
           R"({"error":{"message":"bad model","type":"invalid_request_error","code":"model_not_found"}})",
           Outcome::kClientError, std::nullopt},
      };
  for (const ErrorRow& row : rows) {
    for (const ProviderAdapter* adapter : {&Vertex(), &Gemini()}) {
      CAPTURE(row.name);
      const ProviderError error = adapter->ClassifyHttpError(row.status, HttpHeaders{}, row.body);
      CHECK(error.outcome == row.outcome);
      if (row.retry_after) {
        REQUIRE(error.retry_after_seconds.has_value());
        CHECK(*error.retry_after_seconds == doctest::Approx(*row.retry_after));
      } else {
        CHECK_FALSE(error.retry_after_seconds.has_value());
      }
      CHECK(error.message.rfind("HTTP " + std::to_string(row.status), 0) == 0);
    }
  }
  const ProviderError described = Gemini().ClassifyHttpError(400, HttpHeaders{}, rows[15].body);
  CHECK(described.message ==
        "HTTP 400 INVALID_ARGUMENT (API_KEY_INVALID): API key not valid. Please pass a valid API "
        "key.");
}

TEST_CASE("Gemini: numbers outside int64 are no code or count (libFuzzer: UB in the cast)") {
  // fuzz/corpus/provider/regress-int64-overflow-code is the fuzzer's input; under UBSan the old
  // code stopped with "4.24444e+19 is outside the range of representable values of type 'long'".
  const ProviderError huge = Gemini().ClassifyHttpError(
      503, HttpHeaders{}, R"({"error":{"code":42444444444444444444,"status":"UNAVAILABLE"}})");
  CHECK(huge.outcome == Outcome::kOverloaded);
  Recorder usage;
  Gemini().ParseBody(
      R"({"candidates":[{"content":{"parts":[{"text":"OK"}]},"finishReason":"STOP"}],)"
      R"("usageMetadata":{"promptTokenCount":1e300,"candidatesTokenCount":18446744073709551615,)"
      R"("thoughtsTokenCount":-1e19}})",
      usage);
  CHECK(usage.content == "OK");
  CHECK_FALSE(usage.usage.input_tokens);
  CHECK_FALSE(usage.usage.output_tokens);
  Recorder sum;  // each count fits, their sum does not
  Gemini().ParseBody(
      R"({"candidates":[{"content":{"parts":[{"text":"OK"}]},"finishReason":"STOP"}],)"
      R"("usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":9000000000000000000,)"
      R"("thoughtsTokenCount":9000000000000000000}})",
      sum);
  CHECK(sum.usage.input_tokens == 8);
  CHECK_FALSE(sum.usage.output_tokens);
}

TargetSpec VertexTarget() {
  TargetSpec target;
  target.name = "vertex";
  target.provider = Provider::kVertex;
  target.model = "gemini-2.5-flash";
  target.project = "probe-project";
  target.region = "us-central1";
  target.auth.mode = AuthMode::kBearerToken;
  target.api_key = Secret("ya29.static-token");
  target.prompt = "Say OK";
  target.max_tokens = 16;
  return target;
}

TEST_CASE("Vertex requests: regional, global, multi-regional and overridden hosts") {
  TargetSpec target = VertexTarget();
  Result<HttpRequest> request = Vertex().BuildRequest(target, {});
  REQUIRE(request.has_value());
  CHECK(request->method == "POST");
  CHECK(request->url ==
        "https://us-central1-aiplatform.googleapis.com/v1/projects/probe-project/locations/"
        "us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
  CHECK(HeaderValue(*request, "Authorization") == "Bearer ya29.static-token");
  CHECK(HeaderValue(*request, "x-goog-api-key") == std::nullopt);
  CHECK(
      json::parse(request->body) ==
      json::parse(
          R"({"contents":[{"role":"user","parts":[{"text":"Say OK"}]}],"generationConfig":{"maxOutputTokens":16}})"));

  target.stream = false;
  target.region = "global";
  CHECK(Vertex().BuildRequest(target, {})->url ==
        "https://aiplatform.googleapis.com/v1/projects/probe-project/locations/global/publishers/"
        "google/models/gemini-2.5-flash:generateContent");
  target.region = "eu";
  CHECK(Vertex().BuildRequest(target, {})->url ==
        "https://aiplatform.eu.rep.googleapis.com/v1/projects/probe-project/locations/eu/"
        "publishers/google/models/gemini-2.5-flash:generateContent");
  target.region = "us-central1";
  target.base_url = "http://127.0.0.1:8080/";
  target.provider_model = "claude-3-5-haiku@20241022";
  CHECK(Vertex().BuildRequest(target, {})->url ==
        "http://127.0.0.1:8080/v1/projects/probe-project/locations/us-central1/publishers/google/"
        "models/claude-3-5-haiku@20241022:generateContent");
  target.base_url = "https://aiplatform.googleapis.com/v1beta1";
  target.provider_model = "publishers/meta/models/llama-4";
  CHECK(Vertex().BuildRequest(target, {})->url ==
        "https://aiplatform.googleapis.com/v1beta1/projects/probe-project/locations/us-central1/"
        "publishers/meta/models/llama-4:generateContent");

  target.headers.emplace_back("x-goog-user-project", Secret("billing-project"));
  CHECK(HeaderValue(*Vertex().BuildRequest(target, {}), "x-goog-user-project") ==
        "billing-project");

  TargetSpec no_project = VertexTarget();
  no_project.project.clear();
  Result<HttpRequest> refused = Vertex().BuildRequest(no_project, {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message == "vertex target has no project");
  TargetSpec sigv4 = VertexTarget();
  sigv4.auth.mode = AuthMode::kAwsSigV4;
  CHECK_FALSE(Vertex().BuildRequest(sigv4, {}).has_value());
}

TEST_CASE("Gemini requests: default host, v1beta, x-goog-api-key") {
  TargetSpec target;
  target.provider = Provider::kGemini;
  target.model = "gemini-2.5-flash";
  target.provider_model = "models/gemini-2.5-flash-lite";
  target.auth.mode = AuthMode::kApiKey;
  target.api_key = Secret("AIzaSy-test-key");
  Result<HttpRequest> request = Gemini().BuildRequest(target, {});
  REQUIRE(request.has_value());
  CHECK(request->url ==
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-lite:"
        "streamGenerateContent?alt=sse");
  CHECK(HeaderValue(*request, "x-goog-api-key") == "AIzaSy-test-key");
  CHECK(HeaderValue(*request, "Authorization") == std::nullopt);
  CHECK(request->url.find("AIza") == std::string::npos);

  target.api_key = Secret();
  Result<HttpRequest> keyless = Gemini().BuildRequest(target, {});
  REQUIRE_FALSE(keyless.has_value());
  CHECK(keyless.error().location == "credential");
}

TEST_CASE("Vertex OpenAI-compatible requests: openapi endpoint, bearer, OpenAI body") {
  TargetSpec target = VertexTarget();
  target.flavor = ApiFlavor::kOpenAICompatible;
  target.provider_model = "openai/gpt-oss-120b-maas";
  Result<HttpRequest> request = Vertex().BuildRequest(target, {});
  REQUIRE(request.has_value());
  CHECK(request->url ==
        "https://us-central1-aiplatform.googleapis.com/v1/projects/probe-project/locations/"
        "us-central1/endpoints/openapi/chat/completions");
  CHECK(HeaderValue(*request, "Authorization") == "Bearer ya29.static-token");
  const json body = json::parse(request->body);
  CHECK(body["model"] == "openai/gpt-oss-120b-maas");
  CHECK(body["messages"][0]["content"] == "Say OK");
  CHECK(body["stream"] == true);

  target.openai_path_prefix = "v1beta1/projects/{project}/locations/{location}/endpoints/openapi/";
  target.base_url = "http://127.0.0.1:9";
  CHECK(Vertex().BuildRequest(target, {})->url ==
        "http://127.0.0.1:9/v1beta1/projects/probe-project/locations/us-central1/endpoints/"
        "openapi/chat/completions");
}

TEST_CASE("Vertex requests: a token command's output is the bearer token") {
  TargetSpec target = VertexTarget();
  target.auth.mode = AuthMode::kTokenCommand;
  target.auth.token_command = {"printf", "%s\\n", "ya29.from-command"};
  target.api_key = Secret();
  Result<HttpRequest> request = Vertex().BuildRequest(target, {1000});
  REQUIRE(request.has_value());
  CHECK(HeaderValue(*request, "Authorization") == "Bearer ya29.from-command");
}

TEST_CASE("Google headers: no rate limits, request id when present") {
  HttpHeaders headers;
  headers.Add("server-timing", "gfet4t7; dur=1995");
  headers.Add("x-goog-request-id", "abc123");
  const HeaderInfo info = Vertex().ReadHeaders(headers, 0);
  CHECK(info.request_id == "abc123");
  CHECK_FALSE(info.requests.limit.has_value());
  CHECK_FALSE(info.retry_after_seconds.has_value());
}

// ---------------------------------------------------------------------------------------------
// Whole probes against a loopback Google: token endpoint, Vertex and Gemini routes.

std::string RsaPrivatePem() {
  static const std::string pem = [] {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    REQUIRE(key != nullptr);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
    std::string text(data, static_cast<size_t>(size));
    BIO_free(bio);
    EVP_PKEY_free(key);
    return text;
  }();
  return pem;
}

constexpr const char* kAccessToken = "ya29.e2e-ACCESS-token-0123456789";
constexpr const char* kGeminiKey = "AIzaSy-e2e-SECRET-key-0123456789";

class FakeGoogle {
 public:
  FakeGoogle() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(8); };
    server_.Post("/token", [this](const httplib::Request& req, httplib::Response& res) {
      ++token_requests_;
      if (req.body.find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&"
                        "assertion=ey") != 0) {
        res.status = 400;
        res.set_content(R"({"error":"invalid_request"})", "application/json");
        return;
      }
      res.set_content(json({{"access_token", kAccessToken}, {"expires_in", 3599}}).dump(),
                      "application/json");
    });
    server_.Post("/bad-token", [](const httplib::Request&, httplib::Response& res) {
      res.status = 400;
      res.set_content(R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})",
                      "application/json");
    });
    server_.Post(
        R"(/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(\w+))",
        [this](const httplib::Request& req, httplib::Response& res) { ServeVertex(req, res); });
    server_.Post(R"(/v1/projects/([^/]+)/locations/([^/]+)/endpoints/openapi/chat/completions)",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   ServeOpenAICompatible(req, res);
                 });
    server_.Post(
        R"(/v1beta/models/([^/:]+):(\w+))",
        [this](const httplib::Request& req, httplib::Response& res) { ServeGemini(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(2ms);
    }
    REQUIRE(server_.is_running());
  }
  ~FakeGoogle() {
    server_.stop();
    thread_.join();
  }

  std::string Base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int token_requests() const { return token_requests_.load(); }
  std::string last_body() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_body_;
  }

 private:
  void Remember(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    last_body_ = req.body;
  }

  static void Answer(const std::string& method, const std::string& model, httplib::Response& res) {
    if (model == "gemini-throttled") {
      res.status = 429;
      res.set_content(
          R"({"error":{"code":429,"message":"Quota exceeded for metric: aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateContentRequestsPerMinutePerProjectPerBaseModel"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}})",
          "application/json; charset=UTF-8");
      return;
    }
    if (method == "generateContent") {
      res.set_content(kWholeBody, "application/json; charset=UTF-8");
      return;
    }
    const bool truncated = model == "gemini-truncated";
    res.set_header("Content-Disposition", "attachment");
    res.set_chunked_content_provider(
        "text/event-stream", [truncated](size_t, httplib::DataSink& sink) {
          auto write = [&](const std::string& s) { sink.write(s.data(), s.size()); };
          write(Event(kEmptyChunk));
          std::this_thread::sleep_for(20ms);
          write(Event(kThoughtChunk));
          // The answer comes well after the thinking: first token and first answer token differ.
          std::this_thread::sleep_for(120ms);
          write(Event(kAnswerChunk));
          if (!truncated) {
            write(Event(kFinalChunk));
          }
          sink.done();
          return true;
        });
  }

  void ServeVertex(const httplib::Request& req, httplib::Response& res) {
    Remember(req);
    if (req.get_header_value("Authorization") != std::string("Bearer ") + kAccessToken) {
      res.status = 401;
      res.set_content(
          R"({"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}})",
          "application/json");
      return;
    }
    if (req.matches[1] != "probe-project" || req.matches[2] != "us-central1" ||
        (req.matches[4] == "streamGenerateContent" && req.get_param_value("alt") != "sse")) {
      res.status = 404;
      res.set_content(R"({"error":{"code":404,"message":"not here","status":"NOT_FOUND"}})",
                      "application/json");
      return;
    }
    Answer(req.matches[4], req.matches[3], res);
  }

  void ServeOpenAICompatible(const httplib::Request& req, httplib::Response& res) {
    Remember(req);
    if (req.get_header_value("Authorization") != std::string("Bearer ") + kAccessToken) {
      res.status = 401;
      // Vertex answers this route's auth failures with Google's own body, array-wrapped.
      res.set_content(
          R"([{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}])",
          "application/json");
      return;
    }
    const json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || body.value("model", "") != "openai/gpt-oss-120b-maas") {
      res.status = 400;
      res.set_content(R"({"error":{"code":400,"message":"bad model","status":"INVALID_ARGUMENT"}})",
                      "application/json");
      return;
    }
    if (!body.value("stream", false)) {
      res.set_content(
          R"({"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"OK","reasoning_content":"hm"},"finish_reason":"stop"}],"usage":{"prompt_tokens":15,"completion_tokens":4}})",
          "application/json");
      return;
    }
    res.set_chunked_content_provider("text/event-stream", [](size_t, httplib::DataSink& sink) {
      auto write = [&](const std::string& s) { sink.write(s.data(), s.size()); };
      write(
          R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hm"}}],"object":"chat.completion.chunk"})"
          "\n\n");
      std::this_thread::sleep_for(120ms);
      write(
          R"(data: {"choices":[{"index":0,"delta":{"content":"OK"},"finish_reason":"stop"}],"object":"chat.completion.chunk"})"
          "\n\n");
      write(R"(data: {"choices":[],"usage":{"prompt_tokens":15,"completion_tokens":4}})"
            "\n\n");
      write("data: [DONE]\n\n");
      sink.done();
      return true;
    });
  }

  void ServeGemini(const httplib::Request& req, httplib::Response& res) {
    Remember(req);
    if (req.get_header_value("x-goog-api-key") != kGeminiKey) {
      res.status = 400;
      // Echoes the key it got, as a careless proxy might: it must not be stored.
      res.set_content(
          json({{"error",
                 {{"code", 400},
                  {"message", "API key not valid: " + req.get_header_value("x-goog-api-key")},
                  {"status", "INVALID_ARGUMENT"},
                  {"details", json::array({{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                                            {"reason", "API_KEY_INVALID"}}})}}}})
              .dump(),
          "application/json");
      return;
    }
    Answer(req.matches[2], req.matches[1], res);
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> token_requests_{0};
  std::mutex mu_;
  std::string last_body_;
};

std::string KeyFile(const std::string& token_uri) {
  return json({{"type", "service_account"},
               {"project_id", "probe-project"},
               {"private_key_id", "kid-1"},
               {"private_key", RsaPrivatePem()},
               {"client_email", "prober@probe-project.iam.gserviceaccount.com"},
               {"token_uri", token_uri}})
      .dump();
}

TargetSpec LoopbackVertex(const FakeGoogle& google, const std::string& token_path) {
  TargetSpec target;
  target.name = "vertex-e2e";
  target.provider = Provider::kVertex;
  target.model = "gemini-2.5-flash";
  target.project = "probe-project";
  target.region = "us-central1";
  target.base_url = google.Base();
  target.auth.mode = AuthMode::kGoogleServiceAccount;
  // token_url from the key file: each FakeGoogle has its own port, so its own cache entry.
  target.auth.google_service_account_json = Secret(KeyFile(google.Base() + token_path));
  target.timeouts.first_token = 5000ms;
  target.timeouts.total = 10000ms;
  target.expect = "(?i)ok";
  return target;
}

TargetSpec LoopbackGemini(const FakeGoogle& google) {
  TargetSpec target;
  target.name = "gemini-e2e";
  target.provider = Provider::kGemini;
  target.model = "gemini-2.5-flash";
  target.base_url = google.Base();
  target.auth.mode = AuthMode::kApiKey;
  target.api_key = Secret(kGeminiKey);
  target.timeouts.first_token = 5000ms;
  target.timeouts.total = 10000ms;
  return target;
}

// No credential may reach any stored field of a result.
void CheckNoSecrets(const ProbeResult& result) {
  const std::vector<std::string> secrets = {kAccessToken, kGeminiKey,
                                            RsaPrivatePem().substr(40, 40)};
  for (const std::string& secret : secrets) {
    CHECK(result.error.find(secret) == std::string::npos);
    CHECK(result.request_id.find(secret) == std::string::npos);
    CHECK(result.target.find(secret) == std::string::npos);
    for (const auto& [name, value] : result.labels) {
      CHECK(value.find(secret) == std::string::npos);
    }
  }
}

TEST_CASE("ProbeOnce Vertex: service-account token, alt=sse stream, thinking then answer") {
  FakeGoogle google;
  SystemClock clock;
  const TargetSpec target = LoopbackVertex(google, "/token");
  const ProbeResult result = ProbeOnce(target, ProberOptions{}, clock);
  INFO(result.error);
  CHECK(result.outcome == Outcome::kOk);
  CHECK(result.http_status == 200);
  CHECK(result.input_tokens == 5);
  CHECK(result.output_tokens == 102);
  CHECK(result.chunk_count == 4);
  REQUIRE(result.ttft_seconds.has_value());
  REQUIRE(result.first_answer_token_seconds.has_value());
  // Thinking counts for the first token, not for the first answer token.
  CHECK(*result.first_answer_token_seconds > *result.ttft_seconds);
  CHECK(google.token_requests() == 1);
  CheckNoSecrets(result);
  CHECK(json::parse(google.last_body())["generationConfig"]["maxOutputTokens"] == 16);

  // The token is reused by the next probe.
  TargetSpec json_target = target;
  json_target.stream = false;
  const ProbeResult second = ProbeOnce(json_target, ProberOptions{}, clock);
  INFO(second.error);
  CHECK(second.outcome == Outcome::kOk);
  CHECK(second.output_tokens == 101);
  CHECK(google.token_requests() == 1);
  CheckNoSecrets(second);
}

TEST_CASE("ProbeOnce Vertex: truncated stream, throttling, failed token exchange") {
  FakeGoogle google;
  SystemClock clock;
  TargetSpec truncated = LoopbackVertex(google, "/token");
  truncated.provider_model = "gemini-truncated";
  const ProbeResult cut = ProbeOnce(truncated, ProberOptions{}, clock);
  CHECK(cut.outcome == Outcome::kInvalidResponse);
  CHECK(cut.error == "stream closed before a chunk with finishReason");

  TargetSpec throttled = LoopbackVertex(google, "/token");
  throttled.provider_model = "gemini-throttled";
  const ProbeResult limited = ProbeOnce(throttled, ProberOptions{}, clock);
  CHECK(limited.outcome == Outcome::kThrottled);
  CHECK(limited.http_status == 429);
  CHECK(limited.error.rfind("HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded", 0) == 0);
  CheckNoSecrets(limited);

  const TargetSpec bad_token = LoopbackVertex(google, "/bad-token");
  const ProbeResult refused = ProbeOnce(bad_token, ProberOptions{}, clock);
  CHECK(refused.outcome != Outcome::kOk);
  CHECK(refused.http_status == 0);
  CHECK(refused.error ==
        "service-account token: token endpoint answered HTTP 400: invalid_grant: Invalid JWT "
        "Signature.");
  CheckNoSecrets(refused);
}

TEST_CASE("ProbeOnce Vertex OpenAI-compatible: service-account bearer on the openapi endpoint") {
  FakeGoogle google;
  SystemClock clock;
  TargetSpec target = LoopbackVertex(google, "/token");
  target.flavor = ApiFlavor::kOpenAICompatible;
  target.provider_model = "openai/gpt-oss-120b-maas";
  const ProbeResult streamed = ProbeOnce(target, ProberOptions{}, clock);
  INFO(streamed.error);
  CHECK(streamed.outcome == Outcome::kOk);
  CHECK(streamed.input_tokens == 15);
  CHECK(streamed.output_tokens == 4);
  REQUIRE(streamed.ttft_seconds.has_value());
  REQUIRE(streamed.first_answer_token_seconds.has_value());
  CHECK(*streamed.first_answer_token_seconds > *streamed.ttft_seconds);
  CheckNoSecrets(streamed);

  target.stream = false;
  const ProbeResult whole = ProbeOnce(target, ProberOptions{}, clock);
  INFO(whole.error);
  CHECK(whole.outcome == Outcome::kOk);
  CHECK(whole.output_tokens == 4);
  CHECK(google.token_requests() == 1);

  TargetSpec wrong = target;
  wrong.auth = {};
  wrong.auth.mode = AuthMode::kBearerToken;
  wrong.api_key = Secret("ya29.not-the-token");
  const ProbeResult denied = ProbeOnce(wrong, ProberOptions{}, clock);
  CHECK(denied.outcome == Outcome::kAuth);
  CHECK(denied.error ==
        "HTTP 401 UNAUTHENTICATED: Request had invalid authentication credentials.");
}

TEST_CASE("ProbeOnce Gemini: API key, streaming and not, a bad key is auth and not stored") {
  FakeGoogle google;
  SystemClock clock;
  TargetSpec target = LoopbackGemini(google);
  const ProbeResult streamed = ProbeOnce(target, ProberOptions{}, clock);
  INFO(streamed.error);
  CHECK(streamed.outcome == Outcome::kOk);
  CHECK(streamed.input_tokens == 5);
  CHECK(streamed.ttft_seconds.has_value());
  CheckNoSecrets(streamed);

  target.stream = false;
  const ProbeResult whole = ProbeOnce(target, ProberOptions{}, clock);
  INFO(whole.error);
  CHECK(whole.outcome == Outcome::kOk);
  CHECK(whole.output_tokens == 101);

  target.api_key = Secret("AIzaSy-WRONG-key-9876543210");
  const ProbeResult denied = ProbeOnce(target, ProberOptions{}, clock);
  CHECK(denied.outcome == Outcome::kAuth);
  CHECK(denied.http_status == 400);
  CHECK(denied.error.find("API_KEY_INVALID") != std::string::npos);
  CHECK(denied.error.find("AIzaSy-WRONG-key-9876543210") == std::string::npos);
  CheckNoSecrets(denied);
}

}  // namespace
}  // namespace modelpulse::collector
