#include "rules/slo_tracker.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <unordered_map>

#include "common/duration.h"

namespace modelpulse::rules {
namespace {

constexpr int64_t kHourMs = 3'600'000;
// A past hour is cached once this long has passed since its end: probes are stamped with
// their start time and stored when they finish, up to a total timeout later.
constexpr int64_t kSettleMs = 5 * 60'000;

std::vector<LabelMatcher> MatchersOf(const SloSpec& spec, const char* name) {
  std::vector<LabelMatcher> out = {{LabelMatcher::Type::kEqual, "__name__", name}};
  for (const auto& [label, value] : spec.selector) {
    out.push_back({LabelMatcher::Type::kEqual, label, value});
  }
  return out;
}

Labels WithoutName(Labels labels) {
  labels.erase("__name__");
  return labels;
}

bool IsFaultOutcome(const SloSpec& spec, Outcome outcome) {
  return std::find(spec.provider_fault_outcomes.begin(), spec.provider_fault_outcomes.end(),
                   outcome) != spec.provider_fault_outcomes.end();
}

}  // namespace

std::optional<double> SloStatus::BurnRate(const SloSpec& spec, const SloWindowFigures& w) {
  if (w.events <= 0 || spec.ErrorBudget() <= 0) {
    return std::nullopt;
  }
  return (static_cast<double>(w.bad) / static_cast<double>(w.events)) / spec.ErrorBudget();
}

SloTracker::SloTracker(std::vector<SloSpec> slos, const SampleSource& source)
    : slos_(std::move(slos)), source_(source) {}

int64_t SloTracker::WindowStart(const SloSpec& spec, int64_t now_ms) {
  if (spec.window_kind == SloSpec::WindowKind::kRolling) {
    return now_ms - spec.window.count();
  }
  const auto seconds = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  tm.tm_mday = 1;
  tm.tm_hour = 0;
  tm.tm_min = 0;
  tm.tm_sec = 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

Result<SloWindowFigures> SloTracker::LatencyRaw(const SloSpec& spec, int64_t from_ms,
                                                int64_t to_ms) const {
  SloWindowFigures out;
  auto success = source_.Select(MatchersOf(spec, "probe_success"), from_ms, to_ms);
  if (!success) {
    return Fail(success.error());
  }
  const char* phase =
      spec.phase == SloSpec::Phase::kTotal ? "probe_duration_seconds" : "probe_ttft_seconds";
  auto took = source_.Select(MatchersOf(spec, phase), from_ms, to_ms);
  if (!took) {
    return Fail(took.error());
  }
  // A latency event is a successful probe: its phase sample joined with probe_success == 1 at
  // the same timestamp of the same series.
  // Sources may return a superset of the matchers (SampleSource::Select): re-applied here.
  const auto wanted = [&](const Series& series, const char* name) {
    auto it = series.labels.find("__name__");
    return it != series.labels.end() && it->second == name && SloSelects(spec, series.labels);
  };
  std::map<Labels, std::unordered_map<int64_t, double>> ok;
  for (const Series& series : *success) {
    if (!wanted(series, "probe_success")) {
      continue;
    }
    auto& by_time = ok[WithoutName(series.labels)];
    for (const Sample& s : series.samples) {
      by_time[s.t_ms] = s.v;
    }
  }
  for (const Series& series : *took) {
    if (!wanted(series, phase)) {
      continue;
    }
    auto it = ok.find(WithoutName(series.labels));
    if (it == ok.end()) {
      continue;
    }
    for (const Sample& s : series.samples) {
      auto at = it->second.find(s.t_ms);
      // As the generated rules count from the histograms (rules/slo.h): a NaN phase is not
      // observed, and a probe is good when its value is <= the threshold, the bucket's `le`.
      if (at == it->second.end() || at->second != 1 || std::isnan(s.v)) {
        continue;
      }
      ++out.events;
      out.bad += s.v <= spec.threshold_seconds ? 0 : 1;
    }
  }
  return out;
}

Result<SloWindowFigures> SloTracker::Direct(const SloSpec& spec, int64_t from_ms, int64_t to_ms) {
  SloWindowFigures out;
  if (from_ms > to_ms) {
    return out;
  }
  const auto aggregate = [&](const char* name, RangeAggregate kind) -> Result<double> {
    auto rows = source_.SelectAggregate(MatchersOf(spec, name), from_ms, to_ms, kind, 0);
    if (!rows) {
      return Fail(rows.error());
    }
    double total = 0;
    for (const SeriesAggregate& row : *rows) {
      auto row_name = row.labels.find("__name__");
      if (row_name != row.labels.end() && row_name->second == name &&
          SloSelects(spec, row.labels)) {
        total += row.value;
      }
    }
    return total;
  };
  switch (spec.kind) {
    case SloSpec::Kind::kThrottleFree: {
      auto count = aggregate("probe_throttled", RangeAggregate::kCount);
      auto sum = aggregate("probe_throttled", RangeAggregate::kSum);
      if (!count || !sum) {
        return Fail(!count ? count.error() : sum.error());
      }
      out.events = static_cast<int64_t>(*count);
      out.bad = static_cast<int64_t>(std::llround(*sum));
      return out;
    }
    case SloSpec::Kind::kAvailability: {
      // As the generated rules count (rules/slo.h): outcomes without a gauge of their own count
      // as failures.
      auto count = aggregate("probe_success", RangeAggregate::kCount);
      auto good = aggregate("probe_success", RangeAggregate::kSum);
      if (!count || !good) {
        return Fail(!count ? count.error() : good.error());
      }
      double events = *count;
      for (const OutcomeGauge& gauge : OutcomeGauges()) {
        if (IsFaultOutcome(spec, gauge.outcome)) {
          continue;
        }
        auto excluded = aggregate(gauge.series, RangeAggregate::kSum);
        if (!excluded) {
          return Fail(excluded.error());
        }
        events -= *excluded;
      }
      out.events = std::llround(events);
      out.bad = std::llround(events - *good);
      return out;
    }
    case SloSpec::Kind::kLatency:
      return LatencyRaw(spec, from_ms, to_ms);
  }
  return out;
}

Result<SloWindowFigures> SloTracker::Figures(const SloSpec& spec, int64_t from_ms, int64_t to_ms,
                                             std::map<int64_t, SloWindowFigures>& tails) {
  // [from, first whole hour) directly; whole settled hours from the cache (each read once);
  // the unsettled rest up to `to` directly, once per computation (every window ends at `to`).
  const int64_t first_hour = (from_ms + kHourMs - 1) / kHourMs * kHourMs;
  const int64_t last_hour_end = to_ms / kHourMs * kHourMs;
  if (first_hour >= last_hour_end) {
    return Direct(spec, from_ms, to_ms);
  }
  auto out = Direct(spec, from_ms, first_hour - 1);
  if (!out) {
    return out;
  }
  const int64_t settled_before = to_ms - kSettleMs;
  int64_t tail_from = last_hour_end;
  for (int64_t h = first_hour; h < last_hour_end; h += kHourMs) {
    const auto key = std::pair{spec.name, h};
    auto cached = hours_.find(key);
    if (cached == hours_.end()) {
      if (h + kHourMs > settled_before) {
        tail_from = h;  // not settled: read with the tail
        break;
      }
      auto hour = Direct(spec, h, h + kHourMs - 1);
      if (!hour) {
        return hour;
      }
      cached = hours_.emplace(key, std::pair{hour->events, hour->bad}).first;
    }
    out->events += cached->second.first;
    out->bad += cached->second.second;
  }
  auto tail = tails.find(tail_from);
  if (tail == tails.end()) {
    auto read = Direct(spec, tail_from, to_ms);
    if (!read) {
      return read;
    }
    tail = tails.emplace(tail_from, *read).first;
  }
  out->events += tail->second.events;
  out->bad += tail->second.bad;
  return out;
}

Result<std::vector<SloStatus>> SloTracker::Compute(int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::vector<SloStatus> out;
  for (const SloSpec& spec : slos_) {
    SloStatus status;
    status.spec = spec;
    status.at_ms = now_ms;
    status.window_start_ms = WindowStart(spec, now_ms);
    const auto evidence = [&](SloWindowFigures& w) {
      w.enough_evidence = w.events >= spec.min_probes && w.bad >= spec.min_failed_probes;
    };
    std::map<int64_t, SloWindowFigures> tails;  // by start; every window ends at now_ms
    auto whole = Figures(spec, status.window_start_ms, now_ms, tails);
    if (!whole) {
      return Fail(whole.error());
    }
    status.slo_window = *whole;
    status.slo_window.window = "slo";
    evidence(status.slo_window);
    for (const char* name : BurnRateWindowNames()) {
      const Millis length = *ParsePromDuration(name);
      auto figures = Figures(spec, now_ms - length.count(), now_ms, tails);
      if (!figures) {
        return Fail(figures.error());
      }
      figures->window = name;
      evidence(*figures);
      status.burn.push_back(*figures);
    }
    out.push_back(std::move(status));
  }
  // Cached hours that fell out of every window are dropped.
  const int64_t oldest = now_ms - 32LL * 24 * kHourMs;
  for (auto it = hours_.begin(); it != hours_.end();) {
    it = it->first.second < oldest ? hours_.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace modelpulse::rules
