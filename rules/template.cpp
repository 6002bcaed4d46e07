// A Go text/template subset, enough for Prometheus alert labels and annotations (§1.5):
// actions with pipelines, variables, fields, if/else if/else, range, with, comments, trim
// markers, Go's builtins (and, or, not, len, index, eq..ge, print, printf) and Prometheus's
// functions (humanize*, query, first, label, value, title, toUpper, match, reReplaceAll...).
// Options as Prometheus sets them: missingkey=zero on maps. This file is the executor and the
// entry points; the lexer, parser and value model are template_lexer, template_parser and
// template_value, and Go's number formatting is go_compat.
#include "rules/internal/template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <variant>

#include "rules/internal/go_compat.h"
#include "rules/internal/template_parser.h"
#include "rules/internal/template_value.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace text_template {
namespace {

// One expansion's output, and any one value a function returns, stay within 1 MiB; every
// string the functions of one expansion return stays within 16 MiB in all (a `range` of printf
// into variables would otherwise build gigabytes it never prints).
constexpr size_t kMaxOutput = 1 << 20;
constexpr size_t kMaxProduced = 16 << 20;
constexpr int kMaxRangeIterations = 100000;

class Executor {
 public:
  // `root`: the data of a notification template; null for an alert template, whose root is
  // `data` (handled in Field()).
  Executor(std::string name, const TemplateData& data, const TemplateQueryFunc& query,
           const TValue* root = nullptr)
      : name_(std::move(name)), data_(data), query_(query), root_value_(root) {}

  Result<std::string> Run(const NodeList& nodes) {
    vars_.push_back({"$", Nil{}});
    TValue dot = root_value_ != nullptr ? *root_value_ : TValue(Nil{});
    root_ = root_value_ == nullptr;
    if (auto st = Walk(nodes, dot, 0); !st) {
      return Fail(st.error());
    }
    if (out_.size() > kMaxOutput) {
      return Fail(OutputTooLarge());
    }
    return out_;
  }

 private:
  Error Err(int line, const std::string& msg) const {
    return Error::InvalidArgument("template: " + name_ + ":" + std::to_string(line) +
                                  ": executing \"" + name_ + "\": " + msg);
  }

  Error OutputTooLarge() const {
    return Error::InvalidArgument("template: " + name_ + ": output over the limit of " +
                                  std::to_string(kMaxOutput) + " bytes");
  }

