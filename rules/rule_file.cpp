// Rule files (§1.1, §1.2): strict decoding as Prometheus 2.42's rulefmt does (unknown keys are
// errors, so 3.x-only keys such as query_offset fail too), then RuleNode.Validate's checks, with
// every error located in the file (yaml-cpp marks are 0-based; we print 1-based).
#include "rules/internal/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

std::string Where(std::string_view path, const YAML::Mark& mark) {
  return std::string(path) + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

bool IsLabelName(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Prometheus accepts only valid UTF-8 label values.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
      return false;
    }
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) {
        return false;
      }
    }
    i += n;
  }
  return true;
}

Result<Millis> ParseDurationNode(std::string_view path, const YAML::Node& node) {
  const std::string text = node.Scalar();
  if (text == "0") {
    return Millis(0);
  }
  auto d = ParsePromDuration(text);
  if (!d) {
    return Fail(
        Error::Parse("not a valid duration string: \"" + text + "\"", Where(path, node.Mark())));
  }
  return *d;
}

Status CheckKeys(std::string_view path, const YAML::Node& map,
                 const std::set<std::string, std::less<>>& known, std::string_view type) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (known.count(key) == 0) {
      return Fail(Error::Parse("field " + key + " not found in type " + std::string(type),
                               Where(path, kv.first.Mark())));
    }
  }
  return {};
}

Result<Labels> ParseStringMap(std::string_view path, const YAML::Node& node,
                              std::string_view what) {
  Labels out;
  if (!node || node.IsNull()) {
    return out;
  }
  if (!node.IsMap()) {
    return Fail(
        Error::Parse(std::string(what) + " must be a map of strings", Where(path, node.Mark())));
  }
  for (const auto& kv : node) {
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      return Fail(Error::Parse(std::string(what) + " values must be strings",
                               Where(path, kv.second.Mark())));
    }
    out[kv.first.Scalar()] = kv.second.IsNull() ? "" : kv.second.Scalar();
  }
  return out;
}

// Where in the file byte `offset` of a scalar's value lies: exact for plain and quoted one-line
// scalars and for literal block scalars; otherwise the scalar's own position.
YAML::Mark LocateInScalar(std::string_view text, const YAML::Mark& mark, std::string_view value,
                          size_t offset) {
  YAML::Mark out = mark;
  if (mark.pos < 0 || static_cast<size_t>(mark.pos) >= text.size()) {
    return out;
  }
  const char first = text[static_cast<size_t>(mark.pos)];
  if (first == '|' || first == '>') {
    if (first == '>') {
      return out;
    }
    // Literal block: value line k is file line mark.line + 1 + k, indented like the first line.
    size_t line_start = text.find('\n', static_cast<size_t>(mark.pos));
    if (line_start == std::string_view::npos) {
      return out;
    }
    ++line_start;
    size_t indent = 0;
    while (line_start + indent < text.size() && text[line_start + indent] == ' ') {
      ++indent;
    }
    std::string_view before = value.substr(0, std::min(offset, value.size()));
    const auto k = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
    const size_t last_nl = before.rfind('\n');
    const size_t col =
        last_nl == std::string_view::npos ? before.size() : before.size() - last_nl - 1;
    out.line = mark.line + 1 + k;
    out.column = static_cast<int>(indent + col);
    return out;
  }
  if (value.find('\n') != std::string_view::npos) {
    return out;
  }
  const int quote = (first == '"' || first == '\'') ? 1 : 0;
  out.column = mark.column + quote + static_cast<int>(offset);
  return out;
}

struct RuleContext {
  std::string_view path;
  std::string_view text;
  std::string group;
  size_t index = 0;  // 1-based
  std::string name;

  Error At(const YAML::Mark& mark, const std::string& msg) const {
    return Error::Parse(
        "group \"" + group + "\", rule " + std::to_string(index) + ", \"" + name + "\": " + msg,
        Where(path, mark));
  }
  Error Unlocated(const std::string& msg) const {
    return Error::Parse(
        "group \"" + group + "\", rule " + std::to_string(index) + ", \"" + name + "\": " + msg,
        std::string(path));
  }
};

