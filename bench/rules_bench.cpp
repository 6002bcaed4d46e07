// Rules over long history (issue 4's benchmark): the shipped rules (config/rules/*.yaml) over
// N targets with D days of probes every S seconds, evaluated through the daemon's own wiring
// (storage::Store + storage::ProbeSeriesSource with the daemon's 2 h memory window +
// rules::RuleManager). Reports the open time (migrations, e.g. a rollup backfill), the first
// cycle after a restart (memory empty: everything comes from SQLite), steady cycles (each
// preceded by one new probe per target appended to the store and the memory window, as the
// prober's fan-out does), and peak RSS.
//
//   rules_bench [--targets 200] [--days 30] [--interval-s 15] [--cycles 40] [--dir /tmp]
//               [--rules-dir config/rules]
//
// The generated database is cached as <dir>/mp-rules-bench-t<N>-d<D>-i<S>-v3.db, so reruns skip
// the generation; it is written straight into storage's schema (prepared INSERTs in primary-key
// order, one transaction per 500k rows), about 220 bytes a row, then its rollups and probe
// summaries are built as migrations 3 and 9 backfill them (v1 files, without rollups, are
// ignored; a v2 file from before migration 9 gets its summaries from that migration at open).
// `--generate-only 1` stops after that (bench/prometheus_compare.py serves the file).

#include <sqlite3.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/common.h"
#include "rules/manager.h"
#include "rules/promql.h"
#include "rules/rules.h"
#include "storage/internal/first_seen.h"
#include "storage/internal/label_codec.h"
#include "storage/internal/probe_codec.h"
#include "storage/internal/rollup.h"
#include "storage/internal/summary.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse {
namespace {

using Steady = std::chrono::steady_clock;

// Whole hours, so rollup buckets and the data line up as they would in the field by chance.
constexpr int64_t kStartMs = 1'750'000'000'000LL / 3'600'000 * 3'600'000;
constexpr Millis kRecentWindow{2LL * 3600 * 1000};  // daemon/daemon.cpp's kRecentWindow

// Simulated wall time for the data; monotonic time stays real because the benchmark measures it.
class AtomicClock final : public Clock {
 public:
  explicit AtomicClock(int64_t now) : now_(now) {}
  int64_t NowUnixMillis() const override { return now_.load(); }
  MonotonicTime MonotonicNow() const override { return real_.MonotonicNow(); }
  void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                 MonotonicTime deadline) const override {
    real_.WaitUntil(cv, lock, deadline);
  }
  void Set(int64_t now) { now_.store(now); }

 private:
  std::atomic<int64_t> now_;
  SystemClock real_;
};

struct Params {
  int targets = 200;
  int days = 30;
  int interval_s = 15;
  int cycles = 40;
  bool store_appends = true;   // --store-appends 0: new probes go to memory only
  bool generate_only = false;  // --generate-only 1: write (or find) the database and stop
  std::string dir = "/tmp";
  std::string rules_dir = "config/rules";
};

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

double CurrentRssMb() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0;
  long resident = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
      resident = 0;
    }
    std::fclose(f);
  }
  return static_cast<double>(resident) * 4096.0 / (1024.0 * 1024.0);
}

// 40 models, each on five clouds: the clouds rules compare them.
Labels TargetLabels(int i) {
  static const char* kClouds[] = {"openai", "azure", "bedrock", "vertex", "anthropic"};
  static const char* kRegions[] = {"us-east-1", "westeurope", "us-west-2", "europe-west4",
                                   "us-central"};
  const int cloud = i % 5;
  const std::string model = "model-" + std::to_string(i / 5 % 40);
  const std::string target = model + "@" + kClouds[cloud] + "-" + std::to_string(i / 200);
  return {{"target", target},        {"provider", kClouds[cloud]},
          {"cloud", kClouds[cloud]}, {"region", kRegions[cloud]},
          {"model", model},          {"tier", "prod"}};
}

