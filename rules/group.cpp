// Group evaluation (§1.3, §1.4): rules in order at one timestamp; recording outputs and ALERTS
// written into an overlay that later rules and groups read; stale markers for series that
// disappeared; per-rule status for metrics; a failing rule never stops the others.
#include "rules/internal/group.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "rules/internal/go_compat.h"
#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

Result<Vector> ToVector(Result<Value> value) {
  if (!value) {
    return Fail(value.error());
  }
  if (auto* v = std::get_if<Vector>(&*value)) {
    return std::move(*v);
  }
  if (auto* s = std::get_if<Scalar>(&*value)) {
    return Vector{{Labels{}, s->value, s->t_ms}};
  }
  return Fail(Error::InvalidArgument("rule result is not a vector or scalar"));
}

}  // namespace

CompiledSelector::CompiledSelector(const std::vector<LabelMatcher>& matchers) {
  matchers_.reserve(matchers.size());
  for (const LabelMatcher& m : matchers) {
    Matcher compiled{&m, std::nullopt};
    if (m.type == LabelMatcher::Type::kRegexMatch || m.type == LabelMatcher::Type::kRegexNoMatch) {
      if (auto regex = CompileAnchoredRegex(m.value)) {
        compiled.regex.emplace(std::move(*regex));
      }
    }
    matchers_.push_back(std::move(compiled));
  }
}

