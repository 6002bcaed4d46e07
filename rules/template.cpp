// A Go text/template subset, enough for Prometheus alert labels and annotations (§1.5):
// actions with pipelines, variables, fields, if/else if/else, range, with, comments, trim
// markers, Go's builtins (and, or, not, len, index, eq..ge, print, printf) and Prometheus's
// functions (humanize*, query, first, label, value, title, toUpper, match, reReplaceAll...).
// Options as Prometheus sets them: missingkey=zero on maps.
#include "rules/template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <regex>
#include <variant>

#include "rules/rules.h"

namespace modelpulse::rules {

// ------------------------------------------------------------------------------ number formats

namespace {

// Shortest round-trip digits and decimal exponent: v = 0.d1d2d3... * 10^(point).
struct Digits {
  std::string digits;  // no leading/trailing zeros, "0" for zero
  int exponent = 0;    // v = d.ddd * 10^exponent
  bool negative = false;
};

Digits ShortestDigits(double v) {
  Digits out;
  out.negative = std::signbit(v);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(v), std::chars_format::scientific);
  std::string s(buf, res.ptr);  // d.ddde±xx
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  out.exponent = std::stoi(s.substr(e + 1));
  mant.erase(std::remove(mant.begin(), mant.end(), '.'), mant.end());
  while (mant.size() > 1 && mant.back() == '0') {
    mant.pop_back();
  }
  out.digits = mant;
  return out;
}

std::string ExponentText(int x) {
  std::string s = x < 0 ? "-" : "+";
  int a = std::abs(x);
  if (a < 10) {
    s += "0";
  }
  return s + std::to_string(a);
}

std::string SpecialFloat(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  return v > 0 ? "+Inf" : "-Inf";
}

std::string FormatC(const char* format, double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  char buf[512];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

double StaleNaN() {
  double v;
  uint64_t bits = kStaleNaNBits;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

bool IsStaleNaN(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof(v));
  return bits == kStaleNaNBits;
}

std::string FormatGoFloat(double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  if (v == 0) {
    return std::signbit(v) ? "-0" : "0";
  }
  Digits d = ShortestDigits(v);
  std::string out = d.negative ? "-" : "";
  const int x = d.exponent;
  if (x < -4 || x >= 6) {
    out += d.digits.substr(0, 1);
    if (d.digits.size() > 1) {
      out += "." + d.digits.substr(1);
    }
    return out + "e" + ExponentText(x);
  }
  if (x < 0) {
    return out + "0." + std::string(static_cast<size_t>(-x - 1), '0') + d.digits;
  }
  const size_t int_len = static_cast<size_t>(x) + 1;
  if (d.digits.size() <= int_len) {
    return out + d.digits + std::string(int_len - d.digits.size(), '0');
  }
  return out + d.digits.substr(0, int_len) + "." + d.digits.substr(int_len);
}

std::string FormatGoFloatE(double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  Digits d = v == 0 ? Digits{"0", 0, std::signbit(v)} : ShortestDigits(v);
  std::string out = d.negative ? "-" : "";
  out += d.digits.substr(0, 1);
  if (d.digits.size() > 1) {
    out += "." + d.digits.substr(1);
  }
  return out + "E" + ExponentText(d.exponent);
}

std::string FormatGo4g(double v) { return FormatC("%.4g", v); }

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
    const auto duration = static_cast<int64_t>(v);
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

std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// ------------------------------------------------------------------------------ values

namespace {

struct Nil {};
struct QuerySample {
  Labels labels;
  double value = 0;
};
using QueryResult = std::vector<QuerySample>;
using TValue =
    std::variant<Nil, bool, int64_t, double, std::string, Labels, QuerySample, QueryResult>;

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
    default:
      return "template.queryResult";
  }
}

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

// fmt's %v.
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
    default: {
      std::string out = "[";
      const auto& list = std::get<QueryResult>(v);
      for (size_t i = 0; i < list.size(); ++i) {
        out += (i ? " " : "") + Print(TValue(list[i]));
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
      return true;
    default:
      return !std::get<QueryResult>(v).empty();
  }
}

// Prometheus's convertToFloat.
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

// ------------------------------------------------------------------------------ printf

// Go's fmt.Sprintf for the verbs templates use: %v %s %d %f %F %e %E %g %G %q %t %%.
std::string GoSprintf(std::string_view format, const std::vector<TValue>& args) {
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
    std::string width;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
      width += format[j++];
    }
    std::string precision;
    bool has_precision = false;
    if (j < format.size() && format[j] == '.') {
      has_precision = true;
      ++j;
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) {
        precision += format[j++];
      }
      if (precision.empty()) {
        precision = "0";
      }
    }
    if (j >= format.size()) {
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
    const TValue& a = args[arg++];
    const std::string spec = "%" + flags + width + (has_precision ? "." + precision : "");
    auto bad = [&] { return std::string("%!") + verb + "(" + TypeName(a) + "=" + Print(a) + ")"; };
    auto pad = [&](std::string s) {
      size_t w = width.empty() ? 0 : std::stoul(width);
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
          out += FormatC((spec + "g").c_str(), std::get<double>(a));
        } else {
          std::string s = Print(a);
          if (verb == 's' && has_precision) {
            s = s.substr(0, std::stoul(precision));
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
          char buf[128];
          std::snprintf(buf, sizeof(buf), (spec + "lld").c_str(), static_cast<long long>(*iv));
          out += buf;
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
          if ((verb == 'g' || verb == 'G') && !has_precision && flags.empty() && width.empty()) {
            std::string s = FormatGoFloat(*dv);
            if (verb == 'G') {
              std::transform(s.begin(), s.end(), s.begin(), ::toupper);
            }
            out += s;
          } else {
            out += pad(FormatC((spec + verb).c_str(), *dv));
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
  return out;
}

// ------------------------------------------------------------------------------ lexer/parser

struct Token {
  enum class Kind {
    kIdent,
    kVariable,
    kField,
    kDot,
    kString,
    kNumber,
    kBool,
    kNil,
    kPipe,
    kLParen,
    kRParen,
    kDeclare,
    kAssign,
    kComma,
    kEnd
  };
  Kind kind = Kind::kEnd;
  std::string text;  // identifier, variable name ("$x", "$"), field chain ".A.b", literal value
};

struct Pipeline;

// An operand: a literal, a function name, a variable/dot/parenthesised pipeline with a field chain.
struct Operand {
  enum class Kind { kLiteral, kFunction, kVariable, kDot, kPipeline };
  Kind kind = Kind::kLiteral;
  TValue literal;
  std::string name;                 // function or variable
  std::vector<std::string> fields;  // field chain after the operand
  std::shared_ptr<Pipeline> pipeline;
};

struct Command {
  std::vector<Operand> operands;
};

struct Pipeline {
  std::vector<std::string> declared;  // "$x" or "$i", "$x" for range
  bool assign = false;                // `=` rather than `:=`
  std::vector<Command> commands;
};

struct Node;
using NodeList = std::vector<Node>;

struct Node {
  enum class Kind { kText, kAction, kIf, kRange, kWith };
  Kind kind = Kind::kText;
  std::string text;
  Pipeline pipeline;
  std::shared_ptr<NodeList> body;
  std::shared_ptr<NodeList> else_body;
  int line = 1;
};

constexpr int kMaxDepth = 64;
constexpr size_t kMaxOutput = 1 << 20;
constexpr int kMaxRangeIterations = 100000;

class Parser {
 public:
  Parser(std::string_view name, std::string_view text) : name_(name), text_(text) {}

  Result<NodeList> Parse() {
    auto list = ParseList(0);
    if (!list) {
      return Fail(list.error());
    }
    if (!terminator_.empty()) {
      return Fail(Err("unexpected {{" + terminator_ + "}}"));
    }
    return std::move(list->first);
  }

 private:
  Error Err(const std::string& msg) const {
    return Error::InvalidArgument("template: " + name_ + ":" + std::to_string(line_) + ": " + msg);
  }

  // Parses nodes until {{end}} / {{else...}} (which it leaves in terminator_) or the end.
  Result<std::pair<NodeList, std::string>> ParseList(int depth) {
    if (depth > kMaxDepth) {
      return Fail(Err("nesting too deep"));
    }
    NodeList nodes;
    terminator_.clear();
    while (pos_ < text_.size()) {
      size_t open = text_.find("{{", pos_);
      std::string chunk(text_.substr(
          pos_, open == std::string_view::npos ? std::string_view::npos : open - pos_));
      if (open == std::string_view::npos) {
        AddText(nodes, chunk);
        pos_ = text_.size();
        break;
      }
      bool trim_left = open + 2 < text_.size() && text_[open + 2] == '-' &&
                       open + 3 < text_.size() &&
                       std::isspace(static_cast<unsigned char>(text_[open + 3]));
      if (trim_left) {
        while (!chunk.empty() && std::isspace(static_cast<unsigned char>(chunk.back()))) {
          chunk.pop_back();
        }
      }
      AddText(nodes, chunk);
      line_ += static_cast<int>(std::count(text_.begin() + static_cast<long>(pos_),
                                           text_.begin() + static_cast<long>(open), '\n'));
      size_t start = open + (trim_left ? 3 : 2);
      // Find the closing "}}", skipping over string literals.
      size_t close = std::string_view::npos;
      for (size_t k = start; k + 1 < text_.size(); ++k) {
        char ch = text_[k];
        if (ch == '"' || ch == '`' || ch == '\'') {
          size_t end = k + 1;
          while (end < text_.size() && text_[end] != ch) {
            end += (ch != '`' && text_[end] == '\\') ? 2 : 1;
          }
          k = end;
          continue;
        }
        if (ch == '}' && text_[k + 1] == '}') {
          close = k;
          break;
        }
      }
      if (close == std::string_view::npos) {
        return Fail(Err("unclosed action"));
      }
      bool trim_right = close >= 2 && text_[close - 1] == '-' &&
                        std::isspace(static_cast<unsigned char>(text_[close - 2]));
      std::string_view body = text_.substr(start, (trim_right ? close - 1 : close) - start);
      pos_ = close + 2;
      if (trim_right) {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) {
          if (text_[pos_] == '\n') {
            ++line_;
          }
          ++pos_;
        }
      }
      const int action_line = line_;
      line_ += static_cast<int>(std::count(body.begin(), body.end(), '\n'));
      std::string_view trimmed = Trim(body);
      if (trimmed.size() >= 4 && trimmed.substr(0, 2) == "/*") {
        if (trimmed.substr(trimmed.size() - 2) != "*/") {
          return Fail(Err("unclosed comment"));
        }
        continue;
      }
      auto tokens = Lex(trimmed);
      if (!tokens) {
        return Fail(tokens.error());
      }
      tokens_ = std::move(*tokens);
      tok_ = 0;
      if (Peek().kind == Token::Kind::kIdent && (Peek().text == "end" || Peek().text == "else")) {
        std::string word = Peek().text;
        ++tok_;
        if (word == "else") {
          // "else", or "else if ...": the rest of the tokens are the else-if pipeline.
          rest_tokens_.assign(tokens_.begin() + static_cast<long>(tok_), tokens_.end());
          terminator_ = "else";
        } else {
          if (Peek().kind != Token::Kind::kEnd) {
            return Fail(Err("unexpected token after end"));
          }
          terminator_ = "end";
        }
        return std::make_pair(std::move(nodes), terminator_);
      }
      Node node;
      node.line = action_line;
      if (Peek().kind == Token::Kind::kIdent &&
          (Peek().text == "if" || Peek().text == "range" || Peek().text == "with")) {
        std::string word = Peek().text;
        ++tok_;
        auto control = ParseControl(word, depth);
        if (!control) {
          return Fail(control.error());
        }
        nodes.push_back(std::move(*control));
        continue;
      }
      auto pipe = ParsePipeline(true);
      if (!pipe) {
        return Fail(pipe.error());
      }
      node.kind = Node::Kind::kAction;
      node.pipeline = std::move(*pipe);
      nodes.push_back(std::move(node));
    }
    return std::make_pair(std::move(nodes), std::string());
  }

  // After "if"/"range"/"with" (tokens_ positioned at the pipeline).
  Result<Node> ParseControl(const std::string& word, int depth) {
    Node node;
    node.kind = word == "if"      ? Node::Kind::kIf
                : word == "range" ? Node::Kind::kRange
                                  : Node::Kind::kWith;
    node.line = line_;
    auto pipe = ParsePipeline(true);
    if (!pipe) {
      return Fail(pipe.error());
    }
    if (pipe->commands.empty()) {
      return Fail(Err("missing value for " + word));
    }
    node.pipeline = std::move(*pipe);
    auto body = ParseList(depth + 1);
    if (!body) {
      return Fail(body.error());
    }
    node.body = std::make_shared<NodeList>(std::move(body->first));
    if (body->second.empty()) {
      return Fail(Err("unexpected EOF"));
    }
    if (body->second == "else") {
      std::vector<Token> rest = rest_tokens_;
      if (!rest.empty() && rest[0].kind == Token::Kind::kIdent &&
          (rest[0].text == "if" || rest[0].text == "with") && rest[0].text == word) {
        // "else if": an if nested in the else branch that shares our {{end}}.
        tokens_.assign(rest.begin() + 1, rest.end());
        tok_ = 0;
        auto nested = ParseControl(word, depth + 1);
        if (!nested) {
          return Fail(nested.error());
        }
        node.else_body = std::make_shared<NodeList>();
        node.else_body->push_back(std::move(*nested));
        terminator_.clear();
        return node;
      }
      if (!rest.empty()) {
        return Fail(Err("unexpected token after else"));
      }
      auto else_body = ParseList(depth + 1);
      if (!else_body) {
        return Fail(else_body.error());
      }
      if (else_body->second != "end") {
        return Fail(Err(else_body->second.empty() ? "unexpected EOF" : "expected end; found else"));
      }
      node.else_body = std::make_shared<NodeList>(std::move(else_body->first));
    }
    terminator_.clear();
    return node;
  }

  static void AddText(NodeList& nodes, const std::string& text) {
    if (text.empty()) {
      return;
    }
    Node n;
    n.kind = Node::Kind::kText;
    n.text = text;
    nodes.push_back(std::move(n));
  }

  static std::string_view Trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
      s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
      s.remove_suffix(1);
    }
    return s;
  }

  static bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  Result<std::vector<Token>> Lex(std::string_view s) {
    std::vector<Token> out;
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i;
        continue;
      }
      Token t;
      if (c == '|') {
        t.kind = Token::Kind::kPipe;
        ++i;
      } else if (c == '(') {
        t.kind = Token::Kind::kLParen;
        ++i;
      } else if (c == ')') {
        t.kind = Token::Kind::kRParen;
        ++i;
        // A field chain directly after ")" applies to the parenthesised value.
        if (i < s.size() && s[i] == '.') {
          out.push_back(t);
          size_t j = i;
          while (j < s.size() && (s[j] == '.' || IdentChar(s[j]))) {
            ++j;
          }
          t = Token{Token::Kind::kField, std::string(s.substr(i, j - i))};
          i = j;
        }
      } else if (c == ',') {
        t.kind = Token::Kind::kComma;
        ++i;
      } else if (c == ':' && i + 1 < s.size() && s[i + 1] == '=') {
        t.kind = Token::Kind::kDeclare;
        i += 2;
      } else if (c == '=') {
        t.kind = Token::Kind::kAssign;
        ++i;
      } else if (c == '"' || c == '`') {
        size_t j = i + 1;
        std::string value;
        while (j < s.size() && s[j] != c) {
          if (c == '"' && s[j] == '\\' && j + 1 < s.size()) {
            char e = s[j + 1];
            value += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
            j += 2;
            continue;
          }
          value += s[j++];
        }
        if (j >= s.size()) {
          return Fail(Err("unterminated quoted string"));
        }
        t.kind = Token::Kind::kString;
        t.text = value;
        i = j + 1;
      } else if (c == '$') {
        size_t j = i + 1;
        while (j < s.size() && IdentChar(s[j])) {
          ++j;
        }
        size_t k = j;
        while (k < s.size() && (s[k] == '.' || IdentChar(s[k]))) {
          ++k;
        }
        t.kind = Token::Kind::kVariable;
        t.text = std::string(s.substr(i, k - i));
        i = k;
      } else if (c == '.') {
        size_t j = i + 1;
        if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
          goto number;
        }
        while (j < s.size() && (s[j] == '.' || IdentChar(s[j]))) {
          ++j;
        }
        t.kind = j == i + 1 ? Token::Kind::kDot : Token::Kind::kField;
        t.text = std::string(s.substr(i, j - i));
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+') {
      number:
        size_t j = i + 1;
        while (j < s.size() &&
               (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
                ((s[j] == '-' || s[j] == '+') && (s[j - 1] == 'e' || s[j - 1] == 'E')))) {
          ++j;
        }
        t.kind = Token::Kind::kNumber;
        t.text = std::string(s.substr(i, j - i));
        i = j;
      } else if (c == '\'') {
        // Character constant: Go treats it as an int (rune).
        if (i + 2 < s.size() && s[i + 2] == '\'') {
          t.kind = Token::Kind::kNumber;
          t.text = std::to_string(static_cast<int>(s[i + 1]));
          i += 3;
        } else {
          return Fail(Err("bad character constant"));
        }
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t j = i;
        while (j < s.size() && IdentChar(s[j])) {
          ++j;
        }
        t.text = std::string(s.substr(i, j - i));
        t.kind = t.text == "true" || t.text == "false" ? Token::Kind::kBool
                 : t.text == "nil"                     ? Token::Kind::kNil
                                                       : Token::Kind::kIdent;
        i = j;
      } else {
        return Fail(Err(std::string("unexpected \"") + c + "\" in command"));
      }
      out.push_back(std::move(t));
    }
    return out;
  }

  const Token& Peek() const {
    static const Token kEndToken;
    return tok_ < tokens_.size() ? tokens_[tok_] : kEndToken;
  }

  Result<Pipeline> ParsePipeline(bool allow_decl) {
    Pipeline pipe;
    if (allow_decl && Peek().kind == Token::Kind::kVariable) {
      // Lookahead for "$x :=", "$x =", "$i, $x :=".
      size_t save = tok_;
      std::vector<std::string> vars{Peek().text};
      ++tok_;
      if (Peek().kind == Token::Kind::kComma) {
        ++tok_;
        if (Peek().kind == Token::Kind::kVariable) {
          vars.push_back(Peek().text);
          ++tok_;
        }
      }
      if (Peek().kind == Token::Kind::kDeclare || Peek().kind == Token::Kind::kAssign) {
        pipe.assign = Peek().kind == Token::Kind::kAssign;
        pipe.declared = vars;
        ++tok_;
      } else {
        tok_ = save;
      }
    }
    while (true) {
      Command cmd;
      while (Peek().kind != Token::Kind::kEnd && Peek().kind != Token::Kind::kPipe &&
             Peek().kind != Token::Kind::kRParen) {
        auto op = ParseOperand();
        if (!op) {
          return Fail(op.error());
        }
        cmd.operands.push_back(std::move(*op));
      }
      if (cmd.operands.empty()) {
        if (Peek().kind == Token::Kind::kPipe || !pipe.commands.empty()) {
          return Fail(Err("missing command"));
        }
        break;
      }
      pipe.commands.push_back(std::move(cmd));
      if (Peek().kind != Token::Kind::kPipe) {
        break;
      }
      ++tok_;
    }
    return pipe;
  }

  static std::vector<std::string> SplitFields(std::string_view chain) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < chain.size()) {
      if (chain[i] == '.') {
        ++i;
        continue;
      }
      size_t j = chain.find('.', i);
      out.emplace_back(
          chain.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
      i = j == std::string_view::npos ? chain.size() : j;
    }
    return out;
  }

  Result<Operand> ParseOperand() {
    const Token t = Peek();
    ++tok_;
    Operand op;
    switch (t.kind) {
      case Token::Kind::kString:
        op.literal = t.text;
        return op;
      case Token::Kind::kBool:
        op.literal = t.text == "true";
        return op;
      case Token::Kind::kNil:
        op.literal = Nil{};
        return op;
      case Token::Kind::kNumber: {
        const std::string& s = t.text;
        bool is_float = s.find_first_of(".eE") != std::string::npos &&
                        s.find("0x") == std::string::npos && s.find("0X") == std::string::npos;
        if (!is_float) {
          errno = 0;
          char* end = nullptr;
          long long v = std::strtoll(s.c_str(), &end, 0);
          if (end != nullptr && *end == '\0' && errno == 0) {
            op.literal = static_cast<int64_t>(v);
            return op;
          }
        }
        char* end = nullptr;
        double d = std::strtod(s.c_str(), &end);
        if (end == nullptr || *end != '\0') {
          return Fail(Err("bad number syntax: \"" + s + "\""));
        }
        op.literal = d;
        return op;
      }
      case Token::Kind::kIdent:
        op.kind = Operand::Kind::kFunction;
        op.name = t.text;
        return op;
      case Token::Kind::kVariable: {
        op.kind = Operand::Kind::kVariable;
        size_t dot = t.text.find('.');
        op.name = t.text.substr(0, dot);
        if (dot != std::string::npos) {
          op.fields = SplitFields(std::string_view(t.text).substr(dot));
        }
        return op;
      }
      case Token::Kind::kDot:
        op.kind = Operand::Kind::kDot;
        return op;
      case Token::Kind::kField:
        op.kind = Operand::Kind::kDot;
        op.fields = SplitFields(t.text);
        return op;
      case Token::Kind::kLParen: {
        if (++paren_depth_ > kMaxDepth) {
          return Fail(Err("parentheses nested too deep"));
        }
        auto pipe = ParsePipeline(false);
        --paren_depth_;
        if (!pipe) {
          return Fail(pipe.error());
        }
        if (Peek().kind != Token::Kind::kRParen) {
          return Fail(Err("unclosed left paren"));
        }
        ++tok_;
        op.kind = Operand::Kind::kPipeline;
        op.pipeline = std::make_shared<Pipeline>(std::move(*pipe));
        if (Peek().kind == Token::Kind::kField) {
          op.fields = SplitFields(Peek().text);
          ++tok_;
        }
        return op;
      }
      default:
        return Fail(Err("unexpected token in operand"));
    }
  }

  std::string name_;
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  size_t tok_ = 0;
  std::vector<Token> rest_tokens_;
  std::string terminator_;
  int paren_depth_ = 0;
};

