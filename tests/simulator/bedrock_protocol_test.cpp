// The bedrock protocol over loopback HTTP: event-stream frames decoded here by hand with zlib's
// CRC-32 (not the simulator's), SigV4 signed by Debian's python3-botocore as an independent
// signer, AWS's error types and bodies for every kind, the OpenAI-compatible route.

#include <doctest/doctest.h>
#include <zlib.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/required_peer.h"
#include "tests/simulator/cloud_test_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::json;
using modelpulse::testing::SkipForMissingPeer;
using testing::CheckRefused;
using testing::Send;
using testing::StartScenario;
using testing::TempDir;

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* kModelPath = "/model/us.amazon.nova-micro-v1%3A0/";

struct Message {
  std::map<std::string, std::string> headers;
  std::string payload;
};

struct Decoded {
  std::vector<Message> messages;
  std::string error;  // "prelude crc", "message crc", "truncated"; empty when all bytes decoded
};

uint32_t U32(const std::string& b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
}

uint32_t ZlibCrc(const std::string& b, size_t from, size_t to) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(b.data() + from), static_cast<uInt>(to - from)));
}

// application/vnd.amazon.eventstream, from the AWS description (protocols.md §4.3).
Decoded DecodeEventStream(const std::string& bytes) {
  Decoded out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 16)
      return out.error = "truncated", out;
    const uint32_t total = U32(bytes, at);
    const uint32_t headers_length = U32(bytes, at + 4);
    if (ZlibCrc(bytes, at, at + 8) != U32(bytes, at + 8))
      return out.error = "prelude crc", out;
    if (bytes.size() - at < total)
      return out.error = "truncated", out;
    if (ZlibCrc(bytes, at, at + total - 4) != U32(bytes, at + total - 4)) {
      return out.error = "message crc", out;
    }
    Message message;
    size_t h = at + 12;
    while (h < at + 12 + headers_length) {
      const size_t name_length = static_cast<uint8_t>(bytes[h]);
      const std::string name = bytes.substr(h + 1, name_length);
      h += 1 + name_length;
      REQUIRE(bytes[h] == 7);  // every header the simulator sends is a string
      const size_t value_length =
          (static_cast<uint8_t>(bytes[h + 1]) << 8) | static_cast<uint8_t>(bytes[h + 2]);
      message.headers[name] = bytes.substr(h + 3, value_length);
      h += 3 + value_length;
    }
    message.payload = bytes.substr(at + 12 + headers_length, total - headers_length - 16);
    out.messages.push_back(std::move(message));
    at += total;
  }
  return out;
}

std::string ConverseBody(int max_tokens = 16) {
  return Json{{"messages",
               Json::array({{{"role", "user"}, {"content", Json::array({{{"text", "Say OK"}}})}}})},
              {"inferenceConfig", {{"maxTokens", max_tokens}}}}
      .dump();
}

std::string ErrorType(const testing::Exchange& ex) {
  const std::string header = ex.Header("x-amzn-ErrorType");
  return header.substr(0, header.find(':'));
}

std::string BodyMessage(const testing::Exchange& ex) {
  const Json body = Json::parse(ex.body, nullptr, false);
  return body.is_object() ? body.value("message", "") : "";
}

bool HaveBotocore() {
  return std::system("/usr/bin/python3 -c 'import botocore.auth' >/dev/null 2>&1") == 0;
}

