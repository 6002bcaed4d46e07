#include "collector/internal/sse.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace modelpulse::collector {
namespace {

struct Seen {
  std::string type;
  std::string data;
  std::string id;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> DecodePieces(const std::vector<std::string_view>& pieces) {
  std::vector<Seen> out;
  SseDecoder decoder(1 << 20, 1 << 20);
  for (std::string_view piece : pieces) {
    decoder.Feed(piece, [&](const SseEvent& e) { out.push_back({e.type, e.data, e.id}); });
  }
  decoder.Finish();
  return out;
}

// Decodes `text` whole, split at every byte boundary, and byte by byte; all must agree.
std::vector<Seen> DecodeEverySplit(std::string_view text) {
  const std::vector<Seen> whole = DecodePieces({text});
  for (size_t i = 0; i <= text.size(); ++i) {
    CAPTURE(i);
    REQUIRE(DecodePieces({text.substr(0, i), text.substr(i)}) == whole);
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) {
    bytes.push_back(text.substr(i, 1));
  }
  REQUIRE(DecodePieces(bytes) == whole);
  return whole;
}

std::string ReplaceNewlines(std::string_view text, std::string_view with) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += with;
    } else {
      out += c;
    }
  }
  return out;
}

// protocols.md §1, the recorded OpenAI stream (trimmed ids).
constexpr std::string_view kOpenAIStream =
    "data: "
    "{\"id\":\"chatcmpl-E4Rj\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"finish_reason\":null}],"
    "\"usage\":null,\"obfuscation\":\"CVQ55DocFW\"}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Paris\"},\"finish_reason\":null}],"
    "\"usage\":null,\"obfuscation\":\"EeXxvZr\"}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":13,\"completion_tokens\":11,"
    "\"total_tokens\":24}}\n\n"
    "data: [DONE]\n\n";

// protocols.md §7: OpenRouter sends comment keep-alives before the first data line.
constexpr std::string_view kOpenRouterStream =
    ": OPENROUTER PROCESSING\n\n"
    ": OPENROUTER PROCESSING\n\n"
    "data: {\"id\":\"gen-1\",\"choices\":[{\"delta\":{\"content\":\"OK\"}}]}\n\n"
    ": OPENROUTER PROCESSING\n"
    "data: {\"id\":\"gen-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,"
    "\"cost\":0.00001}}\n\n"
    "data: [DONE]\n\n";

TEST_CASE("SSE: the recorded OpenAI stream decodes the same at every split") {
  const std::vector<Seen> events = DecodeEverySplit(kOpenAIStream);
  REQUIRE(events.size() == 5);
  CHECK(events[1].data.find("\"Paris\"") != std::string::npos);
  CHECK(events[4].data == "[DONE]");
  CHECK(events[0].type.empty());
}

TEST_CASE("SSE: OpenRouter keep-alive comments are not events") {
  const std::vector<Seen> events = DecodeEverySplit(kOpenRouterStream);
  REQUIRE(events.size() == 3);
  CHECK(events[0].data.find("\"OK\"") != std::string::npos);
  CHECK(events[2].data == "[DONE]");
  SseDecoder decoder(1024, 1024);
  decoder.Feed(kOpenRouterStream, [](const SseEvent&) {});
  CHECK(decoder.comment_count() == 3);
}

TEST_CASE("SSE: \\r\\n and \\r line ends give the same events as \\n") {
  for (std::string_view stream : {kOpenAIStream, kOpenRouterStream}) {
    const std::vector<Seen> lf = DecodePieces({stream});
    CHECK(DecodeEverySplit(ReplaceNewlines(stream, "\r\n")) == lf);
    CHECK(DecodeEverySplit(ReplaceNewlines(stream, "\r")) == lf);
  }
}

TEST_CASE("SSE: fields, multi-line data, ids, retry and the unterminated tail") {
  const std::string text =
      "\xEF\xBB\xBF"
      "event: message_start\n"
      "id: 7\n"
      "retry: 1500\n"
      "data: line one\n"
      "data:line two\n"
      "unknown: ignored\n"
      "\n"
      "event: ping\n"
      "\n"  // no data: not dispatched, and the event name is reset
      "data\n"
      "\n"
      "data: tail without blank line";
  std::vector<Seen> events = DecodeEverySplit(text);
  REQUIRE(events.size() == 2);
  CHECK(events[0] == Seen{"message_start", "line one\nline two", "7"});
  CHECK(events[1] == Seen{"", "", "7"});

  SseDecoder decoder(1024, 1024);
  std::optional<int64_t> retry;
  decoder.Feed("retry: 1500\ndata: x\n\n", [&](const SseEvent& e) { retry = e.retry_ms; });
  CHECK(retry == 1500);
}

TEST_CASE("SSE: over-long lines and events stop the decoder instead of growing") {
  SseDecoder lines(64, 1024);
  const std::string long_line = "data: " + std::string(100, 'x');
  int dispatched = 0;
  CHECK(lines.Feed(long_line, [&](const SseEvent&) { ++dispatched; }) ==
        SseDecoder::Status::kLineTooLong);
  CHECK(lines.Feed("\n\ndata: y\n\n", [&](const SseEvent&) { ++dispatched; }) ==
        SseDecoder::Status::kLineTooLong);
  CHECK(dispatched == 0);

  SseDecoder events(64, 100);
  SseDecoder::Status status = SseDecoder::Status::kOk;
  for (int i = 0; i < 10 && status == SseDecoder::Status::kOk; ++i) {
    status =
        events.Feed("data: 0123456789012345678901234567890123456789\n", [](const SseEvent&) {});
  }
  CHECK(status == SseDecoder::Status::kEventTooLarge);
}

}  // namespace
}  // namespace modelpulse::collector
