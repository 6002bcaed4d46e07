#include "collector/internal/http_util.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include "common/duration.h"

namespace modelpulse::collector {
namespace {

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<double> ParseNumber(std::string_view text) {
  text = Trim(text);
  if (text.empty()) {
    return std::nullopt;
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int> MonthIndex(std::string_view name) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  if (name.size() != 3) {
    return std::nullopt;
  }
  std::string lower{Lower(name[0]), Lower(name[1]), Lower(name[2])};
  for (size_t i = 0; i < kMonths.size(); ++i) {
    if (kMonths[i] == lower) {
      return static_cast<int>(i) + 1;
    }
  }
  return std::nullopt;
}

std::vector<std::string_view> SplitTokens(std::string_view text, std::string_view separators) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && separators.find(text[pos]) != std::string_view::npos) {
      ++pos;
    }
    size_t end = pos;
    while (end < text.size() && separators.find(text[end]) == std::string_view::npos) {
      ++end;
    }
    if (end > pos) {
      out.push_back(text.substr(pos, end - pos));
    }
    pos = end;
  }
  return out;
}

std::optional<int> ParseInt(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ToUnixMs(int year, std::string_view month, int day, std::string_view hms) {
  const std::optional<int> m = MonthIndex(month);
  const std::vector<std::string_view> parts = SplitTokens(hms, ":");
  if (!m || parts.size() != 3 || day < 1 || day > 31) {
    return std::nullopt;
  }
  const std::optional<int> h = ParseInt(parts[0]);
  const std::optional<int> mi = ParseInt(parts[1]);
  const std::optional<int> s = ParseInt(parts[2]);
  if (!h || !mi || !s || *h > 23 || *mi > 59 || *s > 60) {
    return std::nullopt;
  }
  const int64_t days = DaysFromCivil(year, static_cast<unsigned>(*m), static_cast<unsigned>(day));
  return ((days * 24 + *h) * 60 + *mi) * 60000LL + *s * 1000LL;
}

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '*' ||
         c == '.';
}

// Length of the valid UTF-8 sequence at text[pos], or 0 when invalid.
size_t Utf8Length(std::string_view text, size_t pos) {
  const auto c = static_cast<unsigned char>(text[pos]);
  size_t len = 0;
  if (c < 0x80) {
    return 1;
  } else if ((c >> 5) == 0x6) {
    len = 2;
  } else if ((c >> 4) == 0xE) {
    len = 3;
  } else if ((c >> 3) == 0x1E) {
    len = 4;
  } else {
    return 0;
  }
  if (pos + len > text.size()) {
    return 0;
  }
  for (size_t i = 1; i < len; ++i) {
    if ((static_cast<unsigned char>(text[pos + i]) >> 6) != 0x2) {
      return 0;
    }
  }
  return len;
}

}  // namespace

std::optional<std::string_view> HttpHeaders::Find(std::string_view lower_name) const {
  for (const auto& [name, value] : items_) {
    if (name == lower_name) {
      return std::string_view(value);
    }
  }
  return std::nullopt;
}

std::optional<int64_t> ParseHttpDate(std::string_view text) {
  const std::vector<std::string_view> t = SplitTokens(Trim(text), " ,");
  if (t.size() == 6 && t[5] == "GMT") {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    const std::optional<int> day = ParseInt(t[1]);
    const std::optional<int> year = ParseInt(t[3]);
    if (day && year) {
      return ToUnixMs(*year, t[2], *day, t[4]);
    }
    return std::nullopt;
  }
  if (t.size() == 4 && t[3] == "GMT") {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    const std::vector<std::string_view> dmy = SplitTokens(t[1], "-");
    if (dmy.size() != 3) {
      return std::nullopt;
    }
    const std::optional<int> day = ParseInt(dmy[0]);
    std::optional<int> year = ParseInt(dmy[2]);
    if (!day || !year) {
      return std::nullopt;
    }
    if (*year < 100) {
      *year += *year < 70 ? 2000 : 1900;
    }
    return ToUnixMs(*year, dmy[1], *day, t[2]);
  }
  if (t.size() == 5) {
    // asctime: Sun Nov  6 08:49:37 1994
    const std::optional<int> day = ParseInt(t[2]);
    const std::optional<int> year = ParseInt(t[4]);
    if (day && year) {
      return ToUnixMs(*year, t[1], *day, t[3]);
    }
  }
  return std::nullopt;
}

std::optional<double> ParseRetryAfter(const HttpHeaders& headers, int64_t now_unix_ms) {
  if (auto ms = headers.Find("retry-after-ms")) {
    if (auto value = ParseNumber(*ms); value && *value >= 0) {
      return *value / 1000.0;
    }
  }
  if (auto text = headers.Find("retry-after")) {
    if (auto value = ParseNumber(*text)) {
      if (*value < 0) {
        return std::nullopt;
      }
      return *value;
    }
    if (auto date = ParseHttpDate(*text)) {
      const int64_t delta = *date - now_unix_ms;
      return delta > 0 ? static_cast<double>(delta) / 1000.0 : 0.0;
    }
  }
  return std::nullopt;
}