// ------------------------------------------------------------------------------ executor

class Executor {
 public:
  Executor(std::string name, const TemplateData& data, const TemplateQueryFunc& query)
      : name_(std::move(name)), data_(data), query_(query) {}

  Result<std::string> Run(const NodeList& nodes) {
    vars_.push_back({"$", Nil{}});
    TValue dot = Nil{};  // the root "." is the data struct: handled in Field()
    root_ = true;
    if (auto st = Walk(nodes, dot, 0); !st) {
      return Fail(st.error());
    }
    return out_;
  }

 private:
  Error Err(int line, const std::string& msg) const {
    return Error::InvalidArgument("template: " + name_ + ":" + std::to_string(line) +
                                  ": executing \"" + name_ + "\": " + msg);
  }

  Status Walk(const NodeList& nodes, const TValue& dot, int depth) {
    if (depth > kMaxDepth) {
      return Fail(Error::InvalidArgument("template: " + name_ + ": nesting too deep"));
    }
    for (const Node& n : nodes) {
      if (out_.size() > kMaxOutput) {
        return Fail(Error::InvalidArgument("template: " + name_ + ": output too large"));
      }
      line_ = n.line;
      switch (n.kind) {
        case Node::Kind::kText:
          out_ += n.text;
          break;
        case Node::Kind::kAction: {
          auto v = EvalPipeline(n.pipeline, dot);
          if (!v) {
            return Fail(v.error());
          }
          if (n.pipeline.declared.empty()) {
            out_ += Print(*v);
          }
          break;
        }
        case Node::Kind::kIf:
        case Node::Kind::kWith: {
          const size_t scope = vars_.size();
          auto v = EvalPipeline(n.pipeline, dot);
          if (!v) {
            return Fail(v.error());
          }
          Status st;
          if (Truth(*v)) {
            st = Walk(*n.body, n.kind == Node::Kind::kWith ? *v : dot, depth + 1);
          } else if (n.else_body) {
            st = Walk(*n.else_body, dot, depth + 1);
          }
          vars_.resize(scope);
          if (!st) {
            return st;
          }
          break;
        }
        case Node::Kind::kRange: {
          const size_t scope = vars_.size();
          Pipeline pipe = n.pipeline;
          std::vector<std::string> decl = pipe.declared;
          pipe.declared.clear();
          auto v = EvalPipeline(pipe, dot);
          if (!v) {
            return Fail(v.error());
          }
          std::vector<std::pair<TValue, TValue>> items;  // key, element
          if (const auto* list = std::get_if<QueryResult>(&*v)) {
            for (size_t i = 0; i < list->size(); ++i) {
              items.emplace_back(static_cast<int64_t>(i), (*list)[i]);
            }
          } else if (const auto* m = std::get_if<Labels>(&*v)) {
            for (const auto& [k, val] : *m) {
              items.emplace_back(k, val);
            }
          } else if (const auto* iv = std::get_if<int64_t>(&*v)) {
            for (int64_t i = 0; i < std::min<int64_t>(*iv, kMaxRangeIterations); ++i) {
              items.emplace_back(i, i);
            }
          } else if (v->index() != 0) {
            return Fail(Err(line_, "range can't iterate over " + Print(*v)));
          }
          if (items.empty() && n.else_body) {
            if (auto st = Walk(*n.else_body, dot, depth + 1); !st) {
              return st;
            }
          }
          for (const auto& [key, elem] : items) {
            vars_.resize(scope);
            if (decl.size() == 1) {
              vars_.push_back({decl[0], elem});
            } else if (decl.size() == 2) {
              vars_.push_back({decl[0], key});
              vars_.push_back({decl[1], elem});
            }
            if (auto st = Walk(*n.body, elem, depth + 1); !st) {
              return st;
            }
          }
          vars_.resize(scope);
          break;
        }
      }
    }
    return {};
  }

