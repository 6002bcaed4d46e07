#include "daemon/series_source.h"

#include <algorithm>
#include <string>

#include "daemon/probe_series.h"

namespace modelpulse::daemon {
namespace {

using rules::LabelMatcher;

Labels SeriesLabels(const Labels& target_labels, const ProbeSample& sample) {
  Labels labels = target_labels;
  labels["__name__"] = sample.name;
  if (*sample.resource != '\0') {
    labels["resource"] = sample.resource;
  }
  return labels;
}

// True unless an equality matcher rules the label set out. Labels absent from `labels` (such as
// __name__ when checking a target) are not judged here.
bool EqualMatchersAllow(const std::vector<LabelMatcher>& matchers, const Labels& labels) {
  for (const LabelMatcher& m : matchers) {
    if (m.type != LabelMatcher::Type::kEqual) {
      continue;
    }
    auto it = labels.find(m.name);
    if (it != labels.end() && it->second != m.value) {
      return false;
    }
  }
  return true;
}

}  // namespace

ProbeSeriesSource::ProbeSeriesSource(const storage::Store* store, Millis window,
                                     int64_t complete_since_ms)
    : store_(store), window_(window), complete_since_ms_(complete_since_ms) {}

void ProbeSeriesSource::Append(const ProbeResult& result) {
  std::lock_guard lock(mu_);
  const int64_t cutoff = result.start_unix_ms - window_.count();
  for (const ProbeSample& sample : ProbeSamples(result)) {
    std::deque<rules::Sample>& samples = recent_[SeriesLabels(result.labels, sample)];
    samples.push_back({result.start_unix_ms, sample.value});
    while (!samples.empty() && samples.front().t_ms < cutoff) {
      samples.pop_front();
    }
  }
  if (cutoff > complete_since_ms_) {
    complete_since_ms_ = cutoff;
  }
  // Series of targets that stopped probing (removed on reload) age out here, once a minute at
  // most, since a sweep visits every series.
  if (cutoff - last_sweep_ms_ >= 60'000) {
    last_sweep_ms_ = cutoff;
    std::erase_if(recent_, [cutoff](const auto& entry) {
      return entry.second.empty() || entry.second.back().t_ms < cutoff;
    });
  }
}

void ProbeSeriesSource::AppendFromStorage(const std::vector<LabelMatcher>& matchers,
                                          int64_t from_ms, int64_t to_ms,
                                          std::map<Labels, std::vector<rules::Sample>>& out) const {
  auto targets = store_->Targets();
  if (!targets) {
    return;
  }
  for (const auto& [target, labels] : *targets) {
    if (!EqualMatchersAllow(matchers, labels)) {
      continue;
    }
    // ReadProbes is half-open; the range here is closed, as PromQL's windows are.
    auto probes = store_->ReadProbes(target, from_ms, to_ms + 1);
    if (!probes) {
      continue;
    }
    for (const ProbeResult& probe : *probes) {
      for (const ProbeSample& sample : ProbeSamples(probe)) {
        Labels series = SeriesLabels(probe.labels, sample);
        if (EqualMatchersAllow(matchers, series)) {
          out[std::move(series)].push_back({probe.start_unix_ms, sample.value});
        }
      }
    }
  }
}

Result<std::vector<rules::Series>> ProbeSeriesSource::Select(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms) const {
  std::map<Labels, std::vector<rules::Sample>> found;
  int64_t memory_from = from_ms;
  {
    std::lock_guard lock(mu_);
    memory_from = std::max(from_ms, complete_since_ms_);
  }
  // Older than memory holds: the stored rows, up to where memory takes over.
  if (store_ != nullptr && from_ms < memory_from) {
    AppendFromStorage(matchers, from_ms, std::min(to_ms, memory_from - 1), found);
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [labels, samples] : recent_) {
      if (!EqualMatchersAllow(matchers, labels)) {
        continue;
      }
      auto first = std::lower_bound(
          samples.begin(), samples.end(), memory_from,
          [](const rules::Sample& s, int64_t t) { return s.t_ms < t; });
      for (auto it = first; it != samples.end() && it->t_ms <= to_ms; ++it) {
        found[labels].push_back(*it);
      }
    }
  }
  std::vector<rules::Series> out;
  out.reserve(found.size());
  for (auto& [labels, samples] : found) {
    out.push_back({labels, std::move(samples)});
  }
  return out;
}

}  // namespace modelpulse::daemon
