// SseDecoder on arbitrary bytes, fed in chunks whose sizes come from the input's first byte, so
// splits inside "\r\n", the BOM and field names are explored. Invariants: no crash, no event
// larger than the bound, and once failed the decoder stays failed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collector/internal/sse.h"
#include "fuzz/targets.h"

namespace {

using modelpulse::collector::SseDecoder;
using modelpulse::collector::SseEvent;

constexpr size_t kMaxLine = 4096;
constexpr size_t kMaxEvent = 16384;

}  // namespace

int modelpulse::fuzz::Sse(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const size_t chunk = static_cast<size_t>(data[0] % 17) + 1;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  SseDecoder decoder(kMaxLine, kMaxEvent);
  SseDecoder::Status last = SseDecoder::Status::kOk;
  auto on_event = [](const SseEvent& event) {
    if (event.data.size() > kMaxEvent)
      std::abort();
  };
  while (!rest.empty()) {
    const size_t n = rest.size() < chunk ? rest.size() : chunk;
    SseDecoder::Status status = decoder.Feed(rest.substr(0, n), on_event);
    if (last != SseDecoder::Status::kOk && status != last)
      std::abort();
    last = status;
    rest.remove_prefix(n);
  }
  decoder.Finish();
  return 0;
}
