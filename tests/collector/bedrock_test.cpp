// The Bedrock adapter: requests per auth mode and flavor, the ConverseStream decoder on real
// event sequences split at every byte, exception frames, the classification matrix of
// protocols.md §0.5, AWS credential resolution, and ProbeOnce against a loopback event-stream
// server that checks our SigV4 signature on the bytes it received.

#include <doctest/doctest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "collector/internal/auth/aws_credentials.h"
#include "collector/internal/auth/sigv4.h"
#include "collector/internal/eventstream.h"
#include "collector/internal/providers/provider.h"
#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using testing::DecodeEverySplit;
using testing::Recorder;

constexpr const char* kKeyId = "AKIDEXAMPLE";
constexpr const char* kSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY-SECRET";
constexpr const char* kSessionToken = "FwoGZXIvYXdzEXAMPLE-SESSION-SECRET";
constexpr const char* kBearer = "ABSKQmVkcm9ja0FQSUtleS-BEARER-SECRET";

const ProviderAdapter& Adapter() { return *AdapterFor(Provider::kBedrock); }

AwsCredentials Credentials(const std::string& token = kSessionToken) {
  AwsCredentials credentials;
  credentials.access_key_id = Secret(kKeyId);
  credentials.secret_access_key = Secret(kSecretKey);
  credentials.session_token = Secret(token);
  return credentials;
}

TargetSpec BedrockTarget() {
  TargetSpec target;
  target.name = "gpt-oss@bedrock";
  target.provider = Provider::kBedrock;
  target.model = "gpt-oss-120b";
  target.provider_model = "openai.gpt-oss-120b-1:0";
  target.region = "us-west-2";
  target.prompt = "Say OK";
  target.max_tokens = 16;
  target.auth.mode = AuthMode::kAwsSigV4;
  target.auth.aws = Credentials();
  return target;
}

std::map<std::string, std::string> HeaderMap(const HttpRequest& request) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : request.headers) {
    out[name] = value.Reveal();
  }
  return out;
}

std::string Event(const std::string& type, const std::string& payload) {
  return EncodeEventStreamMessage(
      {StringHeader(":event-type", type), StringHeader(":content-type", "application/json"),
       StringHeader(":message-type", "event")},
      payload);
}

std::string Exception(const std::string& type, const std::string& message) {
  return EncodeEventStreamMessage(
      {StringHeader(":exception-type", type), StringHeader(":content-type", "application/json"),
       StringHeader(":message-type", "exception")},
      R"({"message":")" + message + R"("})");
}

// protocols.md §6: gpt-oss-120b on ConverseStream (pydantic-ai recording), with the random "p"
// padding Bedrock adds to every payload.
std::string GptOssStream() {
  return Event("messageStart", R"({"p":"abcdefghijklmnopqrstuvwxyz","role":"assistant"})") +
         Event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":""},"p":"abcd"})") +
         Event("contentBlockStop", R"({"contentBlockIndex":0,"p":"abcdefgh"})") +
         Event(
             "contentBlockDelta",
             R"({"contentBlockIndex":1,"delta":{"reasoningContent":{"text":"The user just says \"Hi\"."}},"p":"ab"})") +
         Event("contentBlockStop", R"({"contentBlockIndex":1,"p":"abc"})") +
         Event(
             "contentBlockDelta",
             R"({"contentBlockIndex":2,"delta":{"text":"Hello! How can I help"},"p":"abcdefghijk"})") +
         Event("contentBlockDelta",
               R"({"contentBlockIndex":2,"delta":{"text":" you today?"},"p":"a"})") +
         Event("contentBlockStop", R"({"contentBlockIndex":2,"p":"abcdefghijklm"})") +
         Event("messageStop", R"({"stopReason":"end_turn","p":"abcdefghijklmnopqrstu"})") +
         Event(
             "metadata",
             R"({"metrics":{"latencyMs":753},"usage":{"inputTokens":70,"outputTokens":43,"serverToolUsage":{},"totalTokens":113},"p":"abcdefghijklmnopq"})");
}

