#include "storage/series_source.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/probe_series.h"
#include "common/regex.h"
#include "storage/internal/probe_codec.h"

namespace modelpulse::storage {
namespace {

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

// The matchers on __name__ of a selector, applied to a candidate series name before any read. A
// pattern that does not compile rules nothing out: the caller, which parsed the selector,
// refuses or re-applies it.
class NameFilter {
 public:
  explicit NameFilter(const std::vector<LabelMatcher>& matchers) {
    for (const LabelMatcher& m : matchers) {
      if (m.name != "__name__") {
        continue;
      }
      std::optional<Regex> regex;
      if (m.type == LabelMatcher::Type::kRegexMatch ||
          m.type == LabelMatcher::Type::kRegexNoMatch) {
        auto compiled = Regex::Compile(m.value);
        if (!compiled) {
          continue;
        }
        regex = std::move(*compiled);
      }
      matchers_.push_back({&m, std::move(regex)});
    }
  }
  bool Allows(std::string_view name) const {
    for (const auto& [m, regex] : matchers_) {
      switch (m->type) {
        case LabelMatcher::Type::kEqual:
          if (name != m->value) {
            return false;
          }
          break;
        case LabelMatcher::Type::kNotEqual:
          if (name == m->value) {
            return false;
          }
          break;
        case LabelMatcher::Type::kRegexMatch:
        case LabelMatcher::Type::kRegexNoMatch:
          if (regex->FullMatch(name) != (m->type == LabelMatcher::Type::kRegexMatch)) {
            return false;
          }
          break;
      }
    }
    return true;
  }

 private:
  std::vector<std::pair<const LabelMatcher*, std::optional<Regex>>> matchers_;
};

// The metric name a selector's equality matcher on __name__ gives, or null.
const std::string* MetricNameOf(const std::vector<LabelMatcher>& matchers) {
  const std::string* name = nullptr;
  for (const LabelMatcher& m : matchers) {
    if (m.type == LabelMatcher::Type::kEqual && m.name == "__name__") {
      name = &m.value;
    }
  }
  return name;
}

// The probe series a selector names (none without a metric name).
std::vector<const ProbeSeries*> WantedSeries(const std::vector<LabelMatcher>& matchers) {
  std::vector<const ProbeSeries*> wanted;
  const std::string* name = MetricNameOf(matchers);
  for (const ProbeSeries& series : ProbeSeriesTable()) {
    if (name != nullptr && *name == series.name &&
        EqualMatchersAllow(matchers, Labels{{"resource", series.resource}})) {
      wanted.push_back(&series);
    }
  }
  return wanted;
}

// A window may be kept and slid only over samples that can no longer change: a probe is in
// memory when it finishes and in storage about a second later, so anything that started this
// long before the newest probe is settled.
constexpr int64_t kSettledMs = 5 * 60'000;
// Sorted windows not used for this long (of probe time) are dropped.
constexpr int64_t kWindowIdleMs = 10 * 60'000;
// How far behind the newest probe a window may end and still have its edges cached.
constexpr int64_t kRecentEdgeMs = 3600'000;

using Interval = std::pair<int64_t, int64_t>;  // [from_ms, to_ms)

int64_t FloorToHour(int64_t t_ms) {
  const int64_t rest = t_ms % kRollupBucketMs;
  return rest < 0 ? t_ms - rest - kRollupBucketMs : t_ms - rest;
}

// Sorted, with overlapping and touching intervals joined.
std::vector<Interval> JoinIntervals(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end());
  std::vector<Interval> out;
  for (const Interval& i : intervals) {
    if (!out.empty() && i.first <= out.back().second) {
      out.back().second = std::max(out.back().second, i.second);
    } else {
      out.push_back(i);
    }
  }
  return out;
}

// A row read by seeking to it costs about as much as this many rows read in passing.
constexpr int64_t kRowsPerSeek = 16;

// The history one range query's steps read: ReadField and ReadRollups answered from what
// Prefetch read once for all of them when the request lies within it, anything else by the
// base. The same rows in the same order as the base would give, so each step's answer is the
// same bits as when it reads storage itself.
class RangeReads final : public ProbeHistory {
 public:
  explicit RangeReads(const ProbeHistory& base) : base_(base) {}

  // Reads the rollups of [rollups_from, rollups_to) and the rows of `edges` (disjoint,
  // ascending): each edge by a seek, or all at once by one scan from the first to the last when
  // the rollups say that reads few more rows than the seeks would cost. Seeks skip the edges
  // the rollups prove empty (RollupsRuleOut) or hold (RollupsFirstRows) where no row can arrive
  // any more (up to `settled_ms`, ProbeSeriesSource::SettledAt).
  Status Prefetch(int64_t target_id, ProbeField field, const std::vector<Interval>& edges,
                  int64_t rollups_from, int64_t rollups_to, int64_t settled_ms) {
    Fetched& fetched = fetched_[{target_id, static_cast<int>(field)}];
    last_found_ = nullptr;
    auto rollups = base_.ReadRollups(target_id, field, rollups_from, rollups_to);
    if (!rollups) {
      return Fail(rollups.error());
    }
    fetched.rollups_from = rollups_from;
    fetched.rollups_to = rollups_to;
    fetched.rollups = std::move(*rollups);
    fetched.edges = edges;
    if (edges.empty()) {
      return {};
    }
    const int64_t span_from = FloorToHour(edges.front().first);
    int64_t rows = 0;
    for (const FieldRollup& r : fetched.rollups) {
      rows += r.bucket_ms >= span_from && r.bucket_ms < edges.back().second ? r.count : 0;
    }
    if (rows > kRowsPerSeek * static_cast<int64_t>(edges.size())) {
      std::vector<Interval> seeks;
      std::vector<size_t> seek_edge;
      fetched.rows.resize(edges.size());
      for (size_t i = 0; i < edges.size(); ++i) {
        if (RollupsRuleOut(fetched, edges[i], settled_ms)) {
          continue;
        }
        if (auto first_rows = RollupsFirstRows(fetched, edges[i], settled_ms)) {
          fetched.rows[i] = std::move(*first_rows);
          continue;
        }
        seeks.push_back(edges[i]);
        seek_edge.push_back(i);
      }
      auto points = base_.ReadFieldIn(target_id, field, seeks);
      if (!points) {
        return Fail(points.error());
      }
      for (size_t i = 0; i < seeks.size(); ++i) {
        fetched.rows[seek_edge[i]] = std::move((*points)[i]);
      }
      return {};
    }
    auto points = base_.ReadField(target_id, field, edges.front().first, edges.back().second);
    if (!points) {
      return Fail(points.error());
    }
    fetched.rows.resize(edges.size());
    size_t edge = 0;
    for (const FieldPoint& p : *points) {
      while (edge < edges.size() && p.t_ms >= edges[edge].second) {
        ++edge;
      }
      if (edge < edges.size() && p.t_ms >= edges[edge].first) {
        fetched.rows[edge].push_back(p);
      }
    }
    return {};
  }

  Result<std::vector<StoredTarget>> ListTargets() const override { return base_.ListTargets(); }
  Result<std::vector<FieldPoint>> ReadField(int64_t target_id, ProbeField field, int64_t from_ms,
                                            int64_t to_ms) const override {
    if (from_ms >= to_ms) {
      return std::vector<FieldPoint>();
    }
    const Fetched* found = Find(target_id, field);
    if (found == nullptr) {
      return base_.ReadField(target_id, field, from_ms, to_ms);
    }
    const Fetched& fetched = *found;
    // The last edge starting at or before from_ms, if it reaches to_ms.
    auto edge =
        std::upper_bound(fetched.edges.begin(), fetched.edges.end(), Interval{from_ms, INT64_MAX});
    if (edge == fetched.edges.begin() || std::prev(edge)->second < to_ms) {
      return base_.ReadField(target_id, field, from_ms, to_ms);
    }
    const std::vector<FieldPoint>& rows =
        fetched.rows[static_cast<size_t>(std::prev(edge) - fetched.edges.begin())];
    auto by_time = [](const FieldPoint& p, int64_t t) { return p.t_ms < t; };
    return std::vector<FieldPoint>(std::lower_bound(rows.begin(), rows.end(), from_ms, by_time),
                                   std::lower_bound(rows.begin(), rows.end(), to_ms, by_time));
  }
  Result<std::vector<FieldRollup>> ReadRollups(int64_t target_id, ProbeField field, int64_t from_ms,
                                               int64_t to_ms) const override {
    const Fetched* found = Find(target_id, field);
    if (found == nullptr || from_ms < found->rollups_from || to_ms > found->rollups_to) {
      return base_.ReadRollups(target_id, field, from_ms, to_ms);
    }
    if (to_ms - from_ms < kRollupBucketMs) {
      return std::vector<FieldRollup>();
    }
    const std::vector<FieldRollup>& rollups = found->rollups;
    auto first = std::lower_bound(rollups.begin(), rollups.end(), from_ms,
                                  [](const FieldRollup& r, int64_t t) { return r.bucket_ms < t; });
    auto last = std::upper_bound(first, rollups.end(), to_ms - kRollupBucketMs,
                                 [](int64_t t, const FieldRollup& r) { return t < r.bucket_ms; });
    return std::vector<FieldRollup>(first, last);
  }
  Result<std::vector<ProbeResult>> ReadProbes(std::string_view target, int64_t from_ms,
                                              int64_t to_ms) const override {
    return base_.ReadProbes(target, from_ms, to_ms);
  }
  Result<std::vector<std::pair<std::string, Labels>>> Targets() const override {
    return base_.Targets();
  }
  Result<std::vector<RollupValues>> ReadRollupValues(int64_t target_id, ProbeField field,
                                                     int64_t from_ms,
                                                     int64_t to_ms) const override {
    return base_.ReadRollupValues(target_id, field, from_ms, to_ms);
  }
  Status ScanCounterInputs(int64_t target_id, int64_t from_ms, int64_t to_ms,
                           const std::function<void(const CounterPoint&)>& each) const override {
    return base_.ScanCounterInputs(target_id, from_ms, to_ms, each);
  }
  Result<std::vector<CounterFirstSeen>> FirstSeenCounters(int64_t target_id) const override {
    return base_.FirstSeenCounters(target_id);
  }
  Result<Labels> LabelSet(int64_t label_set_id) const override {
    return base_.LabelSet(label_set_id);
  }