bool CompiledSelector::Matches(const Labels& labels) const {
  for (const Matcher& m : matchers_) {
    auto it = labels.find(m.matcher->name);
    const std::string_view value = it == labels.end() ? std::string_view() : it->second;
    bool ok = false;
    switch (m.matcher->type) {
      case LabelMatcher::Type::kEqual:
        ok = value == m.matcher->value;
        break;
      case LabelMatcher::Type::kNotEqual:
        ok = value != m.matcher->value;
        break;
      case LabelMatcher::Type::kRegexMatch:
        ok = m.regex && m.regex->FullMatch(value);
        break;
      case LabelMatcher::Type::kRegexNoMatch:
        ok = !(m.regex && m.regex->FullMatch(value));
        break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

Result<Vector> EvaluateInstant(const Query& query, const SampleSource& source, int64_t t_ms,
                               const EvalCancel& cancelled) {
  return ToVector(query.Evaluate(source, t_ms, cancelled));
}

// ------------------------------------------------------------------------------ SeriesOverlay

SeriesOverlay::SeriesOverlay(const SampleSource& base, Millis retention)
    : base_(&base), retention_(retention) {}

Result<std::vector<Series>> SeriesOverlay::Select(const std::vector<LabelMatcher>& matchers,
                                                  int64_t from_ms, int64_t to_ms) const {
  auto base = base_->Select(matchers, from_ms, to_ms);
  if (!base) {
    return base;
  }
  std::vector<Series> out = std::move(*base);
  const CompiledSelector selector(matchers);
  for (const auto& [labels, samples] : series_) {
    if (!selector.Matches(labels)) {
      continue;
    }
    std::vector<Sample> window;
    for (const Sample& s : samples) {
      if (s.t_ms >= from_ms && s.t_ms <= to_ms) {
        window.push_back(s);
      }
    }
    if (window.empty()) {
      continue;
    }
    // Named capture: clang 14 (the fuzz preset) cannot capture a structured binding.
    auto same = std::find_if(out.begin(), out.end(),
                             [&wanted = labels](const Series& s) { return s.labels == wanted; });
    if (same == out.end()) {
      out.push_back({labels, std::move(window)});
      continue;
    }
    // The base may hold the same series (outputs persisted by the daemon): merge by time.
    std::map<int64_t, double> merged;
    for (const Sample& s : same->samples) {
      merged[s.t_ms] = s.v;
    }
    for (const Sample& s : window) {
      merged[s.t_ms] = s.v;
    }
    same->samples.clear();
    for (const auto& [t, v] : merged) {
      same->samples.push_back({t, v});
    }
  }
  return out;
}

bool SeriesOverlay::HoldsAny(const std::vector<LabelMatcher>& matchers) const {
  const CompiledSelector selector(matchers);
  return std::any_of(series_.begin(), series_.end(),
                     [&](const auto& entry) { return selector.Matches(entry.first); });
}

Result<std::vector<SeriesAggregate>> SeriesOverlay::SelectAggregate(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
    RangeAggregate aggregate, double q) const {
  if (HoldsAny(matchers)) {
    return SampleSource::SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
  }
  return base_->SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
}

Result<std::vector<SeriesSteps>> SeriesOverlay::SelectAggregateSteps(
    const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
    int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const {
  if (HoldsAny(matchers)) {
    return SampleSource::SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                                              aggregate, q);
  }
  return base_->SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                                     aggregate, q);
}

Status SeriesOverlay::Commit() {
  if (writer_ == nullptr || pending_.empty()) {
    return {};
  }
  std::vector<RecordedPoint> points;
  points.swap(pending_);
  if (auto stored = writer_->AppendRecorded(points); !stored) {
    return stored;
  }
  // Stored: the base serves them now.
  for (const RecordedPoint& point : points) {
    auto it = series_.find(point.labels);
    if (it == series_.end()) {
      continue;
    }
    std::erase_if(it->second, [&](const Sample& s) { return s.t_ms == point.t_ms; });
    if (it->second.empty()) {
      series_.erase(it);
    }
  }
  return {};
}

void SeriesOverlay::Append(const Labels& labels, int64_t t_ms, double v) {
  if (writer_ != nullptr) {
    pending_.push_back({labels, t_ms, v});
  }
  auto& samples = series_[labels];
  if (!samples.empty() && samples.back().t_ms == t_ms) {
    samples.back().v = v;
  } else {
    samples.push_back({t_ms, v});
  }
  if (retention_.count() > 0) {
    const int64_t cutoff = t_ms - retention_.count();
    auto keep = std::find_if(samples.begin(), samples.end(),
                             [&](const Sample& s) { return s.t_ms >= cutoff; });
    samples.erase(samples.begin(), keep);
  }
}

// ------------------------------------------------------------------------------ RuleGroup

RuleGroup::RuleGroup(RuleGroupDef def, AlertingOptions options, const Clock& clock)
    : def_(std::move(def)), options_(std::move(options)), clock_(&clock) {
  for (const RuleDef& rule : def_.rules) {
    if (rule.kind == RuleDef::Kind::kAlerting) {
      alerting_.push_back(std::make_unique<AlertingRule>(rule, options_));
    } else {
      alerting_.push_back(nullptr);
    }
    RuleEvalStatus status;
    status.name = rule.name;
    statuses_.push_back(std::move(status));
  }
  previous_output_.resize(def_.rules.size());
}

Millis RuleGroup::interval(Millis global_default) const {
  return def_.interval.value_or(global_default);
}

std::vector<const AlertingRule*> RuleGroup::alerting_rules() const {
  std::vector<const AlertingRule*> out;
  for (const auto& a : alerting_) {
    if (a) {
      out.push_back(a.get());
    }
  }
  return out;
}

GroupEvalResult RuleGroup::Evaluate(SeriesOverlay& overlay, int64_t ts_ms, const EvalCancel& stop) {
  GroupEvalResult result;
  const auto group_start = clock_->MonotonicNow();
  const Millis group_interval = interval(options_.evaluation_interval);
  const auto deadline = group_start + std::min(group_interval, options_.evaluation_timeout);
  const EvalCancel cancelled = [&] {
    if (!result.timed_out && (clock_->MonotonicNow() >= deadline || (stop && stop()))) {
      result.timed_out = true;
    }
    return result.timed_out;
  };
  for (size_t i = 0; i < def_.rules.size(); ++i) {
    const RuleDef& rule = def_.rules[i];
    RuleEvalStatus& status = statuses_[i];
    const auto start = clock_->MonotonicNow();
    TemplateQueryFunc query = [&](std::string_view text) -> Result<Vector> {
      auto q = Query::Parse(text);
      if (!q) {
        return Fail(q.error());
      }
      return EvaluateInstant(*q, overlay, ts_ms, cancelled);
    };
    Result<Vector> output = EvaluateInstant(rule.expr, overlay, ts_ms, cancelled);
    if (output && cancelled()) {
      // Past the deadline after the query (in templates, or a query that ended just then): the
      // rule's output is not trusted to be complete, so nothing of it is written.
      output = Fail(Error::Unavailable("query timed out in expression evaluation"));
    }
    if (output && rule.kind == RuleDef::Kind::kRecording) {
      Vector recorded;
      std::set<Labels> seen;
      for (VectorSample& s : *output) {
        Labels labels = std::move(s.labels);
        labels["__name__"] = rule.name;
        for (const auto& [k, v] : rule.labels) {
          if (v.empty()) {
            labels.erase(k);
          } else {
            labels[k] = v;
          }
        }
        if (!seen.insert(labels).second) {
          output = Fail(Error::InvalidArgument(
              "vector contains metrics with the same labelset after applying rule labels"));
          break;
        }
        recorded.push_back({std::move(labels), s.value, ts_ms});
      }
      if (output && def_.limit > 0 && static_cast<int64_t>(recorded.size()) > def_.limit) {
        output =
            Fail(Error::InvalidArgument("exceeded limit of " + std::to_string(def_.limit) +
                                        " with " + std::to_string(recorded.size()) + " series"));
      }
      if (output) {
        output = std::move(recorded);
      }
    } else if (output) {
      auto alerts = alerting_[i]->Update(*output, ts_ms, def_.limit, query);
      if (alerts) {
        output = std::move(alerts->samples);
      } else {
        output = Fail(alerts.error());
      }
    }
    status.last_eval_ms = ts_ms;
    status.last_duration_seconds =
        std::chrono::duration<double>(clock_->MonotonicNow() - start).count();
    if (!output) {
      // A failing rule writes nothing, sends nothing and writes no stale markers (§1.3).
      status.last_error = output.error();
      status.last_sample_count = 0;
      ++result.error_count;
      continue;
    }
    status.last_error.reset();
    status.last_sample_count = static_cast<int64_t>(output->size());
    std::vector<Labels> current;
    for (const VectorSample& s : *output) {
      overlay.Append(s.labels, ts_ms, s.value);
      current.push_back(s.labels);
    }
    std::sort(current.begin(), current.end());
    for (const Labels& old : previous_output_[i]) {
      if (!std::binary_search(current.begin(), current.end(), old)) {
        overlay.Append(old, ts_ms, StaleNaN());
      }
    }
    previous_output_[i] = std::move(current);
    // Stored before the next rule runs, so it reads this output from the store like any other.
    if (auto stored = overlay.Commit(); !stored) {
      result.store_error = stored.error();
    }
    if (alerting_[i]) {
      auto sends = alerting_[i]->TakeAlertsToSend(ts_ms, group_interval);
      result.to_send.insert(result.to_send.end(), std::make_move_iterator(sends.begin()),
                            std::make_move_iterator(sends.end()));
    }
  }
  result.duration_seconds =
      std::chrono::duration<double>(clock_->MonotonicNow() - group_start).count();
  return result;
}

std::vector<AlertStateSnapshot> RuleGroup::Snapshot(int64_t now_ms) const {
  std::vector<AlertStateSnapshot> out;
  for (const auto& a : alerting_) {
    if (a) {
      auto s = a->Snapshot(def_.name, now_ms);
      out.insert(out.end(), s.begin(), s.end());
    }
  }
  return out;
}

void RuleGroup::Restore(const std::vector<AlertStateSnapshot>& snapshots, int64_t now_ms) {
  for (auto& a : alerting_) {
    if (a) {
      a->Restore(snapshots, def_.name, now_ms);
    }
  }
}

Status RuleGroup::SaveState(AlertStateStore& store, int64_t now_ms) const {
  return store.SaveAlertStates(def_.name, Snapshot(now_ms));
}

}  // namespace modelpulse::rules
