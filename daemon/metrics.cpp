#include "daemon/metrics.h"

#include <malloc.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <ostream>
#include <streambuf>
#include <string_view>
#include <tuple>

#include "common/probe_series.h"

namespace modelpulse::daemon {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Buckets are few on purpose: each one is a series per target and phase, and the scrape cost and
// memory grow with series. Phases measured from the request start (first byte, first token, first
// answer token, total) span a fast model's 50 ms to a long reasoning answer's two minutes.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.05, 0.1, 0.25, 0.5, 1,  2,
                                                       3,    5,   10,   20,  60, 120};
  return kBuckets;
}

// DNS, connect and TLS alone: a millisecond on loopback to seconds on a bad network (the default
// connect timeout is 5 s).
const Histogram::BucketBoundaries& NetworkBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5};
  return kBuckets;
}

const Histogram::BucketBoundaries& InterTokenBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.0025, 0.005, 0.01, 0.015, 0.02,
                                                       0.03,   0.05,  0.1,  0.25,  0.5};
  return kBuckets;
}

// The histogram phases, in a fixed order (the index of a phase in TargetSeries::phases).
struct PhaseInfo {
  const char* name;
  const Histogram::BucketBoundaries& (*buckets)();
};
constexpr PhaseInfo kPhases[] = {{"dns", &NetworkBuckets},  {"connect", &NetworkBuckets},
                                 {"tls", &NetworkBuckets},  {"first_byte", &LatencyBuckets},
                                 {"ttft", &LatencyBuckets}, {"first_answer_token", &LatencyBuckets},
                                 {"total", &LatencyBuckets}};
constexpr size_t kPhaseCount = std::size(kPhases);

// An output stream that appends to a string we own, so /metrics is built in place: no
// ostringstream buffer to grow by doubling and then copy out with str().
class StringAppendBuf final : public std::streambuf {
 public:
  explicit StringAppendBuf(std::string& out) : out_(out) {}

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      out_.push_back(traits_type::to_char_type(c));
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* data, std::streamsize count) override {
    out_.append(data, static_cast<size_t>(count));
    return count;
  }

 private:
  std::string& out_;
};

prometheus::ClientMetric Sample(const Labels& labels, double value, prometheus::MetricType type) {
  prometheus::ClientMetric metric;
  for (const auto& [name, label_value] : labels) {
    metric.label.push_back({name, label_value});
  }
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return metric;
}