Result<RuleDef> ParseRule(const RuleContext& ctx_in, const YAML::Node& node) {
  RuleContext ctx = ctx_in;
  if (!node.IsMap()) {
    return Fail(Error::Parse("a rule must be a map", Where(ctx.path, node.Mark())));
  }
  static const std::set<std::string, std::less<>> kKnown = {
      "record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"};
  if (auto st = CheckKeys(ctx.path, node, kKnown, "rulefmt.RuleNode"); !st) {
    return Fail(st.error());
  }
  RuleDef rule;
  rule.location = Where(ctx.path, node.Mark());
  const YAML::Node record = node["record"];
  const YAML::Node alert = node["alert"];
  const YAML::Node expr = node["expr"];
  const std::string record_name = record ? record.Scalar() : "";
  const std::string alert_name = alert ? alert.Scalar() : "";
  ctx.name = !alert_name.empty() ? alert_name : record_name;
  if (!record_name.empty() && !alert_name.empty()) {
    return Fail(ctx.At(record.Mark(), "only one of 'record' and 'alert' must be set"));
  }
  if (record_name.empty() && alert_name.empty()) {
    return Fail(ctx.At((record  ? record
                        : alert ? alert
                                : node)
                           .Mark(),
                       "one of 'record' or 'alert' must be set"));
  }
  rule.kind = record_name.empty() ? RuleDef::Kind::kAlerting : RuleDef::Kind::kRecording;
  rule.name = ctx.name;
  if (!expr || expr.Scalar().empty()) {
    return Fail(ctx.At((expr ? expr : node).Mark(), "field 'expr' must be set in rule"));
  }
  rule.expr_text = expr.Scalar();
  auto query = Query::Parse(rule.expr_text);
  if (!query) {
    // The engine locates its error as "offset N" into the expression; map it into the file.
    size_t offset = 0;
    const std::string& loc = query.error().location;
    if (loc.rfind("offset ", 0) == 0) {
      offset = static_cast<size_t>(std::strtoull(loc.c_str() + 7, nullptr, 10));
    }
    // "Unexpected end of input" points past a block scalar's final newline: point at its end.
    size_t end = rule.expr_text.find_last_not_of(" \t\r\n");
    offset = std::min(offset, end == std::string::npos ? 0 : end + 1);
    return Fail(ctx.At(LocateInScalar(ctx.text, expr.Mark(), rule.expr_text, offset),
                       "could not parse expression: " + query.error().message));
  }
  rule.expr = std::move(*query);
  if (const YAML::Node f = node["for"]; f && !f.IsNull()) {
    auto d = ParseDurationNode(ctx.path, f);
    if (!d) {
      return Fail(d.error());
    }
    rule.for_duration = *d;
  }
  if (const YAML::Node k = node["keep_firing_for"]; k && !k.IsNull()) {
    auto d = ParseDurationNode(ctx.path, k);
    if (!d) {
      return Fail(d.error());
    }
    rule.keep_firing_for = *d;
  }
  auto labels = ParseStringMap(ctx.path, node["labels"], "labels");
  if (!labels) {
    return Fail(labels.error());
  }
  rule.labels = std::move(*labels);
  auto annotations = ParseStringMap(ctx.path, node["annotations"], "annotations");
  if (!annotations) {
    return Fail(annotations.error());
  }
  rule.annotations = std::move(*annotations);
  if (rule.kind == RuleDef::Kind::kRecording) {
    if (!rule.annotations.empty()) {
      return Fail(ctx.At(record.Mark(), "invalid field 'annotations' in recording rule"));
    }
    if (rule.for_duration.count() != 0) {
      return Fail(ctx.At(record.Mark(), "invalid field 'for' in recording rule"));
    }
    if (rule.keep_firing_for.count() != 0) {
      return Fail(ctx.At(record.Mark(), "invalid field 'keep_firing_for' in recording rule"));
    }
    static const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
    if (!std::regex_match(rule.name, kMetricName)) {
      return Fail(ctx.At(record.Mark(), "invalid recording rule name: " + rule.name));
    }
  }
  const YAML::Node labels_node = node["labels"];
  for (const auto& [k, v] : rule.labels) {
    if (!IsLabelName(k) || k == "__name__") {
      return Fail(ctx.At(labels_node.Mark(), "invalid label name: " + k));
    }
    if (!IsUtf8(v)) {
      return Fail(ctx.At(labels_node.Mark(), "invalid label value: " + v));
    }
  }
  const YAML::Node annotations_node = node["annotations"];
  for (const auto& [k, v] : rule.annotations) {
    if (!IsLabelName(k)) {
      return Fail(ctx.At(annotations_node.Mark(), "invalid annotation name: " + k));
    }
  }
  if (rule.kind == RuleDef::Kind::kAlerting) {
    const std::string tmpl_name = "__alert_" + rule.name;
    for (const auto& [k, v] : rule.labels) {
      if (auto st = CheckTemplate(tmpl_name, v); !st) {
        return Fail(ctx.At(labels_node[k].Mark(), "label \"" + k + "\": " + st.error().message));
      }
    }
    for (const auto& [k, v] : rule.annotations) {
      if (auto st = CheckTemplate(tmpl_name, v); !st) {
        return Fail(
            ctx.At(annotations_node[k].Mark(), "annotation \"" + k + "\": " + st.error().message));
      }
    }
  }
  return rule;
}

}  // namespace

