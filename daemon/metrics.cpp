#include "daemon/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <string_view>

#include "daemon/probe_series.h"

namespace modelpulse::daemon {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// LLM latencies span milliseconds (DNS on loopback) to minutes (a long reasoning answer).
const Histogram::BucketBoundaries& PhaseBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1,
      1.5,   2,      3,     5,    7.5,   10,   15,  20,   30,  60,   120};
  return kBuckets;
}

const Histogram::BucketBoundaries& InterTokenBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.015, 0.02,
                                                       0.03,  0.05,   0.075, 0.1,  0.2,   0.5};
  return kBuckets;
}

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

// The rule engine's state changes wholesale at every evaluation, so its families are built at
// scrape time from a snapshot rather than kept as registered metrics.
std::vector<prometheus::MetricFamily> RuleFamilies(const RulesStatus& rules) {
  using prometheus::MetricType;
  auto family = [](const char* name, const char* help, MetricType type) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
  };
  auto alerts = family("ALERTS", "Pending and firing alerts, as Prometheus records them.",
                       MetricType::Gauge);
  auto for_state = family("ALERTS_FOR_STATE",
                          "Unix time since which each pending or firing alert has been active.",
                          MetricType::Gauge);
  for (const ActiveAlert& alert : rules.alerts) {
    Labels with_state = alert.labels;
    with_state["alertstate"] = alert.state;
    alerts.metric.push_back(Sample(with_state, 1, MetricType::Gauge));
    for_state.metric.push_back(
        Sample(alert.labels, static_cast<double>(alert.active_at_ms) / 1000.0, MetricType::Gauge));
  }
  auto duration = family("modelpulse_rule_group_last_duration_seconds",
                         "Duration of the last evaluation of each rule group.", MetricType::Gauge);
  auto last = family("modelpulse_rule_group_last_evaluation_timestamp_seconds",
                     "Unix time of the last evaluation of each rule group.", MetricType::Gauge);
  auto count = family("modelpulse_rule_group_rules", "Rules in each rule group.",
                      MetricType::Gauge);
  auto evaluations = family("modelpulse_rule_group_evaluations_total",
                            "Evaluations of each rule group.", MetricType::Counter);
  auto failures = family("modelpulse_rule_evaluation_failures_total",
                         "Rule evaluations that failed, per rule group.", MetricType::Counter);
  for (const RuleGroupStatus& group : rules.groups) {
    const Labels labels = {{"rule_group", group.file + ";" + group.name}};
    duration.metric.push_back(Sample(labels, group.last_duration_seconds, MetricType::Gauge));
    last.metric.push_back(Sample(
        labels, static_cast<double>(group.last_evaluation_ms) / 1000.0, MetricType::Gauge));
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

prometheus::Labels ToPromLabels(const Labels& labels) {
  return prometheus::Labels(labels.begin(), labels.end());
}

prometheus::Labels With(prometheus::Labels labels, const std::string& name, std::string value) {
  labels[name] = std::move(value);
  return labels;
}

}  // namespace

struct Metrics::State {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::map<std::string, Family<Gauge>*, std::less<>> probe_gauges;  // by series name
  Family<Counter>* probes_total = nullptr;
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
  Counter* storage_rows_dropped = nullptr;
  Counter* storage_write_errors = nullptr;
  // The store's totals as last exported; counters advance by the difference. Guarded by mu.
  storage::StorageStats exported_storage;

  std::mutex mu;
  // The gauges currently set per target, keyed by series name and resource, so a phase that did
  // not happen in the latest probe (no TLS, no token) disappears instead of showing a stale
  // value. Guarded by mu.
  using SeriesKey = std::pair<std::string, std::string>;
  std::map<std::string, std::map<SeriesKey, std::pair<Family<Gauge>*, Gauge*>>> target_gauges;
};

Metrics::Metrics(std::string version) : state_(std::make_unique<State>()) {
  auto& registry = *state_->registry;
  for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
    state_->probe_gauges[info.name] =
        &prometheus::BuildGauge().Name(info.name).Help(info.help).Register(registry);
  }
  state_->probes_total = &prometheus::BuildCounter()
                              .Name("modelpulse_probes_total")
                              .Help("Probes finished, by outcome.")
                              .Register(registry);
  state_->phase_seconds = &prometheus::BuildHistogram()
                               .Name("modelpulse_probe_phase_duration_seconds")
                               .Help("Probe phase durations: dns, connect and tls alone; "
                                     "first_byte, ttft, first_answer_token and total from start.")
                               .Register(registry);
  state_->inter_token_seconds = &prometheus::BuildHistogram()
                                     .Name("modelpulse_probe_inter_token_latency_seconds")
                                     .Help("Mean inter-token latency per probe.")
                                     .Register(registry);
  state_->tokens_total = &prometheus::BuildCounter()
                              .Name("modelpulse_tokens_total")
                              .Help("Tokens reported by providers, by direction.")
                              .Register(registry);
  state_->cost_total = &prometheus::BuildCounter()
                            .Name("modelpulse_estimated_cost_dollars_total")
                            .Help("Estimated spend of probes from the configured prices.")
                            .Register(registry);
  state_->budget_paused = &prometheus::BuildGauge()
                               .Name("modelpulse_target_budget_paused")
                               .Help("1 while a target's daily token or cost budget is spent.")
                               .Register(registry);
  prometheus::BuildGauge()
      .Name("modelpulse_build_info")
      .Help("Build information; always 1.")
      .Register(registry)
      .Add({{"version", std::move(version)}})
      .Set(1);
  auto self_gauge = [&registry](const char* name, const char* help) -> Gauge& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  state_->reload_success = &self_gauge("modelpulse_config_last_reload_successful",
                                       "Whether the last configuration reload succeeded.");
  state_->reload_timestamp =
      &self_gauge("modelpulse_config_last_reload_success_timestamp_seconds",
                  "Timestamp of the last successful configuration reload.");
  state_->in_flight = &self_gauge("modelpulse_probes_in_flight", "Probes currently running.");
  state_->storage_queue =
      &self_gauge("modelpulse_storage_queue_length", "Probe rows waiting for the writer.");
  state_->storage_last_batch = &self_gauge("modelpulse_storage_last_batch_duration_seconds",
                                           "Time the writer took to commit its last batch.");
  auto self_counter = [&registry](const char* name, const char* help) -> Counter& {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  state_->storage_rows_written =
      &self_counter("modelpulse_storage_rows_written_total", "Probe rows committed.");
  state_->storage_rows_dropped = &self_counter("modelpulse_storage_rows_dropped_total",
                                               "Probe rows dropped because the queue was full.");
  state_->storage_write_errors =
      &self_counter("modelpulse_storage_write_errors_total", "Failed write transactions.");
}