// An empty family for the metrics built at scrape time from a snapshot.
prometheus::MetricFamily ScrapeTimeFamily(const char* name, const char* help,
                                          prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

// The modelpulse_slo_* families (rules/slo_tracker.h has the figures), built at scrape time
// like the rule families. Labels: slo and slo_kind; burn rates also window. The counters
// (events and good events per probe since start) are what Sloth's error_query/total_query or
// Pyrra's ratio indicator take: rate(modelpulse_slo_events_total[w]) - rate(..._good_total[w]).
std::vector<prometheus::MetricFamily> SloFamilies(
    const std::vector<rules::SloStatus>& slos,
    const std::vector<std::tuple<Labels, uint64_t, uint64_t>>& counters) {
  using prometheus::MetricType;
  auto events_total = ScrapeTimeFamily(
      "modelpulse_slo_events_total",
      "Probes counted by each SLO since start (excluded outcomes are not).", MetricType::Counter);
  auto good_total =
      ScrapeTimeFamily("modelpulse_slo_good_total", "Probes each SLO counted as good since start.",
                       MetricType::Counter);
  for (const auto& [labels, events, good] : counters) {
    events_total.metric.push_back(Sample(labels, static_cast<double>(events), MetricType::Counter));
    good_total.metric.push_back(Sample(labels, static_cast<double>(good), MetricType::Counter));
  }
  auto objective = ScrapeTimeFamily("modelpulse_slo_objective_ratio",
                                    "The SLO's objective, as a ratio.", MetricType::Gauge);
  auto window_seconds = ScrapeTimeFamily(
      "modelpulse_slo_window_seconds",
      "Length of the SLO's window so far (a calendar month grows).", MetricType::Gauge);
  auto sli =
      ScrapeTimeFamily("modelpulse_slo_sli_ratio",
                       "Good probes / probe events over the SLO's window; absent without events.",
                       MetricType::Gauge);
  auto remaining =
      ScrapeTimeFamily("modelpulse_slo_error_budget_remaining_ratio",
                       "1 - (bad / events) / error budget over the SLO's window; negative once "
                       "the budget is spent.",
                       MetricType::Gauge);
  auto window_events = ScrapeTimeFamily("modelpulse_slo_window_events",
                                        "Probe events per window (window=\"slo\": the SLO's own).",
                                        MetricType::Gauge);
  auto window_bad = ScrapeTimeFamily("modelpulse_slo_window_bad_events",
                                     "Bad probe events per window (window=\"slo\": the SLO's own).",
                                     MetricType::Gauge);
  auto burn =
      ScrapeTimeFamily("modelpulse_slo_burn_rate",
                       "(bad / events) / error budget over each burn-rate window; absent without "
                       "events.",
                       MetricType::Gauge);
  auto evidence = ScrapeTimeFamily("modelpulse_slo_window_alertable",
                                   "1 when the window holds at least min_probes events and "
                                   "min_failed_probes bad ones, so its burn rate may alert.",
                                   MetricType::Gauge);
  for (const rules::SloStatus& status : slos) {
    const Labels labels = {{"slo", status.spec.name},
                           {"slo_kind", std::string(rules::SloKindName(status.spec.kind))}};
    objective.metric.push_back(Sample(labels, status.spec.ObjectiveRatio(), MetricType::Gauge));
    const rules::SloWindowFigures& whole = status.slo_window;
    window_seconds.metric.push_back(
        Sample(labels, static_cast<double>(status.at_ms - status.window_start_ms) / 1000,
               MetricType::Gauge));
    std::vector<const rules::SloWindowFigures*> windows = {&whole};
    for (const rules::SloWindowFigures& w : status.burn) {
      windows.push_back(&w);
    }
    for (const rules::SloWindowFigures* w : windows) {
      Labels with_window = labels;
      with_window["window"] = w->window;
      window_events.metric.push_back(
          Sample(with_window, static_cast<double>(w->events), MetricType::Gauge));
      window_bad.metric.push_back(
          Sample(with_window, static_cast<double>(w->bad), MetricType::Gauge));
      evidence.metric.push_back(Sample(with_window, w->enough_evidence ? 1 : 0, MetricType::Gauge));
      if (w != &whole) {
        if (auto rate = rules::SloStatus::BurnRate(status.spec, *w)) {
          burn.metric.push_back(Sample(with_window, *rate, MetricType::Gauge));
        }
      }
    }
    if (whole.events > 0) {
      sli.metric.push_back(
          Sample(labels, 1 - static_cast<double>(whole.bad) / static_cast<double>(whole.events),
                 MetricType::Gauge));
    }
    if (auto rate = rules::SloStatus::BurnRate(status.spec, whole)) {
      remaining.metric.push_back(Sample(labels, 1 - *rate, MetricType::Gauge));
    }
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&events_total, &good_total, &objective, &window_seconds, &sli, &remaining,
                  &window_events, &window_bad, &burn, &evidence}) {
    if (!f->metric.empty()) {  // no SLOs: nothing, not even HELP lines
      out.push_back(std::move(*f));
    }
  }
  return out;
}