  Result<TValue> EvalPipeline(const Pipeline& pipe, const TValue& dot) {
    TValue value = Nil{};
    bool have = false;
    for (const Command& cmd : pipe.commands) {
      auto v = EvalCommand(cmd, dot, have ? &value : nullptr);
      if (!v) {
        return v;
      }
      value = std::move(*v);
      have = true;
    }
    if (!pipe.declared.empty()) {
      const std::string& var = pipe.declared.back();
      if (pipe.assign) {
        auto it = FindVar(var);
        if (it == vars_.rend()) {
          return Fail(Err(line_, "undefined variable: " + var));
        }
        it->second = value;
      } else {
        vars_.push_back({var, value});
      }
    }
    return value;
  }

  std::vector<std::pair<std::string, TValue>>::reverse_iterator FindVar(const std::string& name) {
    return std::find_if(vars_.rbegin(), vars_.rend(),
                        [&](const auto& p) { return p.first == name; });
  }

  Result<TValue> Field(const TValue& base, bool is_root, const std::string& field) {
    if (is_root) {
      if (field == "Labels") {
        return TValue(data_.labels);
      }
      if (field == "Value") {
        return TValue(data_.value);
      }
      if (field == "ExternalLabels") {
        return TValue(data_.external_labels);
      }
      if (field == "ExternalURL") {
        return TValue(data_.external_url);
      }
      return Fail(Err(line_, "can't evaluate field " + field + " in type template.tmplData"));
    }
    if (const auto* m = std::get_if<Labels>(&base)) {
      auto it = m->find(field);
      return TValue(it == m->end() ? std::string() : it->second);
    }
    if (const auto* s = std::get_if<QuerySample>(&base)) {
      if (field == "Labels") {
        return TValue(s->labels);
      }
      if (field == "Value") {
        return TValue(s->value);
      }
    }
    if (base.index() == 0) {
      return Fail(Err(line_, "nil pointer evaluating " + TypeName(base) + "." + field));
    }
    return Fail(Err(line_, "can't evaluate field " + field + " in type " + TypeName(base)));
  }

