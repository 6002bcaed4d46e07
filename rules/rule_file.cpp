// Rule files (§1.1, §1.2): strict decoding as Prometheus 2.42's rulefmt does (unknown keys are
// errors, so 3.x-only keys such as query_offset fail too), then RuleNode.Validate's checks, with
// every error located in the file (yaml-cpp marks are 0-based; we print 1-based).
#include "rules/internal/rule_file.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <set>
#include <span>
#include <sstream>

#include "common/yaml_reader.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

using yaml::Diagnostics;

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

std::optional<Millis> ReadDuration(const YAML::Node& node, Diagnostics& diag) {
  const std::string text = node.Scalar();
  if (text == "0") {
    return Millis(0);
  }
  auto d = ParsePromDuration(text);
  if (!d) {
    diag.Add(node.Mark(), "not a valid duration string: \"" + text + "\"");
    return std::nullopt;
  }
  return *d;
}

constexpr std::string_view kRuleFileFields[] = {"groups"};
constexpr std::string_view kGroupFields[] = {"name", "interval", "limit", "rules"};
constexpr std::string_view kRuleFields[] = {"record",          "alert",  "expr",       "for",
                                            "keep_firing_for", "labels", "annotations"};

std::optional<Labels> ReadStringMap(const YAML::Node& node, std::string_view what,
                                    Diagnostics& diag) {
  Labels out;
  if (!node || node.IsNull()) {
    return out;
  }
  if (!node.IsMap()) {
    diag.Add(node.Mark(), std::string(what) + " must be a map of strings");
    return std::nullopt;
  }
  for (const auto& kv : node) {
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      diag.Add(kv.second.Mark(), std::string(what) + " values must be strings");
      return std::nullopt;
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

  void Add(Diagnostics& diag, const YAML::Mark& mark, const std::string& msg) const {
    diag.Add(mark, "group \"" + group + "\", rule " + std::to_string(index) + ", \"" + name +
                       "\": " + msg);
  }
};

std::optional<RuleDef> ReadRule(const RuleContext& ctx_in, const YAML::Node& node,
                                Diagnostics& diag) {
  RuleContext ctx = ctx_in;
  if (!node.IsMap()) {
    diag.Add(node.Mark(), "a rule must be a map");
    return std::nullopt;
  }
  RuleDef rule;
  rule.location = fmt::format("{}:{}:{}", ctx.path, node.Mark().line + 1, node.Mark().column + 1);
  const YAML::Node record = node["record"];
  const YAML::Node alert = node["alert"];
  const YAML::Node expr = node["expr"];
  const std::string record_name = record ? record.Scalar() : "";
  const std::string alert_name = alert ? alert.Scalar() : "";
  ctx.name = !alert_name.empty() ? alert_name : record_name;
  if (!record_name.empty() && !alert_name.empty()) {
    ctx.Add(diag, record.Mark(), "only one of 'record' and 'alert' must be set");
    return std::nullopt;
  }
  if (record_name.empty() && alert_name.empty()) {
    ctx.Add(diag,
            (record  ? record
             : alert ? alert
                     : node)
                .Mark(),
            "one of 'record' or 'alert' must be set");
    return std::nullopt;
  }
  rule.kind = record_name.empty() ? RuleDef::Kind::kAlerting : RuleDef::Kind::kRecording;
  rule.name = ctx.name;
  if (!expr || expr.Scalar().empty()) {
    ctx.Add(diag, (expr ? expr : node).Mark(), "field 'expr' must be set in rule");
    return std::nullopt;
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
    ctx.Add(diag, LocateInScalar(ctx.text, expr.Mark(), rule.expr_text, offset),
            "could not parse expression: " + query.error().message);
    return std::nullopt;
  }
  rule.expr = std::move(*query);
  if (const YAML::Node f = node["for"]; f && !f.IsNull()) {
    std::optional<Millis> d = ReadDuration(f, diag);
    if (!d) {
      return std::nullopt;
    }
    rule.for_duration = *d;
  }
  if (const YAML::Node k = node["keep_firing_for"]; k && !k.IsNull()) {
    std::optional<Millis> d = ReadDuration(k, diag);
    if (!d) {
      return std::nullopt;
    }
    rule.keep_firing_for = *d;
  }
  std::optional<Labels> labels = ReadStringMap(node["labels"], "labels", diag);
  if (!labels) {
    return std::nullopt;
  }
  rule.labels = std::move(*labels);
  std::optional<Labels> annotations = ReadStringMap(node["annotations"], "annotations", diag);
  if (!annotations) {
    return std::nullopt;
  }
  rule.annotations = std::move(*annotations);
  if (rule.kind == RuleDef::Kind::kRecording) {
    if (!rule.annotations.empty()) {
      ctx.Add(diag, record.Mark(), "invalid field 'annotations' in recording rule");
      return std::nullopt;
    }
    if (rule.for_duration.count() != 0) {
      ctx.Add(diag, record.Mark(), "invalid field 'for' in recording rule");
      return std::nullopt;
    }
    if (rule.keep_firing_for.count() != 0) {
      ctx.Add(diag, record.Mark(), "invalid field 'keep_firing_for' in recording rule");
      return std::nullopt;
    }
    // [a-zA-Z_:][a-zA-Z0-9_:]*
    const bool valid_name =
        !rule.name.empty() && std::isdigit(static_cast<unsigned char>(rule.name[0])) == 0 &&
        std::all_of(rule.name.begin(), rule.name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':';
        });
    if (!valid_name) {
      ctx.Add(diag, record.Mark(), "invalid recording rule name: " + rule.name);
      return std::nullopt;
    }
  }
  const YAML::Node labels_node = node["labels"];
  for (const auto& [k, v] : rule.labels) {
    if (!yaml::IsIdentifier(k) || k == "__name__") {
      ctx.Add(diag, labels_node.Mark(), "invalid label name: " + k);
      return std::nullopt;
    }
    if (!IsUtf8(v)) {
      ctx.Add(diag, labels_node.Mark(), "invalid label value: " + v);
      return std::nullopt;
    }
  }
  const YAML::Node annotations_node = node["annotations"];
  for (const auto& [k, v] : rule.annotations) {
    if (!yaml::IsIdentifier(k)) {
      ctx.Add(diag, annotations_node.Mark(), "invalid annotation name: " + k);
      return std::nullopt;
    }
  }
  if (rule.kind == RuleDef::Kind::kAlerting) {
    const std::string tmpl_name = "__alert_" + rule.name;
    for (const auto& [k, v] : rule.labels) {
      if (auto st = CheckTemplate(tmpl_name, v); !st) {
        ctx.Add(diag, labels_node[k].Mark(), "label \"" + k + "\": " + st.error().message);
        return std::nullopt;
      }
    }
    for (const auto& [k, v] : rule.annotations) {
      if (auto st = CheckTemplate(tmpl_name, v); !st) {
        ctx.Add(diag, annotations_node[k].Mark(),
                "annotation \"" + k + "\": " + st.error().message);
        return std::nullopt;
      }
    }
  }
  return rule;
}

