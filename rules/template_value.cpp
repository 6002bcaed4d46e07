// The template value model, Go's printf over it, and Prometheus's humanize* formatting.
#include "rules/internal/template_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "rules/internal/go_compat.h"
#include "rules/internal/template.h"

namespace modelpulse::rules {

std::string Humanize(double v) {
  if (v == 0 || !std::isfinite(v)) {
    return FormatGo4g(v);
  }
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : {"k", "M", "G", "T", "P", "E", "Z", "Y"}) {
      if (std::fabs(v) < 1000) {
        break;
      }
      prefix = p;
      v /= 1000;
    }
    return FormatGo4g(v) + prefix;
  }
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) {
      break;
    }
    prefix = p;
    v *= 1000;
  }
  return FormatGo4g(v) + prefix;
}

std::string Humanize1024(double v) {
  if (std::fabs(v) <= 1 || !std::isfinite(v)) {
    return FormatGo4g(v);
  }
  std::string prefix;
  for (const char* p : {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"}) {
    if (std::fabs(v) < 1024) {
      break;
    }
    prefix = p;
    v /= 1024;
  }
  return FormatGo4g(v) + prefix;
}

std::string HumanizeDuration(double v) {
  if (!std::isfinite(v)) {
    return FormatGo4g(v);
  }
  if (v == 0) {
    return FormatGo4g(v) + "s";
  }
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    // Prometheus's int64(v): past 2^63 seconds that is math.MinInt64, as Go on amd64 gives it.
    const int64_t duration = GoFloatToInt64(v);
    const int64_t seconds = duration % 60;
    const int64_t minutes = (duration / 60) % 60;
    const int64_t hours = (duration / 3600) % 24;
    const int64_t days = duration / 86400;
    auto s = [](int64_t n) { return std::to_string(n); };
    if (days != 0) {
      return sign + s(days) + "d " + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    }
    if (hours != 0) {
      return sign + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    }
    if (minutes != 0) {
      return sign + s(minutes) + "m " + s(seconds) + "s";
    }
    return sign + FormatGo4g(v) + "s";
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) {
      break;
    }
    prefix = p;
    v *= 1000;
  }
  return FormatGo4g(v) + prefix + "s";
}

std::string HumanizePercentage(double v) { return FormatGo4g(v * 100) + "%"; }

}  // namespace modelpulse::rules

namespace modelpulse::rules::text_template {
namespace {

std::string MapText(const Labels& m) {
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) {
      out += " ";
    }
    first = false;
    out += k + ":" + v;
  }
  return out + "]";
}

}  // namespace

std::string TypeName(const TValue& v) {
  switch (v.index()) {
    case 0:
      return "nil";
    case 1:
      return "bool";
    case 2:
      return "int";
    case 3:
      return "float64";
    case 4:
      return "string";
    case 5:
      return "map[string]string";
    case 6:
      return "*template.sample";
    case 7:
      return "template.queryResult";
    case 8:
      return std::get<Record>(v).fields->type_name;
    default:
      return std::get<List>(v).items->type_name;
  }
}

std::string Print(const TValue& v) {
  switch (v.index()) {
    case 0:
      return "<no value>";
    case 1:
      return std::get<bool>(v) ? "true" : "false";
    case 2:
      return std::to_string(std::get<int64_t>(v));
    case 3:
      return FormatGoFloat(std::get<double>(v));
    case 4:
      return std::get<std::string>(v);
    case 5:
      return MapText(std::get<Labels>(v));
    case 6: {
      const auto& s = std::get<QuerySample>(v);
      return "&{" + MapText(s.labels) + " " + FormatGoFloat(s.value) + "}";
    }
    case 7: {
      std::string out = "[";
      const auto& list = std::get<QueryResult>(v);
      for (size_t i = 0; i < list.size(); ++i) {
        out += (i ? " " : "") + Print(TValue(list[i]));
      }
      return out + "]";
    }
    case 8: {
      std::string out = "{";
      bool first = true;
      for (const auto& [name, field] : std::get<Record>(v).fields->fields) {
        out += (first ? "" : " ") + Print(field);
        first = false;
      }
      return out + "}";
    }
    default: {
      std::string out = "[";
      const auto& items = std::get<List>(v).items->items;
      for (size_t i = 0; i < items.size(); ++i) {
        out += (i ? " " : "") + Print(items[i]);
      }
      return out + "]";
    }
  }
}

bool Truth(const TValue& v) {
  switch (v.index()) {
    case 0:
      return false;
    case 1:
      return std::get<bool>(v);
    case 2:
      return std::get<int64_t>(v) != 0;
    case 3:
      return std::get<double>(v) != 0;
    case 4:
      return !std::get<std::string>(v).empty();
    case 5:
      return !std::get<Labels>(v).empty();
    case 6:
    case 8:
      return true;
    case 7:
      return !std::get<QueryResult>(v).empty();
    default:
      return !std::get<List>(v).items->items.empty();
  }
}