// The rule engine's state changes wholesale at every evaluation, so its families are built at
// scrape time from a snapshot rather than kept as registered metrics.
std::vector<prometheus::MetricFamily> RuleFamilies(const rules::RulesStatus& rules) {
  using prometheus::MetricType;
  // Not ALERTS and ALERTS_FOR_STATE: those are the synthetic series of the Prometheus that
  // scrapes us, which would collide with them (its own rules write them). The embedded engine
  // still records ALERTS for rules to query, as Prometheus does, and stores it for /api/v1.
  auto alerts = ScrapeTimeFamily(
      "modelpulse_alerts", "Pending and firing alerts (ALERTS inside modelpulse's rule engine).",
      MetricType::Gauge);
  auto for_state =
      ScrapeTimeFamily("modelpulse_alerts_for_state",
                       "Unix time since which each pending or firing alert has been active "
                       "(ALERTS_FOR_STATE inside modelpulse's rule engine).",
                       MetricType::Gauge);
  for (const auto& alert : rules.alerts) {
    Labels with_state = alert.labels;
    with_state["alertstate"] = alert.state;
    alerts.metric.push_back(Sample(with_state, 1, MetricType::Gauge));
    for_state.metric.push_back(
        Sample(alert.labels, static_cast<double>(alert.active_at_ms) / 1000.0, MetricType::Gauge));
  }
  auto duration =
      ScrapeTimeFamily("modelpulse_rule_group_last_duration_seconds",
                       "Duration of the last evaluation of each rule group.", MetricType::Gauge);
  auto last =
      ScrapeTimeFamily("modelpulse_rule_group_last_evaluation_timestamp_seconds",
                       "Unix time of the last evaluation of each rule group.", MetricType::Gauge);
  auto count = ScrapeTimeFamily("modelpulse_rule_group_rules", "Rules in each rule group.",
                                MetricType::Gauge);
  auto evaluations = ScrapeTimeFamily("modelpulse_rule_group_evaluations_total",
                                      "Evaluations of each rule group.", MetricType::Counter);
  auto failures =
      ScrapeTimeFamily("modelpulse_rule_evaluation_failures_total",
                       "Rule evaluations that failed, per rule group.", MetricType::Counter);
  for (const auto& group : rules.groups) {
    const Labels labels = {{"rule_group", group.file + ";" + group.name}};
    duration.metric.push_back(Sample(labels, group.last_duration_seconds, MetricType::Gauge));
    last.metric.push_back(
        Sample(labels, static_cast<double>(group.last_evaluation_ms) / 1000.0, MetricType::Gauge));
    count.metric.push_back(Sample(labels, static_cast<double>(group.rules), MetricType::Gauge));
    evaluations.metric.push_back(
        Sample(labels, static_cast<double>(group.evaluations), MetricType::Counter));
    failures.metric.push_back(
        Sample(labels, static_cast<double>(group.failures), MetricType::Counter));
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&alerts, &for_state, &duration, &last, &count, &evaluations, &failures}) {
    if (!f->metric.empty()) {
      out.push_back(std::move(*f));
    }
  }
  return out;
}

// client_golang's process collector: the same names and help, so dashboards built for any
// Prometheus exporter show modelpulse too.
std::vector<prometheus::MetricFamily> ProcessFamilies(const ProcessStats& process) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  auto add = [&out](const char* name, const char* help, MetricType type, double value) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    f.metric.push_back(Sample({}, value, type));
    out.push_back(std::move(f));
  };
  add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
      MetricType::Counter, process.cpu_seconds);
  if (process.max_fds) {
    add("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        *process.max_fds);
  }
  if (process.open_fds) {
    add("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
        *process.open_fds);
  }
  add("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
      process.resident_memory_bytes);
  add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      MetricType::Gauge, process.start_time_seconds);
  add("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
      process.virtual_memory_bytes);
  return out;
}

prometheus::Labels ToPromLabels(const Labels& labels) {
  return prometheus::Labels(labels.begin(), labels.end());
}

prometheus::Labels With(prometheus::Labels labels, const std::string& name, std::string value) {
  labels[name] = std::move(value);
  return labels;
}

// One target's metric objects, resolved once per label set so a probe only stores values.
struct TargetSeries {
  Labels labels;  // the probe labels these objects belong to
  prometheus::Labels prom_labels;
  // Per probe-series slot (see SlotOf): the gauge currently exported, or null while the latest
  // probe had no such sample (no TLS, no token), so a stale value disappears.
  std::vector<Gauge*> gauges;
  std::array<Counter*, kAllOutcomes.size()> outcomes{};
  // Per family of ProbeCounterFamilies() (null for the outcome counter's slot).
  std::vector<Histogram*> histograms;
  std::array<Histogram*, kPhaseCount> phases{};
  Histogram* inter_token = nullptr;
  Counter* input_tokens = nullptr;
  Counter* output_tokens = nullptr;
  Counter* cost = nullptr;
};

}  // namespace