 private:
  struct Fetched {
    int64_t rollups_from = 0;
    int64_t rollups_to = 0;
    std::vector<FieldRollup> rollups;  // by bucket, then label set, as the base orders them
    std::vector<Interval> edges;
    std::vector<std::vector<FieldPoint>> rows;  // per edge, in the base's order
  };
  // Whether `fetched`'s rollups show that no row lies in `edge`: every row of an hour lies
  // between its rollups' first and last times, and an hour without rollups holds none, once the
  // hour is settled and its rollups were read.
  static bool RollupsRuleOut(const Fetched& fetched, Interval edge, int64_t settled_ms) {
    const auto [from_ms, to_ms] = edge;  // [from_ms, to_ms)
    if (settled_ms == INT64_MIN || to_ms - 1 > settled_ms ||
        FloorToHour(from_ms) < fetched.rollups_from || to_ms > fetched.rollups_to) {
      return false;
    }
    const std::vector<FieldRollup>& rollups = fetched.rollups;
    auto it = std::lower_bound(rollups.begin(), rollups.end(), FloorToHour(from_ms),
                               [](const FieldRollup& r, int64_t t) { return r.bucket_ms < t; });
    for (; it != rollups.end() && it->bucket_ms < to_ms; ++it) {
      if (it->first_ms < to_ms && it->last_ms >= from_ms) {
        return false;
      }
    }
    return true;
  }

  // The rows of `edge` from `fetched`'s rollups alone, where they show them: an edge inside one
  // settled hour in which each label set has its first row at most (its second starts at or
  // past the edge's end: a window ending a few seconds past the hour), at distinct instants (the
  // order of rows of one instant is their sequence number's, which rollups do not keep).
  static std::optional<std::vector<FieldPoint>> RollupsFirstRows(const Fetched& fetched,
                                                                 Interval edge,
                                                                 int64_t settled_ms) {
    const auto [from_ms, to_ms] = edge;  // [from_ms, to_ms)
    const int64_t hour = FloorToHour(from_ms);
    if (settled_ms == INT64_MIN || to_ms - 1 > settled_ms || FloorToHour(to_ms - 1) != hour ||
        hour < fetched.rollups_from || hour + kRollupBucketMs > fetched.rollups_to) {
      return std::nullopt;
    }
    const std::vector<FieldRollup>& rollups = fetched.rollups;
    std::vector<FieldPoint> rows;
    auto it = std::lower_bound(rollups.begin(), rollups.end(), hour,
                               [](const FieldRollup& r, int64_t t) { return r.bucket_ms < t; });
    for (; it != rollups.end() && it->bucket_ms == hour; ++it) {
      if (it->last_ms < from_ms || it->first_ms >= to_ms) {
        continue;  // no row of it inside
      }
      if (it->first_ms < from_ms || it->second_ms < to_ms || !it->first_value) {
        return std::nullopt;
      }
      rows.push_back({it->first_ms, it->label_set_id, *it->first_value});
    }
    auto by_time = [](const FieldPoint& a, const FieldPoint& b) { return a.t_ms < b.t_ms; };
    std::sort(rows.begin(), rows.end(), by_time);
    if (std::adjacent_find(rows.begin(), rows.end(), [](const FieldPoint& a, const FieldPoint& b) {
          return a.t_ms == b.t_ms;
        }) != rows.end()) {
      return std::nullopt;
    }
    return rows;
  }

  // The entry of (target, field), or null: a step's reads of one target ask for the same one in
  // a row, so the last is kept.
  const Fetched* Find(int64_t target_id, ProbeField field) const {
    const std::pair<int64_t, int> key{target_id, static_cast<int>(field)};
    if (last_found_ == nullptr || last_key_ != key) {
      auto found = fetched_.find(key);
      last_found_ = found == fetched_.end() ? nullptr : &found->second;
      last_key_ = key;
    }
    return last_found_;
  }

  const ProbeHistory& base_;
  std::map<std::pair<int64_t, int>, Fetched> fetched_;
  mutable std::pair<int64_t, int> last_key_{0, 0};
  mutable const Fetched* last_found_ = nullptr;  // fetched_'s entry of last_key_, or null
};

// Neumaier-compensated sum, as Prometheus's kahanSumInc.
void CompensatedAdd(double& sum, double& c, double v) {
  const double t = sum + v;
  if (std::isinf(t)) {
    c = 0;
  } else if (std::fabs(sum) >= std::fabs(v)) {
    c += (sum - t) + v;
  } else {
    c += (v - t) + sum;
  }
  sum = t;
}

// QuantileOfSorted's answer from unsorted values, by selection: the two order statistics the
// interpolation needs in linear time instead of a sort. Reorders `values`. Bit for bit the same
// answer, as the same two values are interpolated the same way.
double QuantileBySelection(double q, std::vector<double>& values) {
  if (values.empty() || std::isnan(q) || q < 0 || q > 1) {
    return QuantileOfSorted(q, values);  // answers these without looking at the order
  }
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const auto lower = static_cast<size_t>(std::max(0.0, std::floor(rank)));
  const auto upper = static_cast<size_t>(std::min(n - 1, static_cast<double>(lower) + 1));
  const double weight = rank - std::floor(rank);
  const auto nth = values.begin() + static_cast<std::ptrdiff_t>(lower);
  std::nth_element(values.begin(), nth, values.end());
  // After the selection every value past `lower` is at least as large: the next order
  // statistic is their minimum.
  const double above = upper == lower ? *nth : *std::min_element(nth + 1, values.end());
  return *nth * (1 - weight) + above * weight;
}

}  // namespace

// One series' share of a pushdown: raw samples in time order while no rollup contributes (then
// the answer is the evaluator's own arithmetic), totals once one does.
struct ProbeSeriesSource::Accumulator {
  std::vector<Sample> raw;
  bool rolled = false;
  int64_t count = 0;
  double sum = 0;
  double c = 0;
  double min = 0;
  double max = 0;

  void AddRollup(const FieldRollup& r) {
    if (r.count == 0) {
      return;
    }
    if (!rolled) {
      rolled = true;
      for (const Sample& s : raw) {
        AddTotals(1, s.v, s.v, s.v);
      }
    }
    AddTotals(r.count, r.sum, r.min, r.max);
  }
  void AddSample(const Sample& s) {
    if (rolled) {
      AddTotals(1, s.v, s.v, s.v);
    } else {
      raw.push_back(s);
    }
  }
  void AddTotals(int64_t n, double sum_part, double min_part, double max_part) {
    if (count == 0) {
      min = min_part;
      max = max_part;
    } else {
      if (min_part < min || std::isnan(min)) {
        min = min_part;
      }
      if (max_part > max || std::isnan(max)) {
        max = max_part;
      }
    }
    count += n;
    CompensatedAdd(sum, c, sum_part);
  }
  bool Empty() const { return rolled ? count == 0 : raw.empty(); }
  // Empty again, keeping the samples' storage for the next window.
  void Reset() {
    raw.clear();
    rolled = false;
    count = 0;
    sum = c = min = max = 0;
  }
  double Value(RangeAggregate aggregate, double q) const {
    if (!rolled) {
      return AggregateSamples(aggregate, q, raw);
    }
    const double total = std::isinf(sum) ? sum : sum + c;
    switch (aggregate) {
      case RangeAggregate::kCount:
        return static_cast<double>(count);
      case RangeAggregate::kSum:
        return total;
      case RangeAggregate::kAvg:
        return total / static_cast<double>(count);
      case RangeAggregate::kMin:
        return min;
      case RangeAggregate::kMax:
        return max;
      case RangeAggregate::kQuantile:
      case RangeAggregate::kRate:
      case RangeAggregate::kIncrease:
        break;  // never rolled up
    }
    return std::numeric_limits<double>::quiet_NaN();
  }
};

// The values of one target's field over the closed [lo, hi], per series: sorted once the window
// is used a second time (a window read once, the common cold query, is answered by selection).
struct ProbeSeriesSource::SortedWindow {
  int64_t lo = 0;
  int64_t hi = 0;
  int64_t used_ms = 0;
  bool sorted = false;
  std::map<Labels, std::vector<double>> values;
};