// Headers botocore's SigV4Auth puts on a POST of `body` to `url`; `age_seconds` signs as if the
// request had been made that long ago.
httplib::Headers BotocoreSign(const TempDir& dir, const std::string& url, const std::string& body,
                              const std::string& key_id, const std::string& secret,
                              const std::string& token = "",
                              const std::string& region = "us-east-1", int age_seconds = 0) {
  const std::string script = dir.Write("sign.py", R"(
import datetime, json, sys
import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, body_file, key_id, secret, token, region, age = sys.argv[1:8]
real = datetime.datetime
class Clock(real):
    @classmethod
    def utcnow(cls):
        return real.utcnow() - datetime.timedelta(seconds=int(age))
botocore.auth.datetime.datetime = Clock
body = open(body_file, 'rb').read()
request = AWSRequest(method='POST', url=url, data=body, headers={'Content-Type': 'application/json'})
SigV4Auth(Credentials(key_id, secret, token or None), 'bedrock', region).add_auth(request)
print(json.dumps(dict(request.headers.items())))
)");
  const std::string body_file = dir.Write("body.json", body);
  const std::string out_file = dir.Write("headers.json", "");
  const std::string command = "/usr/bin/python3 " + script + " '" + url + "' " + body_file + " '" +
                              key_id + "' '" + secret + "' '" + token + "' " + region + " " +
                              std::to_string(age_seconds) + " > " + out_file;
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in(out_file);
  const Json headers = Json::parse(in);
  httplib::Headers out;
  for (const auto& [name, value] : headers.items()) {
    if (name != "Content-Type")
      out.emplace(name, value.get<std::string>());
  }
  return out;
}

const char* kScenario = R"(
seed: 3
hang_cap: 2s
endpoints:
  - name: br
    protocol: bedrock
    api_key: br-api-key
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 6
    options:
      access_key_id: AKIDEXAMPLE
      secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
      expired_session_token: old-session
      openai_prefix: /openai/v1
  - name: session
    protocol: bedrock
    options: {access_key_id: AKIDEXAMPLE, secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, session_token: live-session}
  - name: unchecked
    protocol: bedrock
    options: {access_key_id: AKIDEXAMPLE, secret_access_key: x, verify_signature: "false"}
  - name: open
    protocol: bedrock
    model: us.amazon.nova-micro-v1:0
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 6
)";

TEST_CASE("bedrock: ConverseStream frames carry valid CRCs, AWS headers and the event sequence") {
  TempDir dir;
  auto sim = StartScenario(dir, kScenario);
  const auto ex =
      Send(sim->port(), std::string("/open") + kModelPath + "converse-stream", ConverseBody());
  REQUIRE(ex.status == 200);
  CHECK(ex.Header("Content-Type") == "application/vnd.amazon.eventstream");
  CHECK(ex.Header("x-amzn-RequestId").size() == 36);
  const auto decoded = DecodeEventStream(ex.body);
  REQUIRE(decoded.error.empty());
  std::vector<std::string> kinds;
  std::string text;
  for (const auto& m : decoded.messages) {
    CHECK(m.headers.at(":message-type") == "event");
    CHECK(m.headers.at(":content-type") == "application/json");
    kinds.push_back(m.headers.at(":event-type"));
    const Json payload = Json::parse(m.payload);
    if (kinds.back() == "contentBlockDelta")
      text += payload["delta"]["text"].get<std::string>();
  }
  CHECK(kinds == std::vector<std::string>{"messageStart", "contentBlockDelta", "contentBlockDelta",
                                          "contentBlockDelta", "contentBlockDelta",
                                          "contentBlockDelta", "contentBlockDelta",
                                          "contentBlockStop", "messageStop", "metadata"});
  CHECK(text == "OK lorem ipsum dolor sit amet");
  const Json metadata = Json::parse(decoded.messages.back().payload);
  CHECK(metadata["usage"]["outputTokens"] == 6);
  CHECK(metadata["usage"]["totalTokens"] == metadata["usage"]["inputTokens"].get<int>() + 6);
  CHECK(metadata["metrics"]["latencyMs"].is_number_integer());
  CHECK(Json::parse(decoded.messages[decoded.messages.size() - 2].payload)["stopReason"] ==
        "end_turn");
}

