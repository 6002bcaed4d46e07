#include "collector/internal/eventstream.h"

#include <algorithm>
#include <array>
#include <string>
#include <unordered_set>
#include <utility>

namespace modelpulse::collector {
namespace {

constexpr size_t kPreludeBytes = kEventStreamPreludeBytes;
constexpr size_t kMinMessageBytes = 16;  // prelude + message CRC, no headers, no payload

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    }
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

uint32_t ReadU32(std::string_view bytes, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + 3]));
}

// Big-endian signed integer of `size` bytes.
int64_t ReadSigned(std::string_view bytes, size_t at, size_t size) {
  uint64_t value = 0;
  for (size_t i = 0; i < size; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + i]);
  }
  if (size < 8 && (value & (uint64_t{1} << (size * 8 - 1))) != 0) {
    value |= ~uint64_t{0} << (size * 8);  // sign-extend
  }
  return static_cast<int64_t>(value);
}

void AppendBigEndian(std::string& out, uint64_t value, size_t size) {
  for (size_t i = size; i > 0; --i) {
    out.push_back(static_cast<char>((value >> ((i - 1) * 8)) & 0xFFU));
  }
}

size_t FixedValueSize(EventStreamValueType type) {
  switch (type) {
    case EventStreamValueType::kBoolTrue:
    case EventStreamValueType::kBoolFalse:
      return 0;
    case EventStreamValueType::kByte:
      return 1;
    case EventStreamValueType::kShort:
      return 2;
    case EventStreamValueType::kInt:
      return 4;
    case EventStreamValueType::kLong:
    case EventStreamValueType::kTimestamp:
      return 8;
    case EventStreamValueType::kUuid:
      return 16;
    case EventStreamValueType::kBytes:
    case EventStreamValueType::kString:
      return 0;
  }
  return 0;
}

}  // namespace

const EventStreamHeader* EventStreamMessage::Find(std::string_view name) const {
  for (const EventStreamHeader& header : headers) {
    if (header.name == name) {
      return &header;
    }
  }
  return nullptr;
}

bool IsEventStreamPrelude(std::string_view head) {
  return head.size() >= kPreludeBytes && Crc32(head.substr(0, 8)) == ReadU32(head, 8);
}

uint32_t Crc32(std::string_view data, uint32_t crc) {
  crc = ~crc;
  for (char c : data) {
    crc = kCrcTable[(crc ^ static_cast<unsigned char>(c)) & 0xFFU] ^ (crc >> 8);
  }
  return ~crc;
}

EventStreamHeader StringHeader(std::string name, std::string value) {
  EventStreamHeader header;
  header.name = std::move(name);
  header.type = EventStreamValueType::kString;
  header.text = std::move(value);
  return header;
}

std::string EncodeEventStreamMessage(const std::vector<EventStreamHeader>& headers,
                                     std::string_view payload) {
  std::string block;
  for (const EventStreamHeader& header : headers) {
    block.push_back(static_cast<char>(header.name.size()));
    block += header.name;
    block.push_back(static_cast<char>(header.type));
    switch (header.type) {
      case EventStreamValueType::kBoolTrue:
      case EventStreamValueType::kBoolFalse:
        break;
      case EventStreamValueType::kByte:
      case EventStreamValueType::kShort:
      case EventStreamValueType::kInt:
      case EventStreamValueType::kLong:
      case EventStreamValueType::kTimestamp:
        AppendBigEndian(block, static_cast<uint64_t>(header.int_value),
                        FixedValueSize(header.type));
        break;
      case EventStreamValueType::kUuid: {
        std::string uuid = header.text.substr(0, 16);
        uuid.resize(16, '\0');
        block += uuid;
        break;
      }
      case EventStreamValueType::kBytes:
      case EventStreamValueType::kString:
        AppendBigEndian(block, header.text.size(), 2);
        block += header.text;
        break;
    }
  }
  const size_t total = kMinMessageBytes + block.size() + payload.size();
  std::string out;
  out.reserve(total);
  AppendBigEndian(out, total, 4);
  AppendBigEndian(out, block.size(), 4);
  AppendBigEndian(out, Crc32(out), 4);
  out += block;
  out += payload;
  AppendBigEndian(out, Crc32(out), 4);
  return out;
}

EventStreamDecoder::EventStreamDecoder(size_t max_message_bytes)
    : max_message_bytes_(std::min(max_message_bytes, kMaxMessageBytes)) {}

std::string_view EventStreamDecoder::Describe(Status status) {
  switch (status) {
    case Status::kOk:
      return "ok";
    case Status::kBadPreludeCrc:
      return "event stream prelude CRC mismatch";
    case Status::kBadMessageCrc:
      return "event stream message CRC mismatch";
    case Status::kBadLength:
      return "event stream frame length invalid or over the limit";
    case Status::kBadHeaders:
      return "event stream frame headers malformed";
    case Status::kTruncated:
      return "event stream ended mid-frame (truncated)";
  }
  return "event stream error";
}

