// The notification outbox on a real SQLite file: alert states and their events commit together,
// order is kept and ids are never reused, across reopening the database.

#include <doctest/doctest.h>

#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

using testing::TempDir;

std::unique_ptr<Store> OpenStore(const std::string& path, const Clock& clock) {
  StorageOptions options;
  options.path = path;
  auto store = Store::Open(options, clock);
  REQUIRE(store);
  return std::move(*store);
}

TEST_CASE("alert state and its events are committed together and read back in order") {
  TempDir dir;
  ManualClock clock(1'000'000);
  auto store = OpenStore(dir.File("db"), clock);
  REQUIRE(store->CommitStateWithEvents("alerts", "g", std::string_view("state-1"),
                                       {"e1", "e2"}));
  clock.Advance(5);
  REQUIRE(store->CommitStateWithEvents("alerts", "g", std::nullopt, {"e3"}));
  auto states = store->GetStates("alerts");
  REQUIRE(states);
  CHECK(states->empty());  // nullopt deleted the document
  auto events = store->ReadEvents(10);
  REQUIRE(events);
  REQUIRE(events->size() == 3);
  CHECK((*events)[0].body == "e1");
  CHECK((*events)[2].body == "e3");
  CHECK((*events)[2].created_ms == 1'000'005);
  CHECK((*events)[0].id < (*events)[1].id);
  auto limited = store->ReadEvents(2);
  REQUIRE(limited);
  CHECK(limited->size() == 2);
}

TEST_CASE("an outbox change moves events into deliveries atomically and ids are never reused") {
  TempDir dir;
  ManualClock clock(1'000'000);
  int64_t last_id = 0;
  {
    auto store = OpenStore(dir.File("db"), clock);
    REQUIRE(store->CommitStateWithEvents("alerts", "g", std::string_view("s"), {"e1", "e2"}));
    auto events = store->ReadEvents(10);
    REQUIRE(events);
    OutboxChange change;
    change.consume_events_through = events->front().id;
    change.insert = {{0, "hook", "k", "key-1", "body-1", 5, 0, 5},
                     {0, "hook", "k", "key-2", "body-2", 6, 0, 6}};
    change.state_space = "alerting_groups";
    change.states = {{"hook\x1fk", std::string("group")}};
    auto ids = store->ApplyOutboxChange(change);
    REQUIRE(ids);
    REQUIRE(ids->size() == 2);
    CHECK((*ids)[0] < (*ids)[1]);
    last_id = (*ids)[1];
    OutboxChange done;
    done.remove = {(*ids)[1]};
    done.update = {{(*ids)[0], "", "", "", "", 0, 3, 99}};
    REQUIRE(store->ApplyOutboxChange(done));
  }
  auto store = OpenStore(dir.File("db"), clock);
  auto events = store->ReadEvents(10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().body == "e2");
  auto deliveries = store->ReadDeliveries();
  REQUIRE(deliveries);
  REQUIRE(deliveries->size() == 1);
  CHECK(deliveries->front().idempotency_key == "key-1");
  CHECK(deliveries->front().body == "body-1");
  CHECK(deliveries->front().attempts == 3);
  CHECK(deliveries->front().next_attempt_ms == 99);
  auto groups = store->GetStates("alerting_groups");
  REQUIRE(groups);
  REQUIRE(groups->size() == 1);
  CHECK(groups->front().second == "group");
  // The deleted id is not handed out again: order stays the insertion order.
  OutboxChange more;
  more.insert = {{0, "hook", "k", "key-3", "body-3", 7, 0, 7}};
  auto ids = store->ApplyOutboxChange(more);
  REQUIRE(ids);
  CHECK(ids->front() > last_id);
}

}  // namespace
}  // namespace modelpulse::storage