Result<RuleFileDef> ParseRuleFile(std::string_view text, std::string_view path) {
  RuleFileDef file;
  file.path = std::string(path);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root || root.IsNull()) {
      return file;  // an empty file is allowed
    }
    if (!root.IsMap()) {
      return Fail(Error::Parse("a rule file must be a map with the key 'groups'",
                               Where(path, root.Mark())));
    }
    static const std::set<std::string, std::less<>> kTop = {"groups"};
    if (auto st = CheckKeys(path, root, kTop, "rulefmt.RuleGroups"); !st) {
      return Fail(st.error());
    }
    const YAML::Node groups = root["groups"];
    if (!groups || groups.IsNull()) {
      return file;
    }
    if (!groups.IsSequence()) {
      return Fail(Error::Parse("'groups' must be a list", Where(path, groups.Mark())));
    }
    // Decoding comes before validation in Prometheus: an unknown key anywhere in the file is
    // the error reported, even when an earlier rule is also invalid.
    for (const YAML::Node& g : groups) {
      if (!g.IsMap()) {
        continue;
      }
      if (auto st = CheckKeys(path, g, {"name", "interval", "limit", "rules"}, "rulefmt.RuleGroup");
          !st) {
        return Fail(st.error());
      }
      const YAML::Node rules = g["rules"];
      if (!rules || !rules.IsSequence()) {
        continue;
      }
      for (const YAML::Node& r : rules) {
        if (!r.IsMap()) {
          continue;
        }
        if (auto st = CheckKeys(
                path, r,
                {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
                "rulefmt.RuleNode");
            !st) {
          return Fail(st.error());
        }
      }
    }
    std::set<std::string> seen;
    static const std::set<std::string, std::less<>> kGroupKeys = {"name", "interval", "limit",
                                                                  "rules"};
    for (const YAML::Node& g : groups) {
      if (!g.IsMap()) {
        return Fail(Error::Parse("a group must be a map", Where(path, g.Mark())));
      }
      if (auto st = CheckKeys(path, g, kGroupKeys, "rulefmt.RuleGroup"); !st) {
        return Fail(st.error());
      }
      RuleGroupDef group;
      group.file = std::string(path);
      const YAML::Node name = g["name"];
      group.name = name ? name.Scalar() : "";
      // yaml-cpp 0.7 marks a block mapping at its first value; a group is pointed at by its first
      // key.
      const YAML::Mark group_mark = g.size() > 0 ? g.begin()->first.Mark() : g.Mark();
      if (group.name.empty()) {
        return Fail(Error::Parse("Groupname must not be empty", Where(path, group_mark)));
      }
      if (!seen.insert(group.name).second) {
        return Fail(Error::Parse("groupname: \"" + group.name + "\" is repeated in the same file",
                                 Where(path, group_mark)));
      }
      if (const YAML::Node interval = g["interval"]; interval && !interval.IsNull()) {
        auto d = ParseDurationNode(path, interval);
        if (!d) {
          return Fail(d.error());
        }
        group.interval = *d;
      }
      if (const YAML::Node limit = g["limit"]; limit && !limit.IsNull()) {
        try {
          group.limit = limit.as<int64_t>();
        } catch (const YAML::Exception&) {
          return Fail(Error::Parse("limit must be an integer", Where(path, limit.Mark())));
        }
      }
      const YAML::Node rules = g["rules"];
      if (rules && !rules.IsNull() && !rules.IsSequence()) {
        return Fail(Error::Parse("'rules' must be a list", Where(path, rules.Mark())));
      }
      if (rules) {
        size_t index = 0;
        for (const YAML::Node& r : rules) {
          RuleContext ctx{path, text, group.name, ++index, ""};
          auto rule = ParseRule(ctx, r);
          if (!rule) {
            return Fail(rule.error());
          }
          group.rules.push_back(std::move(*rule));
        }
      }
      file.groups.push_back(std::move(group));
    }
  } catch (const YAML::Exception& e) {
    return Fail(Error::Parse("yaml: " + e.msg, Where(path, e.mark)));
  }
  return file;
}

Result<RuleFileDef> LoadRuleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(Error::Io("cannot read rule file " + path));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return ParseRuleFile(buf.str(), path);
}

}  // namespace modelpulse::rules
