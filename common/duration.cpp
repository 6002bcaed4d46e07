#include "common/duration.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>

namespace modelpulse {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t millis;
};

// Descending, as Prometheus requires; "ms" precedes "m" so the longest suffix wins on lookup.
constexpr std::array<Unit, 8> kPromUnits = {{{"y", 365LL * 24 * 3600 * 1000},
                                             {"w", 7LL * 24 * 3600 * 1000},
                                             {"d", 24LL * 3600 * 1000},
                                             {"h", 3600LL * 1000},
                                             {"m", 60LL * 1000},
                                             {"s", 1000},
                                             {"ms", 1},
                                             {"", 0}}};

Error BadDuration(std::string_view text) {
  return Error::InvalidArgument("not a valid duration: \"" + std::string(text) +
                                "\" (expected e.g. 30s, 5m, 1h30m)");
}

}  // namespace

Result<Millis> ParsePromDuration(std::string_view text) {
  if (text.empty()) {
    return Fail(BadDuration(text));
  }
  int64_t total = 0;
  size_t pos = 0;
  size_t last_unit_index = 0;
  bool any = false;
  while (pos < text.size()) {
    int64_t number = 0;
    auto [ptr, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), number);
    if (ec != std::errc() || ptr == text.data() + pos || number < 0 || text[pos] == '-') {
      return Fail(BadDuration(text));
    }
    pos = static_cast<size_t>(ptr - text.data());
    size_t unit_end = pos;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    std::string_view suffix = text.substr(pos, unit_end - pos);
    size_t index = 0;
    while (index + 1 < kPromUnits.size() && kPromUnits[index].suffix != suffix) {
      ++index;
    }
    if (index + 1 == kPromUnits.size() || (any && index <= last_unit_index)) {
      return Fail(BadDuration(text));
    }
    const int64_t unit = kPromUnits[index].millis;
    if (number > std::numeric_limits<int64_t>::max() / unit - total / unit) {
      return Fail(Error::InvalidArgument("duration out of range: \"" + std::string(text) + "\""));
    }
    total += number * unit;
    last_unit_index = index;
    any = true;
    pos = unit_end;
  }
  return Millis(total);
}

std::string FormatPromDuration(Millis duration) {
  int64_t ms = duration.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (size_t i = 0; i + 1 < kPromUnits.size(); ++i) {
    const int64_t unit = kPromUnits[i].millis;
    if (ms >= unit) {
      out += std::to_string(ms / unit);
      out += kPromUnits[i].suffix;
      ms %= unit;
    }
  }
  return out;
}

std::optional<double> ParseGoDuration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  // A bare number is seconds (Azure).
  {
    double seconds = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec == std::errc() && ptr == text.data() + text.size()) {
      if (seconds < 0) {
        return std::nullopt;
      }
      return seconds;
    }
  }
  struct GoUnit {
    std::string_view suffix;
    double seconds;
  };
  // Longest suffix first, so "ms" is not read as minutes and "s".
  constexpr std::array<GoUnit, 7> kGoUnits = {{{"ms", 1e-3},
                                               {"us", 1e-6},
                                               {"\xC2\xB5s", 1e-6},  // µs, micro sign
                                               {"ns", 1e-9},
                                               {"h", 3600},
                                               {"m", 60},
                                               {"s", 1}}};
  double total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    double number = 0;
    auto [ptr, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), number,
                                     std::chars_format::fixed);
    if (ec != std::errc() || ptr == text.data() + pos || number < 0) {
      return std::nullopt;
    }
    pos = static_cast<size_t>(ptr - text.data());
    std::string_view rest = text.substr(pos);
    const GoUnit* unit = nullptr;
    for (const GoUnit& candidate : kGoUnits) {
      if (rest.substr(0, candidate.suffix.size()) == candidate.suffix) {
        unit = &candidate;
        break;
      }
    }
    if (unit == nullptr) {
      return std::nullopt;
    }
    total += number * unit->seconds;
    pos += unit->suffix.size();
  }
  return total;
}

}  // namespace modelpulse