  Result<TValue> ApplyFields(TValue v, bool is_root, const std::vector<std::string>& fields) {
    for (const auto& f : fields) {
      auto next = Field(v, is_root, f);
      if (!next) {
        return next;
      }
      v = std::move(*next);
      is_root = false;
    }
    return v;
  }

  Result<TValue> EvalOperand(const Operand& op, const TValue& dot) {
    switch (op.kind) {
      case Operand::Kind::kLiteral:
        return op.literal;
      case Operand::Kind::kDot:
        return ApplyFields(dot, IsRoot(dot), op.fields);
      case Operand::Kind::kVariable: {
        if (op.name == "$") {
          return ApplyFields(Nil{}, true, op.fields);
        }
        auto it = FindVar(op.name);
        if (it == vars_.rend()) {
          return Fail(Err(line_, "undefined variable \"" + op.name + "\""));
        }
        return ApplyFields(it->second, false, op.fields);
      }
      case Operand::Kind::kPipeline: {
        const size_t scope = vars_.size();
        auto v = EvalPipeline(*op.pipeline, dot);
        vars_.resize(scope);
        if (!v) {
          return v;
        }
        return ApplyFields(*v, false, op.fields);
      }
      case Operand::Kind::kFunction:
        return CallFunction(op.name, {}, dot);
    }
    return TValue(Nil{});
  }

