// The application/vnd.amazon.eventstream decoder: a real Bedrock frame, every header type, every
// split of a stream, each kind of damage, and botocore's decoder as the oracle for our encoder.

#include "collector/internal/eventstream.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/collector/python_oracle.h"

namespace modelpulse::collector {
namespace {

using Status = EventStreamDecoder::Status;

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out.push_back(kDigits[static_cast<unsigned char>(c) >> 4]);
    out.push_back(kDigits[static_cast<unsigned char>(c) & 0x0f]);
  }
  return out;
}

std::string BedrockEvent(const std::string& event_type, const std::string& payload) {
  return EncodeEventStreamMessage(
      {StringHeader(":event-type", event_type), StringHeader(":content-type", "application/json"),
       StringHeader(":message-type", "event")},
      payload);
}

std::vector<EventStreamHeader> EveryHeaderType() {
  std::vector<EventStreamHeader> headers;
  auto add = [&](const char* name, EventStreamValueType type, int64_t number, std::string text) {
    EventStreamHeader header;
    header.name = name;
    header.type = type;
    header.int_value = number;
    header.text = std::move(text);
    headers.push_back(header);
  };
  add("t", EventStreamValueType::kBoolTrue, 1, "");
  add("f", EventStreamValueType::kBoolFalse, 0, "");
  add("byte", EventStreamValueType::kByte, -7, "");
  add("short", EventStreamValueType::kShort, -12345, "");
  add("int", EventStreamValueType::kInt, 2000000000, "");
  add("long", EventStreamValueType::kLong, -9000000000000LL, "");
  add("bytes", EventStreamValueType::kBytes, 0, std::string("\x00\x01\xff", 3));
  add("string", EventStreamValueType::kString, 0, "héllo");
  add("ts", EventStreamValueType::kTimestamp, 1735787045123LL, "");
  add("uuid", EventStreamValueType::kUuid, 0, FromHex("00112233445566778899aabbccddeeff"));
  return headers;
}

struct Decoded {
  std::vector<EventStreamMessage> messages;
  Status feed = Status::kOk;
  Status finish = Status::kOk;
};

Decoded DecodeSplit(const std::string& stream, const std::vector<size_t>& cuts) {
  Decoded out;
  EventStreamDecoder decoder;
  size_t from = 0;
  std::vector<size_t> points = cuts;
  points.push_back(stream.size());
  for (size_t to : points) {
    const Status status =
        decoder.Feed(std::string_view(stream).substr(from, to - from),
                     [&](const EventStreamMessage& m) { out.messages.push_back(m); });
    if (status != Status::kOk && out.feed == Status::kOk) {
      out.feed = status;
    }
    from = to;
  }
  out.finish = decoder.Finish();
  return out;
}

TEST_CASE("event stream: encodes the real first ConverseStream frame byte for byte") {
  // protocols.md §4.3 (pydantic-ai fixture): 143 bytes, prelude CRC d3f1c8f2, message CRC c16b710b.
  const std::string frame =
      BedrockEvent("messageStart", R"({"p":"abcdefghijklmnopqr","role":"assistant"})");
  REQUIRE(frame.size() == 143);
  CHECK(ToHex(frame.substr(0, 12)) == "0000008f00000052d3f1c8f2");
  CHECK(ToHex(frame.substr(139)) == "c16b710b");

  const Decoded decoded = DecodeSplit(frame, {});
  REQUIRE(decoded.messages.size() == 1);
  const EventStreamMessage& message = decoded.messages[0];
  CHECK(message.message_type == "event");
  CHECK(message.event_type == "messageStart");
  CHECK(message.content_type == "application/json");
  CHECK(message.payload == R"({"p":"abcdefghijklmnopqr","role":"assistant"})");
  CHECK(decoded.finish == Status::kOk);
}

TEST_CASE("event stream: CRC-32 is zlib's") {
  CHECK(Crc32("") == 0U);
  CHECK(Crc32("123456789") == 0xCBF43926U);
  CHECK(Crc32("56789", Crc32("1234")) == 0xCBF43926U);
}

