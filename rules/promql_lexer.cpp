#include "rules/internal/promql_lexer.h"

#include <array>
#include <cctype>
#include <utility>

#include "common/duration.h"

namespace modelpulse::rules::promql {
namespace {

struct Keyword {
  std::string_view word;
  TokenKind kind;
};

// Lower-case spellings; Prometheus matches keywords case-insensitively.
constexpr std::array kKeywords = {
    Keyword{"and", TokenKind::kAnd},
    Keyword{"or", TokenKind::kOr},
    Keyword{"unless", TokenKind::kUnless},
    Keyword{"atan2", TokenKind::kAtan2},
    Keyword{"by", TokenKind::kBy},
    Keyword{"without", TokenKind::kWithout},
    Keyword{"on", TokenKind::kOn},
    Keyword{"ignoring", TokenKind::kIgnoring},
    Keyword{"group_left", TokenKind::kGroupLeft},
    Keyword{"group_right", TokenKind::kGroupRight},
    Keyword{"bool", TokenKind::kBool},
    Keyword{"offset", TokenKind::kOffset},
    Keyword{"sum", TokenKind::kSum},
    Keyword{"avg", TokenKind::kAvg},
    Keyword{"count", TokenKind::kCount},
    Keyword{"min", TokenKind::kMin},
    Keyword{"max", TokenKind::kMax},
    Keyword{"group", TokenKind::kGroup},
    Keyword{"stddev", TokenKind::kStddev},
    Keyword{"stdvar", TokenKind::kStdvar},
    Keyword{"topk", TokenKind::kTopk},
    Keyword{"bottomk", TokenKind::kBottomk},
    Keyword{"count_values", TokenKind::kCountValues},
    Keyword{"quantile", TokenKind::kQuantile},
};

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlphaNumeric(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsHexDigit(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      SkipSpaceAndComments();
      if (pos_ >= text_.size()) {
        tokens.push_back({TokenKind::kEof, "", Pos(), Pos()});
        return tokens;
      }
      auto token = Next();
      if (!token) {
        return Fail(token.error());
      }
      if (token->kind == TokenKind::kLeftBracket) {
        bracket_open_ = true;
      } else if (token->kind == TokenKind::kRightBracket) {
        bracket_open_ = false;
      }
      tokens.push_back(std::move(*token));
    }
  }

 private:
  uint32_t Pos() const { return static_cast<uint32_t>(pos_); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }

  Error ErrorAt(size_t offset, std::string message) const {
    return Error::Parse(std::move(message), OffsetLocation(static_cast<uint32_t>(offset)));
  }