  // The template's root "." is the data struct; we represent it as Nil while root_ is set and
  // no `with`/`range` has rebound dot.
  bool IsRoot(const TValue& dot) const { return root_ && dot.index() == 0; }

  Result<TValue> EvalCommand(const Command& cmd, const TValue& dot, const TValue* piped) {
    const Operand& head = cmd.operands.front();
    if (head.kind != Operand::Kind::kFunction) {
      if (cmd.operands.size() > 1 || piped != nullptr) {
        return Fail(Err(line_, "can't give argument to non-function"));
      }
      return EvalOperand(head, dot);
    }
    std::vector<TValue> args;
    if (head.name == "and" || head.name == "or") {
      // Short-circuit, returning the deciding argument.
      std::vector<const Operand*> ops;
      for (size_t i = 1; i < cmd.operands.size(); ++i) {
        ops.push_back(&cmd.operands[i]);
      }
      if (ops.empty() && piped == nullptr) {
        return Fail(Err(line_, "wrong number of args for " + head.name));
      }
      TValue last = Nil{};
      for (size_t i = 0; i < ops.size() + (piped ? 1 : 0); ++i) {
        if (i < ops.size()) {
          auto v = EvalOperand(*ops[i], dot);
          if (!v) {
            return v;
          }
          last = *v;
        } else {
          last = *piped;
        }
        if (Truth(last) == (head.name == "or")) {
          return last;
        }
      }
      return last;
    }
    for (size_t i = 1; i < cmd.operands.size(); ++i) {
      auto v = EvalOperand(cmd.operands[i], dot);
      if (!v) {
        return v;
      }
      args.push_back(std::move(*v));
    }
    if (piped != nullptr) {
      args.push_back(*piped);
    }
    return CallFunction(head.name, std::move(args), dot);
  }