TEST_CASE("event stream: every header type round-trips, and every split decodes the same") {
  std::string stream = EncodeEventStreamMessage(EveryHeaderType(), "payload-1");
  stream += BedrockEvent("contentBlockDelta", R"({"delta":{"text":"OK"}})");
  stream += EncodeEventStreamMessage({}, "");  // the smallest message: 16 bytes
  const Decoded whole = DecodeSplit(stream, {});
  REQUIRE(whole.messages.size() == 3);
  const EventStreamMessage& first = whole.messages[0];
  const std::vector<EventStreamHeader> expected = EveryHeaderType();
  REQUIRE(first.headers.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(expected[i].name);
    CHECK(first.headers[i].name == expected[i].name);
    CHECK(first.headers[i].type == expected[i].type);
    CHECK(first.headers[i].int_value == expected[i].int_value);
    CHECK(first.headers[i].text == expected[i].text);
  }
  CHECK(first.payload == "payload-1");
  CHECK(whole.messages[1].event_type == "contentBlockDelta");
  CHECK(whole.messages[2].headers.empty());
  CHECK(whole.messages[2].payload.empty());

  for (size_t cut = 1; cut < stream.size(); ++cut) {
    CAPTURE(cut);
    const Decoded split = DecodeSplit(stream, {cut});
    REQUIRE(split.messages.size() == 3);
    CHECK(split.feed == Status::kOk);
    CHECK(split.finish == Status::kOk);
    CHECK(split.messages[1].payload == whole.messages[1].payload);
    CHECK(split.messages[0].headers.size() == expected.size());
  }
  std::vector<size_t> every_byte;
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    every_byte.push_back(cut);
  }
  const Decoded bytewise = DecodeSplit(stream, every_byte);
  CHECK(bytewise.messages.size() == 3);
  CHECK(bytewise.finish == Status::kOk);
}

TEST_CASE("event stream: a corrupted prelude CRC is reported before the body arrives") {
  std::string frame = BedrockEvent("messageStart", R"({"role":"assistant"})");
  frame[9] = static_cast<char>(frame[9] ^ 0x01);
  EventStreamDecoder decoder;
  int messages = 0;
  // Only the prelude: the decoder must not wait for the announced length.
  CHECK(decoder.Feed(std::string_view(frame).substr(0, 12), [&](const auto&) { ++messages; }) ==
        Status::kBadPreludeCrc);
  CHECK(decoder.Feed(std::string_view(frame).substr(12), [&](const auto&) { ++messages; }) ==
        Status::kBadPreludeCrc);
  CHECK(messages == 0);

  // A corrupted length is caught by the same CRC.
  std::string bad_length = BedrockEvent("messageStart", "{}");
  bad_length[1] = 0x7f;
  CHECK(DecodeSplit(bad_length, {}).feed == Status::kBadPreludeCrc);
}

TEST_CASE("event stream: a corrupted message CRC or payload is reported, at every split") {
  const std::string good = BedrockEvent("contentBlockDelta", R"({"delta":{"text":"OK"}})");
  std::string bad_payload = good;
  bad_payload[good.size() - 8] = static_cast<char>(bad_payload[good.size() - 8] ^ 0x20);
  std::string bad_crc = good;
  bad_crc.back() = static_cast<char>(bad_crc.back() ^ 0x01);
  for (const std::string* frame : {&bad_payload, &bad_crc}) {
    const std::string stream = good + *frame + good;
    for (size_t cut = 1; cut < stream.size(); cut += 7) {
      CAPTURE(cut);
      const Decoded decoded = DecodeSplit(stream, {cut});
      CHECK(decoded.feed == Status::kBadMessageCrc);
      CHECK(decoded.messages.size() == 1);  // the frame before; nothing after the damage
      CHECK(decoded.finish == Status::kBadMessageCrc);
    }
  }
}

TEST_CASE("event stream: a stream that ends mid-frame is truncated, at every length") {
  const std::string frame = BedrockEvent("messageStop", R"({"stopReason":"end_turn"})");
  const std::string stream = BedrockEvent("messageStart", "{}") + frame;
  const size_t first = stream.size() - frame.size();
  for (size_t length = first + 1; length < stream.size(); ++length) {
    CAPTURE(length);
    const Decoded decoded = DecodeSplit(stream.substr(0, length), {});
    CHECK(decoded.messages.size() == 1);
    CHECK(decoded.feed == Status::kOk);
    CHECK(decoded.finish == Status::kTruncated);
  }
  CHECK(DecodeSplit(stream, {}).finish == Status::kOk);
}

