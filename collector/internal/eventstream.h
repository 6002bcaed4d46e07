#ifndef MODELPULSE_COLLECTOR_INTERNAL_EVENTSTREAM_H_
#define MODELPULSE_COLLECTOR_INTERNAL_EVENTSTREAM_H_

// application/vnd.amazon.eventstream: the binary framing of Bedrock's streamed responses
// (protocols.md §4.3). An incremental decoder that checks both CRCs and bounds every length, and
// an encoder for tests and the simulator. Private to the collector. Not thread-safe.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace modelpulse::collector {

enum class EventStreamValueType : uint8_t {
  kBoolTrue = 0,
  kBoolFalse = 1,
  kByte = 2,
  kShort = 3,
  kInt = 4,
  kLong = 5,
  kBytes = 6,
  kString = 7,
  kTimestamp = 8,  // milliseconds since the epoch
  kUuid = 9,       // 16 raw bytes
};

struct EventStreamHeader {
  std::string name;
  EventStreamValueType type = EventStreamValueType::kString;
  int64_t int_value = 0;  // kByte, kShort, kInt, kLong, kTimestamp
  std::string text;       // kBytes, kString, kUuid
};

struct EventStreamMessage {
  std::vector<EventStreamHeader> headers;
  std::string payload;
  // The string headers every Bedrock frame is read by; empty when absent.
  std::string message_type;    // :message-type: event, exception or error
  std::string event_type;      // :event-type
  std::string exception_type;  // :exception-type
  std::string content_type;    // :content-type
  std::string error_code;      // :error-code (message_type "error")
  std::string error_message;   // :error-message

  // The header named `name`, or nullptr.
  const EventStreamHeader* Find(std::string_view name) const;
};

inline constexpr size_t kEventStreamPreludeBytes = 12;

// True when `head` starts with a prelude (total length, headers length, CRC of both) whose CRC
// checks, whatever the lengths say; false when shorter than kEventStreamPreludeBytes.
bool IsEventStreamPrelude(std::string_view head);

// Standard CRC-32 (IEEE 802.3, zlib's crc32) of `data`, continuing from `crc`.
uint32_t Crc32(std::string_view data, uint32_t crc = 0);

// One encoded message: prelude, prelude CRC, headers, payload, message CRC.
std::string EncodeEventStreamMessage(const std::vector<EventStreamHeader>& headers,
                                     std::string_view payload);
// A string-valued header, the common case.
EventStreamHeader StringHeader(std::string name, std::string value);

class EventStreamDecoder {
 public:
  enum class Status {
    kOk,
    kBadPreludeCrc,  // the 12-byte prelude does not match its CRC
    kBadMessageCrc,  // the message does not match its CRC
    kBadLength,      // total length under 16, headers longer than the message, or over the cap
    kBadHeaders,     // a header runs past its block, has an unknown type or is duplicated, or
                     // the frame has more than kMaxHeadersPerMessage headers
    kTruncated,      // (Finish only) the stream ended inside a frame
  };
  static constexpr size_t kMaxMessageBytes = 16 * 1024 * 1024;
  // Bedrock's frames carry three to five headers; a frame with thousands is hostile, and each
  // one costs an allocation, so the count is bounded like the lengths are.
  static constexpr size_t kMaxHeadersPerMessage = 256;

  // `max_message_bytes` is capped at kMaxMessageBytes.
  explicit EventStreamDecoder(size_t max_message_bytes = kMaxMessageBytes);

  // Consumes the next bytes (any split) and calls `on_message` for each complete, valid message.
  // After the first failure every later call returns that failure and decodes nothing.
  Status Feed(std::string_view bytes,
              const std::function<void(const EventStreamMessage&)>& on_message);
  // The stream ended: kTruncated when bytes of an unfinished frame are buffered.
  Status Finish();

  static std::string_view Describe(Status status);

 private:
  Status DecodeOne(std::string_view frame, EventStreamMessage& message) const;

  size_t max_message_bytes_;
  std::string buffer_;
  Status failed_ = Status::kOk;
};

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_EVENTSTREAM_H_
