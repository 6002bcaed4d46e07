// Storage benchmarks on real files under /tmp:
//   BM_WriterThroughput  rows per second the writer commits (Append N rows, then Flush)
//   BM_BytesPerProbe     database size after a checkpoint divided by the rows stored
//   BM_ReadProbes        cost per row of a range read of one series through ReadProbes
// Probe values are realistic: random phase times, integer token counts and rate-limit headroom,
// 38-character request ids, an error message on one probe in fifty.

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "common/common.h"
#include "storage/storage.h"

namespace modelpulse::storage {
namespace {

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kStartMs = 1'800'000'000'000;

class BenchDir {
 public:
  BenchDir() {
    std::string pattern = "/tmp/mp-storage-bench-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "/tmp";
  }
  ~BenchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class ProbeFactory {
 public:
  explicit ProbeFactory(int targets, int64_t interval_ms = kMinuteMs)
      : targets_(targets), interval_ms_(interval_ms) {}

  // The i-th probe: targets round-robin, one probe an interval (a minute unless given) each.
  ProbeResult Make(int64_t i) {
    ProbeResult p;
    const int64_t target = i % targets_;
    p.target = "model-" + std::to_string(target) + "@provider-" + std::to_string(target % 7);
    p.labels = {{"target", p.target},     {"provider", "openai"},   {"cloud", "azure"},
                {"region", "westeurope"}, {"model", "gpt-4o-mini"}, {"tier", "prod"}};
    p.start_unix_ms = kStartMs + (i / targets_) * interval_ms_ + target * 97;
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    p.dns_seconds = 0.001 + 0.004 * unit(random_);
    p.connect_seconds = 0.005 + 0.02 * unit(random_);
    p.tls_seconds = 0.01 + 0.03 * unit(random_);
    p.first_byte_seconds = 0.1 + 0.3 * unit(random_);
    p.ttft_seconds = *p.first_byte_seconds + 0.05 * unit(random_);
    p.first_answer_token_seconds = p.ttft_seconds;
    p.last_token_seconds = *p.ttft_seconds + 0.2 + 0.3 * unit(random_);
    p.total_seconds = *p.last_token_seconds + 0.002;
    p.http_status = 200;
    p.input_tokens = 14;
    p.output_tokens = 8 + static_cast<int64_t>(unit(random_) * 8);
    p.inter_token_latency_seconds =
        (*p.last_token_seconds - *p.ttft_seconds) / static_cast<double>(*p.output_tokens - 1);
    p.output_tokens_per_second =
        static_cast<double>(*p.output_tokens) / (*p.last_token_seconds - *p.ttft_seconds);
    p.chunk_count = *p.output_tokens + 2;
    p.requests = {10000.0, static_cast<double>(9990 - i % 10), 0.006};
    p.tokens = {2000000.0, static_cast<double>(1999000 - i % 1000), 0.03 * unit(random_)};
    p.request_id = "chatcmpl-" + std::to_string(1000000000000000000LL + i * 7919) + "AbCdEfGhIj";
    if (i % 50 == 0) {
      p.outcome = Outcome::kThrottled;
      p.http_status = 429;
      p.retry_after_seconds = 2.0;
      p.error = "HTTP 429: Rate limit reached for gpt-4o-mini on requests per min";
    }
    return p;
  }

 private:
  int targets_;
  int64_t interval_ms_;
  std::mt19937_64 random_{42};
};

// Arg 0: rows appended per iteration; arg 1: batch_size.
void BM_WriterThroughput(benchmark::State& state) {
  BenchDir dir;
  StorageOptions options;
  options.path = dir.File("throughput.db");
  options.batch_size = static_cast<size_t>(state.range(1));
  options.max_queue = 10'000'000;
  SystemClock clock;
  auto store = Store::Open(options, clock);
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  ProbeFactory factory(200);
  const int64_t rows = state.range(0);
  // Build the records outside the timed region: we measure the store, not the factory.
  std::vector<ProbeResult> probes;
  int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    probes.clear();
    for (int64_t i = 0; i < rows; ++i) {
      probes.push_back(factory.Make(next++));
    }
    state.ResumeTiming();
    for (ProbeResult& p : probes) {
      (*store)->Append(std::move(p));
    }
    if (auto status = (*store)->Flush(); !status) {
      state.SkipWithError(status.error().ToString().c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * rows);
  const StorageStats stats = (*store)->Stats();
  state.counters["batches"] = static_cast<double>(stats.batches_written);
  state.counters["dropped"] = static_cast<double>(stats.rows_dropped);
}
BENCHMARK(BM_WriterThroughput)
    ->Args({100'000, 512})
    ->Args({100'000, 64})
    ->Args({100'000, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Bytes of each table and index (sqlite's dbstat: pages times page size) per stored row.
std::map<std::string, double> TableBytes(sqlite3* db, int64_t rows) {
  std::map<std::string, double> out;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name", -1, &s,
                         nullptr) != SQLITE_OK) {
    return out;
  }
  while (sqlite3_step(s) == SQLITE_ROW) {
    out[reinterpret_cast<const char*>(sqlite3_column_text(s, 0))] =
        static_cast<double>(sqlite3_column_int64(s, 1)) / static_cast<double>(rows);
  }
  sqlite3_finalize(s);
  return out;
}

// Arg 0: rows stored (200 targets); arg 1: seconds between one target's probes. Counters:
// bytes_per_probe is the file after the writer's last checkpoint over the rows (what a live
// database costs, pages as the interleaved inserts left them); probe_table_per_probe and
// rollups_per_probe and summaries_per_probe (migration 9) split it by table (dbstat); the vacuum_
// counters are the same after VACUUM (every page packed).
void BM_BytesPerProbe(benchmark::State& state) {
  const int64_t rows = state.range(0);
  double bytes_per_row = 0;
  double vacuum_bytes_per_row = 0;
  std::map<std::string, double> live;
  std::map<std::string, double> packed;
  double unused_share = 0;
  for (auto _ : state) {
    BenchDir dir;
    StorageOptions options;
    options.path = dir.File("size.db");
    options.max_queue = 10'000'000;
    SystemClock clock;
    {
      auto store = Store::Open(options, clock);
      if (!store) {
        state.SkipWithError(store.error().ToString().c_str());
        return;
      }
      ProbeFactory factory(200, state.range(1) * 1000);
      for (int64_t i = 0; i < rows; ++i) {
        (*store)->Append(factory.Make(i));
      }
      if (auto status = (*store)->Flush(); !status) {
        state.SkipWithError(status.error().ToString().c_str());
        return;
      }
    }  // closing the last connection checkpoints the WAL into the main file and removes it
    const auto size = std::filesystem::file_size(options.path);
    bytes_per_row = static_cast<double>(size) / static_cast<double>(rows);
    sqlite3* db = nullptr;
    if (sqlite3_open(options.path.c_str(), &db) == SQLITE_OK) {
      live = TableBytes(db, rows);
      // Page fill of the probe table as the interleaved inserts left it: the share of its pages'
      // bytes that hold no cell (SQLite's dbstat `unused`).
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db,
                             "SELECT SUM(unused) * 1.0 / SUM(pgsize) FROM dbstat "
                             "WHERE name = 'probe_rows'",
                             -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW) {
        unused_share = sqlite3_column_double(s, 0);
      }
      sqlite3_finalize(s);
      sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr);
      packed = TableBytes(db, rows);
    }
    sqlite3_close(db);
    vacuum_bytes_per_row =
        static_cast<double>(std::filesystem::file_size(options.path)) / static_cast<double>(rows);
  }
  // The probe rows are in `probes` before migration 8 and in `probe_rows` from it on.
  const std::string table = live.count("probe_rows") != 0 ? "probe_rows" : "probes";
  state.counters["bytes_per_probe"] = bytes_per_row;
  state.counters["probe_table_per_probe"] = live[table];
  state.counters["rollups_per_probe"] = live["rollups"];
  state.counters["summaries_per_probe"] = live["probe_summaries"];
  state.counters["probe_table_unused_share"] = unused_share;
  state.counters["vacuum_bytes_per_probe"] = vacuum_bytes_per_row;
  state.counters["vacuum_probe_table_per_probe"] = packed[table];
  state.counters["vacuum_rollups_per_probe"] = packed["rollups"];
  state.counters["vacuum_summaries_per_probe"] = packed["probe_summaries"];
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_BytesPerProbe)
    ->Args({288'000, 60})
    ->Args({288'000, 15})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// One series of 30 days at one probe a minute (43 200 rows) among 10 such series; each iteration
// reads the whole series. items/s is rows per second.
void BM_ReadProbes(benchmark::State& state) {
  constexpr int kTargets = 10;
  constexpr int64_t kRowsPerTarget = 30 * 24 * 60;
  BenchDir dir;
  StorageOptions options;
  options.path = dir.File("read.db");
  options.max_queue = 10'000'000;
  options.batch_size = 4096;
  SystemClock clock;
  auto store = Store::Open(options, clock);
  if (!store) {
    state.SkipWithError(store.error().ToString().c_str());
    return;
  }
  ProbeFactory factory(kTargets);
  for (int64_t i = 0; i < kTargets * kRowsPerTarget; ++i) {
    (*store)->Append(factory.Make(i));
  }
  if (auto status = (*store)->Flush(); !status) {
    state.SkipWithError(status.error().ToString().c_str());
    return;
  }
  const std::string target = factory.Make(3).target;
  size_t rows = 0;
  for (auto _ : state) {
    auto probes = (*store)->ReadProbes(target, INT64_MIN, INT64_MAX);
    if (!probes) {
      state.SkipWithError(probes.error().ToString().c_str());
      return;
    }
    rows = probes->size();
    benchmark::DoNotOptimize(probes->data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows));
  state.counters["rows"] = static_cast<double>(rows);
}
BENCHMARK(BM_ReadProbes)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace modelpulse::storage

BENCHMARK_MAIN();