  Result<TValue> CallFunction(const std::string& name, std::vector<TValue> args, const TValue&) {
    auto want = [&](size_t n) -> Status {
      if (args.size() != n) {
        return Fail(Err(line_, "wrong number of args for " + name + ": want " + std::to_string(n) +
                                   " got " + std::to_string(args.size())));
      }
      return {};
    };
    auto calling = [&](const Error& e) {
      return Fail(Err(line_, "error calling " + name + ": " + e.message));
    };
    auto string_arg = [&](size_t i) -> Result<std::string> {
      if (const auto* s = std::get_if<std::string>(&args[i])) {
        return *s;
      }
      return Fail(Err(line_, "wrong type for value; expected string; got " + TypeName(args[i])));
    };
    using FloatFn = std::string (*)(double);
    static const std::map<std::string, FloatFn, std::less<>> kHumanizers = {
        {"humanize", &Humanize},
        {"humanize1024", &Humanize1024},
        {"humanizeDuration", &HumanizeDuration},
        {"humanizePercentage", &HumanizePercentage}};
    if (auto it = kHumanizers.find(name); it != kHumanizers.end()) {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      auto v = ToFloat(args[0]);
      if (!v) {
        return calling(v.error());
      }
      return TValue(it->second(*v));
    }
    if (name == "humanizeTimestamp") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      auto v = ToFloat(args[0]);
      if (!v) {
        return calling(v.error());
      }
      if (!std::isfinite(*v)) {
        return TValue(FormatGo4g(*v));
      }
      const double secs = std::floor(*v);
      const auto t = static_cast<time_t>(secs);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[64];
      std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
      std::string out = buf;
      auto nanos = static_cast<int64_t>(std::llround((*v - secs) * 1e9));
      if (nanos > 0) {
        char frac[32];
        std::snprintf(frac, sizeof(frac), ".%09lld", static_cast<long long>(nanos));
        std::string f = frac;
        while (f.back() == '0') {
          f.pop_back();
        }
        out += f;
      }
      return TValue(out + " +0000 UTC");
    }
    if (name == "printf" || name == "print" || name == "println") {
      if (name == "printf") {
        if (args.empty()) {
          return Fail(Err(line_, "wrong number of args for printf"));
        }
        auto format = string_arg(0);
        if (!format) {
          return Fail(format.error());
        }
        return TValue(GoSprintf(*format, {args.begin() + 1, args.end()}));
      }
      std::string out;
      for (size_t i = 0; i < args.size(); ++i) {
        // fmt.Sprint adds spaces between operands when neither is a string.
        if (i > 0 && (name == "println" || (args[i].index() != 4 && args[i - 1].index() != 4))) {
          out += " ";
        }
        out += Print(args[i]);
      }
      return TValue(name == "println" ? out + "\n" : out);
    }
    if (name == "not") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      return TValue(!Truth(args[0]));
    }
    if (name == "len") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      if (const auto* s = std::get_if<std::string>(&args[0])) {
        return TValue(static_cast<int64_t>(s->size()));
      }
      if (const auto* m = std::get_if<Labels>(&args[0])) {
        return TValue(static_cast<int64_t>(m->size()));
      }
      if (const auto* l = std::get_if<QueryResult>(&args[0])) {
        return TValue(static_cast<int64_t>(l->size()));
      }
      return calling(Error::InvalidArgument("len of type " + TypeName(args[0])));
    }
    if (name == "index") {
      if (args.size() < 2) {
        return Fail(Err(line_, "wrong number of args for index"));
      }
      TValue v = args[0];
      for (size_t i = 1; i < args.size(); ++i) {
        if (const auto* m = std::get_if<Labels>(&v); m && args[i].index() == 4) {
          auto it = m->find(std::get<std::string>(args[i]));
          v = it == m->end() ? std::string() : it->second;
        } else if (const auto* l = std::get_if<QueryResult>(&v); l && args[i].index() == 2) {
          int64_t k = std::get<int64_t>(args[i]);
          if (k < 0 || static_cast<size_t>(k) >= l->size()) {
            return calling(Error::InvalidArgument("index out of range: " + std::to_string(k)));
          }
          v = (*l)[static_cast<size_t>(k)];
        } else {
          return calling(Error::InvalidArgument("can't index item of type " + TypeName(v)));
        }
      }
      return v;
    }
    if (name == "eq" || name == "ne" || name == "lt" || name == "le" || name == "gt" ||
        name == "ge") {
      if (args.size() < 2 || (name != "eq" && args.size() != 2)) {
        return Fail(Err(line_, "wrong number of args for " + name));
      }
      auto compare = [&](const TValue& a, const TValue& b) -> Result<int> {
        if (a.index() != b.index() || a.index() == 0 || a.index() >= 5) {
          return Fail(Err(line_, "error calling " + name + ": incompatible types for comparison"));
        }
        switch (a.index()) {
          case 1: {
            if (name != "eq" && name != "ne") {
              return Fail(Err(line_, "error calling " + name + ": invalid type for comparison"));
            }
            return std::get<bool>(a) == std::get<bool>(b) ? 0 : 1;
          }
          case 2: {
            auto x = std::get<int64_t>(a), y = std::get<int64_t>(b);
            return x < y ? -1 : x > y ? 1 : 0;
          }
          case 3: {
            double x = std::get<double>(a), y = std::get<double>(b);
            return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;  // 2: unordered (NaN)
          }
          default: {
            int c = std::get<std::string>(a).compare(std::get<std::string>(b));
            return c < 0 ? -1 : c > 0 ? 1 : 0;
          }
        }
      };
      if (name == "eq") {
        for (size_t i = 1; i < args.size(); ++i) {
          auto c = compare(args[0], args[i]);
          if (!c) {
            return Fail(c.error());
          }
          if (*c == 0) {
            return TValue(true);
          }
        }
        return TValue(false);
      }
      auto c = compare(args[0], args[1]);
      if (!c) {
        return Fail(c.error());
      }
      const int r = *c;
      if (name == "ne") {
        return TValue(r != 0);
      }
      if (r == 2) {
        return TValue(false);
      }
      if (name == "lt") {
        return TValue(r < 0);
      }
      if (name == "le") {
        return TValue(r <= 0);
      }
      if (name == "gt") {
        return TValue(r > 0);
      }
      return TValue(r >= 0);
    }
    if (name == "toUpper" || name == "toLower" || name == "title" || name == "safeHtml" ||
        name == "stripPort" || name == "stripDomain") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      auto s = string_arg(0);
      if (!s) {
        return Fail(s.error());
      }
      std::string out = *s;
      if (name == "toUpper") {
        std::transform(out.begin(), out.end(), out.begin(), ::toupper);
      } else if (name == "toLower") {
        std::transform(out.begin(), out.end(), out.begin(), ::tolower);
      } else if (name == "title") {
        bool prev_sep = true;
        for (char& c : out) {
          auto u = static_cast<unsigned char>(c);
          if (prev_sep && std::islower(u)) {
            c = static_cast<char>(std::toupper(u));
          }
          prev_sep = u < 0x80 && !std::isalnum(u) && c != '_';
        }
      } else if (name == "stripPort") {
        if (!out.empty() && out.front() == '[') {
          size_t close = out.find(']');
          if (close != std::string::npos) {
            out = out.substr(1, close - 1);
          }
        } else if (std::count(out.begin(), out.end(), ':') == 1) {
          out = out.substr(0, out.find(':'));
        }
      } else if (name == "stripDomain") {
        std::string port;
        size_t colon = out.rfind(':');
        if (colon != std::string::npos && out.find(':') == colon) {
          port = out.substr(colon);
          out = out.substr(0, colon);
        }
        bool is_ip = !out.empty() && std::all_of(out.begin(), out.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
        });
        if (!is_ip) {
          out = out.substr(0, out.find('.'));
        }
        out += port;
      }
      return TValue(out);
    }
    if (name == "match" || name == "reReplaceAll") {
      if (auto st = want(name == "match" ? 2 : 3); !st) {
        return Fail(st.error());
      }
      for (size_t i = 0; i < args.size(); ++i) {
        if (auto s = string_arg(i); !s) {
          return Fail(s.error());
        }
      }
      try {
        std::regex re(std::get<std::string>(args[0]), std::regex::ECMAScript);
        if (name == "match") {
          return TValue(std::regex_search(std::get<std::string>(args[1]), re));
        }
        // Go's $1 / ${1} expansion maps onto ECMAScript's $1.
        std::string repl = std::get<std::string>(args[1]);
        std::string fixed;
        for (size_t i = 0; i < repl.size(); ++i) {
          if (repl[i] == '$' && i + 1 < repl.size() && repl[i + 1] == '{') {
            size_t close = repl.find('}', i);
            if (close != std::string::npos) {
              fixed += "$" + repl.substr(i + 2, close - i - 2);
              i = close;
              continue;
            }
          }
          fixed += repl[i];
        }
        return TValue(std::regex_replace(std::get<std::string>(args[2]), re, fixed));
      } catch (const std::regex_error& e) {
        return calling(Error::InvalidArgument(std::string("error parsing regexp: ") + e.what()));
      }
    }
    if (name == "parseDuration") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      auto s = string_arg(0);
      if (!s) {
        return Fail(s.error());
      }
      if (*s == "0") {
        return TValue(0.0);
      }
      auto d = ParsePromDuration(*s);
      if (!d) {
        return calling(d.error());
      }
      return TValue(static_cast<double>(d->count()) / 1000.0);
    }
    if (name == "externalURL" || name == "pathPrefix") {
      return TValue(data_.external_url);
    }
    if (name == "query") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      auto s = string_arg(0);
      if (!s) {
        return Fail(s.error());
      }
      if (!query_) {
        return calling(Error::Unavailable("the query function is not available here"));
      }
      auto res = query_(*s);
      if (!res) {
        return calling(res.error());
      }
      QueryResult out;
      for (const auto& smp : *res) {
        out.push_back({smp.labels, smp.value});
      }
      return TValue(out);
    }
    if (name == "first") {
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      if (const auto* l = std::get_if<QueryResult>(&args[0])) {
        if (l->empty()) {
          return calling(Error::InvalidArgument("first() called on vector with no elements"));
        }
        return TValue(l->front());
      }
      return calling(Error::InvalidArgument("wrong type " + TypeName(args[0])));
    }
    if (name == "value" || name == "label" || name == "strvalue") {
      const size_t sample_index = name == "label" ? 1 : 0;
      if (auto st = want(name == "label" ? 2 : 1); !st) {
        return Fail(st.error());
      }
      const auto* smp = std::get_if<QuerySample>(&args[sample_index]);
      if (smp == nullptr) {
        return calling(Error::InvalidArgument("wrong type " + TypeName(args[sample_index])));
      }
      if (name == "value") {
        return TValue(smp->value);
      }
      if (name == "strvalue") {
        auto it = smp->labels.find("__value__");
        return TValue(it == smp->labels.end() ? std::string() : it->second);
      }
      auto key = string_arg(0);
      if (!key) {
        return Fail(key.error());
      }
      auto it = smp->labels.find(*key);
      return TValue(it == smp->labels.end() ? std::string() : it->second);
    }
    if (name == "sortByLabel") {
      if (auto st = want(2); !st) {
        return Fail(st.error());
      }
      auto key = string_arg(0);
      const auto* l = std::get_if<QueryResult>(&args[1]);
      if (!key || l == nullptr) {
        return calling(Error::InvalidArgument("wrong argument types"));
      }
      QueryResult out = *l;
      std::stable_sort(out.begin(), out.end(), [&](const QuerySample& a, const QuerySample& b) {
        auto va = a.labels.count(*key) ? a.labels.at(*key) : std::string();
        auto vb = b.labels.count(*key) ? b.labels.at(*key) : std::string();
        return va < vb;
      });
      return TValue(out);
    }
    return Fail(Error::InvalidArgument("template: " + name_ + ":" + std::to_string(line_) +
                                       ": function \"" + name + "\" not defined"));
  }

  std::string name_;
  const TemplateData& data_;
  const TemplateQueryFunc& query_;
  std::vector<std::pair<std::string, TValue>> vars_;
  std::string out_;
  int line_ = 1;
  bool root_ = true;
};