struct Metrics::State {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::vector<Family<Gauge>*> probe_gauges;              // in ProbeSeriesNames() order
  std::map<std::string_view, size_t> probe_gauge_index;  // series name -> index above
  Family<Counter>* probes_total = nullptr;
  // Per family of ProbeCounterFamilies(): the histogram families (null for counters).
  std::vector<Family<Histogram>*> probe_histograms;
  Family<Histogram>* phase_seconds = nullptr;
  Family<Histogram>* inter_token_seconds = nullptr;
  Family<Counter>* tokens_total = nullptr;
  Family<Counter>* cost_total = nullptr;
  Family<Gauge>* budget_paused = nullptr;
  Gauge* reload_success = nullptr;
  Gauge* reload_timestamp = nullptr;
  Gauge* in_flight = nullptr;
  Gauge* storage_queue = nullptr;
  Gauge* storage_last_batch = nullptr;
  Counter* storage_rows_written = nullptr;
  Counter* storage_rows_dropped_queue_full = nullptr;
  Counter* storage_rows_dropped_write_failed = nullptr;
  Counter* storage_write_errors = nullptr;
  Gauge* storage_writable = nullptr;
  Gauge* storage_integrity_ok = nullptr;
  // Every family, in the order Registry::Collect() gives them (counters, gauges, histograms),
  // so Render can collect and serialise one family at a time.
  std::vector<const prometheus::Collectable*> counter_families;
  std::vector<const prometheus::Collectable*> gauge_families;
  std::vector<const prometheus::Collectable*> histogram_families;
  // The store's totals as last exported; counters advance by the difference. Guarded by mu.
  storage::StorageStats exported_storage;
  size_t last_render_bytes = 0;  // guarded by render_mu

  std::mutex mu;
  std::mutex render_mu;
  std::map<std::string, TargetSeries, std::less<>> targets;  // guarded by mu
  // SLOs and their good/total counters (probe events since start), guarded by mu.
  struct SloCounters {
    rules::SloSpec spec;
    uint64_t events = 0;
    uint64_t good = 0;
  };
  std::vector<SloCounters> slos;

  // A probe sample's slot: three per series name (no resource, requests, tokens).
  size_t SlotOf(const ProbeSample& sample) const {
    const size_t index = probe_gauge_index.find(sample.name)->second;
    const std::string_view resource = sample.resource;
    return index * 3 + (resource.empty() ? 0 : resource == "requests" ? 1 : 2);
  }

  // Removes the gauges a target exports. REQUIRES: mu is held.
  void DropGauges(TargetSeries& series) {
    for (size_t slot = 0; slot < series.gauges.size(); ++slot) {
      if (series.gauges[slot] != nullptr) {
        probe_gauges[slot / 3]->Remove(series.gauges[slot]);
        series.gauges[slot] = nullptr;
      }
    }
  }
};