TEST_CASE("event stream: lengths are bounded") {
  const std::string frame = EncodeEventStreamMessage({}, std::string(1000, 'x'));
  EventStreamDecoder small(512);
  CHECK(small.Feed(frame, [](const auto&) {}) == Status::kBadLength);

  // A prelude claiming more than the cap, with a valid CRC, fails at once.
  std::string prelude = FromHex("7fffffff00000000");
  const uint32_t crc = Crc32(prelude);
  for (int shift = 24; shift >= 0; shift -= 8) {
    prelude.push_back(static_cast<char>((crc >> shift) & 0xffU));
  }
  EventStreamDecoder decoder;
  CHECK(decoder.Feed(prelude, [](const auto&) {}) == Status::kBadLength);

  // Headers longer than the message.
  std::string headers_too_long = FromHex("0000001000000001");
  const uint32_t crc2 = Crc32(headers_too_long);
  for (int shift = 24; shift >= 0; shift -= 8) {
    headers_too_long.push_back(static_cast<char>((crc2 >> shift) & 0xffU));
  }
  headers_too_long += std::string(4, '\0');
  EventStreamDecoder decoder2;
  CHECK(decoder2.Feed(headers_too_long, [](const auto&) {}) == Status::kBadLength);
}

// A frame with valid CRCs around an arbitrary header block.
std::string FrameWithHeaderBlock(const std::string& block, const std::string& payload) {
  std::string out;
  auto put32 = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((v >> shift) & 0xffU));
    }
  };
  put32(static_cast<uint32_t>(16 + block.size() + payload.size()));
  put32(static_cast<uint32_t>(block.size()));
  put32(Crc32(out));
  out += block + payload;
  put32(Crc32(out));
  return out;
}

TEST_CASE("event stream: malformed header blocks are reported") {
  // A string header whose length runs past the block.
  CHECK(DecodeSplit(FrameWithHeaderBlock(std::string("\x01x\x07\x00\x09"
                                                     "abc",
                                                     8),
                                         "{}"),
                    {})
            .feed == Status::kBadHeaders);
  // An unknown value type.
  CHECK(DecodeSplit(FrameWithHeaderBlock(std::string("\x01x\x0a", 3), "{}"), {}).feed ==
        Status::kBadHeaders);
  // A name with no room for its type byte.
  CHECK(DecodeSplit(FrameWithHeaderBlock(std::string("\x05"
                                                     "ab",
                                                     3),
                                         "{}"),
                    {})
            .feed == Status::kBadHeaders);
  // A duplicated header name (botocore's DuplicateHeader).
  CHECK(DecodeSplit(EncodeEventStreamMessage({StringHeader("a", "1"), StringHeader("a", "2")}, ""),
                    {})
            .feed == Status::kBadHeaders);
}

// `count` boolean headers named h0, h1, ... (plus `last` when given), as one header block.
std::string BoolHeaderBlock(size_t count, const std::string& last = "") {
  std::string block;
  auto add = [&](const std::string& name) {
    block.push_back(static_cast<char>(name.size()));
    block += name;
    block.push_back(static_cast<char>(EventStreamValueType::kBoolTrue));
  };
  for (size_t i = 0; i < count; ++i) {
    add("h" + std::to_string(i));
  }
  if (!last.empty()) {
    add(last);
  }
  return block;
}