// Decoding comes before validation in Prometheus: an unknown key anywhere in the file is the
// error reported, even when an earlier rule is also invalid.
void CheckAllFields(const YAML::Node& groups, Diagnostics& diag) {
  for (const YAML::Node& g : groups) {
    if (!g.IsMap()) {
      continue;
    }
    CheckKnownFields(g, kGroupFields, "rulefmt.RuleGroup", diag);
    const YAML::Node rules = g["rules"];
    if (!rules || !rules.IsSequence()) {
      continue;
    }
    for (const YAML::Node& r : rules) {
      if (r.IsMap()) {
        CheckKnownFields(r, kRuleFields, "rulefmt.RuleNode", diag);
      }
    }
  }
}

std::optional<RuleGroupDef> ReadGroup(const YAML::Node& g, std::string_view text,
                                      std::string_view path, std::set<std::string>& seen,
                                      Diagnostics& diag) {
  if (!g.IsMap()) {
    diag.Add(g.Mark(), "a group must be a map");
    return std::nullopt;
  }
  RuleGroupDef group;
  group.file = std::string(path);
  const YAML::Node name = g["name"];
  group.name = name ? name.Scalar() : "";
  // yaml-cpp 0.7 marks a block mapping at its first value; a group is pointed at by its first
  // key.
  const YAML::Mark group_mark = g.size() > 0 ? g.begin()->first.Mark() : g.Mark();
  if (group.name.empty()) {
    diag.Add(group_mark, "Groupname must not be empty");
    return std::nullopt;
  }
  if (!seen.insert(group.name).second) {
    diag.Add(group_mark, "groupname: \"" + group.name + "\" is repeated in the same file");
    return std::nullopt;
  }
  if (const YAML::Node interval = g["interval"]; interval && !interval.IsNull()) {
    std::optional<Millis> d = ReadDuration(interval, diag);
    if (!d) {
      return std::nullopt;
    }
    group.interval = *d;
  }
  if (const YAML::Node limit = g["limit"]; limit && !limit.IsNull()) {
    int64_t value = 0;
    if (!YAML::convert<int64_t>::decode(limit, value)) {
      diag.Add(limit.Mark(), "limit must be an integer");
      return std::nullopt;
    }
    group.limit = value;
  }
  const YAML::Node rules = g["rules"];
  if (rules && !rules.IsNull() && !rules.IsSequence()) {
    diag.Add(rules.Mark(), "'rules' must be a list");
    return std::nullopt;
  }
  if (rules) {
    size_t index = 0;
    for (const YAML::Node& r : rules) {
      RuleContext ctx{path, text, group.name, ++index, ""};
      if (std::optional<RuleDef> rule = ReadRule(ctx, r, diag)) {
        group.rules.push_back(std::move(*rule));
      }
    }
  }
  return group;
}

