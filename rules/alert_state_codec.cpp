#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "rules/manager.h"

namespace modelpulse::rules {
namespace {

using nlohmann::json;

constexpr const char* kAlertStateSpace = "alerts";

json OptionalMs(const std::optional<int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

std::optional<int64_t> MsFrom(const json& value) {
  if (value.is_number_integer()) {
    return value.get<int64_t>();
  }
  return std::nullopt;
}

json SnapshotToJson(const AlertStateSnapshot& s) {
  const Alert& a = s.alert;
  return {{"group", s.group},
          {"rule", s.rule},
          {"rule_labels", s.rule_labels},
          {"saved_at_ms", s.saved_at_ms},
          {"alert",
           {{"labels", a.labels},
            {"annotations", a.annotations},
            {"value", a.value},
            {"state", std::string(AlertStateName(a.state))},
            {"active_at_ms", a.active_at_ms},
            {"fired_at_ms", OptionalMs(a.fired_at_ms)},
            {"resolved_at_ms", OptionalMs(a.resolved_at_ms)},
            {"last_sent_at_ms", OptionalMs(a.last_sent_at_ms)},
            {"valid_until_ms", OptionalMs(a.valid_until_ms)},
            {"keep_firing_since_ms", OptionalMs(a.keep_firing_since_ms)}}}};
}

AlertStateSnapshot SnapshotFromJson(const json& j) {
  AlertStateSnapshot s;
  s.group = j.at("group").get<std::string>();
  s.rule = j.at("rule").get<std::string>();
  s.rule_labels = j.at("rule_labels").get<Labels>();
  s.saved_at_ms = j.at("saved_at_ms").get<int64_t>();
  const json& a = j.at("alert");
  s.alert.labels = a.at("labels").get<Labels>();
  s.alert.annotations = a.at("annotations").get<Labels>();
  s.alert.value = a.at("value").is_number() ? a.at("value").get<double>() : 0.0;
  const std::string state = a.at("state").get<std::string>();
  s.alert.state = state == "firing"    ? AlertState::kFiring
                  : state == "pending" ? AlertState::kPending
                                       : AlertState::kInactive;
  s.alert.active_at_ms = a.at("active_at_ms").get<int64_t>();
  s.alert.fired_at_ms = MsFrom(a.at("fired_at_ms"));
  s.alert.resolved_at_ms = MsFrom(a.at("resolved_at_ms"));
  s.alert.last_sent_at_ms = MsFrom(a.at("last_sent_at_ms"));
  s.alert.valid_until_ms = MsFrom(a.at("valid_until_ms"));
  s.alert.keep_firing_since_ms = MsFrom(a.at("keep_firing_since_ms"));
  return s;
}

// Alert states as one JSON document per group in the store's state table.
std::string EncodeSnapshots(const std::vector<AlertStateSnapshot>& alerts) {
  json doc = json::array();
  for (const AlertStateSnapshot& snapshot : alerts) {
    doc.push_back(SnapshotToJson(snapshot));
  }
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

class StoredAlertStates final : public AlertStateStore {
 public:
  StoredAlertStates(StateStore& store, AlertOutboxWriter* outbox)
      : store_(store), outbox_(outbox) {}

  Status SaveAlertStates(std::string_view group,
                         const std::vector<AlertStateSnapshot>& alerts) override {
    if (alerts.empty()) {
      return store_.DeleteState(kAlertStateSpace, group);
    }
    return store_.PutState(kAlertStateSpace, group, EncodeSnapshots(alerts));
  }

  Status SaveAlertStatesWithEvents(std::string_view group,
                                   const std::vector<AlertStateSnapshot>& alerts,
                                   const std::vector<AlertEvent>& events) override {
    if (outbox_ == nullptr || events.empty()) {
      return SaveAlertStates(group, alerts);
    }
    std::vector<std::string> encoded;
    encoded.reserve(events.size());
    for (const AlertEvent& event : events) {
      encoded.push_back(EncodeAlertEvent(event));
    }
    std::optional<std::string> doc;
    if (!alerts.empty()) {
      doc = EncodeSnapshots(alerts);
    }
    std::optional<std::string_view> value;
    if (doc) {
      value = *doc;
    }
    return outbox_->CommitStateWithEvents(kAlertStateSpace, group, value, encoded);
  }

  Result<std::vector<AlertStateSnapshot>> LoadAlertStates() override {
    auto docs = store_.GetStates(kAlertStateSpace);
    if (!docs) {
      return Fail(docs.error());
    }
    std::vector<AlertStateSnapshot> out;
    for (const auto& [group, text] : *docs) {
      try {
        for (const json& item : json::parse(text)) {
          out.push_back(SnapshotFromJson(item));
        }
      } catch (const json::exception& e) {
        // A damaged document costs that group its pending times, not the daemon its start.
        spdlog::warn("ignoring unreadable saved alert state of group \"{}\": {}", group, e.what());
      }
    }
    return out;
  }

 private:
  StateStore& store_;
  AlertOutboxWriter* outbox_;  // may be null
};

}  // namespace

std::unique_ptr<AlertStateStore> AlertStatesIn(StateStore& store, AlertOutboxWriter* outbox) {
  return std::make_unique<StoredAlertStates>(store, outbox);
}

}  // namespace modelpulse::rules
