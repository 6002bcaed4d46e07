// The template parser; see template_parser.h.
#include "rules/internal/template_parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "rules/internal/template_lexer.h"

namespace modelpulse::rules::text_template {
namespace {

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
      // Find the closing "}}", skipping over string literals, and over a comment's text, which
      // Go scans to "*/" whatever quotes it holds ("the group's title").
      size_t close = std::string_view::npos;
      size_t scan = start;
      while (scan < text_.size() && std::isspace(static_cast<unsigned char>(text_[scan]))) {
        ++scan;
      }
      if (text_.substr(scan, 2) == "/*") {
        const size_t end = text_.find("*/", scan + 2);
        scan = end == std::string_view::npos ? text_.size() : end + 2;
      } else {
        scan = start;
      }
      for (size_t k = scan; k + 1 < text_.size(); ++k) {
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
      auto tokens = LexAction(trimmed, name_, line_);
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
        if (Peek().kind == Token::Kind::kField && Peek().after_paren) {
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
// `notification`: a notification template, which may also call toJson (not Prometheus's).
Status CheckNames(const std::string& name, const NodeList& nodes, std::vector<std::string>& vars,
                  int depth, bool notification);

Status CheckPipeline(const std::string& name, const Pipeline& pipe, std::vector<std::string>& vars,
                     int depth, bool notification) {
  if (depth > kMaxDepth) {
    return Fail(Error::InvalidArgument("template: " + name + ": nesting too deep"));
  }
  for (const Command& cmd : pipe.commands) {
    for (const Operand& op : cmd.operands) {
      if (op.kind == Operand::Kind::kFunction && !(notification && op.name == "toJson") &&
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
        if (auto st = CheckPipeline(name, *op.pipeline, vars, depth + 1, notification); !st) {
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
                  int depth, bool notification) {
  for (const Node& n : nodes) {
    if (n.kind == Node::Kind::kText) {
      continue;
    }
    const size_t scope = vars.size();
    if (auto st = CheckPipeline(name, n.pipeline, vars, depth + 1, notification); !st) {
      return st;
    }
    if (n.body) {
      if (auto st = CheckNames(name, *n.body, vars, depth + 1, notification); !st) {
        return st;
      }
    }
    if (n.else_body) {
      if (auto st = CheckNames(name, *n.else_body, vars, depth + 1, notification); !st) {
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

}  // namespace

Result<NodeList> ParseTemplate(const std::string& name, std::string_view text, bool prelude) {
  std::string full = prelude ? std::string(kPrelude) + std::string(text) : std::string(text);
  Parser parser(name, full);
  auto nodes = parser.Parse();
  if (!nodes) {
    return nodes;
  }
  std::vector<std::string> vars;
  if (auto st = CheckNames(name, *nodes, vars, 0, !prelude); !st) {
    return Fail(st.error());
  }
  return nodes;
}

}  // namespace modelpulse::rules::text_template
