#include "rules/slo_config.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "common/duration.h"
#include "common/probe_series.h"

namespace modelpulse::rules {
namespace {

using yaml::Diagnostics;
using yaml::Entry;

constexpr std::array<std::string_view, 10> kSloKeys = {
    "name",       "selector",         "target",  "kind",
    "objective",  "window",           "latency", "provider_fault_outcomes",
    "min_probes", "min_failed_probes"};
constexpr std::array<std::string_view, 2> kLatencyKeys = {"phase", "threshold"};
constexpr int64_t kDay = 24LL * 3600 * 1000;

void ReadLatency(const Entry& e, SloSpec& slo, bool& has_threshold, bool& threshold_refused,
                 Diagnostics& diag) {
  for (const Entry& l :
       yaml::MapEntries(e.value, e.ValueMark(), "latency", "in \"latency\"", kLatencyKeys, diag)) {
    if (l.key == "phase") {
      if (auto phase = yaml::ReadNonEmptyString(l, "latency.phase", diag)) {
        if (*phase == "first_token") {
          slo.phase = SloSpec::Phase::kFirstToken;
        } else if (*phase == "total") {
          slo.phase = SloSpec::Phase::kTotal;
        } else {
          diag.Add(l.ValueMark(), fmt::format("\"latency.phase\": unknown phase \"{}\" (valid: "
                                              "first_token, total)",
                                              *phase));
        }
      }
    } else if (auto threshold =
                   yaml::ReadDuration(l, "latency.threshold", yaml::Sign::kPositive, diag)) {
      slo.threshold_seconds = static_cast<double>(threshold->count()) / 1000.0;
      has_threshold = true;
      // The burn-rate rules count good probes from the histogram bucket whose `le` is the
      // threshold (rules/slo.h). A threshold between two bounds has no such bucket; rounding it
      // to a neighbour would page on an objective the user did not write, and leaving the SLO
      // without alerts would be found out only when it mattered, so the config is refused and
      // the message lists the thresholds that work.
      if (!IsLatencyBucket(slo.threshold_seconds)) {
        std::string valid;
        for (const double bound : ProbeLatencyBuckets()) {
          valid += (valid.empty() ? "" : ", ") +
                   FormatPromDuration(Millis(std::llround(bound * 1000.0)));
        }
        diag.Add(l.ValueMark(),
                 fmt::format("\"latency.threshold\": {} is not a bound of the latency "
                             "histograms, which the SLO's burn-rate rules read (valid: {})",
                             l.value.Scalar(), valid));
        has_threshold = false;
        threshold_refused = true;
      }
    }
  }
}

void ReadOutcomes(const Entry& e, SloSpec& slo, Diagnostics& diag) {
  if (!e.value.IsSequence()) {
    diag.Add(e.ValueMark(), fmt::format("\"provider_fault_outcomes\": expected a list, got {}",
                                        yaml::KindName(e.value)));
    return;
  }
  slo.provider_fault_outcomes.clear();
  for (const YAML::Node& item : e.value) {
    const Entry one{e.key, e.key_node, item};
    auto name = yaml::ReadNonEmptyString(one, "provider_fault_outcomes", diag);
    if (!name) {
      continue;
    }
    std::optional<Outcome> outcome = OutcomeFromName(*name);
    if (!outcome || *outcome == Outcome::kOk) {
      diag.Add(item.Mark(), fmt::format("\"provider_fault_outcomes\": \"{}\" is not a failure "
                                        "outcome (valid: throttled, quota_exhausted, overloaded, "
                                        "timeout, network, auth, client_error, server_error, "
                                        "invalid_response, content_mismatch)",
                                        *name));
      continue;
    }
    slo.provider_fault_outcomes.push_back(*outcome);
  }
}

std::optional<SloSpec> ReadSlo(const YAML::Node& node, size_t index, Diagnostics& diag) {
  SloSpec slo;
  slo.line = node.Mark().line + 1;
  slo.column = node.Mark().column + 1;
  const std::string where = fmt::format("in slos[{}]", index);
  bool has_name = false;
  bool has_kind = false;
  bool has_objective = false;
  bool has_threshold = false;
  bool threshold_refused = false;
  const Entry* latency = nullptr;
  const Entry* outcomes = nullptr;
  bool ok = true;
  const std::vector<Entry> entries =
      yaml::MapEntries(node, node.Mark(), "slos[]", where, kSloKeys, diag);
  if (!node.IsMap()) {
    return std::nullopt;
  }
  for (const Entry& e : entries) {
    if (e.key == "name") {
      if (auto name = yaml::ReadNonEmptyString(e, "name", diag)) {
        slo.name = *name;
        has_name = true;
      } else {
        ok = false;
      }
    } else if (e.key == "target") {
      if (auto target = yaml::ReadNonEmptyString(e, "target", diag)) {
        slo.selector["target"] = *target;
      } else {
        ok = false;
      }
    } else if (e.key == "selector") {
      for (const Entry& m :
           yaml::MapEntries(e.value, e.ValueMark(), "selector", "in \"selector\"", {}, diag)) {
        if (!yaml::IsIdentifier(m.key)) {
          diag.Add(m.key_node.Mark(),
                   fmt::format("\"selector\": \"{}\" is not a valid label name", m.key));
          ok = false;
        } else if (auto value = yaml::ReadString(m, "selector." + m.key, diag)) {
          slo.selector[m.key] = *value;
        }
      }
    } else if (e.key == "kind") {
      if (auto kind = yaml::ReadNonEmptyString(e, "kind", diag)) {
        has_kind = true;
        if (*kind == "availability") {
          slo.kind = SloSpec::Kind::kAvailability;
        } else if (*kind == "latency") {
          slo.kind = SloSpec::Kind::kLatency;
        } else if (*kind == "throttle_free") {
          slo.kind = SloSpec::Kind::kThrottleFree;
        } else {
          diag.Add(e.ValueMark(), fmt::format("\"kind\": unknown SLO kind \"{}\" (valid: "
                                              "availability, latency, throttle_free)",
                                              *kind));
          ok = false;
        }
      }
    } else if (e.key == "objective") {
      if (auto objective = yaml::ReadNumber(e, "objective", yaml::Sign::kPositive, diag)) {
        if (*objective >= 100) {
          diag.Add(e.ValueMark(), fmt::format("\"objective\": {} is a percentage and must be "
                                              "below 100 (e.g. 99.9)",
                                              *objective));
          ok = false;
        } else {
          slo.objective_percent = *objective;
          has_objective = true;
        }
      }
    } else if (e.key == "window") {
      if (auto window = yaml::ReadNonEmptyString(e, "window", diag)) {
        if (*window == "calendar_month") {
          slo.window_kind = SloSpec::WindowKind::kCalendarMonth;
        } else if (*window == "28d" || *window == "30d") {
          slo.window_kind = SloSpec::WindowKind::kRolling;
          slo.window = Millis((*window == "28d" ? 28 : 30) * kDay);
        } else {
          diag.Add(e.ValueMark(), fmt::format("\"window\": \"{}\" is not a supported SLO window "
                                              "(valid: 28d, 30d, calendar_month)",
                                              *window));
          ok = false;
        }
      }
    } else if (e.key == "latency") {
      latency = &e;
      ReadLatency(e, slo, has_threshold, threshold_refused, diag);
    } else if (e.key == "provider_fault_outcomes") {
      outcomes = &e;
      ReadOutcomes(e, slo, diag);
    } else if (e.key == "min_probes") {
      if (auto n = yaml::ReadInt(e, "min_probes", 1, 1'000'000, diag)) {
        slo.min_probes = *n;
      }
    } else if (e.key == "min_failed_probes") {
      if (auto n = yaml::ReadInt(e, "min_failed_probes", 1, 1'000'000, diag)) {
        slo.min_failed_probes = *n;
      }
    }
  }
  const YAML::Mark mark = node.Mark();
  for (auto [present, key] : {std::pair{has_name, "name"}, std::pair{has_kind, "kind"},
                              std::pair{has_objective, "objective"}}) {
    if (!present) {
      diag.Add(mark, fmt::format("slos[{}]: missing required key \"{}\"", index, key));
      ok = false;
    }
  }
  if (threshold_refused) {
    ok = false;
  } else if (has_kind && slo.kind == SloSpec::Kind::kLatency && !has_threshold) {
    diag.Add(latency != nullptr ? latency->ValueMark() : mark,
             fmt::format("slos[{}]: a latency SLO needs \"latency: {{threshold: ...}}\"", index));
    ok = false;
  }
  if (has_kind && slo.kind != SloSpec::Kind::kLatency && latency != nullptr) {
    diag.Add(latency->key_node.Mark(),
             fmt::format("slos[{}]: \"latency\" applies to latency SLOs only", index));
    ok = false;
  }
  if (has_kind && slo.kind != SloSpec::Kind::kAvailability && outcomes != nullptr) {
    diag.Add(outcomes->key_node.Mark(),
             fmt::format("slos[{}]: \"provider_fault_outcomes\" applies to availability SLOs only",
                         index));
    ok = false;
  }
  if (!ok) {
    return std::nullopt;
  }
  return slo;
}

}  // namespace

void ReadSloSection(const Entry& section, std::vector<SloSpec>& out, Diagnostics& diag) {
  if (section.value.IsNull()) {
    return;
  }
  if (!section.value.IsSequence()) {
    diag.Add(section.ValueMark(),
             fmt::format("\"slos\": expected a list, got {}", yaml::KindName(section.value)));
    return;
  }
  std::map<std::string, int> first_line;
  size_t index = 0;
  for (const YAML::Node& node : section.value) {
    std::optional<SloSpec> slo = ReadSlo(node, index++, diag);
    if (!slo) {
      continue;
    }
    auto [it, inserted] = first_line.emplace(slo->name, slo->line);
    if (!inserted) {
      diag.Add(node.Mark(), fmt::format("slos: SLO name \"{}\" is already defined at line {}",
                                        slo->name, it->second));
      continue;
    }
    out.push_back(std::move(*slo));
  }
}

}  // namespace modelpulse::rules
