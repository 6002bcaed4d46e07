#include "collector/internal/transfer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "collector/internal/auth/token_command.h"
#include "collector/internal/http_util.h"

namespace modelpulse::collector {
namespace {

std::string_view TrimView(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && ContainsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

std::optional<double> CurlSeconds(CURL* easy, CURLINFO info) {
  curl_off_t micros = 0;
  if (curl_easy_getinfo(easy, info, &micros) != CURLE_OK || micros <= 0) {
    return std::nullopt;
  }
  return static_cast<double>(micros) / 1e6;
}

bool IsCredentialHeader(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "authorization" || lower == "api-key" || lower == "x-api-key" ||
         lower == "x-goog-api-key" || lower == "x-amz-security-token";
}

}  // namespace

std::shared_ptr<const Regex> CompileExpect(const TargetSpec& target) {
  if (target.expect.empty()) {
    return nullptr;
  }
  Result<Regex> compiled = Regex::Compile(target.expect);
  if (!compiled) {
    return nullptr;
  }
  return std::make_shared<const Regex>(std::move(*compiled));
}

Transfer::Transfer(std::shared_ptr<const TargetSpec> target, std::shared_ptr<const Regex> expect,
                   const ProberOptions& options, const Clock& clock)
    : target_(std::move(target)), expect_(std::move(expect)), options_(options), clock_(clock) {
  adapter_ = AdapterFor(target_->provider);
  if (adapter_ == nullptr) {
    setup_error_ = fmt::format("provider {} is not supported yet", ProviderName(target_->provider));
    return;
  }
  Result<HttpRequest> request = adapter_->BuildRequest(*target_, {clock_.NowUnixMillis()});
  if (!request) {
    setup_error_ = request.error().message;
    // A token that could not be had (exchange refused, command failed) is an auth failure.
    if (IsCredentialError(request.error())) {
      setup_outcome_ = Outcome::kAuth;
    }
    return;
  }
  easy_.reset(curl_easy_init());
  if (!easy_) {
    setup_error_ = "curl_easy_init failed";
    setup_outcome_ = Outcome::kNetwork;
    return;
  }
  CURL* easy = easy_.get();
  curl_slist* list = nullptr;
  for (const auto& [name, value] : request->headers) {
    // Signed and fetched credentials (SigV4 signatures, OAuth and command tokens) exist only here.
    if (IsCredentialHeader(name)) {
      request_header_values_.push_back(value);
    }
    // Secret::Reveal: the one place header values leave their wrapper, into libcurl.
    const std::string line = name + ": " + value.Reveal();
    list = curl_slist_append(list, line.c_str());
  }
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip in the timing
  header_list_.reset(list);
  secrets_ = KnownSecrets();

  curl_easy_setopt(easy, CURLOPT_URL, request->url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  if (request->method == "POST") {
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request->body.size()));
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, request->body.c_str());
  } else if (request->method != "GET") {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request->method.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, header_list_.get());
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "modelpulse/0.1");
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(target_->timeouts.connect.count()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(target_->timeouts.total.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::WriteCallback);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::HeaderCallback);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, this);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_error_);
  if (target_->connection == ConnectionReuse::kFresh) {
    // Each probe pays DNS, TCP and TLS like a cold client does: that is what we measure.
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
  }
}

Transfer::~Transfer() = default;

void Transfer::MarkStarted() {
  start_unix_ms_ = clock_.NowUnixMillis();
  start_ = clock_.MonotonicNow();
}

std::optional<SteadyTime> Transfer::FirstTokenDeadline() const {
  if (!easy_ || first_token_ || (mode_decided_ && !streaming_)) {
    return std::nullopt;
  }
  return start_ + target_->timeouts.first_token;
}

size_t Transfer::WriteCallback(char* data, size_t size, size_t count, void* self) {
  return static_cast<Transfer*>(self)->OnBody(std::string_view(data, size * count));
}

size_t Transfer::HeaderCallback(char* data, size_t size, size_t count, void* self) {
  return static_cast<Transfer*>(self)->OnHeader(std::string_view(data, size * count));
}

void Transfer::DecideBodyMode() {
  if (mode_decided_) {
    return;
  }
  mode_decided_ = true;
  curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status_);
  const std::string_view content_type = headers_.Find("content-type").value_or("");
  // A host that ignores "stream":true answers with one JSON object; read it as such.
  streaming_ = status_ >= 200 && status_ < 300 && target_->stream &&
               !StartsWithIgnoreCase(content_type, "application/json");
  if (streaming_) {
    DecoderLimits limits;
    limits.max_event_bytes = std::min(limits.max_event_bytes, options_.max_response_bytes);
    decoder_ = adapter_->NewStreamDecoder(limits);
  }
}