TEST_CASE("bedrock: Converse request, SigV4 signed, model id percent-encoded") {
  TargetSpec target = BedrockTarget();
  target.stream = false;
  Result<HttpRequest> request = Adapter().BuildRequest(target, {1767225600123});
  REQUIRE(request);
  CHECK(request->method == "POST");
  CHECK(request->url ==
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/openai.gpt-oss-120b-1%3A0/converse");
  CHECK(
      request->body ==
      R"({"inferenceConfig":{"maxTokens":16},"messages":[{"content":[{"text":"Say OK"}],"role":"user"}]})");
  const auto headers = HeaderMap(*request);
  CHECK(headers.at("Content-Type") == "application/json");
  CHECK(headers.at("X-Amz-Date") == "20260101T000000Z");
  CHECK(headers.at("X-Amz-Content-Sha256") == Sha256Hex(request->body));
  CHECK(headers.at("X-Amz-Security-Token") == kSessionToken);
  const std::string& authorization = headers.at("Authorization");
  CHECK(authorization.rfind(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-west-2/bedrock/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, "
            "Signature=",
            0) == 0);
  CHECK(authorization.find(kSecretKey) == std::string::npos);
}

TEST_CASE("bedrock: ConverseStream path, base_url override, ARN model ids") {
  TargetSpec target = BedrockTarget();
  target.base_url = "http://127.0.0.1:9999/";
  target.provider_model = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.x-v1:0";
  Result<HttpRequest> request = Adapter().BuildRequest(target, {1767225600000});
  REQUIRE(request);
  CHECK(request->url ==
        "http://127.0.0.1:9999/model/"
        "arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.x-v1%3A0/"
        "converse-stream");
}

TEST_CASE("bedrock: a Bedrock API key is a bearer token, with no SigV4 headers") {
  TargetSpec target = BedrockTarget();
  target.auth.mode = AuthMode::kBearerToken;
  target.auth.aws = {};
  target.api_key = Secret(kBearer);
  Result<HttpRequest> request = Adapter().BuildRequest(target, {1767225600000});
  REQUIRE(request);
  const auto headers = HeaderMap(*request);
  CHECK(headers.at("Authorization") == std::string("Bearer ") + kBearer);
  CHECK(headers.count("X-Amz-Date") == 0);
  CHECK(headers.count("X-Amz-Content-Sha256") == 0);
}

TEST_CASE("bedrock: unusable targets fail without naming a secret") {
  TargetSpec no_region = BedrockTarget();
  no_region.region.clear();
  Result<HttpRequest> a = Adapter().BuildRequest(no_region, {1767225600000});
  REQUIRE_FALSE(a);
  CHECK(a.error().message.find("region") != std::string::npos);

  TargetSpec no_secret = BedrockTarget();
  no_secret.auth.aws.secret_access_key = Secret();
  Result<HttpRequest> b = Adapter().BuildRequest(no_secret, {1767225600000});
  REQUIRE_FALSE(b);
  CHECK(b.error().message.find(kSessionToken) == std::string::npos);

  // The region comes from a Bedrock host when the target names none.
  TargetSpec from_host = BedrockTarget();
  from_host.region.clear();
  from_host.base_url = "https://bedrock-runtime.eu-central-1.amazonaws.com";
  Result<HttpRequest> c = Adapter().BuildRequest(from_host, {1767225600000});
  REQUIRE(c);
  CHECK(HeaderMap(*c).at("Authorization").find("/eu-central-1/bedrock/") != std::string::npos);
}

TEST_CASE("bedrock: OpenAI-compatible flavor speaks chat completions under a configurable prefix") {
  TargetSpec target = BedrockTarget();
  target.flavor = ApiFlavor::kOpenAICompatible;
  Result<HttpRequest> request = Adapter().BuildRequest(target, {1767225600000});
  REQUIRE(request);
  CHECK(request->url ==
        "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions");
  const nlohmann::json body = nlohmann::json::parse(request->body);
  CHECK(body["model"] == "openai.gpt-oss-120b-1:0");
  CHECK(body["messages"][0]["content"] == "Say OK");
  CHECK(body["stream"] == true);
  const auto headers = HeaderMap(*request);
  CHECK(headers.at("Authorization").rfind("AWS4-HMAC-SHA256 ", 0) == 0);
  // Every header sent is signed, including the Accept the OpenAI builder adds.
  CHECK(headers.at("Authorization").find("SignedHeaders=accept;content-type;host;") !=
        std::string::npos);

  target.openai_path_prefix = "/v1";
  target.base_url = "https://bedrock-mantle.us-east-1.api.aws";
  target.region.clear();
  Result<HttpRequest> mantle = Adapter().BuildRequest(target, {1767225600000});
  REQUIRE(mantle);
  CHECK(mantle->url == "https://bedrock-mantle.us-east-1.api.aws/v1/chat/completions");
  CHECK(HeaderMap(*mantle).at("Authorization").find("/us-east-1/bedrock-mantle/aws4_request") !=
        std::string::npos);

  target.auth.mode = AuthMode::kBearerToken;
  target.api_key = Secret(kBearer);
  Result<HttpRequest> bearer = Adapter().BuildRequest(target, {1767225600000});
  REQUIRE(bearer);
  CHECK(HeaderMap(*bearer).at("Authorization") == std::string("Bearer ") + kBearer);
}

TEST_CASE("bedrock: ConverseStream of gpt-oss, split at every byte boundary") {
  const Recorder r = DecodeEverySplit(Adapter(), GptOssStream());
  CHECK(r.log == std::vector<std::string>{"reasoning:The user just says \"Hi\".",
                                          "content:Hello! How can I help", "content: you today?",
                                          "done", "usage:70/43"});
  CHECK(r.content == "Hello! How can I help you today?");
  CHECK(r.chunks == 10);
  CHECK(r.malformed.empty());
  CHECK_FALSE(r.error);
}

TEST_CASE("bedrock: exception frames mid-stream are classified by their type") {
  struct Row {
    const char* type;
    Outcome outcome;
  };
  const std::vector<Row> rows = {
      {"throttlingException", Outcome::kThrottled},
      {"serviceUnavailableException", Outcome::kOverloaded},
      {"modelStreamErrorException", Outcome::kServerError},
      {"internalServerException", Outcome::kServerError},
      {"validationException", Outcome::kClientError},
      {"modelTimeoutException", Outcome::kTimeout},
  };
  for (const Row& row : rows) {
    CAPTURE(row.type);
    const std::string stream =
        Event("messageStart", R"({"role":"assistant"})") +
        Event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hel"}})") +
        Exception(row.type, "Something went wrong upstream.");
    const Recorder r = DecodeEverySplit(Adapter(), stream);
    REQUIRE(r.error);
    CHECK(r.error->outcome == row.outcome);
    CHECK(r.error->message.find(row.type) != std::string::npos);
    CHECK(r.error->message.find("Something went wrong upstream.") != std::string::npos);
    CHECK_FALSE(r.terminator);
  }
  // An :message-type error frame carries its code in headers.
  const std::string error_frame = EncodeEventStreamMessage(
      {StringHeader(":error-code", "ThrottlingException"),
       StringHeader(":error-message", "Rate exceeded"), StringHeader(":message-type", "error")},
      "");
  const Recorder e = DecodeEverySplit(Adapter(), error_frame);
  REQUIRE(e.error);
  CHECK(e.error->outcome == Outcome::kThrottled);
}