  Status Walk(const NodeList& nodes, const TValue& dot, int depth) {
    if (depth > kMaxDepth) {
      return Fail(Error::InvalidArgument("template: " + name_ + ": nesting too deep"));
    }
    for (const Node& n : nodes) {
      if (out_.size() > kMaxOutput) {
        return Fail(OutputTooLarge());
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
          } else if (const auto* values = std::get_if<List>(&*v)) {
            for (size_t i = 0; i < values->items->items.size(); ++i) {
              items.emplace_back(static_cast<int64_t>(i), values->items->items[i]);
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
    if (const auto* r = std::get_if<Record>(&base)) {
      auto it = r->fields->fields.find(field);
      if (it != r->fields->fields.end()) {
        return it->second;
      }
    }
    if (const auto* l = std::get_if<List>(&base); l && (field == "Firing" || field == "Resolved")) {
      // Alertmanager's Alerts.Firing() and Alerts.Resolved().
      auto filtered = std::make_shared<ListItems>();
      filtered->type_name = l->items->type_name;
      const std::string wanted = field == "Firing" ? "firing" : "resolved";
      for (const TValue& item : l->items->items) {
        const auto* alert = std::get_if<Record>(&item);
        if (alert == nullptr) {
          continue;
        }
        auto status = alert->fields->fields.find("Status");
        const auto* text = status != alert->fields->fields.end()
                               ? std::get_if<std::string>(&status->second)
                               : nullptr;
        if (text != nullptr && *text == wanted) {
          filtered->items.push_back(item);
        }
      }
      return TValue(List{std::move(filtered)});
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
          return root_value_ != nullptr ? ApplyFields(*root_value_, false, op.fields)
                                        : ApplyFields(Nil{}, true, op.fields);
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

  Result<TValue> CallFunction(const std::string& name, std::vector<TValue> args,
                              const TValue& dot) {
    auto result = CallBuiltin(name, std::move(args), dot);
    if (const auto* s = result ? std::get_if<std::string>(&*result) : nullptr) {
      produced_ += s->size();
      if (s->size() > kMaxOutput || produced_ > kMaxProduced) {
        return Fail(
            Err(line_, "error calling " + name + ": strings over the limit of " +
                           std::to_string(s->size() > kMaxOutput ? kMaxOutput : kMaxProduced) +
                           " bytes"));
      }
    }
    return result;
  }

  Result<TValue> CallBuiltin(const std::string& name, std::vector<TValue> args, const TValue&) {
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
      // Prometheus 2.42's floatToTime: an error beyond int64 nanoseconds (where C++'s cast is
      // undefined: libFuzzer sent 1.8e54), else model.TimeFromUnixNano(int64(v * 1e9)), so
      // milliseconds truncated toward zero. Exactly 2^63 passes Go's check and converts to
      // math.MinInt64 on amd64.
      constexpr double kTwoTo63 = 9223372036854775808.0;
      const double nanos_float = *v * 1e9;
      if (nanos_float > kTwoTo63 || nanos_float < -kTwoTo63) {
        return calling(Error::InvalidArgument(
            FormatGoFloat(*v) +
            " cannot be represented as a nanoseconds timestamp since it overflows int64"));
      }
      const int64_t nanos = GoFloatToInt64(nanos_float);
      const int64_t millis = nanos / 1'000'000;
      // time.Unix(ms / 1000, ms % 1000 * 1e6) normalises a negative remainder.
      int64_t seconds = millis / 1000;
      int64_t fraction_ms = millis % 1000;
      if (fraction_ms < 0) {
        fraction_ms += 1000;
        --seconds;
      }
      const auto t = static_cast<time_t>(seconds);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[64];
      std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
      std::string out = buf;
      if (fraction_ms > 0) {
        char digits[8];
        std::snprintf(digits, sizeof(digits), ".%03d", static_cast<int>(fraction_ms));
        std::string f = digits;
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
        auto formatted = GoSprintf(*format, {args.begin() + 1, args.end()}, kMaxOutput);
        if (!formatted) {
          return calling(formatted.error());
        }
        return TValue(std::move(*formatted));
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
      if (const auto* l = std::get_if<List>(&args[0])) {
        return TValue(static_cast<int64_t>(l->items->items.size()));
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
        } else if (const auto* values = std::get_if<List>(&v); values && args[i].index() == 2) {
          int64_t k = std::get<int64_t>(args[i]);
          if (k < 0 || static_cast<size_t>(k) >= values->items->items.size()) {
            return calling(Error::InvalidArgument("index out of range: " + std::to_string(k)));
          }
          v = values->items->items[static_cast<size_t>(k)];
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
        // Go defines gt as !le and ge as !lt, so an unordered pair (a NaN) is greater, not less.
        return TValue(name == "gt" || name == "ge");
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
      // Go's regexp.MatchString and Regexp.ReplaceAllString: unanchored, $1/${name} expansion.
      auto re = CompileGoRegex(std::get<std::string>(args[0]));
      if (!re) {
        return calling(Error::InvalidArgument("error parsing regexp: " + re.error().message));
      }
      if (name == "match") {
        return TValue(re->Search(std::get<std::string>(args[1])));
      }
      auto replaced = re->ReplaceAll(std::get<std::string>(args[2]), std::get<std::string>(args[1]),
                                     kMaxOutput);
      if (!replaced) {
        return calling(replaced.error());
      }
      return TValue(std::move(*replaced));
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
    if (name == "toJson") {
      // Not Go's: a value as JSON text (a string quoted and escaped), so that a template that
      // writes a JSON body stays valid JSON whatever quotes or newlines a label holds.
      if (auto st = want(1); !st) {
        return Fail(st.error());
      }
      return TValue(ToJson(args[0]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
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

  static nlohmann::json ToJson(const TValue& v) {
    switch (v.index()) {
      case 0:
        return nullptr;
      case 1:
        return std::get<bool>(v);
      case 2:
        return std::get<int64_t>(v);
      case 3:
        return std::get<double>(v);  // NaN and infinities dump as null
      case 4:
        return std::get<std::string>(v);
      case 5:
        return std::get<Labels>(v);
      case 6: {
        const auto& s = std::get<QuerySample>(v);
        return {{"Labels", s.labels}, {"Value", s.value}};
      }
      case 7: {
        nlohmann::json out = nlohmann::json::array();
        for (const QuerySample& s : std::get<QueryResult>(v)) {
          out.push_back(ToJson(s));
        }
        return out;
      }
      case 8: {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [name, field] : std::get<Record>(v).fields->fields) {
          out[name] = ToJson(field);
        }
        return out;
      }
      default: {
        nlohmann::json out = nlohmann::json::array();
        for (const TValue& item : std::get<List>(v).items->items) {
          out.push_back(ToJson(item));
        }
        return out;
      }
    }
  }

  std::string name_;
  const TemplateData& data_;
  const TemplateQueryFunc& query_;
  const TValue* root_value_ = nullptr;
  std::vector<std::pair<std::string, TValue>> vars_;
  std::string out_;
  size_t produced_ = 0;  // bytes of every string a function returned, against kMaxProduced
  int line_ = 1;
  bool root_ = true;
};

}  // namespace
}  // namespace text_template

Result<std::string> ExpandTemplate(std::string_view name, std::string_view text,
                                   const TemplateData& data, const TemplateQueryFunc& query) {
  // Fast path: most label values are plain text.
  if (text.find("{{") == std::string_view::npos) {
    return std::string(text);
  }
  auto nodes = text_template::ParseTemplate(std::string(name), text);
  if (!nodes) {
    return Fail(nodes.error());
  }
  text_template::Executor exec(std::string(name), data, query);
  return exec.Run(*nodes);
}

namespace {

// A JSON value of the webhook payload as template data: object keys become Go's exported field
// names (status -> Status, externalURL -> ExternalURL); an object of strings only (labels,
// annotations, groupLabels...) stays a map, whose keys are label names.
text_template::TValue FromJson(const nlohmann::json& j, std::string_view type_name) {
  using namespace text_template;
  switch (j.type()) {
    case nlohmann::json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return j.get<int64_t>();
    case nlohmann::json::value_t::number_float:
      return j.get<double>();
    case nlohmann::json::value_t::string:
      return j.get<std::string>();
    case nlohmann::json::value_t::array: {
      auto items = std::make_shared<ListItems>();
      items->type_name = "template.Alerts";
      for (const nlohmann::json& item : j) {
        items->items.push_back(FromJson(item, "template.Alert"));
      }
      return List{std::move(items)};
    }
    case nlohmann::json::value_t::object: {
      const bool strings =
          std::all_of(j.begin(), j.end(), [](const nlohmann::json& v) { return v.is_string(); });
      if (strings && type_name != "template.Data") {
        return j.get<Labels>();
      }
      auto fields = std::make_shared<RecordFields>();
      fields->type_name = std::string(type_name);
      for (const auto& [key, value] : j.items()) {
        std::string field = key;
        if (!field.empty()) {
          field[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(field[0])));
        }
        fields->fields.emplace(std::move(field), FromJson(value, "template.Alert"));
      }
      return Record{std::move(fields)};
    }
    default:
      return Nil{};
  }
}

}  // namespace

Result<std::string> ExpandNotificationTemplate(std::string_view name, std::string_view text,
                                               std::string_view payload_json) {
  const nlohmann::json payload = nlohmann::json::parse(payload_json, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) {
    return Fail(Error::InvalidArgument("template: " + std::string(name) +
                                       ": the notification payload is not a JSON object"));
  }
  auto nodes = text_template::ParseTemplate(std::string(name), text, /*prelude=*/false);
  if (!nodes) {
    return Fail(nodes.error());
  }
  const text_template::TValue root = FromJson(payload, "template.Data");
  const TemplateData unused;
  text_template::Executor exec(std::string(name), unused, nullptr, &root);
  return exec.Run(*nodes);
}

Status CheckNotificationTemplate(std::string_view name, std::string_view text) {
  auto nodes = text_template::ParseTemplate(std::string(name), text, /*prelude=*/false);
  if (!nodes) {
    return Fail(nodes.error());
  }
  return {};
}

Status CheckTemplate(std::string_view name, std::string_view text) {
  if (text.find("{{") == std::string_view::npos) {
    return {};
  }
  auto nodes = text_template::ParseTemplate(std::string(name), text);
  if (!nodes) {
    return Fail(nodes.error());
  }
  return {};
}

}  // namespace modelpulse::rules
