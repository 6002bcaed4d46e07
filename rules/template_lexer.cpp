// The template lexer; see template_lexer.h.
#include "rules/internal/template_lexer.h"

#include <cctype>

namespace modelpulse::rules::text_template {
namespace {

bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

Result<std::vector<Token>> LexAction(std::string_view s, const std::string& template_name,
                                     int line) {
  auto Err = [&](const std::string& msg) {
    return Error::InvalidArgument("template: " + template_name + ":" + std::to_string(line) + ": " +
                                  msg);
  };
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
        t = Token{Token::Kind::kField, std::string(s.substr(i, j - i)), true};
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

}  // namespace modelpulse::rules::text_template