TEST_CASE("bedrock: Converse body, maxTokens cut and validation errors") {
  TempDir dir;
  auto sim = StartScenario(dir, kScenario);
  auto ex = Send(sim->port(), std::string("/open") + kModelPath + "converse", ConverseBody(3));
  REQUIRE(ex.status == 200);
  const Json body = Json::parse(ex.body);
  CHECK(body["output"]["message"]["content"][0]["text"] == "OK lorem ipsum");
  CHECK(body["output"]["message"]["role"] == "assistant");
  CHECK(body["stopReason"] == "max_tokens");
  CHECK(body["usage"]["outputTokens"] == 3);

  ex = Send(sim->port(), "/open/model/other-model/converse", ConverseBody());
  CHECK(ex.status == 400);
  CHECK(ErrorType(ex) == "ValidationException");
  CHECK(BodyMessage(ex) == "The provided model identifier is invalid.");
  ex = Send(sim->port(), std::string("/open") + kModelPath + "converse", ConverseBody(0));
  CHECK(ex.status == 400);
  CHECK(ErrorType(ex) == "ValidationException");
  ex = Send(sim->port(), std::string("/open") + kModelPath + "converse", R"({"messages":[]})");
  CHECK(ex.status == 400);
  CHECK(ErrorType(ex) == "ValidationException");
  // Routes: an unknown operation or no model is a 404; a model id as long as a request line
  // allows is only the wrong model (the route is parsed without recursion per character).
  for (const char* path : {"/open/model/m/invoke", "/open/model/converse", "/open/model//converse",
                           "/open/models/m/converse"}) {
    CAPTURE(path);
    ex = Send(sim->port(), path, ConverseBody());
    CHECK(ex.status == 404);
  }
  ex = Send(sim->port(), "/open/model/" + std::string(7000, 'a') + "/converse-stream",
            ConverseBody());
  CHECK(ex.status == 400);
  CHECK(BodyMessage(ex) == "The provided model identifier is invalid.");
}