Metrics::~Metrics() = default;

void Metrics::ObserveProbe(const ProbeResult& result, const TargetPricing& pricing) {
  const prometheus::Labels labels = ToPromLabels(result.labels);
  {
    std::lock_guard lock(state_->mu);
    auto& current = state_->target_gauges[result.target];
    auto previous = std::move(current);
    current.clear();
    for (const ProbeSample& sample : ProbeSamples(result)) {
      Family<Gauge>* family = state_->probe_gauges.find(sample.name)->second;
      prometheus::Labels sample_labels = labels;
      if (*sample.resource != '\0') {
        sample_labels["resource"] = sample.resource;
      }
      Gauge& gauge = family->Add(sample_labels);
      gauge.Set(sample.value);
      State::SeriesKey key{sample.name, sample.resource};
      current[key] = {family, &gauge};
      // A target whose labels changed on reload gets a new gauge; the old one goes below.
      if (auto old = previous.find(key); old != previous.end() && old->second.second == &gauge) {
        previous.erase(old);
      }
    }
    for (const auto& [key, stale] : previous) {
      stale.first->Remove(stale.second);
    }
  }
  state_->probes_total->Add(With(labels, "outcome", std::string(OutcomeName(result.outcome))))
      .Increment();
  const std::pair<const char*, std::optional<double>> phases[] = {
      {"dns", result.dns_seconds},
      {"connect", result.connect_seconds},
      {"tls", result.tls_seconds},
      {"first_byte", result.first_byte_seconds},
      {"ttft", result.ttft_seconds},
      {"first_answer_token", result.first_answer_token_seconds},
      {"total", result.total_seconds}};
  for (const auto& [phase, seconds] : phases) {
    if (seconds) {
      state_->phase_seconds->Add(With(labels, "phase", phase), PhaseBuckets()).Observe(*seconds);
    }
  }
  if (result.inter_token_latency_seconds) {
    state_->inter_token_seconds->Add(labels, InterTokenBuckets())
        .Observe(*result.inter_token_latency_seconds);
  }
  double cost = 0;
  if (result.input_tokens) {
    state_->tokens_total->Add(With(labels, "direction", "input"))
        .Increment(static_cast<double>(*result.input_tokens));
    cost += static_cast<double>(*result.input_tokens) * pricing.input_per_million.value_or(0) / 1e6;
  }
  if (result.output_tokens) {
    state_->tokens_total->Add(With(labels, "direction", "output"))
        .Increment(static_cast<double>(*result.output_tokens));
    cost +=
        static_cast<double>(*result.output_tokens) * pricing.output_per_million.value_or(0) / 1e6;
  }
  if (pricing.input_per_million || pricing.output_per_million) {
    state_->cost_total->Add(labels).Increment(cost);
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
  for (auto it = state_->target_gauges.begin(); it != state_->target_gauges.end();) {
    if (std::find(kept_targets.begin(), kept_targets.end(), it->first) != kept_targets.end()) {
      ++it;
      continue;
    }
    for (const auto& [key, gauge] : it->second) {
      gauge.first->Remove(gauge.second);
    }
    it = state_->target_gauges.erase(it);
  }
}

std::string Metrics::Render(const SelfStatus& status) {
  state_->in_flight->Set(static_cast<double>(status.probes_in_flight));
  state_->storage_queue->Set(static_cast<double>(status.storage.queue_depth));
  state_->storage_last_batch->Set(status.storage.last_batch_seconds);
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
    advance(state_->storage_rows_dropped, status.storage.rows_dropped, last.rows_dropped);
    advance(state_->storage_write_errors, status.storage.write_errors, last.write_errors);
  }
  for (const collector::TargetStatus& target : status.targets) {
    state_->budget_paused->Add(ToPromLabels(target.labels)).Set(target.budget_paused ? 1 : 0);
  }
  std::ostringstream out;
  std::vector<prometheus::MetricFamily> families = state_->registry->Collect();
  for (prometheus::MetricFamily& family : RuleFamilies(status.rules)) {
    families.push_back(std::move(family));
  }
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace modelpulse::daemon