void ReadRuleFile(const YAML::Node& root, std::string_view text, RuleFileDef& file,
                  Diagnostics& diag) {
  if (!root || root.IsNull()) {
    return;  // an empty file is allowed
  }
  if (!root.IsMap()) {
    diag.Add(root.Mark(), "a rule file must be a map with the key 'groups'");
    return;
  }
  CheckKnownFields(root, kRuleFileFields, "rulefmt.RuleGroups", diag);
  if (!diag.empty()) {
    return;
  }
  const YAML::Node groups = root["groups"];
  if (!groups || groups.IsNull()) {
    return;
  }
  if (!groups.IsSequence()) {
    diag.Add(groups.Mark(), "'groups' must be a list");
    return;
  }
  CheckAllFields(groups, diag);
  if (!diag.empty()) {
    return;
  }
  std::set<std::string> seen;
  for (const YAML::Node& g : groups) {
    if (std::optional<RuleGroupDef> group = ReadGroup(g, text, file.path, seen, diag)) {
      file.groups.push_back(std::move(*group));
    }
  }
}

}  // namespace

void CheckKnownFields(const YAML::Node& map, std::span<const std::string_view> known,
                      std::string_view type, yaml::Diagnostics& diag) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      diag.Add(kv.first.Mark(), fmt::format("field {} not found in type {}", key, type));
    }
  }
}

Result<RuleFileDef> ParseRuleFile(std::string_view text, std::string_view path) {
  RuleFileDef file;
  file.path = std::string(path);
  Diagnostics diag;
  try {
    ReadRuleFile(YAML::Load(std::string(text)), text, file, diag);
  } catch (const YAML::Exception& e) {
    diag.Add(e.mark, "yaml: " + e.msg);
  }
  if (!diag.empty()) {
    // promtool reports the first problem of a file, and so do we.
    return Fail(diag.FirstToError(file.path));
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