TEST_CASE("bedrock: each error kind as AWS sends it") {
  struct Case {
    const char* kind;
    int status;
    const char* type;
  };
  const Case cases[] = {
      {"rate_limit", 429, "ThrottlingException"},
      {"quota_per_day", 429, "ThrottlingException"},
      {"model_not_ready", 429, "ModelNotReadyException"},
      {"overloaded_503", 503, "ServiceUnavailableException"},
      {"server_error_500", 500, "InternalServerException"},
      {"unauthorized_401", 403, "AccessDeniedException"},
      {"insufficient_quota", 403, "AccessDeniedException"},
      {"error_in_200", 424, "ModelErrorException"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.kind);
    TempDir dir;
    auto sim = StartScenario(dir, std::string(R"(
endpoints:
  - name: e
    protocol: bedrock
    first_token_ms: 1
    phases: [{errors: [{kind: )") + c.kind +
                                      ", probability: 1}]}]\n");
    const auto ex = Send(sim->port(), std::string("/e") + kModelPath + "converse", ConverseBody());
    CHECK(ex.status == c.status);
    CHECK(ErrorType(ex) == c.type);
    CHECK(ex.Header("x-amzn-ErrorType").find(":http://internal.amazon.com/coral/") !=
          std::string::npos);
    CHECK_FALSE(BodyMessage(ex).empty());
    CHECK(ex.Header("x-amzn-RequestId").size() == 36);
  }
}

TEST_CASE("bedrock: in-stream failures: exception frames, a truncated frame, a bad CRC") {
  auto stream_with = [](const std::string& kind) {
    TempDir dir;
    auto sim = StartScenario(dir, R"(
endpoints:
  - name: e
    protocol: bedrock
    first_token_ms: 1
    inter_token_ms: 1
    output_tokens: 6
    phases: [{errors: [{kind: )" + kind +
                                      ", probability: 1}]}]\n");
    const auto ex =
        Send(sim->port(), std::string("/e") + kModelPath + "converse-stream", ConverseBody());
    CHECK(ex.status == 200);
    return DecodeEventStream(ex.body);
  };
  SUBCASE("exception_midstream: half the text, then throttlingException") {
    const auto d = stream_with("exception_midstream");
    REQUIRE(d.error.empty());
    REQUIRE(d.messages.size() == 5);  // messageStart, 3 deltas, the exception
    const auto& last = d.messages.back();
    CHECK(last.headers.at(":message-type") == "exception");
    CHECK(last.headers.at(":exception-type") == "throttlingException");
    CHECK(Json::parse(last.payload).contains("message"));
  }
  SUBCASE("overloaded_midstream: serviceUnavailableException") {
    const auto d = stream_with("overloaded_midstream");
    REQUIRE(d.error.empty());
    CHECK(d.messages.back().headers.at(":exception-type") == "serviceUnavailableException");
  }
  SUBCASE("error_in_200: internalServerException before any text") {
    const auto d = stream_with("error_in_200");
    REQUIRE(d.messages.size() == 2);
    CHECK(d.messages.back().headers.at(":exception-type") == "internalServerException");
  }
  SUBCASE("truncated_stream: the last frame stops half way") {
    const auto d = stream_with("truncated_stream");
    CHECK(d.error == "truncated");
    CHECK(d.messages.size() == 3);  // messageStart and two whole deltas
  }
  SUBCASE("malformed_json: a message CRC that does not match") {
    const auto d = stream_with("malformed_json");
    CHECK(d.error == "message crc");
    CHECK(d.messages.size() == 1);
  }
}

TEST_CASE("bedrock: SigV4 signed by botocore is verified for real") {
  if (!HaveBotocore() && SkipForMissingPeer("python3-botocore for /usr/bin/python3")) {
    return;
  }
  TempDir dir;
  auto sim = StartScenario(dir, kScenario);
  const std::string path = std::string("/br") + kModelPath + "converse";
  const std::string url = "http://127.0.0.1:" + std::to_string(sim->port()) + path;
  const std::string body = ConverseBody();

  auto ok = Send(sim->port(), path, body, BotocoreSign(dir, url, body, "AKIDEXAMPLE", kSecret));
  CHECK(ok.status == 200);
  CHECK(Json::parse(ok.body)["output"]["message"]["content"][0]["text"] ==
        "OK lorem ipsum dolor sit amet");

  // The same signature over a different body of the same length.
  std::string tampered = body;
  tampered.replace(tampered.find("Say OK"), 6, "Say NO");
  auto ex = Send(sim->port(), path, tampered, BotocoreSign(dir, url, body, "AKIDEXAMPLE", kSecret));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "InvalidSignatureException");
  CHECK(BodyMessage(ex).find("does not match the signature you provided") != std::string::npos);

  ex = Send(sim->port(), path, body, BotocoreSign(dir, url, body, "AKIDEXAMPLE", "wrong-secret"));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "InvalidSignatureException");

  ex = Send(sim->port(), path, body, BotocoreSign(dir, url, body, "AKIDUNKNOWN", kSecret));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "UnrecognizedClientException");
  CHECK(BodyMessage(ex) == "The security token included in the request is invalid.");

  ex = Send(sim->port(), path, body,
            BotocoreSign(dir, url, body, "AKIDEXAMPLE", kSecret, "old-session"));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "ExpiredTokenException");

  ex = Send(sim->port(), path, body,
            BotocoreSign(dir, url, body, "AKIDEXAMPLE", kSecret, "", "eu-west-1"));
  CHECK(ex.status == 403);
  CHECK(BodyMessage(ex).find("Credential should be scoped to a valid region") != std::string::npos);

  ex = Send(sim->port(), path, body,
            BotocoreSign(dir, url, body, "AKIDEXAMPLE", kSecret, "", "us-east-1", 3600));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "InvalidSignatureException");
  CHECK(BodyMessage(ex).rfind("Signature expired: ", 0) == 0);

  ex = Send(sim->port(), path, body);
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "MissingAuthenticationTokenException");

  // The streaming operation is checked the same way.
  const std::string stream_path = std::string("/br") + kModelPath + "converse-stream";
  const std::string stream_url = "http://127.0.0.1:" + std::to_string(sim->port()) + stream_path;
  ex = Send(sim->port(), stream_path, body,
            BotocoreSign(dir, stream_url, body, "AKIDEXAMPLE", kSecret));
  CHECK(ex.status == 200);
  CHECK(DecodeEventStream(ex.body).error.empty());

  // Session credentials: the token is part of what is checked.
  const std::string session_path = std::string("/session") + kModelPath + "converse";
  const std::string session_url = "http://127.0.0.1:" + std::to_string(sim->port()) + session_path;
  ex = Send(sim->port(), session_path, body,
            BotocoreSign(dir, session_url, body, "AKIDEXAMPLE", kSecret, "live-session"));
  CHECK(ex.status == 200);
  ex = Send(sim->port(), session_path, body,
            BotocoreSign(dir, session_url, body, "AKIDEXAMPLE", kSecret));
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "UnrecognizedClientException");
}

