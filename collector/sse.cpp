#include "collector/internal/sse.h"

#include <algorithm>
#include <charconv>

namespace modelpulse::collector {

SseDecoder::Status SseDecoder::Feed(std::string_view bytes, const EventCallback& on_event) {
  size_t pos = 0;
  while (pos < bytes.size() && status_ == Status::kOk) {
    if (after_cr_) {
      after_cr_ = false;
      if (bytes[pos] == '\n') {
        ++pos;
        continue;
      }
    }
    // One pass over the bytes for either line end (find_first_of calls memchr once per byte).
    const char* const first = bytes.data() + pos;
    const char* const last = bytes.data() + bytes.size();
    const char* const hit =
        std::find_if(first, last, [](char c) { return c == '\n' || c == '\r'; });
    const size_t end =
        hit == last ? std::string_view::npos : static_cast<size_t>(hit - bytes.data());
    const size_t stop = end == std::string_view::npos ? bytes.size() : end;
    if (line_.size() + (stop - pos) > max_line_bytes_) {
      status_ = Status::kLineTooLong;
      line_.clear();
      break;
    }
    if (end == std::string_view::npos) {
      line_.append(bytes.substr(pos));
      break;
    }
    after_cr_ = bytes[end] == '\r';
    if (line_.empty()) {
      ProcessLine(bytes.substr(pos, end - pos), on_event);
    } else {
      line_.append(bytes.substr(pos, end - pos));
      std::string line;
      line.swap(line_);
      ProcessLine(line, on_event);
    }
    pos = end + 1;
  }
  return status_;
}

void SseDecoder::ProcessLine(std::string_view line, const EventCallback& on_event) {
  if (at_start_) {
    at_start_ = false;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") {
      line.remove_prefix(3);
    }
  }
  if (line.empty()) {
    // Dispatch. An event without data only resets the buffers.
    if (has_data_) {
      event_.data.swap(data_);
      on_event(event_);
      event_.data.clear();
    }
    data_.clear();
    has_data_ = false;
    event_.type.clear();
    event_.retry_ms.reset();
    return;
  }
  if (line.front() == ':') {
    ++comment_count_;
    return;
  }
  std::string_view field = line;
  std::string_view value;
  if (const size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_event_bytes_) {
      status_ = Status::kEventTooLarge;
      data_.clear();
      has_data_ = false;
      return;
    }
    if (has_data_) {
      data_ += '\n';
    }
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.type.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      event_.id.assign(value);
    }
  } else if (field == "retry") {
    int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), ms);
    if (ec == std::errc() && ptr == value.data() + value.size() && !value.empty() &&
        value.front() != '-') {
      event_.retry_ms = ms;
    }
  }
  // Unknown fields are ignored, as the spec says.
}

}  // namespace modelpulse::collector
