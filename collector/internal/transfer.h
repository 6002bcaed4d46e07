#ifndef MODELPULSE_COLLECTOR_INTERNAL_TRANSFER_H_
#define MODELPULSE_COLLECTOR_INTERNAL_TRANSFER_H_

// One probe's HTTP exchange on a libcurl easy handle: sets it up from the adapter's request,
// timestamps bytes as they arrive, feeds the decoder, and turns the end of the transfer into a
// ProbeResult. Private to the collector. Not thread-safe: may be built on another thread (the
// prober does so where building runs a token command), then lives on the event-loop thread.

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/collector.h"
#include "collector/internal/providers/provider.h"
#include "common/common.h"
#include "common/regex.h"

namespace modelpulse::collector {

using SteadyTime = Clock::MonotonicTime;

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* handle) const { curl_multi_cleanup(handle); }
};
using CurlMultiPtr = std::unique_ptr<CURLM, CurlMultiDeleter>;

// Bytes kept of a non-2xx body for classification; the rest is counted and dropped.
inline constexpr size_t kMaxErrorBodyBytes = 64 * 1024;
// All response header bytes, over every response of the exchange.
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
// Answer text kept for the `expect` regex: enough for any sensible check, bounded for memory.
inline constexpr size_t kMaxAnswerBytes = 16 * 1024;

// A target's `expect`, compiled once per configuration (RE2: linear time, so no answer can make
// it recurse or backtrack). Null when the target has none or it does not compile (the config
// loader refuses such a pattern; a probe then reports content_mismatch rather than crash).
// "(?i)" at its start, as RE2 reads it, means case-insensitive.
std::shared_ptr<const Regex> CompileExpect(const TargetSpec& target);

class Transfer final : public StreamEvents {
 public:
  // Builds the request. When that fails (no adapter, unusable target) the transfer is born
  // finished: handle() is null and Finish() reports the reason. `expect` is
  // CompileExpect(*target), shared by every probe of the target.
  Transfer(std::shared_ptr<const TargetSpec> target, std::shared_ptr<const Regex> expect,
           const ProberOptions& options, const Clock& clock);
  ~Transfer() override;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  CURL* handle() const { return easy_.get(); }
  const TargetSpec& target() const { return *target_; }
  const std::shared_ptr<const TargetSpec>& target_ptr() const { return target_; }

  // Records the start of the request, steady and wall clock. Call just before handing the
  // handle to curl_multi_add_handle.
  void MarkStarted();

  // The event loop decodes stream bytes only after it has read every ready socket, so one
  // stream's decoding (a JSON parse per chunk) does not delay the arrival stamps of the others.
  // With a list set, OnBody keeps the bytes with their arrival time and adds this transfer to the
  // list; the loop then calls DecodePending(), which feeds them as if they had been fed on
  // arrival (token times are the stamps). The loop must drain the list before destroying a
  // transfer. Without a list (ProbeOnce) bytes are decoded on arrival.
  void DeferDecodingTo(std::vector<Transfer*>* pending) { pending_list_ = pending; }
  void DecodePending();

  // When the loop must abort this transfer if no first token has arrived yet; nullopt once a
  // token arrived or the response is not one that streams tokens.
  std::optional<SteadyTime> FirstTokenDeadline() const;
  // The loop aborted the transfer at the first-token deadline (after removing the handle).
  void MarkFirstTokenTimeout() { first_token_timeout_ = true; }
  // The stream decoder reported malformed input or a provider error: the outcome is decided, so
  // the loop ends the transfer at once (without a pending list OnBody does it) instead of
  // waiting for a server that may never close. Finish() then classifies by the decoder's report.
  bool DecoderFailed() const { return streaming_ && (stream_error_ || !malformed_.empty()); }

  // The transfer ended with `code` (the handle has been removed from its multi handle). `end` is
  // when curl reported the end; the loop classifies later, so that moment is passed in rather
  // than read here (default: now).
  ProbeResult Finish(CURLcode code, std::optional<SteadyTime> end = std::nullopt);

  // StreamEvents
  void OnChunk() override;
  void OnContent(std::string_view text) override;
  void OnReasoning(std::string_view text) override;
  void OnUsage(const Usage& usage) override;
  void OnError(const ProviderError& error) override;
  void OnMalformed(std::string_view what) override;
  void OnTerminator() override;

 private:
  static size_t WriteCallback(char* data, size_t size, size_t count, void* self);
  static size_t HeaderCallback(char* data, size_t size, size_t count, void* self);
  size_t OnBody(std::string_view bytes);
  size_t OnHeader(std::string_view line);
  void DecideBodyMode();
  void Classify(CURLcode code, ProbeResult& result);
  void ClassifyCurlError(CURLcode code, ProbeResult& result) const;
  void CheckAnswer(ProbeResult& result) const;
  void FillTiming(ProbeResult& result) const;
  double SecondsSinceStart(SteadyTime t) const;

  // Constant after construction.
  std::shared_ptr<const TargetSpec> target_;
  std::shared_ptr<const Regex> expect_;
  const ProberOptions options_;
  const Clock& clock_;
  const ProviderAdapter* adapter_ = nullptr;
  std::unique_ptr<CURL, CurlEasyDeleter> easy_;
  std::unique_ptr<curl_slist, CurlSlistDeleter> header_list_;
  std::vector<std::string_view> KnownSecrets() const;

  std::vector<Secret> request_header_values_;  // credential headers as sent
  // KnownSecrets(), once the request is built: redacted from everything the provider sends back.
  std::vector<std::string_view> secrets_;
  std::string setup_error_;
  Outcome setup_outcome_ = Outcome::kClientError;
  char curl_error_[CURL_ERROR_SIZE] = {};

  SteadyTime start_{};
  int64_t start_unix_ms_ = 0;
  SteadyTime now_{};  // arrival time of the bytes being decoded
  std::optional<SteadyTime> first_token_;
  std::optional<SteadyTime> first_answer_;
  std::optional<SteadyTime> last_token_;
  std::optional<SteadyTime> last_byte_;

  HttpHeaders headers_;
  size_t header_bytes_ = 0;
  bool header_overflow_ = false;
  bool mode_decided_ = false;
  bool streaming_ = false;
  long status_ = 0;  // NOLINT(google-runtime-int): libcurl's type
  std::unique_ptr<StreamDecoder> decoder_;
  std::vector<Transfer*>* pending_list_ = nullptr;
  std::string pending_bytes_;  // stream bytes not decoded yet
  // Per arrival: where its bytes end in pending_bytes_, and when they arrived.
  std::vector<std::pair<size_t, SteadyTime>> pending_marks_;
  std::string body_;
  size_t body_bytes_ = 0;
  bool cut_off_ = false;
  bool first_token_timeout_ = false;

  std::string answer_;
  bool saw_reasoning_ = false;
  int64_t chunk_count_ = 0;
  Usage usage_;
  std::optional<ProviderError> stream_error_;
  std::string malformed_;
  bool terminator_ = false;
};

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_TRANSFER_H_
