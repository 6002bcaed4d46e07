// EventStreamDecoder on arbitrary bytes in chunks (size from the first byte). Most random frames
// fail their CRC at once, so the second half of the input is also re-framed with valid CRCs
// (EncodeEventStreamMessage over a payload, then the raw rest as headers) to reach the header
// parser. Invariants: no crash; every decoded message is within the size cap; a failure sticks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "collector/internal/eventstream.h"
#include "fuzz/targets.h"

namespace {

using modelpulse::collector::Crc32;
using modelpulse::collector::EventStreamDecoder;
using modelpulse::collector::EventStreamMessage;

constexpr size_t kMaxMessage = 64 * 1024;

void PutBigEndian(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

// A frame with correct lengths and CRCs around `headers` (raw, maybe malformed) and `payload`.
std::string Frame(std::string_view headers, std::string_view payload) {
  std::string out;
  const auto total = static_cast<uint32_t>(16 + headers.size() + payload.size());
  PutBigEndian(out, total);
  PutBigEndian(out, static_cast<uint32_t>(headers.size()));
  PutBigEndian(out, Crc32(out));
  out.append(headers);
  out.append(payload);
  PutBigEndian(out, Crc32(out));
  return out;
}

void Decode(std::string_view bytes, size_t chunk) {
  EventStreamDecoder decoder(kMaxMessage);
  EventStreamDecoder::Status last = EventStreamDecoder::Status::kOk;
  auto on_message = [](const EventStreamMessage& message) {
    if (message.payload.size() > kMaxMessage)
      std::abort();
    if (message.headers.size() > EventStreamDecoder::kMaxHeadersPerMessage)
      std::abort();
  };
  while (!bytes.empty()) {
    const size_t n = bytes.size() < chunk ? bytes.size() : chunk;
    EventStreamDecoder::Status status = decoder.Feed(bytes.substr(0, n), on_message);
    if (last != EventStreamDecoder::Status::kOk && status != last)
      std::abort();
    last = status;
    bytes.remove_prefix(n);
  }
  (void)EventStreamDecoder::Describe(decoder.Finish());
}

}  // namespace

int modelpulse::fuzz::EventStream(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  const size_t chunk = static_cast<size_t>(data[0]) * 7 + 1;
  const size_t split = data[1] % (size - 1);  // headers | payload of the re-framed copy
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  Decode(rest, chunk);
  const size_t cut = split < rest.size() ? split : rest.size();
  std::string framed = Frame(rest.substr(0, cut), rest.substr(cut));
  framed += framed;  // a second frame checks the decoder resumes cleanly after the first
  Decode(framed, chunk);
  (void)modelpulse::collector::IsEventStreamPrelude(rest);
  return 0;
}