namespace {

// The values of a window's series, found by the series' labels pointer: rows come in runs of one
// label set (most targets have one), so the map of full label sets is searched once a run, not
// once a row.
class SeriesValues {
 public:
  explicit SeriesValues(std::map<Labels, std::vector<double>>& values) : series_(values) {}
  // `expected`: how many values the first series may get (reserved: often all of them).
  std::vector<double>& Of(const Labels* labels, size_t expected = 0) {
    if (labels != last_) {
      values_ = &series_[*labels];
      if (last_ == nullptr && values_->empty()) {
        values_->reserve(expected);
      }
      last_ = labels;
    }
    return *values_;
  }

 private:
  std::map<Labels, std::vector<double>>& series_;
  const Labels* last_ = nullptr;
  std::vector<double>* values_ = nullptr;
};

}  // namespace

// The head rows and the rollups of one target's field for one set of whole hours.
struct ProbeSeriesSource::EdgeCache {
  int64_t head_from = 0;
  int64_t used_ms = 0;
  std::vector<FieldPoint> head;
  std::vector<FieldRollup> rollups;
};

// What a window [from_ms, to_ms] reads from storage, the same for every target: whole hours from
// the rollups, the rows at its edges (or an edge hour's rollup minus the rows outside the
// window), the rest from memory.
struct ProbeSeriesSource::WindowPlan {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  int64_t memory_from = 0;  // memory holds every sample from here on
  int64_t stored_to = 0;    // the last instant read from storage (closed)
  int64_t first_bucket = 0;
  int64_t roll_end = 0;  // rollups of [first_bucket, roll_end)
  int64_t head_hour = 0;
  int64_t tail_end = 0;
  int64_t memory_cut = 0;  // memory's samples older than this are in the rollups
  bool keep_edges = false;
  bool head_by_complement = false;
  bool tail_by_complement = false;
  bool use_rollups = false;

  // REQUIRES: from_ms < memory_from (part of the window is stored), from_ms <= to_ms.
  static WindowPlan Of(int64_t from_ms, int64_t to_ms, int64_t memory_from, int64_t settled,
                       RangeAggregate aggregate) {
    WindowPlan plan;
    plan.from_ms = from_ms;
    plan.to_ms = to_ms;
    plan.memory_from = memory_from;
    plan.stored_to = std::min(to_ms, memory_from - 1);
    constexpr int64_t kBucket = kRollupBucketMs;
    // Whole hours inside [from_ms, to_ms] come from the rollups: up to where storage ends, or
    // further (past the start of memory) where those hours are settled.
    plan.first_bucket = (from_ms / kBucket + (from_ms % kBucket > 0 ? 1 : 0)) * kBucket;
    plan.roll_end = (plan.stored_to + 1) / kBucket * kBucket;
    if (settled != INT64_MIN) {
      plan.roll_end = std::max(plan.roll_end, (std::min(to_ms, settled) + 1) / kBucket * kBucket);
    }
    const int64_t first_bucket = plan.first_bucket;
    const int64_t roll_end = plan.roll_end;
    // Edges are kept only for windows that end near the newest probe, which the next evaluation
    // of a rule slides over; the steps of a range query over history would each leave an entry
    // (200 targets x 168 hourly steps: 33,600) that is never read again and that every call
    // would walk to expire.
    plan.keep_edges = roll_end <= settled && to_ms >= settled - kRecentEdgeMs;
    // A window starting early in an hour (a range query's steps off the hour: an unaligned 1 h
    // window holds no whole hour) takes that hour's rollup minus the few rows before it, instead
    // of reading nearly an hour of rows. Not for kept edges, whose head shrinks as the window
    // slides (the rows before it would grow), and only where the hour is wholly rolled up.
    plan.head_hour = first_bucket - kBucket;
    plan.head_by_complement = aggregate != RangeAggregate::kQuantile && from_ms > 0 &&
                              from_ms % kBucket != 0 && !plan.keep_edges &&
                              first_bucket <= roll_end && first_bucket <= memory_from &&
                              from_ms - plan.head_hour < first_bucket - from_ms;
    const int64_t rollup_from = plan.head_by_complement ? plan.head_hour : first_bucket;
    // The same at the other end: a window ending late in an hour that is wholly stored and
    // settled takes its rollup minus the rows after the window.
    plan.tail_end = roll_end + kBucket;
    plan.tail_by_complement = aggregate != RangeAggregate::kQuantile && from_ms > 0 &&
                              !plan.keep_edges && settled != INT64_MIN &&
                              plan.tail_end - 1 <= settled && plan.tail_end <= memory_from &&
                              first_bucket <= roll_end && to_ms + 1 > roll_end &&
                              plan.tail_end - (to_ms + 1) < to_ms + 1 - roll_end;
    // (The head, before the first whole hour, must be wholly in storage.)
    plan.use_rollups = aggregate != RangeAggregate::kQuantile && from_ms > 0 &&
                       first_bucket <= memory_from &&
                       (roll_end - rollup_from >= kBucket || plan.tail_by_complement);
    plan.memory_cut = plan.use_rollups ? std::max(memory_from, roll_end) : memory_from;
    return plan;
  }

  // The rows AddStoredWindow may read for this window, into `out`: the window's stored part, or
  // the rows at its edges (inside the window, or outside it where an edge hour's rollup is taken
  // down by them; both for min and max, where that may fail and read the inside after all).
  void AddRowReads(RangeAggregate aggregate, std::vector<Interval>& out) const {
    const int64_t stored_end = stored_to + 1;
    if (!use_rollups) {
      out.emplace_back(from_ms, stored_end);
      return;
    }
    const bool extremes = aggregate == RangeAggregate::kMin || aggregate == RangeAggregate::kMax;
    if (head_by_complement) {
      out.emplace_back(head_hour, extremes ? first_bucket : from_ms);
    } else if (from_ms < first_bucket) {
      out.emplace_back(from_ms, std::min(first_bucket, stored_end));
    }
    if (tail_by_complement) {
      out.emplace_back(extremes ? roll_end : to_ms + 1, tail_end);
    } else if (roll_end < stored_end) {
      out.emplace_back(roll_end, stored_end);
    }
  }
};

// The answers of a pushdown's steps as they are computed, series-major: one accumulator per series
// for the step at hand, then its value in that series' slot. A stored series is found by the
// address of its labels (SeriesLabelsOf gives one per label set, and label sets are unique), a
// memory series by its labels.
class ProbeSeriesSource::StepTotals {
 public:
  explicit StepTotals(size_t steps) : steps_(steps) {}

  Accumulator& Of(const Labels* labels) {
    if (labels != last_labels_) {
      auto [it, added] = by_address_.try_emplace(labels, 0);
      if (added) {
        it->second = IndexOf(*labels);
      }
      last_labels_ = labels;
      last_index_ = it->second;
    }
    return Touch(last_index_);
  }
  Accumulator& Of(const Labels& labels) { return Touch(IndexOf(labels)); }
  void Answer(size_t step, const Labels& labels, double value) {
    SeriesSteps& series = series_[IndexOf(labels)];
    series.values[step] = value;
    series.present[step] = true;
  }
  // The step's accumulators into their series' slots; the next step starts empty.
  void FinishStep(size_t step, RangeAggregate aggregate, double q) {
    for (size_t i : touched_) {
      Accumulator& acc = accumulators_[i];
      if (!acc.Empty()) {
        series_[i].values[step] = acc.Value(aggregate, q);
        series_[i].present[step] = true;
      }
      acc.Reset();
      is_touched_[i] = false;
    }
    touched_.clear();
    last_labels_ = nullptr;
  }
  // Every series answered at some step, in label order.
  std::vector<SeriesSteps> Take() {
    std::vector<SeriesSteps> out;
    out.reserve(series_.size());
    while (!by_labels_.empty()) {
      auto node = by_labels_.extract(by_labels_.begin());
      SeriesSteps& series = series_[node.mapped()];
      series.labels = std::move(node.key());
      out.push_back(std::move(series));
    }
    return out;
  }

  std::vector<std::pair<const Labels*, Sample>> raw;  // ReadRaw's buffer, reused

 private:
  size_t IndexOf(const Labels& labels) {
    auto [it, added] = by_labels_.try_emplace(labels, series_.size());
    if (added) {
      // The labels stay the map's key until Take: one copy a series.
      series_.push_back({{}, std::vector<double>(steps_), std::vector<bool>(steps_)});
      accumulators_.emplace_back();
      is_touched_.push_back(false);
    }
    return it->second;
  }
  Accumulator& Touch(size_t i) {
    if (!is_touched_[i]) {
      is_touched_[i] = true;
      touched_.push_back(i);
    }
    return accumulators_[i];
  }

  const size_t steps_;
  std::vector<SeriesSteps> series_;
  std::deque<Accumulator> accumulators_;  // by series index; a deque keeps references valid
  std::map<Labels, size_t> by_labels_;
  std::unordered_map<const Labels*, size_t> by_address_;
  std::vector<size_t> touched_;  // this step's, in the order first touched
  std::vector<bool> is_touched_;
  const Labels* last_labels_ = nullptr;
  size_t last_index_ = 0;
};

