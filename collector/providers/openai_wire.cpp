// The OpenAI chat-completions wire format shared by several adapters. protocols.md §0.1, §1, §2.2.

#include "collector/internal/providers/openai_wire.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "collector/internal/providers/provider_util.h"
#include "collector/internal/sse.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

// Unlike StringField (provider_util.h), an integer counts as its digits: vLLM and Azure's legacy
// bodies send numeric error codes.
std::string StringOrIntegerField(const json& object, const char* key) {
  if (!object.is_object()) {
    return {};
  }
  auto it = object.find(key);
  if (it == object.end()) {
    return {};
  }
  if (it->is_string()) {
    return it->get<std::string>();
  }
  if (it->is_number_integer()) {
    return std::to_string(it->get<int64_t>());
  }
  return {};
}

// The error object of a body, in the current shape {"error":{...}} or vLLM's old top-level
// {"object":"error","message":...,"code":<int>}. Null when the body carries no error.
const json* FindErrorObject(const json& body) {
  if (!body.is_object()) {
    return nullptr;
  }
  if (auto it = body.find("error"); it != body.end() && !it->is_null()) {
    return &*it;
  }
  if (StringOrIntegerField(body, "object") == "error") {
    return &body;
  }
  return nullptr;
}

// "rate_limit_exceeded: Rate limit reached ..." from an error object (or a bare string).
std::string DescribeError(const json& error) {
  if (error.is_string()) {
    return error.get<std::string>();
  }
  std::string code = StringOrIntegerField(error, "code");
  if (code.empty()) {
    code = StringOrIntegerField(error, "type");
  }
  std::string message = StringOrIntegerField(error, "message");
  if (code.empty()) {
    return message;
  }
  return message.empty() ? code : code + ": " + message;
}

void ReportUsage(const json& usage, StreamEvents& events) {
  ReportUsageFields(usage, "prompt_tokens", "completion_tokens", events);
}

void ReportText(const json& holder, StreamEvents& events) {
  if (!holder.is_object()) {
    return;
  }
  // Reasoning models stream their thinking as delta.reasoning (OpenRouter, Groq, vLLM >= 0.9)
  // or delta.reasoning_content (DeepSeek, older vLLM) before the answer.
  for (const char* key : {"reasoning_content", "reasoning"}) {
    if (auto it = holder.find(key); it != holder.end() && it->is_string()) {
      const auto& text = it->get_ref<const std::string&>();
      if (!text.empty()) {
        events.OnReasoning(text);
      }
    }
  }
  if (auto it = holder.find("content"); it != holder.end() && it->is_string()) {
    const auto& text = it->get_ref<const std::string&>();
    if (!text.empty()) {
      events.OnContent(text);
    }
  }
}

// One chat.completion.chunk (streaming) or chat.completion (not streaming) object.
void ReportCompletionObject(const json& body, const char* message_key, StreamEvents& events) {
  if (const json* error = FindErrorObject(body)) {
    events.OnError({Outcome::kInvalidResponse, "error in 200 response: " + DescribeError(*error)});
    return;
  }
  if (!body.is_object()) {
    events.OnMalformed("response is not a JSON object");
    return;
  }
  if (auto choices = body.find("choices"); choices != body.end() && choices->is_array()) {
    for (const json& choice : *choices) {
      if (choice.is_object()) {
        if (auto holder = choice.find(message_key); holder != choice.end()) {
          ReportText(*holder, events);
        }
      }
    }
  }
  // Groq puts usage in the finish_reason chunk, both top level and under x_groq; others in a
  // final chunk with "choices":[]. Either way, the last report wins.
  if (auto usage = body.find("usage"); usage != body.end() && usage->is_object()) {
    ReportUsage(*usage, events);
  } else if (auto groq = body.find("x_groq"); groq != body.end() && groq->is_object()) {
    if (auto groq_usage = groq->find("usage"); groq_usage != groq->end()) {
      ReportUsage(*groq_usage, events);
    }
  }
}

class OpenAIStreamDecoder final : public StreamDecoder {
 public:
  explicit OpenAIStreamDecoder(const DecoderLimits& limits)
      : sse_(limits.max_line_bytes, limits.max_event_bytes) {}

  void Feed(std::string_view bytes, StreamEvents& events) override {
    FeedSse(sse_, bytes, events, [&](const SseEvent& event) { OnEvent(event, events); });
  }

  void Finish(StreamEvents& /*events*/) override { sse_.Finish(); }

 private:
  void OnEvent(const SseEvent& event, StreamEvents& events) {
    if (done_) {
      return;  // anything after [DONE] is not part of the answer
    }
    // The SDK's rule: data starting with [DONE] ends the stream.
    if (event.data.compare(0, 6, "[DONE]") == 0) {
      done_ = true;
      events.OnTerminator();
      return;
    }
    events.OnChunk();
    json chunk = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (chunk.is_discarded()) {
      events.OnMalformed("malformed JSON in stream chunk");
      return;
    }
    if (event.type == "error" && FindErrorObject(chunk) == nullptr) {
      events.OnError({Outcome::kInvalidResponse, "error event in stream"});
      return;
    }
    ReportCompletionObject(chunk, "delta", events);
  }

  SseDecoder sse_;
  bool done_ = false;
};

}  // namespace

std::unique_ptr<StreamDecoder> NewOpenAIStreamDecoder(const DecoderLimits& limits) {
  return std::make_unique<OpenAIStreamDecoder>(limits);
}

void ParseOpenAIBody(std::string_view body, StreamEvents& events) {
  events.OnChunk();
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    events.OnMalformed("malformed JSON body");
    return;
  }
  ReportCompletionObject(parsed, "message", events);
  if (FindErrorObject(parsed) == nullptr && parsed.is_object()) {
    events.OnTerminator();
  }
}

OpenAIErrorFields ReadOpenAIError(std::string_view body) {
  OpenAIErrorFields fields;
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    fields.message = std::string(body.substr(0, 200));
    return fields;
  }
  const json* error = FindErrorObject(parsed);
  if (error == nullptr) {
    return fields;
  }
  fields.code = StringOrIntegerField(*error, "code");
  fields.type = StringOrIntegerField(*error, "type");
  fields.message =
      error->is_string() ? error->get<std::string>() : StringOrIntegerField(*error, "message");
  if (error->is_object()) {
    // OpenRouter wraps the upstream's error: its text says more than "Provider returned error".
    if (auto metadata = error->find("metadata"); metadata != error->end()) {
      std::string upstream = StringOrIntegerField(*metadata, "raw");
      if (!upstream.empty()) {
        fields.message += " (" + upstream + ")";
      }
    }
  }
  return fields;
}

std::string DescribeHttpError(int status, const OpenAIErrorFields& fields) {
  const std::string& label =
      fields.code.empty() || fields.code == std::to_string(status) ? fields.type : fields.code;
  std::string text = "HTTP " + std::to_string(status);
  if (!label.empty()) {
    text += " " + label;
  }
  if (!fields.message.empty()) {
    text += ": " + fields.message;
  }
  return text;
}

}  // namespace modelpulse::collector
