#ifndef MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_OPENAI_WIRE_H_
#define MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_OPENAI_WIRE_H_

// The OpenAI chat-completions wire format, shared by every adapter that speaks it (OpenAI and
// compatible hosts, Azure OpenAI; Bedrock's and Vertex's OpenAI-compatible endpoints may reuse
// it). Private to the collector. No JSON headers here.

#include <memory>
#include <string>
#include <string_view>

#include "collector/internal/providers/provider.h"

namespace modelpulse::collector {

// A decoder for a chat.completion.chunk SSE stream ending in `data: [DONE]`. Chunks without
// choices (Azure's prompt_filter_results chunk, the include_usage chunk) are chunks, never tokens.
std::unique_ptr<StreamDecoder> NewOpenAIStreamDecoder(const DecoderLimits& limits);

// A complete chat.completion body: content, usage, an error object, terminator when complete.
void ParseOpenAIBody(std::string_view body, StreamEvents& events);

// The fields of an error body in OpenAI's shape {"error":{"message","type","param","code"}}
// (or vLLM's old top-level shape). `code` is a string even where the provider sent a number
// (Azure's legacy "429", vLLM's 400). A body that is not JSON leaves code and type empty and puts
// its first 200 bytes in `message`.
struct OpenAIErrorFields {
  std::string code;
  std::string type;
  std::string message;
};
OpenAIErrorFields ReadOpenAIError(std::string_view body);

// "HTTP 429 rate_limit_exceeded: <message>": the label is `code`, or `type` when the code is
// empty or only repeats the status.
std::string DescribeHttpError(int status, const OpenAIErrorFields& fields);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_OPENAI_WIRE_H_