// The running totals of every counter-family slot over one label set's probes, and since when
// each slot exists (a client library creates a series at its first increment).
struct ProbeSeriesSource::CounterTotals {
  static constexpr int64_t kNever = INT64_MAX;
  std::vector<double> value = std::vector<double>(ProbeCounterSlots().size(), 0.0);
  std::vector<int64_t> first_ms = std::vector<int64_t>(ProbeCounterSlots().size(), kNever);
  bool Seen(size_t slot) const { return first_ms[slot] != kNever; }
  void Add(const ProbeNumbers& numbers, int64_t t_ms) {
    ForEachProbeIncrement(numbers, [this, t_ms](size_t slot, double increment) {
      value[slot] += increment;
      first_ms[slot] = std::min(first_ms[slot], t_ms);
    });
  }
  void Subtract(const ProbeNumbers& numbers) {
    ForEachProbeIncrement(numbers,
                          [this](size_t slot, double increment) { value[slot] -= increment; });
  }
  // After subtracting the probes from `t_ms` on: slots first seen since then did not exist yet.
  // False when no slot is left.
  bool ForgetFrom(int64_t t_ms) {
    bool any = false;
    for (size_t slot = 0; slot < value.size(); ++slot) {
      if (first_ms[slot] >= t_ms) {
        first_ms[slot] = kNever;
        value[slot] = 0;
      } else {
        any = true;
      }
    }
    return any;
  }
};

// One stored target's totals over its probes with start < upto_ms, per label set.
struct ProbeSeriesSource::CounterBase {
  int64_t upto_ms = INT64_MIN;
  int64_t oldest_ms = INT64_MAX;  // the oldest probe counted (upto_ms when none)
  int64_t used_ms = 0;            // probe time of the last query that read it
  std::map<int64_t, CounterTotals> totals;
};

ProbeSeriesSource::ProbeSeriesSource(const ProbeHistory* store, Millis window,
                                     int64_t complete_since_ms, size_t max_kept_quantile_values)
    : store_(store),
      window_(window),
      max_kept_quantile_values_(max_kept_quantile_values),
      restart_ms_(window.count() > 0 ? complete_since_ms : INT64_MIN),
      complete_since_ms_(complete_since_ms),
      counts_since_ms_(complete_since_ms) {}

ProbeSeriesSource::~ProbeSeriesSource() = default;

size_t ProbeSeriesSource::KeptQuantileValues() const {
  std::lock_guard cache_lock(cache_mu_);
  return KeptQuantileValuesLocked();
}

size_t ProbeSeriesSource::KeptQuantileValuesLocked() const {
  size_t n = 0;
  for (const auto& [key, window] : windows_) {
    if (window != nullptr) {
      for (const auto& [labels, values] : window->values) {
        n += values.size();
      }
    }
  }
  return n;
}

void ProbeSeriesSource::Append(const ProbeResult& result) {
  std::lock_guard lock(mu_);
  newest_ms_ = std::max(newest_ms_, result.start_unix_ms);
  const int64_t cutoff = result.start_unix_ms - window_.count();
  // As storage keeps it (integer times), so a window or a counter across memory and storage is
  // one series.
  const ProbeResult stored = AsStored(result);
  for (const ProbeSample& sample : ProbeSamples(stored)) {
    std::deque<Sample>& samples = recent_[SeriesLabels(result.labels, sample)];
    samples.push_back({result.start_unix_ms, sample.value});
    while (!samples.empty() && samples.front().t_ms < cutoff) {
      samples.pop_front();
    }
  }
  if (cutoff > complete_since_ms_) {
    complete_since_ms_ = cutoff;
  }
  std::deque<CounterProbe>& counts = recent_counts_[result.target];
  std::shared_ptr<const Labels> labels = !counts.empty() && *counts.back().labels == result.labels
                                             ? counts.back().labels
                                             : std::make_shared<const Labels>(result.labels);
  counts.push_back({result.start_unix_ms, std::move(labels), ProbeNumbersOf(stored)});
  while (!counts.empty() && counts.front().t_ms < cutoff) {
    counts.pop_front();
  }
  counts_since_ms_ = std::max(counts_since_ms_, cutoff);
  // Series of targets that stopped probing (removed on reload) age out here, once a minute at
  // most, since a sweep visits every series.
  if (cutoff - last_sweep_ms_ >= 60'000) {
    last_sweep_ms_ = cutoff;
    std::erase_if(recent_, [cutoff](const auto& entry) {
      return entry.second.empty() || entry.second.back().t_ms < cutoff;
    });
    std::erase_if(recent_counts_, [cutoff](const auto& entry) {
      return entry.second.empty() || entry.second.back().t_ms < cutoff;
    });
  }
}

void ProbeSeriesSource::AppendFromStorage(const std::vector<LabelMatcher>& matchers,
                                          int64_t from_ms, int64_t to_ms,
                                          std::map<Labels, std::vector<Sample>>& out) const {
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

Result<std::map<int64_t, ProbeSeriesSource::CounterTotals>> ProbeSeriesSource::StoredTotalsBefore(
    int64_t target_id, int64_t to_ms, int64_t settled, int64_t used_now) const {
  // One kept base per target, at a settled time. A window past it adds the probes since; one
  // before it (a longer window, an offset) subtracts the probes between, which counters allow:
  // after a restart the history is scanned once per target, not once per window length.
  CounterBase& base = counter_bases_[target_id];
  base.used_ms = used_now;
  std::map<int64_t, CounterTotals> totals;
  // Going back from the base costs the probes between; starting afresh, those before to_ms.
  const bool afresh = base.upto_ms == INT64_MIN ||
                      (to_ms < base.upto_ms && to_ms - base.oldest_ms < base.upto_ms - to_ms);
  if (afresh || base.upto_ms <= to_ms) {
    int64_t from = INT64_MIN;
    if (!afresh) {
      totals = base.totals;
      from = base.upto_ms;
    }
    int64_t oldest = INT64_MAX;
    if (auto status = store_->ScanCounterInputs(target_id, from, to_ms,
                                                [&totals, &oldest](const CounterPoint& p) {
                                                  oldest = std::min(oldest, p.t_ms);
                                                  totals[p.label_set_id].Add(p.numbers, p.t_ms);
                                                });
        !status) {
      return Fail(status.error());
    }
    // Only totals nothing can change any more are kept.
    if (to_ms <= settled && to_ms > base.upto_ms) {
      base.oldest_ms = std::min(afresh ? oldest : base.oldest_ms, to_ms);
      base.upto_ms = to_ms;
      base.totals = totals;
    }
    return totals;
  }
  totals = base.totals;
  if (auto status = store_->ScanCounterInputs(
          target_id, to_ms, base.upto_ms,
          [&totals](const CounterPoint& p) { totals[p.label_set_id].Subtract(p.numbers); });
      !status) {
    return Fail(status.error());
  }
  for (auto it = totals.begin(); it != totals.end();) {
    it = it->second.ForgetFrom(to_ms) ? std::next(it) : totals.erase(it);
  }
  return totals;
}

Result<std::vector<Series>> ProbeSeriesSource::SelectCounters(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms, size_t first_slot,
    size_t last_slot, std::vector<SeriesAggregate>* rates, bool is_rate) const {
  const auto& slots = ProbeCounterSlots();
  const size_t width = last_slot - first_slot;
  int64_t memory_from = 0;
  int64_t newest = INT64_MIN;
  std::map<std::string, std::vector<CounterProbe>, std::less<>> memory;
  {
    std::lock_guard lock(mu_);
    memory_from = counts_since_ms_;
    newest = newest_ms_;
    for (const auto& [target, probes] : recent_counts_) {
      if (probes.empty() || !EqualMatchersAllow(matchers, *probes.back().labels)) {
        continue;
      }
      std::vector<CounterProbe>& kept = memory[target];
      for (const CounterProbe& probe : probes) {
        if (probe.t_ms > to_ms) {
          break;
        }
        kept.push_back(probe);
      }
    }
  }
  const int64_t settled = SettledAt(newest);
  // Per target label set: its running totals and the samples of the wanted slots, or (for the
  // rate pushdown) only what extrapolatedRate reads of them: no window is materialised.
  struct Running {
    CounterTotals totals;
    std::vector<std::vector<Sample>> samples;
    std::vector<RateInputs> rates;
  };
  std::map<Labels, Running> running;
  auto emit = [&](Running& r, int64_t t_ms) {
    if (rates != nullptr) {
      r.rates.resize(width);
      for (size_t slot = first_slot; slot < last_slot; ++slot) {
        if (r.totals.Seen(slot)) {
          RateInputs& in = r.rates[slot - first_slot];
          const Sample sample{t_ms, r.totals.value[slot]};
          // As RateInputsOf: the value before each drop (the first compared with 0).
          const double previous = in.count == 0 ? 0 : in.last.v;
          if (sample.v < previous) {
            in.resets += previous;
          }
          if (in.count == 0) {
            in.first = sample;
          }
          in.last = sample;
          ++in.count;
        }
      }
      return;
    }
    r.samples.resize(width);
    for (size_t slot = first_slot; slot < last_slot; ++slot) {
      if (r.totals.Seen(slot)) {
        r.samples[slot - first_slot].push_back({t_ms, r.totals.value[slot]});
      }
    }
  };
  auto add_memory = [&](std::vector<CounterProbe>& probes) {
    for (const CounterProbe& probe : probes) {
      if (probe.t_ms < memory_from) {
        continue;
      }
      Running& r = running[*probe.labels];
      r.totals.Add(probe.numbers, probe.t_ms);
      if (probe.t_ms >= from_ms) {
        emit(r, probe.t_ms);
      }
    }
  };
  if (store_ != nullptr) {
    auto targets = store_->ListTargets();
    if (!targets) {
      return Fail(targets.error());
    }
    std::lock_guard cache_lock(cache_mu_);
    const int64_t used_now = std::max(newest, restart_ms_);
    std::erase_if(counter_bases_, [&](const auto& entry) {
      return used_now != INT64_MIN && entry.second.used_ms < used_now - kWindowIdleMs;
    });
    const int64_t stored_to = std::min(to_ms, memory_from - 1);  // closed
    for (const StoredTarget& target : *targets) {
      if (!EqualMatchersAllow(matchers, target.labels)) {
        continue;
      }
      // Everything before the window, then the window's stored probes one by one.
      auto totals =
          StoredTotalsBefore(target.id, std::min(from_ms, memory_from), settled, used_now);
      if (!totals) {
        return Fail(totals.error());
      }
      std::map<int64_t, Running> by_set;
      for (auto& [set, t] : *totals) {
        by_set[set].totals = std::move(t);
      }
      if (from_ms <= stored_to) {
        if (auto status = store_->ScanCounterInputs(target.id, from_ms, stored_to + 1,
                                                    [&](const CounterPoint& p) {
                                                      Running& r = by_set[p.label_set_id];
                                                      r.totals.Add(p.numbers, p.t_ms);
                                                      emit(r, p.t_ms);
                                                    });
            !status) {
          return Fail(status.error());
        }
      }
      for (auto& [set, r] : by_set) {
        auto labels = store_->LabelSet(set);
        if (!labels) {
          return Fail(labels.error());
        }
        running[*labels] = std::move(r);
      }
      if (auto m = memory.find(target.name); m != memory.end()) {
        add_memory(m->second);
        memory.erase(m);
      }
    }
  }
  for (auto& [target, probes] : memory) {  // targets with no committed row yet
    add_memory(probes);
  }
  std::vector<Series> out;
  for (auto& [target_labels, r] : running) {
    for (size_t i = 0; i < r.rates.size(); ++i) {
      if (r.rates[i].count < 2) {
        continue;
      }
      const ProbeCounterSlot& slot = slots[first_slot + i];
      Labels labels = target_labels;
      labels["__name__"] = slot.name;
      if (*slot.label_name != '\0') {
        labels[slot.label_name] = slot.label_value;
      }
      if (EqualMatchersAllow(matchers, labels)) {
        rates->push_back(
            {std::move(labels), ExtrapolatedRate(r.rates[i], from_ms, to_ms, true, is_rate)});
      }
    }
    for (size_t i = 0; i < r.samples.size(); ++i) {
      if (r.samples[i].empty()) {
        continue;
      }
      const ProbeCounterSlot& slot = slots[first_slot + i];
      Labels labels = target_labels;
      labels["__name__"] = slot.name;
      if (*slot.label_name != '\0') {
        labels[slot.label_name] = slot.label_value;
      }
      if (EqualMatchersAllow(matchers, labels)) {
        out.push_back({std::move(labels), std::move(r.samples[i])});
      }
    }
  }
  return out;
}

Result<std::vector<Series>> ProbeSeriesSource::Select(const std::vector<LabelMatcher>& matchers,
                                                      int64_t from_ms, int64_t to_ms) const {
  for (const LabelMatcher& m : matchers) {
    if (m.type == LabelMatcher::Type::kEqual && m.name == "__name__") {
      if (auto [first, last] = ProbeCounterSlotsNamed(m.value); first < last) {
        return SelectCounters(matchers, from_ms, to_ms, first, last, nullptr, false);
      }
    }
  }
  WarmUpOnce();
  std::map<Labels, std::vector<Sample>> found;
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
      auto first = std::lower_bound(samples.begin(), samples.end(), memory_from,
                                    [](const Sample& s, int64_t t) { return s.t_ms < t; });
      if (first == samples.end() || first->t_ms > to_ms) {
        continue;
      }
      std::vector<Sample>& out = found[labels];  // one lookup a series, not a sample
      for (auto it = first; it != samples.end() && it->t_ms <= to_ms; ++it) {
        out.push_back(*it);
      }
    }
  }
  std::vector<Series> out;
  out.reserve(found.size());
  for (auto& [labels, samples] : found) {
    out.push_back({labels, std::move(samples)});
  }
  return out;
}