void ReadOpenAIRateLimits(const HttpHeaders& headers, RateLimit& requests, RateLimit& tokens) {
  auto count = [&](std::string_view name) -> std::optional<double> {
    auto text = headers.Find(name);
    if (!text) {
      return std::nullopt;
    }
    auto value = ParseNumber(*text);
    if (!value || *value < 0) {
      return std::nullopt;  // Azure's -1 means "unknown"
    }
    return value;
  };
  auto reset = [&](std::string_view name) -> std::optional<double> {
    auto text = headers.Find(name);
    if (!text) {
      return std::nullopt;
    }
    return ParseGoDuration(Trim(*text));
  };
  requests.limit = count("x-ratelimit-limit-requests");
  requests.remaining = count("x-ratelimit-remaining-requests");
  requests.reset_seconds = reset("x-ratelimit-reset-requests");
  tokens.limit = count("x-ratelimit-limit-tokens");
  tokens.remaining = count("x-ratelimit-remaining-tokens");
  tokens.reset_seconds = reset("x-ratelimit-reset-tokens");
}

std::string ReadRequestId(const HttpHeaders& headers, const std::vector<std::string_view>& names) {
  for (std::string_view name : names) {
    if (auto value = headers.Find(name); value && !value->empty()) {
      return SanitizeText(*value, {}, 128);
    }
  }
  return {};
}

bool ContainsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) {
    return true;
  }
  if (needle.size() > haystack.size()) {
    return false;
  }
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && Lower(haystack[i + j]) == Lower(needle[j])) {
      ++j;
    }
    if (j == needle.size()) {
      return true;
    }
  }
  return false;
}

void RedactSecrets(std::string& text, const std::vector<std::string_view>& secrets) {
  constexpr std::string_view kRedacted = "<redacted>";
  for (std::string_view secret : secrets) {
    if (secret.size() < 4) {
      continue;  // too short to search for without mangling ordinary words
    }
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
}

std::string SanitizeText(std::string_view text, const std::vector<std::string_view>& secrets,
                         size_t max_len) {
  // Bound the work on hostile input before anything else.
  std::string work(text.substr(0, 4096));
  RedactSecrets(work, secrets);
  std::string out;
  out.reserve(std::min(work.size(), max_len + 8));
  size_t i = 0;
  bool last_space = false;
  while (i < work.size() && out.size() < max_len) {
    const std::string_view rest = std::string_view(work).substr(i);
    // Key-shaped tokens: "sk-..." (OpenAI, Anthropic, OpenRouter) and the word after "Bearer ".
    const bool word_start = i == 0 || !IsKeyChar(work[i - 1]);
    if (word_start && rest.size() > 3 && rest.substr(0, 3) == "sk-") {
      out += "sk-<redacted>";
      i += 3;
      while (i < work.size() && IsKeyChar(work[i])) {
        ++i;
      }
      last_space = false;
      continue;
    }
    if (word_start && rest.size() > 7 && ContainsIgnoreCase(rest.substr(0, 7), "bearer ")) {
      out += "Bearer <redacted>";
      i += 7;
      while (i < work.size() && work[i] == ' ') {
        ++i;
      }
      while (i < work.size() && work[i] != ' ' && work[i] != '"' && work[i] != ',') {
        ++i;
      }
      last_space = false;
      continue;
    }
    // A URL keeps scheme, host and path; its query and fragment may carry keys (?key=...).
    if (rest.substr(0, 7) == "http://" || rest.substr(0, 8) == "https://") {
      size_t end = i;
      while (end < work.size() && work[end] != ' ' && work[end] != '"' && work[end] != '\'' &&
             static_cast<unsigned char>(work[end]) > 0x20) {
        ++end;
      }
      std::string_view url = std::string_view(work).substr(i, end - i);
      const size_t query = url.find_first_of("?#");
      if (query != std::string_view::npos) {
        url = url.substr(0, query);
      }
      for (char c : url) {
        if (out.size() < max_len) {
          out += c;
        }
      }
      i = end;
      last_space = false;
      continue;
    }
    const auto c = static_cast<unsigned char>(work[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!last_space && !out.empty()) {
        out += ' ';
      }
      last_space = true;
      ++i;
      continue;
    }
    last_space = false;
    if (c < 0x20 || c == 0x7F) {
      out += '?';
      ++i;
      continue;
    }
    const size_t len = Utf8Length(work, i);
    if (len == 0) {
      out += '?';
      ++i;
      continue;
    }
    if (out.size() + len > max_len) {
      break;
    }
    out.append(work, i, len);
    i += len;
  }
  if (out.size() > max_len) {
    out.resize(max_len);
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
      out.pop_back();  // never end inside a multi-byte character
    }
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) {
      out.pop_back();
    }
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

Result<std::string> UrlHost(std::string_view url) {
  size_t rest = 0;
  if (url.starts_with("https://")) {
    rest = 8;
  } else if (url.starts_with("http://")) {
    rest = 7;
  } else {
    return Fail(Error::InvalidArgument("must start with http:// or https://"));
  }
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) {
    return Fail(Error::InvalidArgument("must not contain white space"));
  }
  if (url.find_first_of("?#") != std::string_view::npos) {
    return Fail(Error::InvalidArgument(
        "must not contain a query or fragment (keys belong in auth or headers)"));
  }
  const std::string_view authority = url.substr(rest, url.find('/', rest) - rest);
  if (authority.find('@') != std::string_view::npos) {
    return Fail(Error::InvalidArgument("must not contain credentials (user:password@); use auth"));
  }
  std::string_view host = authority;
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    host = close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.empty()) {
    return Fail(Error::InvalidArgument("has no host"));
  }
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

}  // namespace modelpulse::collector