// One realistic probe of target `i` at `t_ms`: mostly successful streams with a daily rhythm
// in first-token time, a few percent throttled, overloaded, timed out or failed.
ProbeResult MakeProbe(int i, int64_t t_ms, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::lognormal_distribution<double> jitter(0.0, 0.25);
  ProbeResult p;
  p.labels = TargetLabels(i);
  p.target = p.labels["target"];
  p.start_unix_ms = t_ms;
  const double day_phase = static_cast<double>(t_ms % 86'400'000) / 86'400'000.0;
  const double base = (0.25 + 0.05 * (i % 7)) * (1.0 + 0.3 * std::sin(2 * M_PI * day_phase));
  const double roll = unit(rng);
  if (unit(rng) < 0.1) {  // a new connection now and then
    p.dns_seconds = 0.001 + 0.004 * unit(rng);
    p.connect_seconds = 0.005 + 0.02 * unit(rng);
    p.tls_seconds = 0.01 + 0.03 * unit(rng);
  }
  p.request_id = "chatcmpl-" + std::to_string(rng()).substr(0, 18) + "AbCdEfGhIjKlMn";
  if (roll < 0.96) {
    p.outcome = Outcome::kOk;
    p.http_status = 200;
    p.first_byte_seconds = base * jitter(rng);
    p.ttft_seconds = *p.first_byte_seconds + 0.02 * unit(rng);
    p.first_answer_token_seconds = p.ttft_seconds;
    p.output_tokens = 8 + static_cast<int64_t>(unit(rng) * 8);
    p.input_tokens = 14;
    const double gen = 0.2 + 0.3 * unit(rng);
    p.last_token_seconds = *p.ttft_seconds + gen;
    p.total_seconds = *p.last_token_seconds + 0.002;
    p.inter_token_latency_seconds = gen / static_cast<double>(*p.output_tokens - 1);
    p.output_tokens_per_second = static_cast<double>(*p.output_tokens) / gen;
    p.chunk_count = *p.output_tokens + 2;
    p.requests = {10000.0, std::floor(10000.0 * unit(rng)), 0.006};
    p.tokens = {2000000.0, std::floor(2000000.0 * unit(rng)), 0.03};
  } else if (roll < 0.98) {
    p.outcome = Outcome::kThrottled;
    p.http_status = 429;
    p.total_seconds = 0.05 + 0.05 * unit(rng);
    p.retry_after_seconds = 2.0;
    p.requests = {10000.0, 0.0, 6.0};
    p.error = "HTTP 429: Rate limit reached for requests per min";
  } else if (roll < 0.99) {
    p.outcome = Outcome::kOverloaded;
    p.http_status = 529;
    p.total_seconds = 0.1 + 0.1 * unit(rng);
    p.error = "HTTP 529: overloaded_error";
  } else if (roll < 0.995) {
    p.outcome = Outcome::kTimeout;
    p.total_seconds = 30.0;
    p.first_byte_seconds = 1.0 + unit(rng);
    p.error = "timeout: no first token within 30 s";
  } else {
    p.outcome = Outcome::kServerError;
    p.http_status = 500;
    p.total_seconds = 0.2 * unit(rng);
    p.error = "HTTP 500: internal error";
  }
  return p;
}

int64_t PhaseMs(int i) { return (static_cast<int64_t>(i) * 71) % 15'000; }

bool Check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    return false;
  }
  return true;
}