TEST_CASE("bedrock: a corrupted CRC and a truncated frame are malformed, each said distinctly") {
  std::string corrupted = GptOssStream();
  corrupted[corrupted.size() - 40] = static_cast<char>(corrupted[corrupted.size() - 40] ^ 0x04);
  const Recorder bad_crc = DecodeEverySplit(Adapter(), corrupted);
  CHECK(bad_crc.malformed.find("message CRC") != std::string::npos);

  const std::string full = GptOssStream();
  const Recorder truncated = DecodeEverySplit(Adapter(), full.substr(0, full.size() - 5));
  CHECK(truncated.malformed.find("truncated") != std::string::npos);
  CHECK(truncated.terminator);  // messageStop came before the cut; the cut is still reported
}

TEST_CASE("bedrock: a frame declaring 16 MiB or more is an over-long frame, not SSE text") {
  for (const uint32_t total : {uint32_t{16} << 20, (uint32_t{16} << 20) + 16, uint32_t{0x7fffffff}}) {
    // A prelude with a valid CRC whose first byte is not zero, then the start of the frame.
    std::string prelude;
    auto put32 = [&](uint32_t v) {
      for (int shift = 24; shift >= 0; shift -= 8) {
        prelude.push_back(static_cast<char>((v >> shift) & 0xffU));
      }
    };
    put32(total);
    put32(0);
    put32(Crc32(prelude));
    CAPTURE(total);
    const Recorder r = DecodeEverySplit(Adapter(), prelude + std::string(64, 'x'));
    CHECK(r.malformed == "event stream frame length invalid or over the limit");
    CHECK(r.log.size() == 1);
  }
  // Text shorter than a prelude is still SSE (here a lone comment: no events, no terminator).
  const Recorder comment = DecodeEverySplit(Adapter(), ": hi\n\n");
  CHECK(comment.malformed.empty());
  CHECK(comment.log.empty());
}

