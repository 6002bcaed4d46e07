#include <doctest/doctest.h>

#include <string>

#include "storage/storage.h"
#include "tests/storage/test_support.h"

namespace modelpulse::storage {
namespace {

std::unique_ptr<Store> OpenStore(const std::string& path, const Clock& clock) {
  StorageOptions options;
  options.path = path;
  auto store = Store::Open(options, clock);
  REQUIRE_MESSAGE(store.has_value(), (store ? std::string() : store.error().ToString()));
  return std::move(*store);
}

TEST_CASE("state documents are replaced per key, listed per namespace and survive a reopen") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/state.db";
  ManualClock clock(1'800'000'000'000);
  {
    auto store = OpenStore(path, clock);
    REQUIRE(store->PutState("alerts", "group-b", "first").has_value());
    REQUIRE(store->PutState("alerts", "group-a", std::string("bin\0ary", 7)).has_value());
    REQUIRE(store->PutState("alerts", "group-b", "second").has_value());
    REQUIRE(store->PutState("other", "group-a", "elsewhere").has_value());
    REQUIRE(store->PutState("alerts", "gone", "x").has_value());
    REQUIRE(store->DeleteState("alerts", "gone").has_value());
  }
  auto store = OpenStore(path, clock);
  auto states = store->GetStates("alerts");
  REQUIRE(states.has_value());
  REQUIRE(states->size() == 2);
  CHECK((*states)[0].first == "group-a");
  CHECK((*states)[0].second == std::string("bin\0ary", 7));
  CHECK((*states)[1].first == "group-b");
  CHECK((*states)[1].second == "second");
  auto other = store->GetStates("other");
  REQUIRE(other.has_value());
  CHECK(other->size() == 1);
  auto none = store->GetStates("nothing");
  REQUIRE(none.has_value());
  CHECK(none->empty());
}

}  // namespace
}  // namespace modelpulse::storage