  void SkipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') {
          ++pos_;
        }
      } else {
        return;
      }
    }
  }

  Token Make(TokenKind kind, size_t start) const {
    return Token{kind,
                 std::string(text_.substr(start, pos_ - start)),
                 {static_cast<uint32_t>(start), Pos()}};
  }

  Result<Token> Next() {
    size_t start = pos_;
    char c = text_[pos_];
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) {
      return NumberOrDuration();
    }
    if (IsAlpha(c) || (c == ':' && !bracket_open_)) {
      return IdentifierOrKeyword();
    }
    if (c == '"' || c == '\'' || c == '`') {
      return QuotedString();
    }
    ++pos_;
    auto one = [&](TokenKind kind) -> Result<Token> { return Make(kind, start); };
    auto two = [&](char second, TokenKind if_two, TokenKind if_one) -> Result<Token> {
      if (Peek() == second) {
        ++pos_;
        return Make(if_two, start);
      }
      return Make(if_one, start);
    };
    switch (c) {
      case '(':
        return one(TokenKind::kLeftParen);
      case ')':
        return one(TokenKind::kRightParen);
      case '{':
        return one(TokenKind::kLeftBrace);
      case '}':
        return one(TokenKind::kRightBrace);
      case '[':
        return one(TokenKind::kLeftBracket);
      case ']':
        return one(TokenKind::kRightBracket);
      case ',':
        return one(TokenKind::kComma);
      case ':':
        return one(TokenKind::kColon);
      case '@':
        return one(TokenKind::kAt);
      case '+':
        return one(TokenKind::kAdd);
      case '-':
        return one(TokenKind::kSub);
      case '*':
        return one(TokenKind::kMul);
      case '/':
        return one(TokenKind::kDiv);
      case '%':
        return one(TokenKind::kMod);
      case '^':
        return one(TokenKind::kPow);
      case '<':
        return two('=', TokenKind::kLte, TokenKind::kLss);
      case '>':
        return two('=', TokenKind::kGte, TokenKind::kGtr);
      case '=':
        if (Peek() == '=') {
          ++pos_;
          return Make(TokenKind::kEqlc, start);
        }
        return two('~', TokenKind::kEqlRegex, TokenKind::kAssign);
      case '!':
        if (Peek() == '=') {
          ++pos_;
          return Make(TokenKind::kNeq, start);
        }
        if (Peek() == '~') {
          ++pos_;
          return Make(TokenKind::kNeqRegex, start);
        }
        return Fail(ErrorAt(start, "unexpected character after '!'"));
      default:
        break;
    }
    return Fail(ErrorAt(start, std::string("unexpected character: '") + c + "'"));
  }

  // number   ::= [0x] digits [. digits] [(e|E) [+|-] digits]   (hex digits after 0x)
  // duration ::= (digits unit)+                                 unit ::= ms|s|m|h|d|w|y
  Result<Token> NumberOrDuration() {
    size_t start = pos_;
    bool hex = false;
    if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
      hex = true;
      pos_ += 2;
    }
    auto accept_digits = [&] {
      while (pos_ < text_.size() && (hex ? IsHexDigit(text_[pos_]) : IsDigit(text_[pos_]))) {
        ++pos_;
      }
    };
    accept_digits();
    if (Peek() == '.') {
      ++pos_;
      accept_digits();
    }
    if (!hex && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (Peek() == '+' || Peek() == '-') {
        ++pos_;
      }
      while (IsDigit(Peek())) {
        ++pos_;
      }
    }
    if (!IsAlphaNumeric(Peek())) {
      return Make(TokenKind::kNumber, start);
    }
    // Not a plain number: it may be a duration such as 5m or 1h30m.
    pos_ = start;
    while (IsAlphaNumeric(Peek())) {
      ++pos_;
    }
    std::string_view word = text_.substr(start, pos_ - start);
    bool only_digits_and_units = true;
    for (char ch : word) {
      if (!IsDigit(ch) && std::string_view("smhdwy").find(ch) == std::string_view::npos) {
        only_digits_and_units = false;
      }
    }
    if (!only_digits_and_units || !ParsePromDuration(word)) {
      return Fail(ErrorAt(start, "bad number or duration syntax: \"" + std::string(word) + "\""));
    }
    return Make(TokenKind::kDuration, start);
  }

  Result<Token> IdentifierOrKeyword() {
    size_t start = pos_;
    while (pos_ < text_.size() && (IsAlphaNumeric(text_[pos_]) || text_[pos_] == ':')) {
      ++pos_;
    }
    std::string lower = Lower(text_.substr(start, pos_ - start));
    for (const Keyword& keyword : kKeywords) {
      if (keyword.word == lower) {
        return Make(keyword.kind, start);
      }
    }
    if (lower == "inf" || lower == "nan") {
      return Make(TokenKind::kNumber, start);
    }
    return Make(TokenKind::kIdentifier, start);
  }

  // Go string-literal rules (strconv.Unquote): escapes in "..." and '...', none in `...`.
  Result<Token> QuotedString() {
    size_t start = pos_;
    char quote = text_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) {
        return Fail(ErrorAt(start, "unterminated quoted string"));
      }
      char c = text_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c == '\n' && quote != '`') {
        return Fail(ErrorAt(start, "unterminated quoted string"));
      }
      if (c != '\\' || quote == '`') {
        value += c;
        ++pos_;
        continue;
      }
      size_t escape_at = pos_;
      ++pos_;
      if (pos_ >= text_.size()) {
        return Fail(ErrorAt(start, "unterminated quoted string"));
      }
      char e = text_[pos_++];
      auto hex_escape = [&](int digits) -> Result<uint32_t> {
        uint32_t cp = 0;
        for (int i = 0; i < digits; ++i) {
          if (!IsHexDigit(Peek())) {
            return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
          }
          char h = text_[pos_++];
          cp = cp * 16 + static_cast<uint32_t>(IsDigit(h) ? h - '0' : std::tolower(h) - 'a' + 10);
        }
        return cp;
      };
      switch (e) {
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
        case '"':
          if (e != quote) {
            return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
          }
          value += e;
          break;
        case 'x': {
          auto cp = hex_escape(2);
          if (!cp) {
            return Fail(cp.error());
          }
          value += static_cast<char>(*cp);
          break;
        }
        case 'u':
        case 'U': {
          auto cp = hex_escape(e == 'u' ? 4 : 8);
          if (!cp) {
            return Fail(cp.error());
          }
          if (*cp > 0x10FFFF || (*cp >= 0xD800 && *cp < 0xE000)) {
            return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
          }
          AppendUtf8(value, *cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2; ++i) {
              if (Peek() < '0' || Peek() > '7') {
                return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
              }
              v = v * 8 + static_cast<uint32_t>(text_[pos_++] - '0');
            }
            if (v > 255) {
              return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
            }
            value += static_cast<char>(v);
            break;
          }
          return Fail(ErrorAt(escape_at, "invalid escape sequence in string"));
      }
    }
    return Token{TokenKind::kString, std::move(value), {static_cast<uint32_t>(start), Pos()}};
  }

  std::string_view text_;
  size_t pos_ = 0;
  // Inside [...] a ':' is the subquery separator rather than the start of a metric name.
  bool bracket_open_ = false;
};

}  // namespace