TEST_CASE("bedrock: the OpenAI-compatible endpoint's SSE goes through the same decoder") {
  const std::string sse =
      "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"reasoning\":\"think\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"OK\"}}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  const Recorder r = DecodeEverySplit(Adapter(), sse);
  CHECK(r.log == std::vector<std::string>{"reasoning:think", "content:OK", "usage:5/2", "done"});
}

TEST_CASE("bedrock: Converse body, with reasoning blocks, and an OpenAI-shaped body") {
  Recorder r;
  Adapter().ParseBody(
      R"({"metrics":{"latencyMs":268},"output":{"message":{"content":[{"reasoningContent":{"reasoningText":{"text":"Thinking."}}},{"text":"Hello! How can I assist you today?"}],"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":7,"outputTokens":30,"totalTokens":37}})",
      r);
  CHECK(r.log == std::vector<std::string>{"reasoning:Thinking.",
                                          "content:Hello! How can I assist you today?",
                                          "usage:7/30", "done"});

  Recorder openai;
  Adapter().ParseBody(
      R"({"object":"chat.completion","choices":[{"message":{"role":"assistant","content":"OK","reasoning":"r"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}})",
      openai);
  CHECK(openai.content == "OK");
  CHECK(openai.terminator);

  Recorder bad;
  Adapter().ParseBody(R"({"stopReason":"end_turn"})", bad);
  CHECK_FALSE(bad.malformed.empty());
  CHECK_FALSE(bad.terminator);
}

