// The notification outbox on a real SQLite file: alert states and their events commit together,
// order is kept and ids are never reused, across reopening the database.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include "common/alert_event.h"
#include "storage/internal/schema.h"
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
  REQUIRE(store->CommitStateWithEvents("alerts", "g", std::string_view("state-1"), {"e1", "e2"}));
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

namespace modelpulse::storage {
namespace {

int64_t CountRows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  const int64_t value = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

AlertEvent Page(int64_t starts, bool resolved, int64_t ends) {
  AlertEvent event;
  event.labels = {{"alertname", "SLOErrorBudgetBurn"}, {"slo", "s"}};
  event.starts_at_ms = starts;
  event.ends_at_ms = ends;
  event.resolved = resolved;
  return event;
}

// alert_events is a queue the notifier empties; alert_history (migration 7) is what a report
// reads afterwards: one row per alert and firing interval, resolved once it resolved.
TEST_CASE("alert history keeps one row per firing interval after the queue is emptied") {
  TempDir dir;
  ManualClock clock(1'000'000);
  const std::string path = dir.File("db");
  {
    auto store = OpenStore(path, clock);
    REQUIRE(store->CommitStateWithEvents("alerts", "g", std::string_view("s"),
                                         {EncodeAlertEvent(Page(10, false, 70))}));
    REQUIRE(store->CommitStateWithEvents("alerts", "g", std::string_view("s"),
                                         {EncodeAlertEvent(Page(10, false, 130)), "not json"}));
    REQUIRE(store->CommitStateWithEvents(
        "alerts", "g", std::string_view("s"),
        {EncodeAlertEvent(Page(10, true, 150)), EncodeAlertEvent(Page(500, false, 560))}));
    auto events = store->ReadEvents(10);
    REQUIRE(events);
    OutboxChange change;
    change.consume_events_through = events->back().id;
    REQUIRE(store->ApplyOutboxChange(change));
  }
  CHECK(CountRows(path, "SELECT count(*) FROM alert_events") == 0);
  CHECK(CountRows(path, "SELECT count(*) FROM alert_history") == 2);
  CHECK(CountRows(path, "SELECT ends_ms FROM alert_history WHERE starts_ms = 10") == 150);
  CHECK(CountRows(path, "SELECT resolved FROM alert_history WHERE starts_ms = 10") == 1);
  CHECK(CountRows(path, "SELECT resolved FROM alert_history WHERE starts_ms = 500") == 0);
}

TEST_CASE("migration 7 records the events still queued in a schema-5 database") {
  TempDir dir;
  ManualClock clock(1'000'000);
  const std::string path = dir.File("db");
  // A schema-5 database made by the real migrations, one event still queued.
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(MigrateTo(db, 5).has_value());
    const std::string body = EncodeAlertEvent(Page(10, false, 70));
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO alert_events (created_ms, body) VALUES (5, ?1)", -1,
                               &s, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(s, 1, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(s) == SQLITE_DONE);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  CHECK(CountRows(path, "PRAGMA user_version") == 5);
  CHECK(CountRows(path, "SELECT count(*) FROM alert_events") == 1);
  { auto store = OpenStore(path, clock); }
  CHECK(CountRows(path, "PRAGMA user_version") == LatestSchemaVersion());
  CHECK(CountRows(path, "SELECT count(*) FROM alert_history") == 1);
  CHECK(CountRows(path, "SELECT starts_ms FROM alert_history") == 10);
}

}  // namespace
}  // namespace modelpulse::storage