Metrics::Metrics(const BuildInfo& build) : state_(std::make_unique<State>()) {
  auto& registry = *state_->registry;
  State& st = *state_;
  for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
    st.probe_gauge_index[info.name] = st.probe_gauges.size();
    st.probe_gauges.push_back(
        &prometheus::BuildGauge().Name(info.name).Help(info.help).Register(registry));
    st.gauge_families.push_back(st.probe_gauges.back());
  }
  // The counters and histograms the rule engine also derives from stored probes: one table.
  for (const ProbeCounterFamily& family : ProbeCounterFamilies()) {
    if (family.type == ProbeCounterFamily::Type::kCounterByOutcome) {
      st.probes_total =
          &prometheus::BuildCounter().Name(family.name).Help(family.help).Register(registry);
      st.counter_families.push_back(st.probes_total);
      st.probe_histograms.push_back(nullptr);
      continue;
    }
    st.probe_histograms.push_back(
        &prometheus::BuildHistogram().Name(family.name).Help(family.help).Register(registry));
    st.histogram_families.push_back(st.probe_histograms.back());
  }
  st.phase_seconds = &prometheus::BuildHistogram()
                          .Name("modelpulse_probe_phase_duration_seconds")
                          .Help(
                              "Probe phase durations: dns, connect and tls alone; "
                              "first_byte, ttft, first_answer_token and total from start.")
                          .Register(registry);
  st.histogram_families.push_back(st.phase_seconds);
  st.inter_token_seconds = &prometheus::BuildHistogram()
                                .Name("modelpulse_probe_inter_token_latency_seconds")
                                .Help("Mean inter-token latency per probe.")
                                .Register(registry);
  st.histogram_families.push_back(st.inter_token_seconds);
  st.tokens_total = &prometheus::BuildCounter()
                         .Name("modelpulse_tokens_total")
                         .Help("Tokens reported by providers, by direction.")
                         .Register(registry);
  st.counter_families.push_back(st.tokens_total);
  st.cost_total = &prometheus::BuildCounter()
                       .Name("modelpulse_estimated_cost_dollars_total")
                       .Help("Estimated spend of probes from the configured prices.")
                       .Register(registry);
  st.counter_families.push_back(st.cost_total);
  st.budget_paused = &prometheus::BuildGauge()
                          .Name("modelpulse_target_budget_paused")
                          .Help("1 while a target's daily token or cost budget is spent.")
                          .Register(registry);
  st.gauge_families.push_back(st.budget_paused);
  auto& build_info = prometheus::BuildGauge()
                         .Name("modelpulse_build_info")
                         .Help("Build information; always 1.")
                         .Register(registry);
  build_info
      .Add({{"version", std::string(build.version)},
            {"revision", std::string(build.revision)},
            {"branch", std::string(build.branch)},
            {"compiler", std::string(build.compiler)}})
      .Set(1);
  st.gauge_families.push_back(&build_info);
  auto self_gauge = [&registry, &st](const char* name, const char* help) -> Gauge& {
    auto& family = prometheus::BuildGauge().Name(name).Help(help).Register(registry);
    st.gauge_families.push_back(&family);
    return family.Add({});
  };
  st.reload_success = &self_gauge("modelpulse_config_last_reload_successful",
                                  "Whether the last configuration reload succeeded.");
  st.reload_timestamp = &self_gauge("modelpulse_config_last_reload_success_timestamp_seconds",
                                    "Timestamp of the last successful configuration reload.");
  st.in_flight = &self_gauge("modelpulse_probes_in_flight", "Probes currently running.");
  st.storage_queue =
      &self_gauge("modelpulse_storage_queue_length", "Probe rows waiting for the writer.");
  st.storage_last_batch = &self_gauge("modelpulse_storage_last_batch_duration_seconds",
                                      "Time the writer took to commit its last batch.");
  auto self_counter = [&registry, &st](const char* name, const char* help) -> Counter& {
    auto& family = prometheus::BuildCounter().Name(name).Help(help).Register(registry);
    st.counter_families.push_back(&family);
    return family.Add({});
  };
  st.storage_rows_written =
      &self_counter("modelpulse_storage_rows_written_total", "Probe rows committed.");
  // Every lost row, by why: summed over reason, nothing probed goes missing unseen.
  auto& rows_dropped =
      prometheus::BuildCounter()
          .Name("modelpulse_storage_rows_dropped_total")
          .Help("Probe rows lost: the writer's queue was full, or their batch failed to commit.")
          .Register(registry);
  st.counter_families.push_back(&rows_dropped);
  st.storage_rows_dropped_queue_full = &rows_dropped.Add({{"reason", "queue_full"}});
  st.storage_rows_dropped_write_failed = &rows_dropped.Add({{"reason", "write_failed"}});
  st.storage_writable =
      &self_gauge("modelpulse_storage_writable",
                  "1 while the last write batch committed, 0 after a failed one.");
  st.storage_write_errors =
      &self_counter("modelpulse_storage_write_errors_total", "Failed write transactions.");
  st.storage_integrity_ok = &self_gauge(
      "modelpulse_storage_integrity_ok",
      "SQLite's quick_check of the database: 1 passed, 0 found it corrupt, NaN still checking "
      "(a large file is checked in the background after start).");
}

Metrics::~Metrics() = default;

void Metrics::SetSlos(const std::vector<rules::SloSpec>& slos) {
  std::lock_guard lock(state_->mu);
  std::vector<State::SloCounters> next;
  for (const rules::SloSpec& spec : slos) {
    State::SloCounters counters{spec};
    for (const State::SloCounters& old : state_->slos) {
      if (old.spec.name == spec.name) {
        counters.events = old.events;
        counters.good = old.good;
      }
    }
    next.push_back(std::move(counters));
  }
  state_->slos = std::move(next);
}