size_t Transfer::OnBody(std::string_view bytes) {
  // Stamp first: this is the moment the bytes reached us.
  now_ = clock_.MonotonicNow();
  last_byte_ = now_;
  DecideBodyMode();
  if (DecoderFailed()) {
    return 0;  // CURLE_WRITE_ERROR: nothing later can change the outcome
  }
  body_bytes_ += bytes.size();
  if (body_bytes_ > options_.max_response_bytes) {
    cut_off_ = true;
    return 0;  // CURLE_WRITE_ERROR: the transfer stops here
  }
  if (streaming_) {
    if (pending_list_ != nullptr) {
      if (pending_marks_.empty()) {
        pending_list_->push_back(this);
      }
      pending_bytes_.append(bytes);
      pending_marks_.emplace_back(pending_bytes_.size(), now_);
    } else {
      decoder_->Feed(bytes, *this);
      if (DecoderFailed()) {
        return 0;
      }
    }
  } else {
    const bool ok_status = status_ >= 200 && status_ < 300;
    const size_t keep = ok_status ? options_.max_response_bytes : kMaxErrorBodyBytes;
    if (body_.size() < keep) {
      body_.append(bytes.substr(0, keep - body_.size()));
    }
  }
  return bytes.size();
}

void Transfer::DecodePending() {
  size_t begin = 0;
  for (const auto& [end, arrival] : pending_marks_) {
    now_ = arrival;
    decoder_->Feed(std::string_view(pending_bytes_).substr(begin, end - begin), *this);
    begin = end;
  }
  pending_bytes_.clear();
  pending_marks_.clear();
}

size_t Transfer::OnHeader(std::string_view line) {
  header_bytes_ += line.size();
  if (header_bytes_ > kMaxHeaderBytes) {
    header_overflow_ = true;
    return 0;
  }
  const std::string_view trimmed = TrimView(line);
  if (trimmed.substr(0, 5) == "HTTP/") {
    headers_.Clear();  // a new response (after 100 Continue or a redirect)
    return line.size();
  }
  const size_t colon = trimmed.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return line.size();
  }
  std::string name(trimmed.substr(0, colon));
  for (char& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::string value(TrimView(trimmed.substr(colon + 1)));
  // Request ids and error codes are read from here: a provider echoing a credential into one
  // must not get it stored or logged, whatever the credential looks like.
  RedactSecrets(value, secrets_);
  headers_.Add(std::move(name), std::move(value));
  return line.size();
}

void Transfer::OnChunk() { ++chunk_count_; }

void Transfer::OnContent(std::string_view text) {
  if (!first_token_) {
    first_token_ = now_;
  }
  if (!first_answer_) {
    first_answer_ = now_;
  }
  last_token_ = now_;
  if (answer_.size() < kMaxAnswerBytes) {
    answer_.append(text.substr(0, kMaxAnswerBytes - answer_.size()));
  }
}

void Transfer::OnReasoning(std::string_view /*text*/) {
  if (!first_token_) {
    first_token_ = now_;
  }
  last_token_ = now_;
  saw_reasoning_ = true;
}

void Transfer::OnUsage(const Usage& usage) {
  if (usage.input_tokens) {
    usage_.input_tokens = usage.input_tokens;
  }
  if (usage.output_tokens) {
    usage_.output_tokens = usage.output_tokens;
  }
}

void Transfer::OnError(const ProviderError& error) {
  if (!stream_error_) {
    stream_error_ = error;
    RedactSecrets(stream_error_->message, secrets_);
  }
}

void Transfer::OnMalformed(std::string_view what) {
  if (malformed_.empty()) {
    malformed_ = std::string(what);
    RedactSecrets(malformed_, secrets_);
  }
}

void Transfer::OnTerminator() { terminator_ = true; }

double Transfer::SecondsSinceStart(SteadyTime t) const {
  return std::chrono::duration<double>(t - start_).count();
}