const std::vector<std::string>& KnownFunctions() {
  static const std::vector<std::string> kNames = {"and",
                                                  "or",
                                                  "not",
                                                  "len",
                                                  "index",
                                                  "print",
                                                  "printf",
                                                  "println",
                                                  "eq",
                                                  "ne",
                                                  "lt",
                                                  "le",
                                                  "gt",
                                                  "ge",
                                                  "humanize",
                                                  "humanize1024",
                                                  "humanizeDuration",
                                                  "humanizePercentage",
                                                  "humanizeTimestamp",
                                                  "toUpper",
                                                  "toLower",
                                                  "title",
                                                  "safeHtml",
                                                  "stripPort",
                                                  "stripDomain",
                                                  "match",
                                                  "reReplaceAll",
                                                  "parseDuration",
                                                  "externalURL",
                                                  "pathPrefix",
                                                  "query",
                                                  "first",
                                                  "value",
                                                  "label",
                                                  "strvalue",
                                                  "sortByLabel"};
  return kNames;
}

// Go's parser rejects unknown functions and undefined variables at parse time.
Status CheckNames(const std::string& name, const NodeList& nodes, std::vector<std::string>& vars,
                  int depth);

Status CheckPipeline(const std::string& name, const Pipeline& pipe, std::vector<std::string>& vars,
                     int depth) {
  if (depth > kMaxDepth) {
    return Fail(Error::InvalidArgument("template: " + name + ": nesting too deep"));
  }
  for (const Command& cmd : pipe.commands) {
    for (const Operand& op : cmd.operands) {
      if (op.kind == Operand::Kind::kFunction &&
          std::find(KnownFunctions().begin(), KnownFunctions().end(), op.name) ==
              KnownFunctions().end()) {
        return Fail(Error::InvalidArgument("template: " + name + ":1: function \"" + op.name +
                                           "\" not defined"));
      }
      if (op.kind == Operand::Kind::kVariable && op.name != "$" &&
          std::find(vars.begin(), vars.end(), op.name) == vars.end()) {
        return Fail(Error::InvalidArgument("template: " + name + ":1: undefined variable \"" +
                                           op.name + "\""));
      }
      if (op.kind == Operand::Kind::kPipeline) {
        if (auto st = CheckPipeline(name, *op.pipeline, vars, depth + 1); !st) {
          return st;
        }
      }
    }
  }
  if (!pipe.assign) {
    for (const auto& v : pipe.declared) {
      vars.push_back(v);
    }
  }
  return {};
}

