#ifndef MODELPULSE_STORAGE_SERIES_SOURCE_H_
#define MODELPULSE_STORAGE_SERIES_SOURCE_H_

// Storage's read path for rule evaluation (a public header of storage/, beside storage.h): the
// probe series as a SampleSource, recent samples from memory and long windows pushed down to the
// hourly rollups and narrow field reads.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/common.h"
#include "common/sample_source.h"
#include "common/series_index.h"
#include "storage/storage.h"

namespace modelpulse::storage {

// The probe series of DESIGN.md §3 as the rule engine reads them: the recent window from memory,
// fed by the prober as probes finish, and anything older from the probe rows in SQLite. Thread-
// safe: Append runs on the prober's thread while Select runs on the rule engine's.
class ProbeSeriesSource final : public SampleSource, public SeriesIndex {
 public:
  // `store` may be null (memory only). Memory is complete from `complete_since_ms` on (the
  // daemon's start); older ranges come from `store`.
  // quantile_over_time keeps each settled window's values sorted between evaluations, so that a
  // rule's window slides by its edges and a dashboard's repeated query reads nothing again;
  // `max_kept_quantile_values` bounds how many values (8 bytes each) all kept windows hold
  // together. A window that would pass it is computed and dropped. The default is Prometheus's
  // --query.max-samples (what one query may load): a 30-day quantile over 200 targets at 15 s
  // (34.6 M values, about 280 MB) stays, a second one over other windows only in part.
  static constexpr size_t kDefaultKeptQuantileValues = 50'000'000;
  ProbeSeriesSource(const ProbeHistory* store, Millis window, int64_t complete_since_ms,
                    size_t max_kept_quantile_values = kDefaultKeptQuantileValues);
  ~ProbeSeriesSource() override;

  void Append(const ProbeResult& result);

  // Returns a superset of the matching series (the evaluator re-applies every matcher): equality
  // matchers narrow the read, others are left to the evaluator. A selector naming one series of
  // the counter families (modelpulse_probes_total, the histograms' _bucket/_sum/_count) by
  // equality gets it derived from the probes: its value at each probe of its target is the count
  // (or sum) of that target's probes up to and including it, since the oldest stored probe. So
  // rate(), increase() and histogram_quantile() mean what they mean over a Prometheus that scrapes
  // /metrics, where the same counters count from the daemon's start: differences within a window
  // are equal, and Prometheus repairs the resets at each restart that stored history never has.
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override;

  // The pushdown. A range wholly in memory is computed from the samples (the same bits as
  // Select). A range reaching into storage reads one field through the narrow path: count, sum,
  // avg, min and max from the hourly rollups for whole hours plus the raw rows at the edges plus
  // memory (exact; sum and avg up to float rounding order, since the rollups add in another
  // order); quantile from the sorted values, kept per target and range length and slid by the
  // edges from one evaluation to the next (exact).
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override;
  // All steps of a range query at once for count, sum, avg, min and max over stored history:
  // the steps' rollups in one read and their edge rows in one read transaction per target and
  // field (or one scan where the edges hold most rows), then each step as SelectAggregate
  // answers it from those, to the same bits. Others (quantile, rate, increase, memory only) go
  // step by step.
  Result<std::vector<SeriesSteps>> SelectAggregateSteps(const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate,
                                                        double q) const override;

  // Every series a query over [from_ms, to_ms] can return, for the discovery endpoints: the
  // gauges through the count pushdown (rollups for whole hours), and the counter families'
  // series, which Select derives only when named. A counter series exists at each probe of its
  // label set from the probe that first moved it (a client library creates it at its first
  // increment), so it is listed when that probe is in the window, or is older and the label set
  // has a probe in the window. The first-seen times of stored probes come from a table storage
  // keeps beside the rows (ProbeHistory::FirstSeenCounters), so no listing scans the history.
  Result<std::vector<Labels>> SeriesIn(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                       int64_t to_ms) const override;

  // How many values the kept quantile windows hold now.
  size_t KeptQuantileValues() const;

 private:
  struct Accumulator;
  struct CounterTotals;
  struct CounterBase;
  // One probe as the counter families see it, kept in memory for the recent window.
  struct CounterProbe {
    int64_t t_ms = 0;
    std::shared_ptr<const Labels> labels;  // the target's labels, shared between its probes
    ProbeNumbers numbers;
  };
  // The counter series of slots [first_slot, last_slot) in the window; with `rates`, their
  // rate() (or increase(), !is_rate) into it instead, and no series returned.
  Result<std::vector<Series>> SelectCounters(const std::vector<LabelMatcher>& matchers,
                                             int64_t from_ms, int64_t to_ms, size_t first_slot,
                                             size_t last_slot, std::vector<SeriesAggregate>* rates,
                                             bool is_rate) const;
  // The totals of one stored target's probes with start < to_ms, from the cache when it can.
  // REQUIRES: cache_mu_ held.
  Result<std::map<int64_t, CounterTotals>> StoredTotalsBefore(int64_t target_id, int64_t to_ms,
                                                              int64_t settled,
                                                              int64_t used_now) const;
  // The rollups of [rollups_from, rollups_to), with the one of `hour` taken down by the rows of
  // [rows_from, rows_to) (the part of that hour outside a window), or nullopt where that cannot
  // be exact: a min or max that may lie in the rows taken away, an infinite value.
  Result<std::optional<std::vector<FieldRollup>>> HourMinusRows(const ProbeHistory& history,
                                                                int64_t target_id, ProbeField field,
                                                                int64_t rollups_from,
                                                                int64_t rollups_to, int64_t hour,
                                                                int64_t rows_from, int64_t rows_to,
                                                                RangeAggregate aggregate) const;
  struct SortedWindow;
  struct EdgeCache;
  using MemorySamples = std::map<Labels, std::vector<Sample>>;