Result<std::vector<Labels>> ProbeSeriesSource::SeriesIn(const std::vector<LabelMatcher>& matchers,
                                                        int64_t from_ms, int64_t to_ms) const {
  std::vector<Labels> out;
  if (from_ms > to_ms) {
    return out;
  }
  // The pushdown reads whole hours from the rollups only from a positive start ("all of
  // history" is 0 here); no stored probe is that old.
  from_ms = std::max<int64_t>(from_ms, 1);
  const NameFilter names(matchers);
  // The other matchers narrow the targets read; each name is added in turn.
  std::vector<LabelMatcher> named;
  for (const LabelMatcher& m : matchers) {
    if (m.name != "__name__") {
      named.push_back(m);
    }
  }
  named.push_back({LabelMatcher::Type::kEqual, "__name__", ""});
  for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
    if (!names.Allows(info.name)) {
      continue;
    }
    named.back().value = info.name;
    auto found = SelectAggregate(named, from_ms, to_ms, RangeAggregate::kCount, 0);
    if (!found) {
      return Fail(found.error());
    }
    for (SeriesAggregate& series : *found) {
      out.push_back(std::move(series.labels));
    }
  }
  const auto& slots = ProbeCounterSlots();
  if (std::none_of(slots.begin(), slots.end(),
                   [&](const ProbeCounterSlot& slot) { return names.Allows(slot.name); })) {
    return out;
  }
  // The label sets with a probe in the window: every probe has a probe_success sample.
  named.back().value = "probe_success";
  auto probed = SelectAggregate(named, from_ms, to_ms, RangeAggregate::kCount, 0);
  if (!probed) {
    return Fail(probed.error());
  }
  std::set<Labels> in_window;
  for (SeriesAggregate& series : *probed) {
    series.labels.erase("__name__");
    in_window.insert(std::move(series.labels));
  }
  // When each counter series was first moved: over the stored probes (storage keeps it), and
  // over memory's, some of which the writer may not have committed yet.
  std::vector<CounterProbe> memory;
  {
    std::lock_guard lock(mu_);
    const int64_t memory_from = counts_since_ms_;
    for (const auto& [target, probes] : recent_counts_) {
      if (probes.empty() || !EqualMatchersAllow(named, *probes.back().labels)) {
        continue;
      }
      for (const CounterProbe& probe : probes) {
        if (probe.t_ms > to_ms) {
          break;
        }
        if (probe.t_ms >= memory_from) {
          memory.push_back(probe);
        }
      }
    }
  }
  std::map<Labels, CounterTotals> seen;
  if (store_ != nullptr) {
    auto targets = store_->ListTargets();
    if (!targets) {
      return Fail(targets.error());
    }
    // Over every stored probe, from the table storage keeps beside the rows: a time later than
    // to_ms, or one memory has too, changes nothing below.
    for (const StoredTarget& target : *targets) {
      if (!EqualMatchersAllow(named, target.labels)) {
        continue;
      }
      auto firsts = store_->FirstSeenCounters(target.id);
      if (!firsts) {
        return Fail(firsts.error());
      }
      for (const CounterFirstSeen& first : *firsts) {
        auto labels = store_->LabelSet(first.label_set_id);
        if (!labels) {
          return Fail(labels.error());
        }
        CounterTotals& merged = seen[*labels];
        for (size_t slot = first.first_slot; slot < first.last_slot; ++slot) {
          merged.first_ms[slot] = std::min(merged.first_ms[slot], first.first_ms);
        }
      }
    }
  }
  for (const CounterProbe& probe : memory) {
    seen[*probe.labels].Add(probe.numbers, probe.t_ms);
  }
  for (const auto& [labels, totals] : seen) {
    const bool probed_in_window = in_window.count(labels) > 0;
    for (size_t slot = 0; slot < slots.size(); ++slot) {
      const int64_t first = totals.first_ms[slot];
      if (!totals.Seen(slot) || first > to_ms || (first < from_ms && !probed_in_window) ||
          !names.Allows(slots[slot].name)) {
        continue;
      }
      Labels series = labels;
      series["__name__"] = slots[slot].name;
      if (*slots[slot].label_name != '\0') {
        series[slots[slot].label_name] = slots[slot].label_value;
      }
      out.push_back(std::move(series));
    }
  }
  return out;
}

