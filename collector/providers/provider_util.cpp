// Pieces shared by several provider adapters; see provider_util.h.

#include "collector/providers/provider_util.h"

#include <nlohmann/json.hpp>

namespace modelpulse::collector {

using nlohmann::json;

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) {
    return {};
  }
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> IntField(const json& object, const char* key) {
  if (!object.is_object()) {
    return std::nullopt;
  }
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) {
    return std::nullopt;
  }
  return it->is_number_float() ? static_cast<int64_t>(it->get<double>()) : it->get<int64_t>();
}

void ReportUsageFields(const json& usage, const char* input_key, const char* output_key,
                       StreamEvents& events) {
  if (!usage.is_object()) {
    return;
  }
  Usage out;
  out.input_tokens = IntField(usage, input_key);
  if (output_key != nullptr) {
    out.output_tokens = IntField(usage, output_key);
  }
  if (out.input_tokens || out.output_tokens) {
    events.OnUsage(out);
  }
}

void FeedSse(SseDecoder& sse, std::string_view bytes, StreamEvents& events,
             const SseDecoder::EventCallback& on_event) {
  if (sse.status() != SseDecoder::Status::kOk) {
    return;  // reported when it failed
  }
  const SseDecoder::Status status = sse.Feed(bytes, on_event);
  if (status != SseDecoder::Status::kOk) {
    events.OnMalformed(status == SseDecoder::Status::kLineTooLong ? "SSE line over the limit"
                                                                  : "SSE event over the limit");
  }
}

}  // namespace modelpulse::collector
