#include "rules/export.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "common/duration.h"
#include "common/probe_series.h"

namespace modelpulse::rules {
namespace {

bool IsProbeGauge(const std::string& name) {
  const auto& names = ProbeSeriesNames();
  return std::any_of(names.begin(), names.end(),
                     [&name](const ProbeSeriesInfo& info) { return name == info.name; });
}

void EmitMap(YAML::Emitter& out, const char* key, const Labels& map) {
  if (map.empty()) {
    return;
  }
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : map) {
    out << YAML::Key << name << YAML::Value << YAML::DoubleQuoted << value;
  }
  out << YAML::EndMap;
}

void EmitRule(YAML::Emitter& out, const RuleDef& rule) {
  out << YAML::BeginMap;
  out << YAML::Key << (rule.kind == RuleDef::Kind::kAlerting ? "alert" : "record") << YAML::Value
      << rule.name;
  out << YAML::Key << "expr" << YAML::Value;
  std::string expr = rule.expr_text;
  while (!expr.empty() && (expr.back() == '\n' || expr.back() == ' ')) {
    expr.pop_back();  // a block scalar's own newline, not part of the expression
  }
  if (expr.find('\n') != std::string::npos) {
    out << YAML::Literal;
  }
  out << expr;
  if (rule.for_duration.count() > 0) {
    out << YAML::Key << "for" << YAML::Value << FormatPromDuration(rule.for_duration);
  }
  if (rule.keep_firing_for.count() > 0) {
    out << YAML::Key << "keep_firing_for" << YAML::Value
        << FormatPromDuration(rule.keep_firing_for);
  }
  EmitMap(out, "labels", rule.labels);
  EmitMap(out, "annotations", rule.annotations);
  out << YAML::EndMap;
}

void EmitGroup(YAML::Emitter& out, const RuleGroupDef& group, const std::vector<RuleDef>& rules) {
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << group.name;
  if (group.interval) {
    out << YAML::Key << "interval" << YAML::Value << FormatPromDuration(*group.interval);
  }
  if (group.limit > 0) {
    out << YAML::Key << "limit" << YAML::Value << group.limit;
  }
  out << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (const RuleDef& rule : rules) {
    EmitRule(out, rule);
  }
  out << YAML::EndSeq << YAML::EndMap;
}

}  // namespace

std::optional<std::string> PerProbeGaugeOverRange(const RuleDef& rule) {
  for (const Query::SelectorUse& use : rule.expr.Selectors()) {
    if (use.range && IsProbeGauge(use.name)) {
      return "reads the per-probe gauge " + use.name +
             " over a range: modelpulse sees one sample per probe, a Prometheus scraping "
             "/metrics one per scrape; write it over modelpulse_probes_total or the "
             "modelpulse_probe_* histograms";
    }
  }
  return std::nullopt;
}

RulesExport ExportRules(const std::vector<RuleFileDef>& files, const ExportOptions& options) {
  RulesExport result;
  // Refusals spread to rules reading what a refused recording rule records, until none is added.
  std::set<std::string> refused_records;
  std::set<const RuleDef*> refused;
  auto reason_of = [&](const RuleDef& rule) -> std::optional<std::string> {
    if (auto reason = PerProbeGaugeOverRange(rule)) {
      return reason;
    }
    for (const TravelCheck& check : options.checks) {
      if (auto reason = check(rule)) {
        return reason;
      }
    }
    for (const Query::SelectorUse& use : rule.expr.Selectors()) {
      if (refused_records.count(use.name) > 0) {
        return "reads " + use.name + ", recorded by a rule that is not exported";
      }
    }
    return std::nullopt;
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (const RuleFileDef& file : files) {
      for (const RuleGroupDef& group : file.groups) {
        for (const RuleDef& rule : group.rules) {
          if (refused.count(&rule) > 0) {
            continue;
          }
          if (auto reason = reason_of(rule)) {
            refused.insert(&rule);
            if (rule.kind == RuleDef::Kind::kRecording) {
              refused_records.insert(rule.name);
            }
            result.refused.push_back({rule.location, rule.name, *reason});
            changed = true;
          }
        }
      }
    }
  }
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  auto emit_group = [&](const RuleGroupDef& group) {
    std::vector<RuleDef> kept;
    for (const RuleDef& rule : group.rules) {
      if (refused.count(&rule) == 0) {
        kept.push_back(rule);
      }
    }
    if (!kept.empty()) {
      result.exported += kept.size();
      EmitGroup(out, group, kept);
    }
  };
  for (const RuleFileDef& file : files) {
    for (const RuleGroupDef& group : file.groups) {
      emit_group(group);
    }
  }
  for (const RuleGroupDef& group : options.extra_groups) {
    emit_group(group);
  }
  out << YAML::EndSeq << YAML::EndMap;
  result.yaml = std::string(out.c_str()) + "\n";
  return result;
}

}  // namespace modelpulse::rules
