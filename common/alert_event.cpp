#include "common/alert_event.h"

#include <nlohmann/json.hpp>

namespace modelpulse {

using nlohmann::json;

std::string EncodeAlertEvent(const AlertEvent& event) {
  const json doc = {{"labels", event.labels},
                    {"annotations", event.annotations},
                    {"starts_at_ms", event.starts_at_ms},
                    {"ends_at_ms", event.ends_at_ms},
                    {"resolved", event.resolved},
                    {"generator_url", event.generator_url}};
  // Label values come from probed data; invalid UTF-8 must not make the state change fail.
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<AlertEvent> DecodeAlertEvent(std::string_view text) {
  try {
    const json doc = json::parse(text);
    AlertEvent event;
    event.labels = doc.at("labels").get<Labels>();
    event.annotations = doc.at("annotations").get<Labels>();
    event.starts_at_ms = doc.at("starts_at_ms").get<int64_t>();
    event.ends_at_ms = doc.at("ends_at_ms").get<int64_t>();
    event.resolved = doc.at("resolved").get<bool>();
    event.generator_url = doc.at("generator_url").get<std::string>();
    return event;
  } catch (const json::exception& e) {
    return Fail(Error::Parse(std::string("unreadable alert event: ") + e.what()));
  }
}

}  // namespace modelpulse