std::string OffsetLocation(uint32_t offset) { return "offset " + std::to_string(offset); }

Result<std::vector<Token>> Lex(std::string_view text) {
  if (text.size() > kMaxQueryBytes) {
    return Fail(Error::Parse("query is longer than " + std::to_string(kMaxQueryBytes) + " bytes",
                             OffsetLocation(static_cast<uint32_t>(kMaxQueryBytes))));
  }
  return Lexer(text).Run();
}

bool IsAggregator(TokenKind kind) {
  return kind >= TokenKind::kSum && kind <= TokenKind::kQuantile;
}

bool IsKeyword(TokenKind kind) { return kind >= TokenKind::kAnd && kind <= TokenKind::kQuantile; }

std::string_view TokenKindName(TokenKind kind) {
  switch (kind) {
    case TokenKind::kEof:
      return "end of input";
    case TokenKind::kIdentifier:
      return "identifier";
    case TokenKind::kNumber:
      return "number";
    case TokenKind::kDuration:
      return "duration";
    case TokenKind::kString:
      return "string";
    case TokenKind::kLeftParen:
      return "\"(\"";
    case TokenKind::kRightParen:
      return "\")\"";
    case TokenKind::kLeftBrace:
      return "\"{\"";
    case TokenKind::kRightBrace:
      return "\"}\"";
    case TokenKind::kLeftBracket:
      return "\"[\"";
    case TokenKind::kRightBracket:
      return "\"]\"";
    case TokenKind::kComma:
      return "\",\"";
    case TokenKind::kColon:
      return "\":\"";
    case TokenKind::kAt:
      return "\"@\"";
    case TokenKind::kAssign:
      return "\"=\"";
    case TokenKind::kEqlRegex:
      return "\"=~\"";
    case TokenKind::kNeqRegex:
      return "\"!~\"";
    case TokenKind::kAdd:
      return "\"+\"";
    case TokenKind::kSub:
      return "\"-\"";
    case TokenKind::kMul:
      return "\"*\"";
    case TokenKind::kDiv:
      return "\"/\"";
    case TokenKind::kMod:
      return "\"%\"";
    case TokenKind::kPow:
      return "\"^\"";
    case TokenKind::kEqlc:
      return "\"==\"";
    case TokenKind::kNeq:
      return "\"!=\"";
    case TokenKind::kLss:
      return "\"<\"";
    case TokenKind::kLte:
      return "\"<=\"";
    case TokenKind::kGtr:
      return "\">\"";
    case TokenKind::kGte:
      return "\">=\"";
    default:
      return "keyword";
  }
}

}  // namespace modelpulse::rules::promql
