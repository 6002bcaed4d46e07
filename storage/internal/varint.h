#ifndef MODELPULSE_STORAGE_INTERNAL_VARINT_H_
#define MODELPULSE_STORAGE_INTERNAL_VARINT_H_

// Private to storage/: LEB128 varints (7 bits a byte, low first) for the compact BLOBs of the
// sketches (ddsketch.cpp) and the summaries' down minutes (summary.cpp).

#include <cstdint>
#include <string>
#include <string_view>

namespace modelpulse::storage {

inline void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads one varint from the front of `in` and drops it; false when `in` ends inside one or it
// runs past 64 bits (bytes PutVarint cannot produce).
inline bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) {
      return false;
    }
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_INTERNAL_VARINT_H_