TEST_CASE("bedrock: API key as Bearer, unverified mode, malformed Authorization") {
  TempDir dir;
  auto sim = StartScenario(dir, kScenario);
  const std::string path = std::string("/br") + kModelPath + "converse";
  auto ex = Send(sim->port(), path, ConverseBody(), {{"Authorization", "Bearer br-api-key"}});
  CHECK(ex.status == 200);
  ex = Send(sim->port(), path, ConverseBody(), {{"Authorization", "Bearer other-key"}});
  CHECK(ex.status == 403);
  ex = Send(sim->port(), path, ConverseBody(), {{"Authorization", "Basic Zm9vOmJhcg=="}});
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "IncompleteSignatureException");
  ex = Send(sim->port(), path, ConverseBody(),
            {{"Authorization",
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/"
              "bedrock/aws4_request, SignedHeaders=host"}});
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "IncompleteSignatureException");

  ex = Send(sim->port(), std::string("/unchecked") + kModelPath + "converse", ConverseBody(),
            {{"Authorization",
              "AWS4-HMAC-SHA256 Credential=ANY/20260101/us-east-1/bedrock/"
              "aws4_request, SignedHeaders=host, Signature=00"}});
  CHECK(ex.status == 200);
}

TEST_CASE("bedrock: the OpenAI-compatible route behind the same auth") {
  TempDir dir;
  auto sim = StartScenario(dir, kScenario);
  const std::string chat =
      R"({"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"Say OK"}]})";
  auto ex = Send(sim->port(), "/br/openai/v1/chat/completions", chat,
                 {{"Authorization", "Bearer br-api-key"}});
  REQUIRE(ex.status == 200);
  const Json body = Json::parse(ex.body);
  CHECK(body["object"] == "chat.completion");
  CHECK(body["choices"][0]["message"]["content"] == "OK lorem ipsum dolor sit amet");
  CHECK(ex.Header("x-amzn-RequestId").size() == 36);
  ex = Send(sim->port(), "/br/openai/v1/chat/completions", chat);
  CHECK(ex.status == 403);
  CHECK(ErrorType(ex) == "MissingAuthenticationTokenException");
}

TEST_CASE("bedrock: options are checked when the scenario loads") {
  TempDir dir;
  CheckRefused(dir, R"(
endpoints:
  - name: b
    protocol: bedrock
    options: {acess_key_id: AKID}
)",
               "unknown bedrock option 'acess_key_id'");
  CheckRefused(dir, R"(
endpoints:
  - name: b
    protocol: bedrock
    options: {access_key_id: AKID}
)",
               "secret_access_key");
}

}  // namespace
}  // namespace modelpulse::simulator