void ProbeSeriesSource::WarmUpOnce() const {
  int64_t to = 0;
  {
    std::lock_guard lock(mu_);
    if (warmed_ || store_ == nullptr || window_.count() <= 0) {
      return;
    }
    warmed_ = true;
    to = complete_since_ms_;
  }
  if (to == INT64_MAX || to < INT64_MIN + window_.count()) {
    return;
  }
  const int64_t from = to - window_.count();
  auto targets = store_->ListTargets();
  if (!targets) {
    return;  // queries read storage instead, as before the warm-up
  }
  std::map<Labels, std::vector<Sample>> loaded;
  {
    std::lock_guard cache_lock(cache_mu_);
    for (const StoredTarget& target : *targets) {
      for (const ProbeSeries& series : ProbeSeriesTable()) {
        auto points = store_->ReadField(target.id, series.field, from, to);
        if (!points) {
          return;  // nothing changed yet: memory stays as it was
        }
        int64_t last_set = -1;
        std::vector<Sample>* samples = nullptr;
        for (const FieldPoint& p : *points) {
          if (p.label_set_id != last_set || samples == nullptr) {
            auto labels = SeriesLabelsOf(p.label_set_id, series.name, series.resource);
            if (!labels) {
              return;
            }
            samples = &loaded[**labels];
            last_set = p.label_set_id;
          }
          samples->push_back({p.t_ms, p.value});
        }
      }
    }
  }
  std::lock_guard lock(mu_);
  // Samples memory took before `to` are stored too (and were never read from memory, which was
  // complete only from `to`): the stored rows replace them.
  for (auto& [labels, samples] : loaded) {
    std::deque<Sample>& kept = recent_[labels];
    kept.erase(kept.begin(),
               std::lower_bound(kept.begin(), kept.end(), to,
                                [](const Sample& s, int64_t t) { return s.t_ms < t; }));
    kept.insert(kept.begin(), samples.begin(), samples.end());
  }
  // Append moves this forward again as it trims series.
  complete_since_ms_ =
      std::min(complete_since_ms_,
               std::max(from, newest_ms_ == INT64_MIN ? from : newest_ms_ - window_.count()));
}

Result<const Labels*> ProbeSeriesSource::SeriesLabelsOf(int64_t label_set_id, const char* name,
                                                        const char* resource) const {
  auto key = std::make_tuple(label_set_id, name, resource);
  if (auto it = series_labels_.find(key); it != series_labels_.end()) {
    return &it->second;
  }
  auto labels = store_->LabelSet(label_set_id);
  if (!labels) {
    return Fail(labels.error());
  }
  return &series_labels_.emplace(key, SeriesLabels(*labels, ProbeSample{name, resource, 0}))
              .first->second;
}

Status ProbeSeriesSource::ReadRaw(const ProbeHistory& history, const StoredTarget& target,
                                  int field, const char* name, const char* resource,
                                  const std::vector<const MemorySamples::value_type*>* memory,
                                  int64_t memory_from, int64_t from_ms, int64_t to_ms,
                                  std::vector<std::pair<const Labels*, Sample>>& out) const {
  out.clear();
  if (from_ms > to_ms) {
    return {};
  }
  const int64_t stored_to = std::min(to_ms, memory_from - 1);
  if (from_ms <= stored_to) {
    auto points =
        history.ReadField(target.id, static_cast<ProbeField>(field), from_ms, stored_to + 1);
    if (!points) {
      return Fail(points.error());
    }
    out.reserve(points->size());
    int64_t last_id = 0;
    const Labels* last_labels = nullptr;
    for (const FieldPoint& p : *points) {
      if (last_labels == nullptr || p.label_set_id != last_id) {
        auto labels = SeriesLabelsOf(p.label_set_id, name, resource);
        if (!labels) {
          return Fail(labels.error());
        }
        last_id = p.label_set_id;
        last_labels = *labels;
      }
      out.push_back({last_labels, {p.t_ms, p.value}});
    }
  }
  if (to_ms >= memory_from && memory != nullptr) {
    for (const MemorySamples::value_type* entry : *memory) {
      const auto& [labels, samples] = *entry;
      auto n = labels.find("__name__");
      auto r = labels.find("resource");
      if (n == labels.end() || n->second != name ||
          (r == labels.end() ? "" : r->second) != resource) {
        continue;
      }
      for (const Sample& sample : samples) {
        if (sample.t_ms >= std::max(from_ms, memory_from) && sample.t_ms <= to_ms) {
          out.push_back({&labels, sample});
        }
      }
    }
  }
  return {};
}

Status ProbeSeriesSource::ReadWindowValues(
    const ProbeHistory& history, const StoredTarget& target, const ProbeSeries& series,
    const std::vector<const MemorySamples::value_type*>* memory, int64_t memory_from,
    int64_t from_ms, int64_t to_ms, std::vector<std::pair<const Labels*, Sample>>& out) const {
  const int field = static_cast<int>(series.field);
  auto rows = [&](int64_t from, int64_t to, std::vector<std::pair<const Labels*, Sample>>& into) {
    return ReadRaw(history, target, field, series.name, series.resource, memory, memory_from, from,
                   to, into);
  };
  // Whole hours of the window that lie before memory's part.
  const int64_t first_hour =
      FloorToHour(from_ms) == from_ms ? from_ms : FloorToHour(from_ms) + kRollupBucketMs;
  const int64_t hours_end =
      from_ms > to_ms ? first_hour : FloorToHour(std::min(to_ms, memory_from - 1) + 1);
  if (hours_end - first_hour < kRollupBucketMs) {
    return rows(from_ms, to_ms, out);
  }
  auto hours = history.ReadRollupValues(target.id, series.field, first_hour, hours_end);
  if (!hours) {
    return Fail(hours.error());
  }
  for (const RollupValues& r : *hours) {
    if (static_cast<int64_t>(r.values.size()) != r.count) {
      return rows(from_ms, to_ms, out);  // not kept: the rows
    }
  }
  if (auto status = rows(from_ms, first_hour - 1, out); !status) {
    return status;
  }
  for (const RollupValues& r : *hours) {
    auto labels = SeriesLabelsOf(r.label_set_id, series.name, series.resource);
    if (!labels) {
      return Fail(labels.error());
    }
    for (double v : r.values) {
      out.push_back({*labels, {r.bucket_ms, v}});
    }
  }
  std::vector<std::pair<const Labels*, Sample>> tail;
  if (auto status = rows(hours_end, to_ms, tail); !status) {
    return status;
  }
  out.insert(out.end(), tail.begin(), tail.end());
  return {};
}

Result<std::optional<std::vector<FieldRollup>>> ProbeSeriesSource::HourMinusRows(
    const ProbeHistory& history, int64_t target_id, ProbeField field, int64_t rollups_from,
    int64_t rollups_to, int64_t hour, int64_t rows_from, int64_t rows_to,
    RangeAggregate aggregate) const {
  auto before = history.ReadField(target_id, field, rows_from, rows_to);
  auto rollups = history.ReadRollups(target_id, field, rollups_from, rollups_to);
  if (!before || !rollups) {
    return Fail(before ? rollups.error() : before.error());
  }
  // Per label set, what the rows outside the window add to the hour's rollup.
  struct Part {
    int64_t count = 0;
    KahanSum sum;
    double min = std::numeric_limits<double>::infinity();
    double max = -std::numeric_limits<double>::infinity();
  };
  std::map<int64_t, Part> parts;
  for (const FieldPoint& p : *before) {
    if (!std::isfinite(p.value)) {
      return std::optional<std::vector<FieldRollup>>();
    }
    Part& part = parts[p.label_set_id];
    ++part.count;
    part.sum.Add(p.value);
    part.min = std::min(part.min, p.value);
    part.max = std::max(part.max, p.value);
  }
  for (FieldRollup& r : *rollups) {
    if (r.bucket_ms != hour) {
      continue;
    }
    auto part = parts.find(r.label_set_id);
    if (part == parts.end()) {
      continue;
    }
    // Count and sum subtract (the sum up to float rounding, as the rollups' own); min and max
    // only stand when the rows taken away did not hold them.
    if (!std::isfinite(r.sum) || (aggregate == RangeAggregate::kMin && part->second.min <= r.min) ||
        (aggregate == RangeAggregate::kMax && part->second.max >= r.max)) {
      return std::optional<std::vector<FieldRollup>>();
    }
    r.count -= part->second.count;
    r.sum -= part->second.sum.sum + part->second.sum.c;
    parts.erase(part);
  }
  // A row without a rollup of its hour: the table is not what it should be.
  if (!parts.empty()) {
    return std::optional<std::vector<FieldRollup>>();
  }
  return std::optional<std::vector<FieldRollup>>(std::move(*rollups));
}

ProbeSeriesSource::MemorySamples ProbeSeriesSource::CopyRecent(
    const std::vector<LabelMatcher>& matchers, const std::string& name, int64_t from_ms,
    int64_t to_ms) const {
  MemorySamples memory;
  std::lock_guard lock(mu_);
  for (const auto& [labels, samples] : recent_) {
    auto n = labels.find("__name__");
    if (n == labels.end() || n->second != name || !EqualMatchersAllow(matchers, labels)) {
      continue;
    }
    auto first = std::lower_bound(samples.begin(), samples.end(), from_ms,
                                  [](const Sample& s, int64_t t) { return s.t_ms < t; });
    std::vector<Sample>& out = memory[labels];
    for (auto it = first; it != samples.end() && it->t_ms <= to_ms; ++it) {
      out.push_back(*it);
    }
  }
  return memory;
}

