// Recording-rule outputs as the daemon wires them (daemon.cpp): the rule engine writes every
// group's outputs into storage's RecordedStore and reads the probe series and the recorded ones
// as one source, so an output survives a restart and later rules read it over windows longer
// than the engine's memory.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include "common/recorded_series.h"
#include "rules/manager.h"
#include "rules/promql.h"
#include "storage/recorded_store.h"
#include "storage/series_source.h"
#include "storage/storage.h"

namespace modelpulse {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kStart = 1'800'000'000'000;

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/mp-recorded-XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::filesystem::path path;
};

// One daemon's worth of storage and rules over `db`, with or without the recorded store.
struct Instance {
  Instance(const std::string& db, const std::string& rule_file, const Clock& clock, bool persist) {
    storage::StorageOptions options;
    options.path = db;
    auto opened = storage::Store::Open(options, clock);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    probes = std::make_unique<storage::ProbeSeriesSource>(store.get(), Millis(2 * kHour),
                                                          clock.NowUnixMillis());
    storage::RecordedStoreOptions recorded_options;
    recorded_options.path = db;
    auto opened_recorded = storage::RecordedStore::Open(recorded_options, clock);
    REQUIRE(opened_recorded.has_value());
    recorded = std::move(*opened_recorded);
    all = std::make_unique<SourceUnion>(*probes, *recorded);
    states = rules::AlertStatesIn(*store);
    rules::RuleManagerOptions rule_options;
    rule_options.rule_files = {rule_file};
    rule_options.evaluation_interval = Millis(kMinute);
    rule_options.recorded = persist ? recorded.get() : nullptr;
    auto created = rules::RuleManager::Create(
        rule_options, persist ? static_cast<const SampleSource&>(*all) : *probes, *states, clock);
    REQUIRE_MESSAGE(created.has_value(), (created ? "" : created.error().ToString()));
    manager = std::move(*created);
  }
  // What `modelpulse query` and the API answer: an instant query over the union.
  double Query(const std::string& expr, int64_t at_ms) const {
    auto query = rules::Query::Parse(expr);
    REQUIRE(query.has_value());
    auto value = query->Evaluate(*all, at_ms);
    REQUIRE(value.has_value());
    const auto* vector = std::get_if<rules::Vector>(&*value);
    REQUIRE(vector != nullptr);
    if (vector->empty()) {
      return -1;
    }
    REQUIRE(vector->size() == 1);
    return vector->front().value;
  }

  std::unique_ptr<storage::Store> store;
  std::unique_ptr<storage::ProbeSeriesSource> probes;
  std::unique_ptr<storage::RecordedStore> recorded;
  std::unique_ptr<SourceUnion> all;
  std::unique_ptr<rules::AlertStateStore> states;
  std::unique_ptr<rules::RuleManager> manager;
};

TEST_CASE("a recording rule's output survives a restart and is read over 3 hours") {
  TempDir dir;
  const std::string db = (dir.path / "mp.db").string();
  const std::string rules = (dir.path / "rules.yaml").string();
  // `a` records once a minute; `count_3h` reads a's last 3 hours, longer than the engine's
  // memory of recorded series when a store keeps them (1 h) and than its time since a restart.
  std::ofstream(rules) << R"(groups:
  - name: record
    rules:
      - record: a
        expr: vector(1)
      - record: a_count_1h
        expr: count_over_time(a[1h])
  - name: long
    rules:
      - record: count_3h
        expr: count_over_time(a[3h])
)";
  ManualClock clock(kStart);
  {
    Instance first(db, rules, clock, true);
    for (int i = 0; i < 4 * 60; ++i) {
      first.manager->EvaluateDue(clock.NowUnixMillis());
      clock.Advance(kMinute);
    }
    // Inclusive bounds: the 3 h window at the last evaluation holds 181 minutes' samples.
    CHECK(first.Query("count_3h", clock.NowUnixMillis() - kMinute) == 181);
    // A rule reads the output the rule before it in the same group wrote at the same time.
    CHECK(first.Query("a_count_1h", clock.NowUnixMillis() - kMinute) == 61);
  }
  // The restart: memory is empty, the stored outputs are not.
  Instance second(db, rules, clock, true);
  const int64_t restarted = clock.NowUnixMillis();
  CHECK(second.Query("count_over_time(a[3h])", restarted) == 180);
  CHECK(second.Query("a", restarted - kMinute) == 1);
  second.manager->EvaluateDue(restarted);
  CHECK(second.Query("count_3h", restarted) == 181);
  CHECK(second.Query("count_over_time(count_3h[4h])", restarted) == 4 * 60 + 1);
}

TEST_CASE("without the store, recorded outputs are gone after a restart") {
  TempDir dir;
  const std::string db = (dir.path / "mp.db").string();
  const std::string rules = (dir.path / "rules.yaml").string();
  std::ofstream(rules) << "groups:\n  - name: g\n    rules:\n      - record: a\n"
                          "        expr: vector(1)\n";
  ManualClock clock(kStart);
  {
    Instance first(db, rules, clock, false);
    for (int i = 0; i < 10; ++i) {
      first.manager->EvaluateDue(clock.NowUnixMillis());
      clock.Advance(kMinute);
    }
  }
  Instance second(db, rules, clock, false);
  CHECK(second.Query("count_over_time(a[1h])", clock.NowUnixMillis()) == -1);
}

}  // namespace
}  // namespace modelpulse