Status CheckNames(const std::string& name, const NodeList& nodes, std::vector<std::string>& vars,
                  int depth) {
  for (const Node& n : nodes) {
    if (n.kind == Node::Kind::kText) {
      continue;
    }
    const size_t scope = vars.size();
    if (auto st = CheckPipeline(name, n.pipeline, vars, depth + 1); !st) {
      return st;
    }
    if (n.body) {
      if (auto st = CheckNames(name, *n.body, vars, depth + 1); !st) {
        return st;
      }
    }
    if (n.else_body) {
      if (auto st = CheckNames(name, *n.else_body, vars, depth + 1); !st) {
        return st;
      }
    }
    if (n.kind != Node::Kind::kAction) {
      vars.resize(scope);
    }
  }
  return {};
}

constexpr std::string_view kPrelude =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}";

Result<NodeList> ParseChecked(const std::string& name, std::string_view text) {
  std::string full = std::string(kPrelude) + std::string(text);
  Parser parser(name, full);
  auto nodes = parser.Parse();
  if (!nodes) {
    return nodes;
  }
  std::vector<std::string> vars;
  if (auto st = CheckNames(name, *nodes, vars, 0); !st) {
    return Fail(st.error());
  }
  return nodes;
}

}  // namespace

Result<std::string> ExpandTemplate(std::string_view name, std::string_view text,
                                   const TemplateData& data, const TemplateQueryFunc& query) {
  // Fast path: most label values are plain text.
  if (text.find("{{") == std::string_view::npos) {
    return std::string(text);
  }
  auto nodes = ParseChecked(std::string(name), text);
  if (!nodes) {
    return Fail(nodes.error());
  }
  Executor exec(std::string(name), data, query);
  return exec.Run(*nodes);
}

Status CheckTemplate(std::string_view name, std::string_view text) {
  if (text.find("{{") == std::string_view::npos) {
    return {};
  }
  auto nodes = ParseChecked(std::string(name), text);
  if (!nodes) {
    return Fail(nodes.error());
  }
  return {};
}

}  // namespace modelpulse::rules