void Metrics::ObserveProbe(const ProbeResult& result) {
  State& st = *state_;
  std::lock_guard lock(st.mu);
  for (State::SloCounters& slo : st.slos) {
    if (!rules::SloSelects(slo.spec, result.labels)) {
      continue;
    }
    const rules::SloVerdict verdict =
        rules::ClassifyProbe(slo.spec, result.outcome, result.ttft_seconds, result.total_seconds);
    slo.events += verdict != rules::SloVerdict::kExcluded;
    slo.good += verdict == rules::SloVerdict::kGood;
  }
  auto it = st.targets.find(result.target);
  if (it == st.targets.end()) {
    it = st.targets.emplace(result.target, TargetSeries{}).first;
  }
  TargetSeries& series = it->second;
  if (series.gauges.empty() || series.labels != result.labels) {
    // New target, or its labels changed on reload: the old label set's gauges go (its counters
    // and histograms stay, as counters do), and the objects are resolved again for the new one.
    st.DropGauges(series);
    series = TargetSeries{};
    series.labels = result.labels;
    series.prom_labels = ToPromLabels(result.labels);
    series.gauges.assign(st.probe_gauges.size() * 3, nullptr);
  }
  const prometheus::Labels& labels = series.prom_labels;

  // Last-probe gauges: set what this probe has, drop what it has not.
  std::vector<bool> present(series.gauges.size(), false);
  for (const ProbeSample& sample : ProbeSamples(result)) {
    const size_t slot = st.SlotOf(sample);
    present[slot] = true;
    Gauge*& gauge = series.gauges[slot];
    if (gauge == nullptr) {
      gauge = *sample.resource != '\0'
                  ? &st.probe_gauges[slot / 3]->Add(With(labels, "resource", sample.resource))
                  : &st.probe_gauges[slot / 3]->Add(labels);
    }
    gauge->Set(sample.value);
  }
  for (size_t slot = 0; slot < series.gauges.size(); ++slot) {
    if (!present[slot] && series.gauges[slot] != nullptr) {
      st.probe_gauges[slot / 3]->Remove(series.gauges[slot]);
      series.gauges[slot] = nullptr;
    }
  }

  Counter*& outcome = series.outcomes[static_cast<size_t>(result.outcome)];
  if (outcome == nullptr) {
    outcome =
        &st.probes_total->Add(With(labels, "outcome", std::string(OutcomeName(result.outcome))));
  }
  outcome->Increment();

  const ProbeNumbers numbers = ProbeNumbersOf(result);
  const auto families = ProbeCounterFamilies();
  series.histograms.resize(families.size(), nullptr);
  for (size_t f = 0; f < families.size(); ++f) {
    const auto value = ProbeHistogramValue(families[f], numbers);
    if (!value) {
      continue;
    }
    Histogram*& histogram = series.histograms[f];
    if (histogram == nullptr) {
      histogram = &st.probe_histograms[f]->Add(
          labels,
          Histogram::BucketBoundaries(families[f].buckets.begin(), families[f].buckets.end()));
    }
    histogram->Observe(*value);
  }

  const std::optional<double> phase_values[kPhaseCount] = {
      result.dns_seconds,        result.connect_seconds, result.tls_seconds,
      result.first_byte_seconds, result.ttft_seconds,    result.first_answer_token_seconds,
      result.total_seconds};
  for (size_t i = 0; i < kPhaseCount; ++i) {
    if (!phase_values[i]) {
      continue;
    }
    Histogram*& histogram = series.phases[i];
    if (histogram == nullptr) {
      histogram =
          &st.phase_seconds->Add(With(labels, "phase", kPhases[i].name), kPhases[i].buckets());
    }
    histogram->Observe(*phase_values[i]);
  }
  if (result.inter_token_latency_seconds) {
    if (series.inter_token == nullptr) {
      series.inter_token = &st.inter_token_seconds->Add(labels, InterTokenBuckets());
    }
    series.inter_token->Observe(*result.inter_token_latency_seconds);
  }
  if (result.input_tokens) {
    if (series.input_tokens == nullptr) {
      series.input_tokens = &st.tokens_total->Add(With(labels, "direction", "input"));
    }
    series.input_tokens->Increment(static_cast<double>(*result.input_tokens));
  }
  if (result.output_tokens) {
    if (series.output_tokens == nullptr) {
      series.output_tokens = &st.tokens_total->Add(With(labels, "direction", "output"));
    }
    series.output_tokens->Increment(static_cast<double>(*result.output_tokens));
  }
  if (result.estimated_cost_dollars) {
    if (series.cost == nullptr) {
      series.cost = &st.cost_total->Add(labels);
    }
    series.cost->Increment(*result.estimated_cost_dollars);
  }
}