// protocols.md §0.5 (Bedrock column) and §4.4: status, x-amzn-ErrorType, body.
TEST_CASE("bedrock: classification matrix") {
  struct Row {
    int status;
    const char* error_type;  // header; "" for none
    const char* body;
    Outcome outcome;
  };
  const std::vector<Row> rows = {
      {429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
       R"({"message":"Too many requests, please wait before trying again."})", Outcome::kThrottled},
      {429, "ThrottlingException",
       R"({"message":"Too many tokens per day, please wait before trying again."})",
       Outcome::kQuotaExhausted},
      {503, "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/",
       R"({"message":"Bedrock is unable to process your request."})", Outcome::kOverloaded},
      {429, "ModelNotReadyException", R"({"message":"Model is not ready."})", Outcome::kOverloaded},
      {400, "ServiceQuotaExceededException", R"({"message":"quota"})", Outcome::kQuotaExhausted},
      {403, "AccessDeniedException", R"({"message":"You don't have access to the model."})",
       Outcome::kAuth},
      {403, "UnrecognizedClientException",
       R"({"message":"The security token included in the request is invalid."})", Outcome::kAuth},
      {403, "InvalidSignatureException",
       R"({"message":"The request signature we calculated does not match."})", Outcome::kAuth},
      {403, "ExpiredTokenException",
       R"({"message":"The security token included in the request is expired"})", Outcome::kAuth},
      {400, "ValidationException", R"({"message":"The provided model identifier is invalid."})",
       Outcome::kClientError},
      {404, "ResourceNotFoundException",
       R"({"message":"This model version has reached the end of its life."})",
       Outcome::kClientError},
      {500, "InternalServerException", R"({"message":"internal"})", Outcome::kServerError},
      {424, "ModelErrorException", R"({"message":"upstream model error","originalStatusCode":500})",
       Outcome::kServerError},
      {424, "ModelStreamErrorException", R"({"message":"x"})", Outcome::kServerError},
      {408, "ModelTimeoutException", R"({"message":"Model has timed out"})", Outcome::kTimeout},
      // No header: the body's __type, with its namespace.
      {400, "", R"({"__type":"com.amazon.coral.validate#ValidationException","message":"bad"})",
       Outcome::kClientError},
      {403, "", R"({"__type":"InvalidSignatureException","message":"sig"})", Outcome::kAuth},
      // Nothing but the status.
      {429, "", R"({"message":"Rate exceeded"})", Outcome::kThrottled},
      {503, "", "<html>Service Unavailable</html>", Outcome::kOverloaded},
      {502, "", "", Outcome::kServerError},
      // The OpenAI-compatible endpoint's own error shape.
      {429, "",
       R"({"error":{"message":"Rate limit","type":"rate_limit_error","code":"rate_limit_exceeded"}})",
       Outcome::kThrottled},
  };
  for (const Row& row : rows) {
    CAPTURE(row.status);
    CAPTURE(row.error_type);
    CAPTURE(row.body);
    HttpHeaders headers;
    if (row.error_type[0] != '\0') {
      headers.Add("x-amzn-errortype", row.error_type);
    }
    const ProviderError error = Adapter().ClassifyHttpError(row.status, headers, row.body);
    CHECK(error.outcome == row.outcome);
    CHECK(error.message.find("http://internal.amazon.com") == std::string::npos);
    CHECK(error.message.rfind("HTTP " + std::to_string(row.status), 0) == 0);
  }
  HttpHeaders headers;
  headers.Add("x-amzn-errortype", "ThrottlingException:http://internal.amazon.com/coral/");
  CHECK(Adapter().ClassifyHttpError(429, headers, R"({"message":"Rate exceeded"})").message ==
        "HTTP 429 ThrottlingException: Rate exceeded");
}

TEST_CASE("bedrock: request id from x-amzn-RequestId") {
  HttpHeaders headers;
  headers.Add("x-amzn-requestid", "2c7dc5a6-3a3b-4a7e-9d5e-7d3c8b1f0a11");
  const HeaderInfo info = Adapter().ReadHeaders(headers, 0);
  CHECK(info.request_id == "2c7dc5a6-3a3b-4a7e-9d5e-7d3c8b1f0a11");
  CHECK_FALSE(info.requests.limit);
}

// --- credentials --------------------------------------------------------------------------

// Environment variables and files given by the test; nothing from the machine.
class FakeSources final : public Environment {
 public:
  FakeSources(std::map<std::string, std::string> env, std::map<std::string, std::string> files)
      : env_(std::move(env)), files_(std::move(files)) {}