Result<double> ToFloat(const TValue& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    return *d;
  }
  if (const auto* i = std::get_if<int64_t>(&v)) {
    return static_cast<double>(*i);
  }
  if (const auto* s = std::get_if<std::string>(&v)) {
    const std::string& t = *s;
    if (t == "NaN") {
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (t == "Inf" || t == "+Inf" || t == "inf" || t == "+inf") {
      return std::numeric_limits<double>::infinity();
    }
    if (t == "-Inf" || t == "-inf") {
      return -std::numeric_limits<double>::infinity();
    }
    double out = 0;
    const char* begin = t.data() + (!t.empty() && t[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(begin, t.data() + t.size(), out);
    if (ec != std::errc() || ptr != t.data() + t.size() || t.empty()) {
      return Fail(
          Error::InvalidArgument("strconv.ParseFloat: parsing " + GoQuote(t) + ": invalid syntax"));
    }
    return out;
  }
  return Fail(Error::InvalidArgument("can't convert " + TypeName(v) + " to float"));
}

namespace {

// Go's fmt.parsenum: digits from `j`; a number Go's tooLarge refuses (over 10^6 before its last
// digit) gives nullopt and consumes the rest of the format, as Go does.
std::optional<size_t> ParseGoNum(std::string_view format, size_t& j) {
  size_t num = 0;
  while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
    if (num > 1'000'000) {
      j = format.size();
      return std::nullopt;
    }
    num = num * 10 + static_cast<size_t>(format[j++] - '0');
  }
  return num;
}

// One C printf conversion of an integer, sized from a first pass (widths reach 1 MiB).
std::string FormatCInteger(const std::string& c_format, long long v) {
  const int size = std::snprintf(nullptr, 0, c_format.c_str(), v);
  if (size <= 0) {
    return {};
  }
  std::string out(static_cast<size_t>(size) + 1, '\0');
  std::snprintf(out.data(), out.size(), c_format.c_str(), v);
  out.pop_back();
  return out;
}

}  // namespace

Result<std::string> GoSprintf(std::string_view format, const std::vector<TValue>& args,
                              size_t max_size) {
  std::string out;
  size_t arg = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c != '%') {
      out += c;
      continue;
    }
    std::string flags;
    size_t j = i + 1;
    while (j < format.size() && std::strchr("+-# 0", format[j]) != nullptr) {
      flags += format[j++];
    }
    const size_t width_begin = j;
    std::optional<size_t> width_value = ParseGoNum(format, j);
    const bool has_width = width_value && j > width_begin;
    std::optional<size_t> precision_value = 0;
    bool has_precision = false;
    if (width_value && j < format.size() && format[j] == '.') {
      has_precision = true;
      ++j;
      precision_value = ParseGoNum(format, j);
    }
    if (!width_value || !precision_value || j >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const char verb = format[j];
    i = j;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (arg >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const size_t w = has_width ? *width_value : 0;
    const size_t precision = *precision_value;
    if (w > max_size || (has_precision && precision > max_size)) {
      return Fail(
          Error::InvalidArgument("printf: " + std::string(w > max_size ? "width " : "precision ") +
                                 std::to_string(w > max_size ? w : precision) +
                                 " is over the limit of " + std::to_string(max_size)));
    }
    const TValue& a = args[arg++];
    const std::string spec = "%" + flags + (has_width ? std::to_string(w) : "") +
                             (has_precision ? "." + std::to_string(precision) : "");
    auto bad = [&] { return std::string("%!") + verb + "(" + TypeName(a) + "=" + Print(a) + ")"; };
    auto pad = [&](std::string s) {
      if (s.size() >= w) {
        return s;
      }
      bool left = flags.find('-') != std::string::npos;
      return left ? s + std::string(w - s.size(), ' ') : std::string(w - s.size(), ' ') + s;
    };
    switch (verb) {
      case 'v':
      case 's':
        if (verb == 's' && (a.index() == 2 || a.index() == 3 || a.index() == 1)) {
          out += bad();
        } else if (verb == 'v' && a.index() == 3 && has_precision) {
          out += FormatGoPrintfFloat((spec + "g").c_str(), std::get<double>(a));
        } else {
          std::string s = Print(a);
          if (verb == 's' && has_precision) {
            s = s.substr(0, precision);
          }
          out += pad(s);
        }
        break;
      case 'q':
        out += a.index() == 4 ? pad(GoQuote(std::get<std::string>(a))) : bad();
        break;
      case 't':
        out += a.index() == 1 ? pad(Print(a)) : bad();
        break;
      case 'd':
        if (const auto* iv = std::get_if<int64_t>(&a)) {
          out += FormatCInteger(spec + "lld", static_cast<long long>(*iv));
        } else {
          out += bad();
        }
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (const auto* dv = std::get_if<double>(&a)) {
          if ((verb == 'g' || verb == 'G') && !has_precision && flags.empty() && !has_width) {
            std::string s = FormatGoFloat(*dv);
            if (verb == 'G') {
              std::transform(s.begin(), s.end(), s.begin(), ::toupper);
            }
            out += s;
          } else {
            out += pad(FormatGoPrintfFloat((spec + verb).c_str(), *dv));
          }
        } else {
          out += bad();
        }
        break;
      default:
        out += bad();
    }
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = arg; k < args.size(); ++k) {
      out += (k > arg ? ", " : "") + TypeName(args[k]) + "=" + Print(args[k]);
    }
    out += ")";
  }
  if (out.size() > max_size) {
    return Fail(Error::InvalidArgument("printf: output of " + std::to_string(out.size()) +
                                       " bytes is over the limit of " + std::to_string(max_size)));
  }
  return out;
}

}  // namespace modelpulse::rules::text_template
