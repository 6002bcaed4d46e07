// Test-only: writes probes into a store as fast as it can and reports each successful Flush as
// "committed <rows>" on stdout, so that store_crash_test can kill -9 it and check that every
// reported row survived. Bounded by a row count and a time limit.
//
// Usage: storage_crash_writer DB_PATH MAX_ROWS MAX_SECONDS

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/common.h"
#include "storage/storage.h"

int main(int argc, char** argv) {
  using modelpulse::ProbeResult;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB_PATH MAX_ROWS MAX_SECONDS\n", argv[0]);
    return 2;
  }
  modelpulse::storage::StorageOptions options;
  options.path = argv[1];
  options.batch_size = 256;
  const long long max_rows = std::atoll(argv[2]);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(std::atoll(argv[3]));
  modelpulse::SystemClock clock;
  auto store = modelpulse::storage::Store::Open(options, clock);
  if (!store) {
    std::fprintf(stderr, "open failed: %s\n", store.error().ToString().c_str());
    return 1;
  }
  const int64_t base_ms = clock.NowUnixMillis();
  long long appended = 0;
  while (appended < max_rows && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 500 && appended < max_rows; ++i, ++appended) {
      ProbeResult p;
      p.target = "crash-" + std::to_string(appended % 4);
      p.labels = {{"target", p.target}, {"provider", "openai"}, {"model", "gpt-4o-mini"}};
      p.start_unix_ms = base_ms + appended / 4;
      p.total_seconds = 0.5;
      p.ttft_seconds = 0.25;
      p.http_status = 200;
      p.output_tokens = 16;
      p.request_id = "req-" + std::to_string(appended);
      (*store)->Append(std::move(p));
    }
    if (auto status = (*store)->Flush(); !status) {
      std::fprintf(stderr, "flush failed: %s\n", status.error().ToString().c_str());
      return 1;
    }
    std::printf("committed %lld\n", appended);
    std::fflush(stdout);
  }
  return 0;
}