  // Where memory stands: complete from complete_since_ms on, newest_ms the newest probe's start
  // (INT64_MIN: none since the start). Takes mu_.
  struct MemoryMark {
    int64_t complete_since_ms = 0;
    int64_t newest_ms = INT64_MIN;
  };
  MemoryMark Mark() const;
  // Samples up to the returned time are final, given the newest probe's start (INT64_MIN: none
  // since the start, nothing known settled).
  int64_t SettledAt(int64_t newest_ms) const;
  // Memory's samples of the series `matchers` may select, named `name`, in [from_ms, to_ms].
  MemorySamples CopyRecent(const std::vector<LabelMatcher>& matchers, const std::string& name,
                           int64_t from_ms, int64_t to_ms) const;
  struct WindowPlan;
  class StepTotals;
  // count, sum, avg, min or max of the windows SelectAggregateSteps describes, the stored reads
  // going to `history` (store_, or what a range query read ahead for its steps), over `targets`
  // (history's). Each step adds the same rows in the same order as asking it alone would.
  // REQUIRES: a plain metric name among the matchers; step_ms > 0, range_ms >= 0.
  Result<std::vector<SeriesSteps>> StoredAggregateSteps(const ProbeHistory& history,
                                                        const std::vector<StoredTarget>& targets,
                                                        const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate, double q) const;
  // What one target's `series` holds of the window `plan` in storage, into `totals`.
  // REQUIRES: cache_mu_ held.
  Status AddStoredWindow(const ProbeHistory& history, const StoredTarget& target,
                         const ProbeSeries& series, const WindowPlan& plan,
                         RangeAggregate aggregate, int64_t used_now, StepTotals& totals) const;
  // quantile_over_time of a window reaching into storage.
  Result<std::vector<SeriesAggregate>> SelectQuantile(const std::vector<LabelMatcher>& matchers,
                                                      int64_t from_ms, int64_t to_ms,
                                                      double q) const;

  // The stored values of one field of one target in the closed [from_ms, to_ms], older than
  // memory from storage and the rest from `memory`, with their series labels, in time order.
  // `memory` holds the memory series of this target only (or is null).
  Status ReadRaw(const ProbeHistory& history, const StoredTarget& target, int field,
                 const char* name, const char* resource,
                 const std::vector<const MemorySamples::value_type*>* memory, int64_t memory_from,
                 int64_t from_ms, int64_t to_ms,
                 std::vector<std::pair<const Labels*, Sample>>& out) const;
  // What ReadRaw reads for a quantile's window, the values of its whole stored hours taken from
  // their rollups where storage keeps them (one row an hour instead of one a probe). Those carry
  // their hour's start as their time: their order within the hour is not kept.
  Status ReadWindowValues(const ProbeHistory& history, const StoredTarget& target,
                          const ProbeSeries& series,
                          const std::vector<const MemorySamples::value_type*>* memory,
                          int64_t memory_from, int64_t from_ms, int64_t to_ms,
                          std::vector<std::pair<const Labels*, Sample>>& out) const;
  // After a restart, memory starts empty and every window it should cover would be read from
  // storage until it filled up (two hours). The first query loads memory's window from the
  // stored rows instead, once.
  void WarmUpOnce() const;
  Result<const Labels*> SeriesLabelsOf(int64_t label_set_id, const char* name,
                                       const char* resource) const;
  void AppendFromStorage(const std::vector<LabelMatcher>& matchers, int64_t from_ms, int64_t to_ms,
                         std::map<Labels, std::vector<Sample>>& out) const;

  // REQUIRES: cache_mu_ held.
  size_t KeptQuantileValuesLocked() const;

  const ProbeHistory* store_;  // not owned; may be null
  const Millis window_;
  const size_t max_kept_quantile_values_;
  // Nothing that started before this (the daemon's start) can still arrive; INT64_MIN for a
  // source without a memory window.
  const int64_t restart_ms_;

  mutable std::mutex mu_;
  // Mutable: the warm-up fills them from a const query.
  mutable std::map<Labels, std::deque<Sample>> recent_;  // Guarded by mu_.
  mutable int64_t complete_since_ms_;                    // Guarded by mu_.
  mutable bool warmed_ = false;                          // Guarded by mu_.
  int64_t last_sweep_ms_ = 0;                            // Guarded by mu_.
  int64_t newest_ms_ = INT64_MIN;                        // Guarded by mu_. Newest probe start.
  // Per target, its probes for the counter families, complete from counts_since_ms_ on (unlike
  // the gauges' memory, never filled back from storage by the warm-up). Guarded by mu_.
  std::map<std::string, std::deque<CounterProbe>, std::less<>> recent_counts_;
  int64_t counts_since_ms_;  // Guarded by mu_.

  // The pushdown's state, used from the rule engine's thread.
  mutable std::mutex cache_mu_;
  // (label set, name, resource) -> series labels. Label sets never change once written.
  mutable std::map<std::tuple<int64_t, const char*, const char*>, Labels> series_labels_;
  // (target id, field, range length) -> sorted values of its window. Guarded by cache_mu_.
  mutable std::map<std::tuple<int64_t, int, int64_t>, std::unique_ptr<SortedWindow>> windows_;
  // (target id, field, first hour, end hour) -> head rows and rollups. Guarded by cache_mu_.
  mutable std::map<std::tuple<int64_t, int, int64_t, int64_t>, EdgeCache> edges_;
  // Per stored target id, its counter totals up to a settled time, moved forward as windows
  // slide. Guarded by cache_mu_.
  mutable std::map<int64_t, CounterBase> counter_bases_;
};

}  // namespace modelpulse::storage

#endif  // MODELPULSE_STORAGE_SERIES_SOURCE_H_
