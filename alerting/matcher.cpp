#include "alerting/internal/matcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace modelpulse::alerting {
namespace {

std::string_view OpText(Matcher::Op op) {
  switch (op) {
    case Matcher::Op::kEqual:
      return "=";
    case Matcher::Op::kNotEqual:
      return "!=";
    case Matcher::Op::kRegex:
      return "=~";
    case Matcher::Op::kNotRegex:
      return "!~";
  }
  return "=";
}

void SkipSpace(std::string_view text, size_t& pos) {
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos])) != 0) {
    ++pos;
  }
}

bool IsNameChar(char c, bool first) {
  const auto byte = static_cast<unsigned char>(c);
  return std::isalpha(byte) != 0 || c == '_' || (!first && std::isdigit(byte) != 0);
}

// A double-quoted value with Go's common escapes; `pos` is at the opening quote.
Result<std::string> ReadQuoted(std::string_view text, size_t& pos) {
  std::string out;
  ++pos;
  while (pos < text.size()) {
    const char c = text[pos++];
    if (c == '"') {
      return out;
    }
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos >= text.size()) {
      break;
    }
    const char escaped = text[pos++];
    switch (escaped) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '"':
      case '\\':
        out += escaped;
        break;
      default:
        return Fail(Error::InvalidArgument(fmt::format("invalid escape \\{} in matcher", escaped)));
    }
  }
  return Fail(Error::InvalidArgument("unterminated quoted value in matcher"));
}

}  // namespace

bool Matcher::Matches(const Labels& labels) const {
  auto it = labels.find(name);
  const std::string_view actual = it == labels.end() ? std::string_view() : it->second;
  switch (op) {
    case Op::kEqual:
      return actual == value;
    case Op::kNotEqual:
      return actual != value;
    case Op::kRegex:
      return regex->FullMatch(actual);
    case Op::kNotRegex:
      return !regex->FullMatch(actual);
  }
  return false;
}

std::string Matcher::String() const { return name + std::string(OpText(op)) + GoQuote(value); }

Result<std::vector<Matcher>> ParseMatchers(std::string_view text) {
  size_t pos = 0;
  SkipSpace(text, pos);
  size_t end = text.size();
  while (end > pos && std::isspace(static_cast<unsigned char>(text[end - 1])) != 0) {
    --end;
  }
  text = text.substr(0, end);
  if (pos < text.size() && text[pos] == '{') {
    if (text.back() != '}') {
      return Fail(Error::InvalidArgument("missing closing '}' in matchers"));
    }
    text = text.substr(0, text.size() - 1);
    ++pos;
  }
  std::vector<Matcher> out;
  while (true) {
    SkipSpace(text, pos);
    if (pos >= text.size()) {
      break;
    }
    Matcher m;
    const size_t name_start = pos;
    while (pos < text.size() && IsNameChar(text[pos], pos == name_start)) {
      ++pos;
    }
    m.name = std::string(text.substr(name_start, pos - name_start));
    if (m.name.empty()) {
      return Fail(Error::InvalidArgument(
          fmt::format("bad matcher format: expected a label name at \"{}\"", text.substr(pos))));
    }
    SkipSpace(text, pos);
    const std::string_view rest = text.substr(pos);
    if (rest.starts_with("=~")) {
      m.op = Matcher::Op::kRegex;
    } else if (rest.starts_with("!~")) {
      m.op = Matcher::Op::kNotRegex;
    } else if (rest.starts_with("!=")) {
      m.op = Matcher::Op::kNotEqual;
    } else if (rest.starts_with("=")) {
      m.op = Matcher::Op::kEqual;
    } else {
      return Fail(Error::InvalidArgument(
          fmt::format("bad matcher format: expected one of =, !=, =~, !~ after \"{}\"", m.name)));
    }
    pos += m.op == Matcher::Op::kEqual ? 1 : 2;
    SkipSpace(text, pos);
    if (pos < text.size() && text[pos] == '"') {
      auto quoted = ReadQuoted(text, pos);
      if (!quoted) {
        return Fail(quoted.error());
      }
      m.value = std::move(*quoted);
    } else {
      const size_t comma = text.find(',', pos);
      std::string_view raw =
          text.substr(pos, comma == std::string_view::npos ? text.size() - pos : comma - pos);
      while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back())) != 0) {
        raw.remove_suffix(1);
      }
      m.value = std::string(raw);
      pos += raw.size();
    }
    if (m.op == Matcher::Op::kRegex || m.op == Matcher::Op::kNotRegex) {
      auto compiled = Regex::Compile(m.value);
      if (!compiled) {
        return Fail(Error::InvalidArgument(fmt::format(
            "invalid regular expression in matcher {}: {}", m.String(), compiled.error().message)));
      }
      m.regex = std::move(*compiled);
    }
    out.push_back(std::move(m));
    SkipSpace(text, pos);
    if (pos < text.size()) {
      if (text[pos] != ',') {
        return Fail(Error::InvalidArgument(
            fmt::format("bad matcher format: unexpected \"{}\"", text.substr(pos))));
      }
      ++pos;
    }
  }
  if (out.empty()) {
    return Fail(Error::InvalidArgument("empty matcher"));
  }
  return out;
}

bool MatchAll(const std::vector<Matcher>& matchers, const Labels& labels) {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const Matcher& m) { return m.Matches(labels); });
}

std::string MatchersString(std::vector<Matcher> matchers) {
  std::stable_sort(matchers.begin(), matchers.end(), [](const Matcher& a, const Matcher& b) {
    if (a.name != b.name) {
      return a.name < b.name;
    }
    if (a.value != b.value) {
      return a.value < b.value;
    }
    return a.op < b.op;
  });
  std::string out = "{";
  for (size_t i = 0; i < matchers.size(); ++i) {
    if (i > 0) {
      out += ",";
    }
    out += matchers[i].String();
  }
  return out + "}";
}

}  // namespace modelpulse::alerting
