#ifndef MODELPULSE_COLLECTOR_INTERNAL_SSE_H_
#define MODELPULSE_COLLECTOR_INTERNAL_SSE_H_

// An incremental WHATWG "text/event-stream" decoder
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// Private to the collector. Not thread-safe; one per stream.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace modelpulse::collector {

struct SseEvent {
  std::string type;                 // the event: field; empty means the default "message"
  std::string data;                 // data: lines joined with '\n'
  std::string id;                   // the last event id seen so far
  std::optional<int64_t> retry_ms;  // a retry: field in this event, if any
};

class SseDecoder {
 public:
  enum class Status { kOk, kLineTooLong, kEventTooLarge };

  using EventCallback = std::function<void(const SseEvent&)>;

  // Lines longer than max_line_bytes, or events whose data exceeds max_event_bytes, put the
  // decoder into a failed state: it reports the status and ignores further input.
  SseDecoder(size_t max_line_bytes, size_t max_event_bytes)
      : max_line_bytes_(max_line_bytes), max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`, split anywhere (a "\r\n" split across two calls counts once), and calls
  // `on_event` for each dispatched event. Returns the decoder's status after this call.
  Status Feed(std::string_view bytes, const EventCallback& on_event);

  // End of stream. Per the spec an event not terminated by a blank line is discarded.
  void Finish() { line_.clear(); }

  Status status() const { return status_; }
  int64_t comment_count() const { return comment_count_; }

 private:
  void ProcessLine(std::string_view line, const EventCallback& on_event);

  const size_t max_line_bytes_;
  const size_t max_event_bytes_;
  Status status_ = Status::kOk;
  std::string line_;       // the incomplete current line
  bool after_cr_ = false;  // the previous byte was '\r': skip one '\n'
  bool at_start_ = true;   // a leading UTF-8 BOM is ignored
  std::string data_;
  bool has_data_ = false;
  SseEvent event_;
  int64_t comment_count_ = 0;
};

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_SSE_H_
