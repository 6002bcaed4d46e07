// OpenAI chat completions, as spoken by api.openai.com and by OpenAI-compatible hosts
// (OpenRouter, Groq, Together, Fireworks, vLLM, Ollama's /v1, Mistral, DeepSeek).
// protocols.md §1 and §7.

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "collector/http_util.h"
#include "collector/providers/provider.h"
#include "collector/sse.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

std::string StringField(const json& object, const char* key) {
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

std::optional<int64_t> IntField(const json& object, const char* key) {
  if (!object.is_object()) {
    return std::nullopt;
  }
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) {
    return std::nullopt;
  }
  if (it->is_number_float()) {
    return static_cast<int64_t>(it->get<double>());
  }
  return it->get<int64_t>();
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
  if (StringField(body, "object") == "error") {
    return &body;
  }
  return nullptr;
}

// "rate_limit_exceeded: Rate limit reached ..." from an error object (or a bare string).
std::string DescribeError(const json& error) {
  if (error.is_string()) {
    return error.get<std::string>();
  }
  std::string code = StringField(error, "code");
  if (code.empty()) {
    code = StringField(error, "type");
  }
  std::string message = StringField(error, "message");
  if (code.empty()) {
    return message;
  }
  return message.empty() ? code : code + ": " + message;
}

void ReportUsage(const json& usage, StreamEvents& events) {
  if (!usage.is_object()) {
    return;
  }
  Usage out;
  out.input_tokens = IntField(usage, "prompt_tokens");
  out.output_tokens = IntField(usage, "completion_tokens");
  if (out.input_tokens || out.output_tokens) {
    events.OnUsage(out);
  }
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
    if (failed_) {
      return;
    }
    const SseDecoder::Status status =
        sse_.Feed(bytes, [&](const SseEvent& event) { OnEvent(event, events); });
    if (status != SseDecoder::Status::kOk) {
      failed_ = true;
      events.OnMalformed(status == SseDecoder::Status::kLineTooLong ? "SSE line over the limit"
                                                                    : "SSE event over the limit");
    }
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
  bool failed_ = false;
};

class OpenAIAdapter final : public ProviderAdapter {
 public:
  explicit OpenAIAdapter(Provider provider) : provider_(provider) {}

  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& /*context*/) const override {
    if (target.base_url.empty()) {
      return Fail(Error::InvalidArgument("target has no base_url"));
    }
    HttpRequest request;
    std::string base = target.base_url;
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    request.url = base + "/chat/completions";
    request.headers.emplace_back("Content-Type", Secret("application/json"));
    request.headers.emplace_back("Accept",
                                 Secret(target.stream ? "text/event-stream" : "application/json"));
    if (!target.api_key.empty()) {
      request.headers.emplace_back("Authorization", Secret("Bearer " + target.api_key.Reveal()));
    }
    for (const auto& header : target.headers) {
      request.headers.push_back(header);
    }
    json body = {
        {"model", target.provider_model.empty() ? target.model : target.provider_model},
        {"messages", json::array({{{"role", "user"}, {"content", target.prompt}}})},
    };
    // OpenAI's reasoning models reject max_tokens; most compatible hosts only know max_tokens.
    body[provider_ == Provider::kOpenAI ? "max_completion_tokens" : "max_tokens"] =
        target.max_tokens;
    if (target.stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }
    request.body = body.dump();
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return std::make_unique<OpenAIStreamDecoder>(limits);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
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

  ProviderError ClassifyHttpError(int status, const HttpHeaders& /*headers*/,
                                  std::string_view body) const override {
    json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    std::string code;
    std::string type;
    std::string message;
    if (!parsed.is_discarded()) {
      if (const json* error = FindErrorObject(parsed)) {
        code = StringField(*error, "code");
        type = StringField(*error, "type");
        message = error->is_string() ? error->get<std::string>() : StringField(*error, "message");
        if (error->is_object()) {
          // OpenRouter wraps the upstream's error: its text says more than "Provider returned
          // error".
          if (auto metadata = error->find("metadata"); metadata != error->end()) {
            std::string upstream = StringField(*metadata, "raw");
            if (!upstream.empty()) {
              message += " (" + upstream + ")";
            }
          }
        }
      }
    } else {
      message = std::string(body.substr(0, 200));
    }
    std::string label = code.empty() || code == std::to_string(status) ? type : code;
    std::string text = "HTTP " + std::to_string(status);
    if (!label.empty()) {
      text += " " + label;
    }
    if (!message.empty()) {
      text += ": " + message;
    }
    return {Classify(status, code, type, message), text};
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    HeaderInfo info;
    ReadOpenAIRateLimits(headers, info.requests, info.tokens);
    info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    // OpenAI and Groq send x-request-id (req_<hex>, or bare hex in older recordings); the
    // others are what compatible hosts and gateways use.
    info.request_id = ReadRequestId(
        headers, {"x-request-id", "request-id", "mistral-correlation-id", "x-ds-trace-id",
                  "apim-request-id", "x-amzn-requestid"});
    return info;
  }

 private:
  static Outcome Classify(int status, const std::string& code, const std::string& type,
                          const std::string& message) {
    if (code == "insufficient_quota" || type == "insufficient_quota") {
      return Outcome::kQuotaExhausted;
    }
    if (ContainsIgnoreCase(message, "currently overloaded") ||
        ContainsIgnoreCase(message, "high demand") || code == "overloaded" ||
        type == "overloaded_error") {
      return Outcome::kOverloaded;
    }
    if (status == 429) {
      return Outcome::kThrottled;
    }
    if (status == 401 || status == 403) {
      return Outcome::kAuth;
    }
    if (status == 402) {
      return Outcome::kQuotaExhausted;  // OpenRouter: credits spent
    }
    if (status == 503) {
      return Outcome::kOverloaded;
    }
    if (status >= 400 && status < 500) {
      return Outcome::kClientError;
    }
    if (status >= 500 && status < 600) {
      return Outcome::kServerError;
    }
    return Outcome::kInvalidResponse;  // 1xx/3xx where a final answer was expected
  }

  Provider provider_;
};

}  // namespace

std::unique_ptr<ProviderAdapter> NewOpenAIAdapter(Provider provider) {
  return std::make_unique<OpenAIAdapter>(provider);
}

}  // namespace modelpulse::collector