  std::optional<std::string> GetEnv(const std::string& name) const override {
    auto it = env_.find(name);
    if (it == env_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  Result<std::string> ReadFile(const std::string& path) const override {
    auto it = files_.find(path);
    if (it == files_.end()) {
      return Fail(Error::NotFound(path + " does not exist"));
    }
    return it->second;
  }
  Result<std::vector<std::string>> Glob(const std::string& pattern) const override {
    return std::vector<std::string>{pattern};
  }

 private:
  std::map<std::string, std::string> env_;
  std::map<std::string, std::string> files_;
};

constexpr const char* kCredentialsFile = R"INI(
# comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-SECRET

[dev]
AWS_ACCESS_KEY_ID=AKIADEV
aws_secret_access_key   =   dev-SECRET  
aws_session_token = dev-TOKEN-SECRET
s3 =
    max_concurrent_requests = 20

[broken]
aws_access_key_id = AKIABROKEN
[sso]
sso_start_url = https://example.awsapps.com/start
)INI";

TEST_CASE("aws credentials: environment, with and without a session token") {
  Result<ResolvedAwsCredentials> r =
      ResolveAwsCredentials({}, FakeSources({{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                             {"AWS_SECRET_ACCESS_KEY", "env-SECRET"},
                                             {"AWS_SESSION_TOKEN", "env-TOKEN-SECRET"},
                                             {"HOME", "/home/u"}},
                                            {{"/home/u/.aws/credentials", kCredentialsFile}}));
  REQUIRE(r);
  CHECK(r->credentials.access_key_id.Reveal() == "AKIAENV");
  CHECK(r->credentials.secret_access_key.Reveal() == "env-SECRET");
  CHECK(r->credentials.session_token.Reveal() == "env-TOKEN-SECRET");
  CHECK(r->source == "environment");

  Result<ResolvedAwsCredentials> half =
      ResolveAwsCredentials({}, FakeSources({{"AWS_ACCESS_KEY_ID", "AKIAENV"}}, {}));
  REQUIRE_FALSE(half);
  CHECK(half.error().message.find("AWS_SECRET_ACCESS_KEY") != std::string::npos);
  CHECK(half.error().message.find("AKIAENV") == std::string::npos);
}

TEST_CASE("aws credentials: shared file, default and named profiles") {
  const auto files = std::map<std::string, std::string>{
      {"/home/u/.aws/credentials", kCredentialsFile}, {"/etc/creds", kCredentialsFile}};
  Result<ResolvedAwsCredentials> d =
      ResolveAwsCredentials({}, FakeSources({{"HOME", "/home/u"}}, files));
  REQUIRE(d);
  CHECK(d->credentials.access_key_id.Reveal() == "AKIADEFAULT");
  CHECK(d->credentials.secret_access_key.Reveal() == "default-SECRET");
  CHECK(d->credentials.session_token.empty());
  CHECK(d->source == "profile 'default' in /home/u/.aws/credentials");

  Result<ResolvedAwsCredentials> dev =
      ResolveAwsCredentials({}, FakeSources({{"HOME", "/home/u"},
                                             {"AWS_PROFILE", "dev"},
                                             {"AWS_SHARED_CREDENTIALS_FILE", "/etc/creds"}},
                                            files));
  REQUIRE(dev);
  CHECK(dev->credentials.access_key_id.Reveal() == "AKIADEV");
  CHECK(dev->credentials.secret_access_key.Reveal() == "dev-SECRET");
  CHECK(dev->credentials.session_token.Reveal() == "dev-TOKEN-SECRET");
  CHECK(dev->source == "profile 'dev' in /etc/creds");

  // A profile named in the config wins over environment credentials.
  AwsCredentialOptions explicit_profile;
  explicit_profile.profile = "dev";
  explicit_profile.credentials_file = "~/.aws/credentials";
  Result<ResolvedAwsCredentials> e =
      ResolveAwsCredentials(explicit_profile, FakeSources({{"HOME", "/home/u"},
                                                           {"AWS_ACCESS_KEY_ID", "AKIAENV"},
                                                           {"AWS_SECRET_ACCESS_KEY", "env-SECRET"}},
                                                          files));
  REQUIRE(e);
  CHECK(e->credentials.access_key_id.Reveal() == "AKIADEV");
}

TEST_CASE("aws credentials: errors name the profile and the file, never a value") {
  const auto files =
      std::map<std::string, std::string>{{"/home/u/.aws/credentials", kCredentialsFile}};
  auto resolve = [&](const std::string& profile) {
    AwsCredentialOptions options;
    options.profile = profile;
    return ResolveAwsCredentials(options, FakeSources({{"HOME", "/home/u"}}, files));
  };
  for (const char* profile : {"missing", "broken", "sso"}) {
    CAPTURE(profile);
    Result<ResolvedAwsCredentials> r = resolve(profile);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(std::string("'") + profile + "'") != std::string::npos);
    CHECK(r.error().message.find("/home/u/.aws/credentials") != std::string::npos);
    CHECK(r.error().message.find("SECRET") == std::string::npos);
    CHECK(r.error().message.find("AKIA") == std::string::npos);
  }
  Result<ResolvedAwsCredentials> none =
      ResolveAwsCredentials({}, FakeSources({{"HOME", "/nobody"}}, files));
  REQUIRE_FALSE(none);
  CHECK(none.error().code == Error::Code::kNotFound);
  CHECK(none.error().message.find("/nobody/.aws/credentials") != std::string::npos);
}

// --- end to end ---------------------------------------------------------------------------

// A loopback Bedrock: checks the SigV4 signature over the request exactly as it arrived (raw
// target, the signed headers' received values, the body), then answers per route.
class FakeBedrock {
 public:
  FakeBedrock() {
    server_.Post(R"(/model/([^/]+)/(converse|converse-stream))",
                 [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 400 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    REQUIRE(server_.is_running());
  }
  ~FakeBedrock() {
    server_.stop();
    thread_.join();
  }
  std::string BaseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string last_target() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_target_;
  }
  std::string stream_body;  // set before probing

 private:
  bool SignatureValid(const httplib::Request& req) {
    const std::string authorization = req.get_header_value("Authorization");
    const size_t list_at = authorization.find("SignedHeaders=");
    if (authorization.rfind("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 0) != 0 ||
        list_at == std::string::npos) {
      return false;
    }
    const std::string list =
        authorization.substr(list_at + 14, authorization.find(',', list_at) - list_at - 14);
    SigV4Request request;
    request.method = req.method;
    const std::string url = "http://" + req.get_header_value("Host") + req.target;
    request.url = url;
    request.body = req.body;
    size_t start = 0;
    while (start < list.size()) {
      size_t end = list.find(';', start);
      end = end == std::string::npos ? list.size() : end;
      const std::string name = list.substr(start, end - start);
      if (name != "host" && name != "x-amz-date" && name != "x-amz-content-sha256" &&
          name != "x-amz-security-token") {
        request.headers.emplace_back(name, req.get_header_value(name.c_str()));
      }
      start = end + 1;
    }
    const std::string date = req.get_header_value("X-Amz-Date");
    std::tm tm{};
    if (strptime(date.c_str(), "%Y%m%dT%H%M%SZ", &tm) == nullptr) {
      return false;
    }
    SigV4Params params;
    params.region = "us-east-1";
    params.service = "bedrock";
    params.unix_seconds = timegm(&tm);
    AwsCredentials credentials = Credentials(req.get_header_value("X-Amz-Security-Token"));
    Result<SigV4Signature> expected = SignSigV4(request, credentials, params);
    if (!expected) {
      return false;
    }
    for (const auto& [name, value] : expected->headers) {
      if (name == "Authorization") {
        return value.Reveal() == authorization &&
               req.get_header_value("X-Amz-Content-Sha256") == Sha256Hex(req.body);
      }
    }
    return false;
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_target_ = req.target;
    }
    res.set_header("x-amzn-RequestId", "5f1ea1a6-0000-4000-8000-00000000e2e0");
    if (!SignatureValid(req)) {
      res.status = 403;
      res.set_header(
          "x-amzn-ErrorType",
          "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/");
      res.set_content(
          R"({"message":"The request signature we calculated does not match the signature you provided."})",
          "application/json");
      return;
    }
    const std::string model = req.matches[1];
    if (model == "throttled.model-v1:0") {
      res.status = 429;
      res.set_header("x-amzn-ErrorType",
                     "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/");
      res.set_content(R"({"message":"Too many requests, please wait before trying again."})",
                      "application/json");
      return;
    }
    if (req.matches[2] == "converse") {
      res.set_content(
          R"({"metrics":{"latencyMs":268},"output":{"message":{"content":[{"text":"OK"}],"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":7,"outputTokens":1,"totalTokens":8}})",
          "application/json");
      return;
    }
    const std::string body = stream_body;
    res.set_chunked_content_provider(
        "application/vnd.amazon.eventstream", [body](size_t, httplib::DataSink& sink) {
          // Uneven writes so frames straddle reads.
          for (size_t at = 0; at < body.size(); at += 37) {
            sink.write(body.data() + at, std::min<size_t>(37, body.size() - at));
          }
          sink.done();
          return true;
        });
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::string last_target_;
};

void CheckNoSecrets(const ProbeResult& r) {
  for (const std::string* field : {&r.error, &r.request_id, &r.target}) {
    for (const char* secret : {kSecretKey, kSessionToken, kBearer}) {
      CHECK(field->find(secret) == std::string::npos);
    }
    CHECK(field->find("SECRET") == std::string::npos);
  }
}

TEST_CASE("bedrock end to end: ProbeOnce over loopback with a verified SigV4 signature") {
  FakeBedrock server;
  SystemClock clock;
  TargetSpec target = BedrockTarget();
  target.region = "us-east-1";
  target.base_url = server.BaseUrl();
  target.expect = "(?i)hello";
  target.timeouts.connect = std::chrono::milliseconds(2000);
  target.timeouts.first_token = std::chrono::milliseconds(3000);
  target.timeouts.total = std::chrono::milliseconds(5000);

  SUBCASE("ConverseStream with reasoning, usage and request id") {
    server.stream_body = GptOssStream();
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CheckNoSecrets(r);
    CHECK(r.error == "");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.http_status == 200);
    CHECK(server.last_target() == "/model/openai.gpt-oss-120b-1%3A0/converse-stream");
    CHECK(r.request_id == "5f1ea1a6-0000-4000-8000-00000000e2e0");
    CHECK(r.input_tokens == 70);
    CHECK(r.output_tokens == 43);
    CHECK(r.ttft_seconds.has_value());
    CHECK(r.first_answer_token_seconds.has_value());
    CHECK(r.chunk_count == 10);
  }
  SUBCASE("without a session token") {
    target.auth.aws = Credentials("");
    server.stream_body = GptOssStream();
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kOk);
  }
  SUBCASE("Converse, not streamed") {
    target.stream = false;
    target.expect = "OK";
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.error == "");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output_tokens == 1);
    CHECK(server.last_target() == "/model/openai.gpt-oss-120b-1%3A0/converse");
  }
  SUBCASE("a wrong secret key is refused as a bad signature: auth") {
    target.auth.aws.secret_access_key = Secret("not-the-key-SECRET");
    server.stream_body = GptOssStream();
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CheckNoSecrets(r);
    CHECK(r.outcome == Outcome::kAuth);
    CHECK(r.http_status == 403);
    CHECK(r.error.find("InvalidSignatureException") != std::string::npos);
  }
  SUBCASE("HTTP 429 ThrottlingException") {
    target.provider_model = "throttled.model-v1:0";
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kThrottled);
    CHECK(r.http_status == 429);
    CHECK(r.error ==
          "HTTP 429 ThrottlingException: Too many requests, please wait before trying again.");
  }
  SUBCASE("an exception frame mid-stream") {
    server.stream_body =
        Event("messageStart", R"({"role":"assistant"})") +
        Event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hel"}})") +
        Exception("throttlingException", "Too many tokens, please wait.");
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kThrottled);
    CHECK(r.http_status == 200);
  }
  SUBCASE("a corrupted frame") {
    std::string body = GptOssStream();
    body[100] = static_cast<char>(body[100] ^ 0x10);
    server.stream_body = body;
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("CRC") != std::string::npos);
  }
  SUBCASE("a stream cut mid-frame") {
    const std::string body = GptOssStream();
    server.stream_body = body.substr(0, body.size() - 10);
    const ProbeResult r = ProbeOnce(target, ProberOptions{}, clock);
    CHECK(r.outcome == Outcome::kInvalidResponse);
    CHECK(r.error.find("truncated") != std::string::npos);
  }
}

}  // namespace
}  // namespace modelpulse::collector