Result<std::vector<SeriesAggregate>> ProbeSeriesSource::SelectAggregate(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
    RangeAggregate aggregate, double q) const {
  if (aggregate == RangeAggregate::kRate || aggregate == RangeAggregate::kIncrease) {
    // rate() and increase() of a counter family's series: from the probes, without its window's
    // samples. Of anything else: from the samples, the evaluator's way.
    for (const LabelMatcher& m : matchers) {
      if (m.type == LabelMatcher::Type::kEqual && m.name == "__name__") {
        if (auto [first, last] = ProbeCounterSlotsNamed(m.value); first < last) {
          std::vector<SeriesAggregate> rates;
          auto done = SelectCounters(matchers, from_ms, to_ms, first, last, &rates,
                                     aggregate == RangeAggregate::kRate);
          if (!done) {
            return Fail(done.error());
          }
          return rates;
        }
      }
    }
    return SampleSource::SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
  }
  WarmUpOnce();
  if (store_ == nullptr || from_ms > to_ms || WantedSeries(matchers).empty()) {
    return SampleSource::SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
  }
  if (aggregate == RangeAggregate::kQuantile) {
    return SelectQuantile(matchers, from_ms, to_ms, q);
  }
  auto targets = store_->ListTargets();
  if (!targets) {
    return Fail(targets.error());
  }
  auto steps = StoredAggregateSteps(*store_, *targets, matchers, to_ms, to_ms, 1, to_ms - from_ms,
                                    aggregate, q);
  if (!steps) {
    return Fail(steps.error());
  }
  return AggregatesAtStep(std::move(*steps), 0);
}

ProbeSeriesSource::MemoryMark ProbeSeriesSource::Mark() const {
  std::lock_guard lock(mu_);
  return {complete_since_ms_, newest_ms_};
}

int64_t ProbeSeriesSource::SettledAt(int64_t newest_ms) const {
  // Nothing older than the newest probe by kSettledMs arrives any more, and nothing from before
  // the restart ever will (that process is gone).
  return std::max(newest_ms == INT64_MIN ? INT64_MIN : newest_ms - kSettledMs, restart_ms_);
}

Result<std::vector<SeriesSteps>> ProbeSeriesSource::SelectAggregateSteps(
    const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
    int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const {
  const bool rolled_up = aggregate == RangeAggregate::kCount || aggregate == RangeAggregate::kSum ||
                         aggregate == RangeAggregate::kAvg || aggregate == RangeAggregate::kMin ||
                         aggregate == RangeAggregate::kMax;
  const std::vector<const ProbeSeries*> wanted = WantedSeries(matchers);
  if (store_ == nullptr || !rolled_up || wanted.empty() || first_to_ms > last_to_ms) {
    return SampleSource::SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                                              aggregate, q);
  }
  auto targets = store_->ListTargets();
  if (!targets) {
    return Fail(targets.error());
  }
  // The rows the steps read, as StoredAggregateSteps will plan them (a read it ends up making
  // outside these goes to storage as before).
  const auto [complete_since, newest] = Mark();
  const int64_t settled = SettledAt(newest);
  std::vector<Interval> edges;
  for (int64_t to = first_to_ms;; to += step_ms) {
    const int64_t from = to - range_ms;
    if (const int64_t memory_from = std::max(from, complete_since); memory_from > from) {
      WindowPlan::Of(from, to, memory_from, settled, aggregate).AddRowReads(aggregate, edges);
    }
    if (last_to_ms - to < step_ms) {
      break;
    }
  }
  edges = JoinIntervals(std::move(edges));
  // Every hour a step's rollups can come from, the hours its edges take rows from included.
  const int64_t rollups_from = FloorToHour(first_to_ms - range_ms);
  const int64_t rollups_to = FloorToHour(last_to_ms) + 2 * kRollupBucketMs;
  RangeReads reads(*store_);
  for (const StoredTarget& target : *targets) {
    if (!EqualMatchersAllow(matchers, target.labels)) {
      continue;
    }
    for (const ProbeSeries* series : wanted) {
      if (auto status =
              reads.Prefetch(target.id, series->field, edges, rollups_from, rollups_to, settled);
          !status) {
        return Fail(status.error());
      }
    }
  }
  return StoredAggregateSteps(reads, *targets, matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                              aggregate, q);
}

Result<std::vector<SeriesSteps>> ProbeSeriesSource::StoredAggregateSteps(
    const ProbeHistory& history, const std::vector<StoredTarget>& targets,
    const std::vector<LabelMatcher>& matchers, int64_t first_to_ms, int64_t last_to_ms,
    int64_t step_ms, int64_t range_ms, RangeAggregate aggregate, double q) const {
  WarmUpOnce();
  const std::vector<const ProbeSeries*> wanted = WantedSeries(matchers);
  const std::string* name = MetricNameOf(matchers);
  const auto [complete_since, newest] = Mark();
  const int64_t settled = SettledAt(newest);
  // Probe time, for dropping cached windows no query has used for a while.
  const int64_t used_now = std::max(newest, restart_ms_);
  size_t steps = 0;
  for (int64_t to = first_to_ms;; to += step_ms) {
    ++steps;
    if (last_to_ms - to < step_ms) {
      break;
    }
  }
  // Memory's part of every window, [its start, last_to_ms], copied under the lock.
  const MemorySamples memory =
      CopyRecent(matchers, *name, std::max(first_to_ms - range_ms, complete_since), last_to_ms);
  StepTotals totals(steps);
  std::vector<std::pair<size_t, int64_t>> in_memory;  // steps wholly in memory, and their ends
  {
    std::lock_guard cache_lock(cache_mu_);
    std::erase_if(edges_, [&](const auto& entry) {
      return used_now != INT64_MIN && entry.second.used_ms < used_now - kWindowIdleMs;
    });
    size_t step = 0;
    for (int64_t to = first_to_ms;; to += step_ms, ++step) {
      const int64_t from = to - range_ms;
      const int64_t memory_from = std::max(from, complete_since);
      if (memory_from <= from) {
        in_memory.emplace_back(step, to);
      } else {
        const WindowPlan plan = WindowPlan::Of(from, to, memory_from, settled, aggregate);
        for (const StoredTarget& target : targets) {
          if (!EqualMatchersAllow(matchers, target.labels)) {
            continue;
          }
          for (const ProbeSeries* series : wanted) {
            if (auto status =
                    AddStoredWindow(history, target, *series, plan, aggregate, used_now, totals);
                !status) {
              return Fail(status.error());
            }
          }
        }
        if (plan.memory_cut <= to) {
          for (const auto& [labels, samples] : memory) {
            auto it = std::lower_bound(samples.begin(), samples.end(), plan.memory_cut,
                                       [](const Sample& s, int64_t t) { return s.t_ms < t; });
            if (it == samples.end() || it->t_ms > to) {
              continue;
            }
            Accumulator& acc = totals.Of(labels);
            for (; it != samples.end() && it->t_ms <= to; ++it) {
              acc.AddSample(*it);
            }
          }
        }
        totals.FinishStep(step, aggregate, q);
      }
      if (last_to_ms - to < step_ms) {
        break;
      }
    }
  }
  // Windows wholly in memory: from the samples, the evaluator's way.
  for (const auto& [step, to] : in_memory) {
    auto answers = SampleSource::SelectAggregate(matchers, to - range_ms, to, aggregate, q);
    if (!answers) {
      return Fail(answers.error());
    }
    for (const SeriesAggregate& a : *answers) {
      totals.Answer(step, a.labels, a.value);
    }
  }
  return totals.Take();
}

