// The modelpulse_slo_* figures (rules::SloTracker) over a long history, through the daemon's
// own read path (storage::Store + storage::ProbeSeriesSource: rollups for whole hours). Uses
// the database rules_bench generates (bench/README.md), e.g.
//
//   slo_bench /tmp/h-slo-bench/mp-rules-bench-t200-d30-i15-v1.db [rounds]
//
// and prints the time of each Compute (the first fills the latency SLO's hour cache).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "rules/slo_tracker.h"
#include "storage/series_source.h"
#include "storage/storage.h"

int main(int argc, char** argv) {
  using namespace modelpulse;
  if (argc < 2) {
    std::fprintf(stderr, "usage: slo_bench DB [rounds]\n");
    return 2;
  }
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  SystemClock clock;
  storage::StorageOptions options;
  options.path = argv[1];
  options.retention = Millis(0);
  auto store = storage::Store::Open(options, clock);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().ToString().c_str());
    return 1;
  }
  // The generator writes every target over the same span: the first one's last probe is "now".
  int64_t now = 0;
  auto targets = (*store)->ListTargets();
  if (!targets || targets->empty()) {
    std::fprintf(stderr, "no targets\n");
    return 1;
  }
  auto last = (*store)->ReadField(targets->front().id, ProbeField::kSuccess, 0, INT64_MAX);
  if (last && !last->empty()) {
    now = last->back().t_ms + 1;
  }
  storage::ProbeSeriesSource source(store->get(), Millis(0), INT64_MAX);
  std::vector<rules::SloSpec> slos(4);
  slos[0].name = "all-availability";  // every target: 200 series
  slos[1].name = "model-0-availability";
  slos[1].selector = {{"model", "model-0"}};
  slos[2].name = "model-0-ttft";
  slos[2].selector = {{"model", "model-0"}};
  slos[2].kind = rules::SloSpec::Kind::kLatency;
  slos[2].threshold_seconds = 0.5;
  slos[2].objective_percent = 95;
  slos[3].name = "azure-throttling";
  slos[3].selector = {{"cloud", "azure"}};
  slos[3].kind = rules::SloSpec::Kind::kThrottleFree;
  slos[3].objective_percent = 99;
  rules::SloTracker tracker(slos, source);
  for (int round = 0; round < rounds; ++round) {
    const auto started = std::chrono::steady_clock::now();
    auto computed = tracker.Compute(now + round * 15'000);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    if (!computed) {
      std::fprintf(stderr, "%s\n", computed.error().ToString().c_str());
      return 1;
    }
    std::printf("round %d: %.1f ms\n", round, ms);
    if (round == 0) {
      for (const rules::SloStatus& s : *computed) {
        std::printf("  %-22s slo window: %lld events, %lld bad; 1h: %lld/%lld\n",
                    s.spec.name.c_str(), static_cast<long long>(s.slo_window.events),
                    static_cast<long long>(s.slo_window.bad), static_cast<long long>(s.burn[2].bad),
                    static_cast<long long>(s.burn[2].events));
      }
    }
  }
  return 0;
}
