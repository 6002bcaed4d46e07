// Pieces shared by several simulator protocols; see protocol_util.h.

#include "simulator/internal/protocol_util.h"

#include <algorithm>
#include <chrono>

namespace modelpulse::simulator {

int64_t EstimateTextTokens(std::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

std::string ContentText(int64_t tokens) {
  std::string text;
  for (int64_t i = 0; i < tokens; ++i)
    text += TokenText(i);
  return text;
}

int64_t CeilSeconds(Micros d) {
  // max(1, ceil(seconds)), in integer arithmetic.
  return std::max<int64_t>(1, (d.count() + 999'999) / 1'000'000);
}

int64_t Millis(Micros d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

Reply RenderReply(const Call& call, const Plan& plan, const AnswerEncoding& encoding,
                  const std::function<Reply(ErrorBehaviour)>& render_error) {
  const int64_t tokens = plan.output_tokens;
  Reply reply;
  switch (plan.behaviour) {
    case Behaviour::kOk:
    case Behaviour::kEmptyCompletion:
      return call.stream ? encoding.stream(tokens) : encoding.body();
    case Behaviour::kTruncatedStream:
      if (call.stream)
        return encoding.truncated_stream(std::max<int64_t>(1, tokens / 2));
      reply = encoding.body();
      reply.body.resize(reply.body.size() / 2);
      return reply;
    case Behaviour::kMalformedJson:
      if (!call.stream) {
        reply = encoding.body();
        reply.body.pop_back();  // the closing brace
        return reply;
      }
      reply = encoding.stream(tokens);
      encoding.malform_stream(reply);
      return reply;
    case Behaviour::kHang:
      reply.mode = Reply::Mode::kHang;
      return reply;
    case Behaviour::kHangAfterHeaders:
      reply.mode = Reply::Mode::kStream;
      reply.hang_after_chunks = true;
      if (call.stream) {
        reply.content_type = encoding.stream_content_type;
        if (encoding.opening_chunks)
          reply.chunks = encoding.opening_chunks();
      }
      return reply;
    case Behaviour::kRateLimit:
      return render_error(ErrorBehaviour::kRateLimit);
    case Behaviour::kInsufficientQuota:
      return render_error(ErrorBehaviour::kInsufficientQuota);
    case Behaviour::kOverloaded503:
      return render_error(ErrorBehaviour::kOverloaded503);
    case Behaviour::kServerError500:
      return render_error(ErrorBehaviour::kServerError500);
    case Behaviour::kUnauthorized401:
      return render_error(ErrorBehaviour::kUnauthorized401);
    case Behaviour::kErrorIn200:
      return render_error(ErrorBehaviour::kErrorIn200);
    case Behaviour::kOverloadedMidstream:
      return render_error(ErrorBehaviour::kOverloadedMidstream);
    case Behaviour::kQuotaPerDay:
      return render_error(ErrorBehaviour::kQuotaPerDay);
    case Behaviour::kExceptionMidstream:
      return render_error(ErrorBehaviour::kExceptionMidstream);
    case Behaviour::kModelNotReady:
      return render_error(ErrorBehaviour::kModelNotReady);
  }
  return reply;
}

std::optional<Reply> RenderAnswer(const Call& call, const Plan& plan,
                                  const AnswerEncoding& encoding) {
  bool answer = true;
  Reply reply = RenderReply(call, plan, encoding, [&answer](ErrorBehaviour) {
    answer = false;
    return Reply();
  });
  if (!answer)
    return std::nullopt;
  return reply;
}

std::string Extra(const Call& call, const std::string& key, std::string fallback) {
  const auto it = call.extras.find(key);
  return it == call.extras.end() ? fallback : it->second;
}

}  // namespace modelpulse::simulator
