#include "storage/internal/label_codec.h"

#include <utility>

namespace modelpulse::storage {
namespace {

void AppendEscaped(std::string_view text, std::string& out) {
  for (char c : text) {
    switch (c) {
      case '\\':
      case '=':
      case ',':
        out += '\\';
        out += c;
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        out += c;
    }
  }
}

Error BadLabels(std::string_view text, std::string_view why) {
  return Error::Parse("stored labels are corrupt (" + std::string(why) + "): \"" +
                      std::string(text.substr(0, 80)) + "\"");
}

}  // namespace

std::string EncodeLabels(const Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    if (!out.empty()) {
      out += ',';
    }
    AppendEscaped(name, out);
    out += '=';
    AppendEscaped(value, out);
  }
  return out;
}

Result<Labels> DecodeLabels(std::string_view text) {
  Labels labels;
  if (text.empty()) {
    return labels;
  }
  std::string name;
  std::string value;
  bool in_value = false;
  auto finish_pair = [&]() -> Status {
    if (!in_value) {
      return Fail(BadLabels(text, "pair without '='"));
    }
    if (!labels.emplace(std::move(name), std::move(value)).second) {
      return Fail(BadLabels(text, "repeated name"));
    }
    name.clear();
    value.clear();
    in_value = false;
    return {};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\') {
      if (++i == text.size()) {
        return Fail(BadLabels(text, "dangling escape"));
      }
      switch (text[i]) {
        case '\\':
        case '=':
        case ',':
          c = text[i];
          break;
        case '0':
          c = '\0';
          break;
        default:
          return Fail(BadLabels(text, "unknown escape"));
      }
    } else if (c == '=') {
      if (in_value) {
        return Fail(BadLabels(text, "unescaped '=' in a value"));
      }
      in_value = true;
      continue;
    } else if (c == ',') {
      if (auto status = finish_pair(); !status) {
        return Fail(status.error());
      }
      continue;
    }
    (in_value ? value : name) += c;
  }
  if (auto status = finish_pair(); !status) {
    return Fail(status.error());
  }
  return labels;
}

}  // namespace modelpulse::storage