// Creates the schema through storage (so it is exactly what the daemon opens), then fills the
// probe table directly: target by target, oldest first, which is primary-key order.
bool Generate(const Params& params, const std::string& path, int64_t samples_per_target) {
  {
    AtomicClock clock(kStartMs);
    storage::StorageOptions options;
    options.path = path;
    options.retention = Millis(0);
    auto store = storage::Store::Open(options, clock);
    if (!store) {
      std::fprintf(stderr, "open: %s\n", store.error().ToString().c_str());
      return false;
    }
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    return false;
  }
  sqlite3_exec(db, "PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;", nullptr, nullptr, nullptr);
  sqlite3_stmt* target = nullptr;
  sqlite3_stmt* label_set = nullptr;
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO targets (id, name, labels) VALUES (?1, ?2, ?3)", -1, &target,
                     nullptr);
  sqlite3_prepare_v2(db, "INSERT INTO label_sets (id, labels) VALUES (?1, ?2)", -1, &label_set,
                     nullptr);
  // The writer's own statement, encoding and shape numbers (migration 10's probe_rows).
  storage::ShapeIds shapes;
  sqlite3_prepare_v2(db, std::string(storage::kInsertProbeRowSql).c_str(), -1, &insert, nullptr);
  const auto started = Steady::now();
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  int64_t rows = 0;
  bool ok = true;
  for (int i = 0; i < params.targets && ok; ++i) {
    const Labels labels = TargetLabels(i);
    const std::string encoded = storage::EncodeLabels(labels);
    sqlite3_bind_int64(target, 1, i + 1);
    sqlite3_bind_text(target, 2, labels.at("target").c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(target, 3, encoded.c_str(), -1, SQLITE_TRANSIENT);
    ok = Check(sqlite3_step(target), db, "target");
    sqlite3_reset(target);
    sqlite3_bind_int64(label_set, 1, i + 1);
    sqlite3_bind_text(label_set, 2, encoded.c_str(), -1, SQLITE_TRANSIENT);
    ok = ok && Check(sqlite3_step(label_set), db, "label set");
    sqlite3_reset(label_set);
    std::mt19937_64 rng(static_cast<uint64_t>(i) * 7919 + 1);
    for (int64_t k = 0; k < samples_per_target && ok; ++k) {
      const int64_t t = kStartMs + k * params.interval_s * 1000 + PhaseMs(i);
      const ProbeResult p = MakeProbe(i, t, rng);
      sqlite3_stmt* s = insert;
      sqlite3_bind_int64(s, 1, i + 1);
      sqlite3_bind_int64(s, 2, t);
      sqlite3_bind_int64(s, 3, i + 1);
      auto shape = shapes.Id(db, i + 1, storage::ShapeOf(p));
      sqlite3_bind_int64(s, 4, shape.value_or(0));
      sqlite3_bind_int64(s, storage::kProbeRowSeqParam, 0);
      storage::BindProbeRow(s, p);
      ok = shape.has_value() && Check(sqlite3_step(s), db, "probe");
      sqlite3_reset(s);
      if (++rows % 500'000 == 0) {
        sqlite3_exec(db, "COMMIT; BEGIN", nullptr, nullptr, nullptr);
        std::fprintf(stderr, "\rgenerated %lld rows (%.0f s)", static_cast<long long>(rows),
                     Seconds(started));
      }
    }
  }
  ok = ok && Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  sqlite3_finalize(target);
  sqlite3_finalize(label_set);
  sqlite3_finalize(insert);
  shapes = storage::ShapeIds();  // finalizes its statements before the close below
  if (ok) {
    // The schema was created at the current version, so no migration backfills the rollups
    // that the daemon writes in its writer's transactions: build them here, as the backfill would.
    const auto rolled = Steady::now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    const Status status =
        storage::RebuildRollups(db, 1, params.targets, std::numeric_limits<int64_t>::min(),
                                std::numeric_limits<int64_t>::max());
    if (!status) {
      std::fprintf(stderr, "rollups: %s\n", status.error().ToString().c_str());
      ok = false;
    }
    ok = ok && Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit rollups");
    std::fprintf(stderr, "built rollups in %.1f s\n", Seconds(rolled));
    // Likewise the hourly and daily probe summaries (migration 9) that reports read.
    const auto summarised = Steady::now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    const Status summaries =
        storage::RebuildSummaries(db, 1, params.targets, std::numeric_limits<int64_t>::min(),
                                  std::numeric_limits<int64_t>::max());
    if (!summaries) {
      std::fprintf(stderr, "summaries: %s\n", summaries.error().ToString().c_str());
      ok = false;
    }
    ok = ok && Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit summaries");
    std::fprintf(stderr, "built summaries in %.1f s\n", Seconds(summarised));
    // And the counter series' first-seen times (migration 12) that the discovery endpoints read.
    const auto first_seen = Steady::now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    if (const Status built = storage::RebuildFirstSeen(db); !built) {
      std::fprintf(stderr, "first seen: %s\n", built.error().ToString().c_str());
      ok = false;
    }
    ok =
        ok && Check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit first seen");
    std::fprintf(stderr, "built counter first-seen times in %.1f s\n", Seconds(first_seen));
  }
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  std::fprintf(stderr, "\rgenerated %lld rows in %.1f s\n", static_cast<long long>(rows),
               Seconds(started));
  return ok;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const size_t index =
      std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[index];
}