EventStreamDecoder::Status EventStreamDecoder::Feed(
    std::string_view bytes, const std::function<void(const EventStreamMessage&)>& on_message) {
  if (failed_ != Status::kOk) {
    return failed_;
  }
  buffer_.append(bytes);
  size_t offset = 0;
  while (buffer_.size() - offset >= kPreludeBytes) {
    const std::string_view rest = std::string_view(buffer_).substr(offset);
    // The prelude is checked before waiting for the body, so a corrupted length is reported at
    // once instead of stalling until the connection times out.
    if (Crc32(rest.substr(0, 8)) != ReadU32(rest, 8)) {
      failed_ = Status::kBadPreludeCrc;
      break;
    }
    const uint32_t total = ReadU32(rest, 0);
    const uint32_t headers_length = ReadU32(rest, 4);
    if (total < kMinMessageBytes || total > max_message_bytes_ ||
        headers_length > total - kMinMessageBytes) {
      failed_ = Status::kBadLength;
      break;
    }
    if (rest.size() < total) {
      break;
    }
    EventStreamMessage message;
    const Status status = DecodeOne(rest.substr(0, total), message);
    if (status != Status::kOk) {
      failed_ = status;
      break;
    }
    offset += total;
    on_message(message);
  }
  buffer_.erase(0, offset);
  if (failed_ != Status::kOk) {
    buffer_.clear();
  }
  return failed_;
}

EventStreamDecoder::Status EventStreamDecoder::Finish() {
  if (failed_ != Status::kOk) {
    return failed_;
  }
  if (!buffer_.empty()) {
    failed_ = Status::kTruncated;
    buffer_.clear();
  }
  return failed_;
}

EventStreamDecoder::Status EventStreamDecoder::DecodeOne(std::string_view frame,
                                                         EventStreamMessage& message) const {
  const size_t total = frame.size();
  if (Crc32(frame.substr(0, total - 4)) != ReadU32(frame, total - 4)) {
    return Status::kBadMessageCrc;
  }
  const size_t headers_length = ReadU32(frame, 4);
  const std::string_view block = frame.substr(kPreludeBytes, headers_length);
  // Names seen so far, viewing `frame`: the duplicate check stays linear in the block's size.
  std::unordered_set<std::string_view> names;
  size_t at = 0;
  while (at < block.size()) {
    if (message.headers.size() == kMaxHeadersPerMessage) {
      return Status::kBadHeaders;
    }
    EventStreamHeader header;
    const size_t name_length = static_cast<unsigned char>(block[at]);
    ++at;
    if (name_length == 0 || block.size() - at < name_length + 1) {
      return Status::kBadHeaders;
    }
    const std::string_view name = block.substr(at, name_length);
    if (!names.insert(name).second) {
      return Status::kBadHeaders;  // botocore: DuplicateHeader
    }
    header.name = std::string(name);
    at += name_length;
    const auto raw_type = static_cast<unsigned char>(block[at]);
    ++at;
    if (raw_type > static_cast<unsigned char>(EventStreamValueType::kUuid)) {
      return Status::kBadHeaders;
    }
    header.type = static_cast<EventStreamValueType>(raw_type);
    switch (header.type) {
      case EventStreamValueType::kBoolTrue:
        header.int_value = 1;
        break;
      case EventStreamValueType::kBoolFalse:
        header.int_value = 0;
        break;
      case EventStreamValueType::kByte:
      case EventStreamValueType::kShort:
      case EventStreamValueType::kInt:
      case EventStreamValueType::kLong:
      case EventStreamValueType::kTimestamp: {
        const size_t size = FixedValueSize(header.type);
        if (block.size() - at < size) {
          return Status::kBadHeaders;
        }
        header.int_value = ReadSigned(block, at, size);
        at += size;
        break;
      }
      case EventStreamValueType::kUuid:
        if (block.size() - at < 16) {
          return Status::kBadHeaders;
        }
        header.text = std::string(block.substr(at, 16));
        at += 16;
        break;
      case EventStreamValueType::kBytes:
      case EventStreamValueType::kString: {
        if (block.size() - at < 2) {
          return Status::kBadHeaders;
        }
        const size_t length = static_cast<size_t>(ReadSigned(block, at, 2)) & 0xFFFFU;
        at += 2;
        if (block.size() - at < length) {
          return Status::kBadHeaders;
        }
        header.text = std::string(block.substr(at, length));
        at += length;
        break;
      }
    }
    message.headers.push_back(std::move(header));
  }
  message.payload = std::string(
      frame.substr(kPreludeBytes + headers_length, total - kMinMessageBytes - headers_length));
  auto text_of = [&](std::string_view name) -> std::string {
    const EventStreamHeader* header = message.Find(name);
    if (header == nullptr || (header->type != EventStreamValueType::kString &&
                              header->type != EventStreamValueType::kBytes)) {
      return {};
    }
    return header->text;
  };
  message.message_type = text_of(":message-type");
  message.event_type = text_of(":event-type");
  message.exception_type = text_of(":exception-type");
  message.content_type = text_of(":content-type");
  message.error_code = text_of(":error-code");
  message.error_message = text_of(":error-message");
  return Status::kOk;
}

}  // namespace modelpulse::collector