ProbeResult Transfer::Finish(CURLcode code, std::optional<SteadyTime> end_time) {
  const SteadyTime end = end_time.value_or(clock_.MonotonicNow());
  DecodePending();
  ProbeResult result;
  result.target = target_->name;
  result.labels = target_->labels;
  result.start_unix_ms = easy_ ? start_unix_ms_ : clock_.NowUnixMillis();
  if (!easy_) {
    result.outcome = setup_outcome_;
    result.error = SanitizeText(setup_error_, KnownSecrets());
    return result;
  }
  result.total_seconds = SecondsSinceStart(end);
  curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status_);
  result.http_status = static_cast<int>(status_);

  const HeaderInfo info = adapter_->ReadHeaders(headers_, clock_.NowUnixMillis());
  result.requests = info.requests;
  result.tokens = info.tokens;
  result.retry_after_seconds = info.retry_after_seconds;
  result.request_id = info.request_id;  // from headers_, whose values had secrets_ redacted

  Classify(code, result);
  FillTiming(result);

  result.error = SanitizeText(result.error, secrets_);
  return result;
}

// Every credential this probe could have touched, for scrubbing error text: our own messages never
// include them, and this is the backstop for a provider that echoes one back.
std::vector<std::string_view> Transfer::KnownSecrets() const {
  const TargetAuth& auth = target_->auth;
  std::vector<std::string_view> secrets = {
      target_->api_key.Reveal(), auth.aws.access_key_id.Reveal(),
      auth.aws.secret_access_key.Reveal(), auth.aws.session_token.Reveal(),
      auth.google_service_account_json.Reveal()};
  for (const auto& header : target_->headers) {
    secrets.push_back(header.second.Reveal());
  }
  for (const Secret& value : request_header_values_) {
    const std::string_view text = value.Reveal();
    secrets.push_back(text);
    // "Bearer <token>": a provider may echo the token alone.
    if (const size_t space = text.find(' '); space != std::string_view::npos) {
      secrets.push_back(text.substr(space + 1));
    }
  }
  std::erase_if(secrets, [](std::string_view s) { return s.empty(); });
  return secrets;
}

void Transfer::Classify(CURLcode code, ProbeResult& result) {
  if (first_token_timeout_) {
    result.outcome = Outcome::kTimeout;
    result.error =
        fmt::format("no first token within {} ms", target_->timeouts.first_token.count());
    return;
  }
  if (cut_off_) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = fmt::format("response body over {} bytes, cut off", options_.max_response_bytes);
    return;
  }
  if (header_overflow_) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = fmt::format("response headers over {} bytes", kMaxHeaderBytes);
    return;
  }
  const bool ok_status = status_ >= 200 && status_ < 300;
  // An error status whose body was cut short still says what the provider meant.
  const bool error_status_cut =
      status_ >= 300 && (code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR);
  // We ended the transfer because the decoder failed (or it failed before curl's error): the
  // decoder's report is the outcome, read below.
  const bool decoder_ended = ok_status && DecoderFailed();
  if (code != CURLE_OK && !(code == CURLE_PARTIAL_FILE && ok_status) && !error_status_cut &&
      !decoder_ended) {
    ClassifyCurlError(code, result);
    return;
  }
  if (status_ == 0) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = "no HTTP response";
    return;
  }
  // Adapters quote and cut the body into messages: redact before any cut can split a secret.
  RedactSecrets(body_, secrets_);
  if (!ok_status) {
    const ProviderError error =
        adapter_->ClassifyHttpError(static_cast<int>(status_), headers_, body_);
    result.outcome = error.outcome;
    result.error = error.message;
    // Google puts the delay in the body (RetryInfo); a header, when sent, still wins.
    if (!result.retry_after_seconds && error.retry_after_seconds) {
      result.retry_after_seconds = error.retry_after_seconds;
    }
    return;
  }
  DecideBodyMode();
  if (streaming_) {
    now_ = last_byte_.value_or(clock_.MonotonicNow());
    decoder_->Finish(*this);
  } else {
    // The whole answer arrived with the last byte: that is its token time.
    now_ = last_byte_.value_or(clock_.MonotonicNow());
    if (body_.empty()) {
      OnMalformed("empty response body");
    } else {
      adapter_->ParseBody(body_, *this);
    }
  }
  if (stream_error_) {
    result.outcome = stream_error_->outcome;
    result.error = stream_error_->message;
  } else if (!malformed_.empty()) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = malformed_;
  } else if (code == CURLE_PARTIAL_FILE) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = "response truncated";
  } else if (!terminator_) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = streaming_ ? "stream closed without its terminator" : "incomplete response";
  } else if (answer_.empty()) {
    result.outcome = Outcome::kInvalidResponse;
    result.error = saw_reasoning_ ? "empty completion (reasoning only)" : "empty completion";
  } else {
    CheckAnswer(result);
  }
}

