#ifndef MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_UTIL_H_
#define MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_UTIL_H_

// Pieces several simulator protocols render or read in the same way: token estimates, the
// generated answer, time conversions, a Call's extras, and the chat-completions request fields
// that OpenAI and Azure (which takes OpenAI's request body) both read. A provider's own rules
// (bodies, headers, error texts) stay in its protocol file. Shares nothing with collector/
// (DESIGN.md §2). Private to the simulator. No JSON headers here: the JSON readers are templates
// over the caller's nlohmann type (OpenAI keeps insertion order, Azure sorts keys).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "simulator/internal/protocol.h"

namespace modelpulse::simulator {

// About 4 characters per token, rounded up.
int64_t EstimateTextTokens(std::string_view text);

// The answer of `tokens` generated tokens: TokenText(0) + ... + TokenText(tokens - 1).
std::string ContentText(int64_t tokens);

// Whole seconds, rounded up, at least 1 (retry-after and reset values).
int64_t CeilSeconds(Micros d);

// Whole milliseconds, rounded down.
int64_t Millis(Micros d);

// The extra `key` Parse left for Render (Call::extras), or `fallback` when it left none.
std::string Extra(const Call& call, const std::string& key, std::string fallback = {});

// One provider's encodings of an answer. The behaviours that differ between providers only in
// their bytes (ok, empty, truncated, malformed, hang, hang after headers) are shaped once, in
// RenderAnswer, from these.
struct AnswerEncoding {
  // The whole answer (the plan's output tokens) as one body.
  std::function<Reply()> body;
  // The answer streamed: `tokens` tokens, then the provider's ending.
  std::function<Reply(int64_t tokens)> stream;
  // `tokens` tokens, then the stream stops as this provider's truncated stream does.
  std::function<Reply(int64_t tokens)> truncated_stream;
  // Turns a complete stream into this provider's malformed one.
  std::function<void(Reply&)> malform_stream;
  // A stream that hangs after its headers: its content type and what it sends first (none when
  // empty).
  std::string stream_content_type;
  std::function<std::vector<TimedChunk>()> opening_chunks;
};

// The behaviours that are errors, which each protocol words itself: what RenderReply leaves to
// the protocol.
enum class ErrorBehaviour {
  kRateLimit,
  kInsufficientQuota,
  kOverloaded503,
  kServerError500,
  kUnauthorized401,
  kErrorIn200,
  kOverloadedMidstream,
  kQuotaPerDay,
  kExceptionMidstream,
  kModelNotReady,
};

// The reply to `plan`. An answer-shaped behaviour is shaped here from `encoding`: ok and empty
// (the whole answer), truncated (half the tokens, or half the body), malformed (a broken stream,
// or a body without its last byte), hang and hang after headers. An error is `render_error`'s.
Reply RenderReply(const Call& call, const Plan& plan, const AnswerEncoding& encoding,
                  const std::function<Reply(ErrorBehaviour)>& render_error);

// RenderReply's reply for an answer-shaped behaviour; nullopt for an error.
std::optional<Reply> RenderAnswer(const Call& call, const Plan& plan,
                                  const AnswerEncoding& encoding);

// Roughly what tiktoken gives for chat messages: 4 tokens of framing per message, 3 for the reply
// priming, and about 4 characters per token of string content or text parts.
template <typename JsonT>
int64_t EstimateChatPromptTokens(const JsonT& messages) {
  int64_t total = 3;
  for (const auto& message : messages) {
    total += 4;
    if (!message.is_object())
      continue;
    const auto content = message.find("content");
    if (content == message.end())
      continue;
    if (content->is_string()) {
      total += EstimateTextTokens(content->template get_ref<const std::string&>());
    } else if (content->is_array()) {
      for (const auto& part : *content) {
        if (part.is_object() && part.contains("text") && part["text"].is_string()) {
          total += EstimateTextTokens(part["text"].template get_ref<const std::string&>());
        }
      }
    }
  }
  return total;
}

// `call` with what a chat-completions body (already checked to have a non-empty `messages`
// array) says: the prompt estimate, stream, stream_options.include_usage, and
// max_completion_tokens or else max_tokens.
template <typename JsonT>
Call WithChatCompletionFields(const JsonT& body, Call call) {
  call.input_tokens = EstimateChatPromptTokens(body["messages"]);
  call.stream = body.value("stream", false);
  if (const auto opts = body.find("stream_options"); opts != body.end() && opts->is_object()) {
    call.include_usage = opts->value("include_usage", false);
  }
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (body.contains(key) && body[key].is_number_integer()) {
      call.max_tokens = body[key].template get<int64_t>();
      break;
    }
  }
  return call;
}

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_UTIL_H_