int Run(const Params& params) {
  const int64_t samples_per_target = static_cast<int64_t>(params.days) * 86'400 / params.interval_s;
  const std::string path = params.dir + "/mp-rules-bench-t" + std::to_string(params.targets) +
                           "-d" + std::to_string(params.days) + "-i" +
                           std::to_string(params.interval_s) + "-v3.db";
  if (!std::filesystem::exists(path)) {
    if (!Generate(params, path, samples_per_target)) {
      std::filesystem::remove(path);
      return 1;
    }
  }
  std::printf("database %s: %.2f GB, %lld rows\n", path.c_str(),
              static_cast<double>(std::filesystem::file_size(path)) / 1e9,
              static_cast<long long>(samples_per_target * params.targets));
  if (params.generate_only) {
    return 0;
  }

  const int64_t interval_ms = static_cast<int64_t>(params.interval_s) * 1000;
  const int64_t end_ms = kStartMs + samples_per_target * interval_ms;
  {
    // Forget the probes earlier runs appended after the generated history, so every run starts
    // from the same database (end_ms is a whole hour, so whole rollup hours go with them).
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
      const std::string end = std::to_string(end_ms);
      sqlite3_exec(db, ("DELETE FROM probe_rows WHERE start_ms >= " + end).c_str(), nullptr,
                   nullptr, nullptr);
      sqlite3_exec(db, ("DELETE FROM rollups WHERE bucket_ms >= " + end).c_str(), nullptr, nullptr,
                   nullptr);  // fails harmlessly before migration 3
      sqlite3_exec(db, "DELETE FROM state", nullptr, nullptr, nullptr);
      // A counter series first moved after end_ms has no probe left (fails harmlessly before
      // migration 12, whose backfill then builds them).
      sqlite3_exec(db, ("DELETE FROM counter_first_seen WHERE first_ms >= " + end).c_str(), nullptr,
                   nullptr, nullptr);
      // The summaries of the day end_ms falls in, from its remaining rows (fails harmlessly
      // before migration 9, whose backfill then builds them).
      sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
      (void)storage::RebuildSummaries(db, 1, params.targets, end_ms,
                                      std::numeric_limits<int64_t>::max());
      sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
    sqlite3_close(db);
  }
  AtomicClock clock(end_ms);
  storage::StorageOptions options;
  options.path = path;
  options.retention = Millis(90LL * 24 * 3600 * 1000);
  auto opened = Steady::now();
  auto store = storage::Store::Open(options, clock);
  if (!store) {
    std::fprintf(stderr, "open: %s\n", store.error().ToString().c_str());
    return 1;
  }
  const double open_seconds = Seconds(opened);

  storage::ProbeSeriesSource series(store->get(), kRecentWindow, end_ms);
  rules::RuleManagerOptions rule_options;
  for (const auto& entry : std::filesystem::directory_iterator(params.rules_dir)) {
    if (entry.path().extension() == ".yaml") {
      rule_options.rule_files.push_back(entry.path().string());
    }
  }
  std::sort(rule_options.rule_files.begin(), rule_options.rule_files.end());
  rule_options.evaluation_interval = Millis(interval_ms);
  auto alert_states = rules::AlertStatesIn(**store);
  auto engine = rules::RuleManager::Create(rule_options, series, *alert_states, clock);
  if (!engine) {
    std::fprintf(stderr, "rules: %s\n", engine.error().ToString().c_str());
    return 1;
  }

  auto first = Steady::now();
  (*engine)->EvaluateDue(end_ms);
  const double first_seconds = Seconds(first);
  const double rss_after_first = CurrentRssMb();

  std::vector<std::mt19937_64> rngs;
  for (int i = 0; i < params.targets; ++i) {
    rngs.emplace_back(static_cast<uint64_t>(i) * 104729 + 3);
  }
  std::vector<double> steady;
  int64_t now = end_ms;
  for (int c = 1; c <= params.cycles; ++c) {
    now += interval_ms;
    clock.Set(now);
    const int64_t slot = kStartMs + (samples_per_target + c - 1) * interval_ms;
    for (int i = 0; i < params.targets; ++i) {
      ProbeResult p = MakeProbe(i, slot + PhaseMs(i), rngs[static_cast<size_t>(i)]);
      series.Append(p);
      if (params.store_appends) {
        (*store)->Append(std::move(p));
      }
    }
    auto cycle = Steady::now();
    (*engine)->EvaluateDue(now);
    steady.push_back(Seconds(cycle));
    if (c <= 8) {
      std::string line;
      for (const auto& group : (*engine)->Snapshot().groups) {
        line += " " + std::to_string(static_cast<int>(group.last_duration_seconds * 1e3));
      }
      std::printf("cycle %d: %.0f ms, groups (ms):%s\n", c, steady.back() * 1e3, line.c_str());
    }
  }

  const rules::RulesStatus status = (*engine)->Snapshot();
  uint64_t failures = 0;
  for (const auto& group : status.groups) {
    failures += group.failures;
  }
  std::printf("open (migrations) %.3f s\n", open_seconds);
  std::printf("first cycle %.3f s (rss after %.0f MB)\n", first_seconds, rss_after_first);
  std::printf("steady cycles n=%zu p50 %.1f ms p99 %.1f ms max %.1f ms\n", steady.size(),
              Percentile(steady, 0.5) * 1e3, Percentile(steady, 0.99) * 1e3,
              steady.empty() ? 0 : *std::max_element(steady.begin(), steady.end()) * 1e3);
  std::printf("first steady cycles (ms):");
  for (size_t i = 0; i < std::min<size_t>(steady.size(), 8); ++i) {
    std::printf(" %.0f", steady[i] * 1e3);
  }
  std::printf("\nrss now %.0f MB, peak %.0f MB\n", CurrentRssMb(), PeakRssMb());
  std::printf("groups %zu, rule failures %llu, active alerts %zu\n", status.groups.size(),
              static_cast<unsigned long long>(failures), status.alerts.size());
  for (const auto& group : status.groups) {
    std::printf("  group %-24s last evaluation %.1f ms\n", group.name.c_str(),
                group.last_duration_seconds * 1e3);
  }

  // Each rule's expression alone over the probe series (rules reading recorded series find
  // none here), to see what a cycle spends its time on.
  for (const std::string& file : rule_options.rule_files) {
    auto parsed = rules::LoadRuleFile(file);
    if (!parsed) {
      continue;
    }
    for (const auto& group : parsed->groups) {
      for (const auto& rule : group.rules) {
        auto started = Steady::now();
        auto value = rule.expr.Evaluate(series, now);
        std::printf("  rule %-45s %6.2f ms%s\n", rule.name.c_str(), Seconds(started) * 1e3,
                    value ? "" : " (error)");
      }
    }
  }

  // Checksums of the long-window expressions, to compare figures across implementations.
  for (const char* text :
       {"sum(quantile_over_time(0.95, probe_ttft_seconds[1d] offset 15m))",
        "sum(avg_over_time(probe_output_tokens_per_second[1d] offset 15m))",
        "sum(count_over_time(probe_success[1h]))", "sum(avg_over_time(probe_success[15m]))",
        "sum(max_over_time(probe_ttft_seconds[1d]))", "sum(min_over_time(probe_ttft_seconds[3d]))",
        // The counters derived from the stored probes (the portable rules' series).
        "sum(rate(modelpulse_probes_total[5m]))", "sum(rate(modelpulse_probes_total[1d]))",
        "sum(rate(modelpulse_probes_total[30d]))",
        "sum(increase(modelpulse_probes_total{outcome=\"throttled\"}[30d]))",
        "histogram_quantile(0.95, sum by (le) (rate(modelpulse_probe_ttft_seconds_bucket[1h])))",
        "histogram_quantile(0.95, sum by (le) "
        "(rate(modelpulse_probe_ttft_seconds_bucket[30d])))"}) {
    auto query = rules::Query::Parse(text);
    auto started = Steady::now();
    auto value = query ? query->Evaluate(series, now) : Result<rules::Value>(Fail(query.error()));
    const double took = Seconds(started);
    double v = 0;
    if (value) {
      if (const auto* vector = std::get_if<rules::Vector>(&*value); vector && !vector->empty()) {
        v = vector->front().value;
      }
    }
    std::printf("  %-70s = %.17g (%.1f ms)\n", text, v, took * 1e3);
  }
  return 0;
}

}  // namespace
}  // namespace modelpulse

int main(int argc, char** argv) {
  modelpulse::Params params;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--targets") {
      params.targets = std::atoi(value);
    } else if (flag == "--days") {
      params.days = std::atoi(value);
    } else if (flag == "--interval-s") {
      params.interval_s = std::atoi(value);
    } else if (flag == "--cycles") {
      params.cycles = std::atoi(value);
    } else if (flag == "--dir") {
      params.dir = value;
    } else if (flag == "--store-appends") {
      params.store_appends = std::atoi(value) != 0;
    } else if (flag == "--generate-only") {
      params.generate_only = std::atoi(value) != 0;
    } else if (flag == "--rules-dir") {
      params.rules_dir = value;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  return modelpulse::Run(params);
}