void Transfer::ClassifyCurlError(CURLcode code, ProbeResult& result) const {
  std::string detail = curl_error_[0] != '\0' ? curl_error_ : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t connect = 0;
      curl_easy_getinfo(easy_.get(), CURLINFO_CONNECT_TIME_T, &connect);
      result.outcome = Outcome::kTimeout;
      detail = connect == 0
                   ? fmt::format("connect timeout after {} ms", target_->timeouts.connect.count())
                   : fmt::format("total timeout after {} ms", target_->timeouts.total.count());
      break;
    }
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      result.outcome = Outcome::kClientError;
      break;
    case CURLE_WEIRD_SERVER_REPLY:
      result.outcome = Outcome::kInvalidResponse;
      break;
    case CURLE_OUT_OF_MEMORY:
#if LIBCURL_VERSION_NUM >= 0x080600
    case CURLE_TOO_LARGE:
#endif
      // libcurl refuses a single header line over CURL_MAX_HTTP_HEADER (100 KB) before our header
      // callback sees it, and (before 8.6) says so with "Out of memory": the server's fault.
      if (!mode_decided_) {
        result.outcome = Outcome::kInvalidResponse;
        detail = "response header line over libcurl's 100 KB limit";
      } else {
        result.outcome = Outcome::kNetwork;
      }
      break;
    default:
      // DNS, refused, reset, TLS handshake and verification, HTTP/2 framing, empty reply.
      result.outcome = Outcome::kNetwork;
      break;
  }
  result.error = detail;
}

void Transfer::CheckAnswer(ProbeResult& result) const {
  result.outcome = Outcome::kOk;
  if (target_->expect.empty()) {
    return;
  }
  if (!expect_) {
    // Config validation should have refused it; say so rather than pass every answer.
    result.outcome = Outcome::kContentMismatch;
    result.error = "expect is not a valid regex";
    return;
  }
  if (!expect_->Search(answer_)) {
    std::string shown = answer_;
    RedactSecrets(shown, secrets_);
    result.outcome = Outcome::kContentMismatch;
    result.error = "answer does not match expect: \"" + shown.substr(0, 80) + "\"";
  }
}

void Transfer::FillTiming(ProbeResult& result) const {
  CURL* easy = easy_.get();
  long connects = 0;  // NOLINT(google-runtime-int): libcurl's type
  curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
  const std::optional<double> lookup = CurlSeconds(easy, CURLINFO_NAMELOOKUP_TIME_T);
  const std::optional<double> connect = CurlSeconds(easy, CURLINFO_CONNECT_TIME_T);
  const std::optional<double> app_connect = CurlSeconds(easy, CURLINFO_APPCONNECT_TIME_T);
  // A reused connection had no DNS, connect or TLS phase of its own.
  if (connects > 0 || !connect) {
    result.dns_seconds = lookup;
    if (connect) {
      result.connect_seconds = std::max(0.0, *connect - lookup.value_or(0));
    }
    const char* scheme = nullptr;
    curl_easy_getinfo(easy, CURLINFO_SCHEME, &scheme);
    if (scheme != nullptr && ContainsIgnoreCase(scheme, "https") && app_connect && connect) {
      result.tls_seconds = std::max(0.0, *app_connect - *connect);
    }
  }
  if (result.http_status != 0) {
    result.first_byte_seconds = CurlSeconds(easy, CURLINFO_STARTTRANSFER_TIME_T);
  }
  if (first_token_) {
    result.ttft_seconds = SecondsSinceStart(*first_token_);
  }
  if (first_answer_) {
    result.first_answer_token_seconds = SecondsSinceStart(*first_answer_);
  }
  if (last_token_) {
    result.last_token_seconds = SecondsSinceStart(*last_token_);
  }
  result.chunk_count = chunk_count_;
  result.input_tokens = usage_.input_tokens;
  result.output_tokens = usage_.output_tokens;
  if (streaming_ && result.output_tokens && result.ttft_seconds && result.last_token_seconds) {
    const int64_t out = *result.output_tokens;
    const double span = *result.last_token_seconds - *result.ttft_seconds;
    if (out > 1) {
      result.inter_token_latency_seconds = span / static_cast<double>(out - 1);
    }
    // protocols.md §0.2: tokens over the content span; fall back to total - TTFT.
    if (span > 0) {
      result.output_tokens_per_second = static_cast<double>(out) / span;
    } else if (result.total_seconds > *result.ttft_seconds) {
      result.output_tokens_per_second =
          static_cast<double>(out) / (result.total_seconds - *result.ttft_seconds);
    }
  }
}

}  // namespace modelpulse::collector