TEST_CASE("event stream: the header count per frame is bounded, duplicates found in one pass") {
  using Decoder = EventStreamDecoder;
  // 100k distinct headers in one frame (800 KB, under the length cap): the duplicate search used
  // to be quadratic (13 s of CPU); it is refused as malformed headers now.
  const std::string hostile = FrameWithHeaderBlock(BoolHeaderBlock(100'000), "{}");
  REQUIRE(hostile.size() < Decoder::kMaxMessageBytes);
  const Decoded refused = DecodeSplit(hostile, {});
  CHECK(refused.feed == Status::kBadHeaders);
  CHECK(refused.messages.empty());

  // Up to the cap a frame decodes, headers in order.
  const Decoded full =
      DecodeSplit(FrameWithHeaderBlock(BoolHeaderBlock(Decoder::kMaxHeadersPerMessage), "{}"), {});
  CHECK(full.feed == Status::kOk);
  REQUIRE(full.messages.size() == 1);
  CHECK(full.messages[0].headers.size() == Decoder::kMaxHeadersPerMessage);
  CHECK(full.messages[0].headers.back().name ==
        "h" + std::to_string(Decoder::kMaxHeadersPerMessage - 1));
  // One over the cap is refused; a duplicate of the first name as the last header is still found.
  CHECK(DecodeSplit(FrameWithHeaderBlock(BoolHeaderBlock(Decoder::kMaxHeadersPerMessage, "x"), ""),
                    {})
            .feed == Status::kBadHeaders);
  CHECK(DecodeSplit(
            FrameWithHeaderBlock(BoolHeaderBlock(Decoder::kMaxHeadersPerMessage - 1, "h0"), ""), {})
            .feed == Status::kBadHeaders);
}

TEST_CASE("event stream: exception and error frames are read by their headers") {
  const std::string exception = EncodeEventStreamMessage(
      {StringHeader(":exception-type", "throttlingException"),
       StringHeader(":content-type", "application/json"),
       StringHeader(":message-type", "exception")},
      R"({"message":"Too many requests, please wait before trying again."})");
  const std::string error =
      EncodeEventStreamMessage({StringHeader(":error-code", "InternalFailure"),
                                StringHeader(":error-message", "An internal error occurred"),
                                StringHeader(":message-type", "error")},
                               "");
  const Decoded decoded = DecodeSplit(exception + error, {});
  REQUIRE(decoded.messages.size() == 2);
  CHECK(decoded.messages[0].message_type == "exception");
  CHECK(decoded.messages[0].exception_type == "throttlingException");
  CHECK(decoded.messages[0].event_type.empty());
  CHECK(decoded.messages[1].message_type == "error");
  CHECK(decoded.messages[1].error_code == "InternalFailure");
  CHECK(decoded.messages[1].error_message == "An internal error occurred");
}

// Debian's python3-botocore decodes the frames we encode; it checks both CRCs itself.
constexpr const char* kBotocoreDecoder = R"PY(
import base64, json, sys, uuid
from botocore.eventstream import EventStreamBuffer
buffer = EventStreamBuffer()
buffer.add_data(bytes.fromhex(open(sys.argv[1]).read()))
out = []
for message in buffer:
    headers = {}
    for name, value in message.headers.items():
        if isinstance(value, bool):
            headers[name] = ["bool", value]
        elif isinstance(value, int):
            headers[name] = ["int", value]
        elif isinstance(value, (bytes, bytearray)):
            headers[name] = ["bytes", value.hex()]
        elif isinstance(value, uuid.UUID):
            headers[name] = ["bytes", value.bytes.hex()]
        else:
            headers[name] = ["str", str(value)]
    out.append({"headers": headers, "payload": message.payload.hex()})
print(json.dumps(out))
)PY";

TEST_CASE("event stream: botocore decodes what we encode (every header type)") {
  const std::string stream =
      EncodeEventStreamMessage(EveryHeaderType(), "payload-1") +
      BedrockEvent("messageStart", R"({"p":"abcdefghijklmnopqr","role":"assistant"})") +
      EncodeEventStreamMessage({}, "");
  const std::optional<std::string> output =
      testing::RunPythonOracle(kBotocoreDecoder, ToHex(stream));
  REQUIRE_MESSAGE(output, "python3-botocore oracle failed to run");
  const nlohmann::json messages = nlohmann::json::parse(*output);
  REQUIRE(messages.size() == 3);
  const nlohmann::json& headers = messages[0]["headers"];
  CHECK(headers["t"] == nlohmann::json::array({"bool", true}));
  CHECK(headers["f"] == nlohmann::json::array({"bool", false}));
  CHECK(headers["byte"] == nlohmann::json::array({"int", -7}));
  CHECK(headers["short"] == nlohmann::json::array({"int", -12345}));
  CHECK(headers["int"] == nlohmann::json::array({"int", 2000000000}));
  CHECK(headers["long"] == nlohmann::json::array({"int", -9000000000000LL}));
  CHECK(headers["bytes"] == nlohmann::json::array({"bytes", "0001ff"}));
  CHECK(headers["string"] == nlohmann::json::array({"str", "héllo"}));
  CHECK(headers["ts"] == nlohmann::json::array({"int", 1735787045123LL}));
  CHECK(headers["uuid"] == nlohmann::json::array({"bytes", "00112233445566778899aabbccddeeff"}));
  CHECK(messages[0]["payload"] == ToHex("payload-1"));
  CHECK(messages[1]["headers"][":event-type"] == nlohmann::json::array({"str", "messageStart"}));
  CHECK(messages[2]["headers"].empty());
}

}  // namespace
}  // namespace modelpulse::collector