void Metrics::ObserveReload(bool success, int64_t unix_ms) {
  state_->reload_success->Set(success ? 1 : 0);
  if (success) {
    state_->reload_timestamp->Set(static_cast<double>(unix_ms) / 1000.0);
  }
}

void Metrics::ForgetTargetsExcept(const std::vector<std::string>& kept_targets) {
  std::lock_guard lock(state_->mu);
  for (auto it = state_->targets.begin(); it != state_->targets.end();) {
    if (std::find(kept_targets.begin(), kept_targets.end(), it->first) != kept_targets.end()) {
      ++it;
      continue;
    }
    state_->DropGauges(it->second);
    it = state_->targets.erase(it);
  }
}

std::string Metrics::Render(const SelfStatus& status) {
  state_->in_flight->Set(static_cast<double>(status.probes_in_flight));
  state_->storage_queue->Set(static_cast<double>(status.storage.queue_depth));
  state_->storage_last_batch->Set(status.storage.last_batch_seconds);
  state_->storage_writable->Set(status.storage.writable ? 1 : 0);
  switch (status.storage.integrity) {
    case storage::StorageStats::Integrity::kOk:
      state_->storage_integrity_ok->Set(1);
      break;
    case storage::StorageStats::Integrity::kCorrupt:
      state_->storage_integrity_ok->Set(0);
      break;
    case storage::StorageStats::Integrity::kChecking:
      state_->storage_integrity_ok->Set(std::numeric_limits<double>::quiet_NaN());
      break;
  }
  {
    std::lock_guard lock(state_->mu);
    storage::StorageStats& last = state_->exported_storage;
    auto advance = [](Counter* counter, uint64_t now, uint64_t& before) {
      if (now > before) {
        counter->Increment(static_cast<double>(now - before));
      }
      before = now;
    };
    advance(state_->storage_rows_written, status.storage.rows_written, last.rows_written);
    advance(state_->storage_rows_dropped_queue_full, status.storage.rows_dropped,
            last.rows_dropped);
    advance(state_->storage_rows_dropped_write_failed, status.storage.rows_failed,
            last.rows_failed);
    advance(state_->storage_write_errors, status.storage.write_errors, last.write_errors);
  }
  for (const collector::TargetStatus& target : status.targets) {
    state_->budget_paused->Add(ToPromLabels(target.labels)).Set(target.budget_paused ? 1 : 0);
  }
  // Collect and serialise one family at a time into one string sized from the last scrape:
  // prometheus-cpp's Registry::Collect() copies every series with its labels at once, and that
  // transient copy, not the series themselves, set the daemon's peak memory.
  std::lock_guard render_lock(state_->render_mu);
  std::string text;
  text.reserve(state_->last_render_bytes + state_->last_render_bytes / 8 + 4096);
  {
    StringAppendBuf buffer(text);
    std::ostream out(&buffer);
    const prometheus::TextSerializer serializer;
    for (const auto* families :
         {&state_->counter_families, &state_->gauge_families, &state_->histogram_families}) {
      for (const prometheus::Collectable* family : *families) {
        serializer.Serialize(out, family->Collect());
      }
    }
    serializer.Serialize(out, RuleFamilies(status.rules));
    std::vector<std::tuple<Labels, uint64_t, uint64_t>> slo_counters;
    {
      std::lock_guard lock(state_->mu);
      for (const State::SloCounters& slo : state_->slos) {
        slo_counters.emplace_back(
            Labels{{"slo", slo.spec.name},
                   {"slo_kind", std::string(rules::SloKindName(slo.spec.kind))}},
            slo.events, slo.good);
      }
    }
    serializer.Serialize(out, SloFamilies(status.slos, slo_counters));
    if (status.process) {
      serializer.Serialize(out, ProcessFamilies(*status.process));
    }
    if (status.alerting) {
      serializer.Serialize(out, status.alerting->Collect());
    }
  }
  state_->last_render_bytes = text.size();
  // glibc keeps freed heap in this thread's arena; hand the collected copies back to the system
  // so a scrape does not leave its high-water mark resident.
  malloc_trim(0);
  return text;
}

}  // namespace modelpulse::daemon
