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

struct GaugeSpec {
  const char* name;
  const char* help;
};

// The last-probe gauges, in DESIGN.md §3 order. Index constants below refer to this table.
constexpr GaugeSpec kProbeGauges[] = {
    {"probe_success", "1 if the last probe succeeded, else 0."},
    {"probe_duration_seconds", "Total duration of the last probe."},
    {"probe_dns_seconds", "DNS lookup duration of the last probe."},
    {"probe_connect_seconds", "TCP connect duration of the last probe."},
    {"probe_tls_seconds", "TLS handshake duration of the last probe."},
    {"probe_first_byte_seconds", "Time from request start to the first response byte."},
    {"probe_ttft_seconds", "Time from request start to the first content token."},
    {"probe_first_answer_token_seconds",
     "Time from request start to the first answer (non-reasoning) token."},
    {"probe_inter_token_latency_seconds", "Mean time between output tokens in the last probe."},
    {"probe_output_tokens_per_second", "Output tokens per second in the last probe."},
    {"probe_output_tokens", "Output tokens reported by the provider for the last probe."},
    {"probe_http_status_code", "HTTP status of the last probe, 0 if none arrived."},
    {"probe_throttled", "1 if the last probe was throttled (rate limited)."},
    {"probe_overloaded", "1 if the last probe found the provider overloaded."},
    {"probe_retry_after_seconds", "Retry-after the provider asked for on the last probe."},
};
constexpr size_t kGaugeCount = std::size(kProbeGauges);

std::vector<std::optional<double>> GaugeValues(const ProbeResult& r) {
  auto as_double = [](const std::optional<int64_t>& v) -> std::optional<double> {
    if (!v) {
      return std::nullopt;
    }
    return static_cast<double>(*v);
  };
  return {r.outcome == Outcome::kOk ? 1.0 : 0.0,
          r.total_seconds,
          r.dns_seconds,
          r.connect_seconds,
          r.tls_seconds,
          r.first_byte_seconds,
          r.ttft_seconds,
          r.first_answer_token_seconds,
          r.inter_token_latency_seconds,
          r.output_tokens_per_second,
          as_double(r.output_tokens),
          static_cast<double>(r.http_status),
          r.outcome == Outcome::kThrottled ? 1.0 : 0.0,
          r.outcome == Outcome::kOverloaded ? 1.0 : 0.0,
          r.retry_after_seconds};
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
  std::vector<Family<Gauge>*> probe_gauges;
  Family<Gauge>* ratelimit_ratio = nullptr;
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
  // The gauges currently set per target, so a phase that did not happen in the latest probe (no
  // TLS, no token) disappears instead of showing a stale value. Guarded by mu.
  std::map<std::string, std::vector<Gauge*>> target_gauges;
};

Metrics::Metrics(std::string version) : state_(std::make_unique<State>()) {
  auto& registry = *state_->registry;
  for (const GaugeSpec& spec : kProbeGauges) {
    state_->probe_gauges.push_back(
        &prometheus::BuildGauge().Name(spec.name).Help(spec.help).Register(registry));
  }
  state_->ratelimit_ratio =
      &prometheus::BuildGauge()
           .Name("probe_ratelimit_remaining_ratio")
           .Help("Remaining share of the provider's rate limit after the last probe.")
           .Register(registry);
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
  const std::vector<std::optional<double>> values = GaugeValues(result);
  {
    std::lock_guard lock(state_->mu);
    std::vector<Gauge*>& current = state_->target_gauges[result.target];
    current.resize(kGaugeCount, nullptr);
    for (size_t i = 0; i < kGaugeCount; ++i) {
      if (values[i]) {
        current[i] = &state_->probe_gauges[i]->Add(labels);
        current[i]->Set(*values[i]);
      } else if (current[i] != nullptr) {
        state_->probe_gauges[i]->Remove(current[i]);
        current[i] = nullptr;
      }
    }
  }
  for (const auto& [resource, limit] :
       {std::pair{"requests", &result.requests}, std::pair{"tokens", &result.tokens}}) {
    if (limit->limit && limit->remaining && *limit->limit > 0) {
      state_->ratelimit_ratio->Add(With(labels, "resource", resource))
          .Set(*limit->remaining / *limit->limit);
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
    for (size_t i = 0; i < it->second.size(); ++i) {
      if (it->second[i] != nullptr) {
        state_->probe_gauges[i]->Remove(it->second[i]);
      }
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
  prometheus::TextSerializer().Serialize(out, state_->registry->Collect());
  return out.str();
}

}  // namespace modelpulse::daemon