Status ProbeSeriesSource::AddStoredWindow(const ProbeHistory& history, const StoredTarget& target,
                                          const ProbeSeries& series, const WindowPlan& plan,
                                          RangeAggregate aggregate, int64_t used_now,
                                          StepTotals& totals) const {
  const int field = static_cast<int>(series.field);
  auto add_stored = [&](int64_t from, int64_t to) -> Status {
    if (auto status = ReadRaw(history, target, field, series.name, series.resource, nullptr,
                              plan.memory_from, from, std::min(to, plan.stored_to), totals.raw);
        !status) {
      return status;
    }
    for (const auto& [labels, sample] : totals.raw) {
      totals.Of(labels).AddSample(sample);
    }
    return {};
  };
  if (!plan.use_rollups) {
    return add_stored(plan.from_ms, plan.stored_to);
  }
  // The series labels of a row or rollup: runs of one label set (most targets have one).
  int64_t last_id = 0;
  const Labels* last_labels = nullptr;
  auto labels_of = [&](int64_t label_set_id) -> Result<const Labels*> {
    if (last_labels == nullptr || label_set_id != last_id) {
      auto labels = SeriesLabelsOf(label_set_id, series.name, series.resource);
      if (!labels) {
        return Fail(labels.error());
      }
      last_id = label_set_id;
      last_labels = *labels;
    }
    return last_labels;
  };
  // The head (before the first whole hour) and the rollups, kept while the window's hours stay
  // the same and are settled: from one evaluation to the next only the head shrinks.
  EdgeCache fresh;
  EdgeCache* edge = &fresh;
  auto key = std::make_tuple(target.id, field, plan.first_bucket, plan.roll_end);
  auto kept = edges_.find(key);
  if (plan.head_by_complement) {
    auto rollups = HourMinusRows(history, target.id, series.field, plan.head_hour, plan.roll_end,
                                 plan.head_hour, plan.head_hour, plan.from_ms, aggregate);
    if (!rollups) {
      return Fail(rollups.error());
    }
    if (*rollups) {
      fresh.rollups = std::move(**rollups);
    } else {  // min or max may lie before the window: the head's rows after all
      auto head = history.ReadField(target.id, series.field, plan.from_ms, plan.first_bucket);
      auto whole = history.ReadRollups(target.id, series.field, plan.first_bucket, plan.roll_end);
      if (!head || !whole) {
        return Fail(head ? whole.error() : head.error());
      }
      fresh.head = std::move(*head);
      fresh.rollups = std::move(*whole);
    }
  } else if (kept != edges_.end() && plan.keep_edges && kept->second.head_from <= plan.from_ms) {
    edge = &kept->second;
  } else {
    auto head = history.ReadField(target.id, series.field, plan.from_ms,
                                  std::min(plan.first_bucket, plan.stored_to + 1));
    auto rollups = history.ReadRollups(target.id, series.field, plan.first_bucket, plan.roll_end);
    if (!head || !rollups) {
      return Fail(head ? rollups.error() : head.error());
    }
    fresh.head_from = plan.from_ms;
    fresh.head = std::move(*head);
    fresh.rollups = std::move(*rollups);
    if (plan.keep_edges) {
      edge = &(edges_[key] = std::move(fresh));
    }
  }
  edge->used_ms = used_now;
  for (const FieldPoint& p : edge->head) {
    if (p.t_ms < plan.from_ms) {
      continue;
    }
    auto labels = labels_of(p.label_set_id);
    if (!labels) {
      return Fail(labels.error());
    }
    totals.Of(*labels).AddSample({p.t_ms, p.value});
  }
  for (const FieldRollup& r : edge->rollups) {
    auto labels = labels_of(r.label_set_id);
    if (!labels) {
      return Fail(labels.error());
    }
    totals.Of(*labels).AddRollup(r);
  }
  if (plan.tail_by_complement) {
    auto tail = HourMinusRows(history, target.id, series.field, plan.roll_end, plan.tail_end,
                              plan.roll_end, plan.to_ms + 1, plan.tail_end, aggregate);
    if (!tail) {
      return Fail(tail.error());
    }
    if (*tail) {
      for (const FieldRollup& r : **tail) {
        auto labels = labels_of(r.label_set_id);
        if (!labels) {
          return Fail(labels.error());
        }
        totals.Of(*labels).AddRollup(r);
      }
      return {};
    }
    // else: min or max may lie after the window; the tail's rows below.
  }
  if (plan.roll_end <= plan.stored_to) {
    return add_stored(plan.roll_end, plan.stored_to);
  }
  return {};
}

Result<std::vector<SeriesAggregate>> ProbeSeriesSource::SelectQuantile(
    const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms, double q) const {
  constexpr RangeAggregate aggregate = RangeAggregate::kQuantile;
  const ProbeHistory* history = store_;
  const std::string* name = MetricNameOf(matchers);
  const auto [complete_since, newest] = Mark();
  const int64_t memory_from = std::max(from_ms, complete_since);
  const int64_t settled = SettledAt(newest);
  const std::vector<const ProbeSeries*> wanted = WantedSeries(matchers);
  if (memory_from <= from_ms) {  // wholly in memory
    return SampleSource::SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
  }

  // Memory's part, [memory_from, to_ms], copied under the lock.
  const MemorySamples memory = CopyRecent(matchers, *name, memory_from, to_ms);
  auto targets = history->ListTargets();
  if (!targets) {
    return Fail(targets.error());
  }
  std::lock_guard cache_lock(cache_mu_);
  const int64_t used_now = std::max(newest, restart_ms_);
  std::vector<std::pair<const Labels*, Sample>> raw;
  std::vector<SeriesAggregate> out;
  std::vector<std::string> seen_targets;
  for (const StoredTarget& target : *targets) {
    if (EqualMatchersAllow(matchers, target.labels)) {
      seen_targets.push_back(target.name);
    }
  }

  // Quantiles: per target, the sorted values of the window, slid by its edges when the window
  // only moved forward over settled samples since the last evaluation.
  std::erase_if(windows_, [&](const auto& entry) {
    return entry.second == nullptr ||
           (used_now != INT64_MIN && entry.second->used_ms < used_now - kWindowIdleMs);
  });
  std::unordered_map<std::string, std::vector<const MemorySamples::value_type*>> memory_by_target;
  for (const auto& entry : memory) {
    if (auto t = entry.first.find("target"); t != entry.first.end()) {
      memory_by_target[t->second].push_back(&entry);
    }
  }
  for (const StoredTarget& target : *targets) {
    if (!EqualMatchersAllow(matchers, target.labels)) {
      continue;
    }
    auto found_memory = memory_by_target.find(target.name);
    const auto* target_memory =
        found_memory == memory_by_target.end() ? nullptr : &found_memory->second;
    for (const ProbeSeries* series : wanted) {
      const int field = static_cast<int>(series->field);
      auto key = std::make_tuple(target.id, field, to_ms - from_ms);
      std::unique_ptr<SortedWindow>& kept = windows_[key];
      SortedWindow fresh;
      SortedWindow* window = &fresh;
      const bool cacheable = to_ms <= settled;
      if (kept && cacheable && kept->lo <= from_ms && kept->hi <= to_ms &&
          from_ms <= kept->hi + 1) {
        window = kept.get();
        if (!window->sorted) {
          for (auto& [labels, values] : window->values) {
            std::sort(values.begin(), values.end());
          }
          window->sorted = true;
        }
        if (auto status = ReadRaw(*history, target, field, series->name, series->resource,
                                  target_memory, memory_from, window->lo, from_ms - 1, raw);
            !status) {
          return Fail(status.error());
        }
        bool missing = false;
        SeriesValues leaving(window->values);
        for (const auto& [labels, sample] : raw) {
          std::vector<double>& values = leaving.Of(labels);
          auto it = std::lower_bound(values.begin(), values.end(), sample.v);
          if (it != values.end() && *it == sample.v) {
            values.erase(it);
          } else {
            missing = true;
          }
        }
        // A leaving sample the window did not hold: the history changed under it (a restore,
        // a late row). Start afresh.
        if (missing) {
          kept.reset();
          window = &fresh;
        }
        if (auto status =
                ReadRaw(*history, target, field, series->name, series->resource, target_memory,
                        memory_from, missing ? from_ms : window->hi + 1, to_ms, raw);
            !status) {
          return Fail(status.error());
        }
      } else {
        if (auto status = ReadWindowValues(*history, target, *series, target_memory, memory_from,
                                           from_ms, to_ms, raw);
            !status) {
          return Fail(status.error());
        }
      }
      bool has_nan = false;
      SeriesValues entering(window->values);
      if (window == &fresh) {
        for (const auto& [labels, sample] : raw) {
          has_nan = has_nan || std::isnan(sample.v);
          entering.Of(labels, raw.size()).push_back(sample.v);
        }
      } else {
        for (const auto& [labels, sample] : raw) {
          has_nan = has_nan || std::isnan(sample.v);
          std::vector<double>& values = entering.Of(labels);
          values.insert(std::upper_bound(values.begin(), values.end(), sample.v), sample.v);
        }
      }
      window->lo = from_ms;
      window->hi = to_ms;
      window->used_ms = used_now;
      if (has_nan) {
        // NaN has no place in a sorted window: compute from the samples, start afresh next time.
        window = nullptr;
      } else if (window == &fresh && cacheable &&
                 KeptQuantileValuesLocked() + raw.size() <= max_kept_quantile_values_) {
        kept = std::make_unique<SortedWindow>(std::move(fresh));
        window = kept.get();
      }
      if (window == nullptr) {
        windows_.erase(key);
        // Rare: compute once more from the samples, the evaluator's way.
        if (auto status = ReadRaw(*history, target, field, series->name, series->resource,
                                  target_memory, memory_from, from_ms, to_ms, raw);
            !status) {
          return Fail(status.error());
        }
        std::map<const Labels*, std::vector<Sample>> by_series;
        for (const auto& [labels, sample] : raw) {
          by_series[labels].push_back(sample);
        }
        for (const auto& [labels, samples] : by_series) {
          out.push_back({*labels, AggregateSamples(aggregate, q, samples)});
        }
        continue;
      }
      for (auto it = window->values.begin(); it != window->values.end();) {
        if (it->second.empty()) {
          it = window->values.erase(it);
          continue;
        }
        out.push_back({it->first, window->sorted ? QuantileOfSorted(q, it->second)
                                                 : QuantileBySelection(q, it->second)});
        ++it;
      }
      if (windows_[key] == nullptr) {
        windows_.erase(key);
      }
    }
  }
  // Series only memory has (a target whose rows are not committed yet).
  for (const auto& [labels, samples] : memory) {
    auto t = labels.find("target");
    if (samples.empty() || (t != labels.end() && std::find(seen_targets.begin(), seen_targets.end(),
                                                           t->second) != seen_targets.end())) {
      continue;
    }
    out.push_back({labels, AggregateSamples(aggregate, q, samples)});
  }
  return out;
}

}  // namespace modelpulse::storage
