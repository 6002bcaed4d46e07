// AWS Bedrock Runtime: Converse and ConverseStream (application/vnd.amazon.eventstream), and the
// OpenAI-compatible endpoint Bedrock serves OpenAI's models on. Signed with SigV4 (service
// "bedrock", or "bedrock-mantle" on mantle hosts) or sent with a Bedrock API key as a bearer
// token. protocols.md §4 and §6.

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/internal/auth/sigv4.h"
#include "collector/internal/eventstream.h"
#include "collector/internal/http_util.h"
#include "collector/internal/percent_encoding.h"
#include "collector/internal/providers/provider.h"
#include "collector/internal/providers/provider_util.h"

namespace modelpulse::collector {
namespace {

using nlohmann::json;

constexpr std::string_view kDefaultOpenAIPrefix = "/openai/v1";

const ProviderAdapter& OpenAIWire() {
  // The OpenAI-compatible adapter owns the chat-completions body, SSE stream and error shapes;
  // Bedrock's OpenAI endpoint speaks exactly that, so it is reused, not copied.
  return *AdapterFor(Provider::kOpenAICompatible);
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// "ThrottlingException:http://internal.amazon.com/coral/..." and
// "com.amazon.coral.service#ThrottlingException" both name ThrottlingException (botocore
// RestJSONParser._inject_error_code).
std::string CleanErrorCode(std::string_view code) {
  if (const size_t colon = code.find(':'); colon != std::string_view::npos) {
    code = code.substr(0, colon);
  }
  if (const size_t hash = code.rfind('#'); hash != std::string_view::npos) {
    code = code.substr(hash + 1);
  }
  while (!code.empty() && code.back() == ' ') {
    code.remove_suffix(1);
  }
  return std::string(code);
}

// An AWS error code (HTTP errors: "ThrottlingException"; stream exception frames: the union member
// "throttlingException") to an outcome. nullopt for codes this table does not know.
std::optional<Outcome> OutcomeForAwsCode(std::string_view code, std::string_view message) {
  const std::string lower = Lower(code);
  if (lower == "throttlingexception" || lower == "throttling" ||
      lower == "toomanyrequestsexception") {
    // "Too many tokens per day" is a daily quota, not a momentary rate limit (protocols.md §0.5).
    if (ContainsIgnoreCase(message, "per day")) {
      return Outcome::kQuotaExhausted;
    }
    return Outcome::kThrottled;
  }
  if (lower == "servicequotaexceededexception") {
    return Outcome::kQuotaExhausted;
  }
  if (lower == "serviceunavailableexception" || lower == "modelnotreadyexception" ||
      lower == "serviceunavailable") {
    return Outcome::kOverloaded;
  }
  if (lower == "accessdeniedexception" || lower == "unrecognizedclientexception" ||
      lower == "invalidsignatureexception" || lower == "signaturedoesnotmatch" ||
      lower == "incompletesignatureexception" || lower == "expiredtokenexception" ||
      lower == "missingauthenticationtokenexception" || lower == "invalidclienttokenid" ||
      lower == "accessdenied" || lower == "expiredtoken") {
    return Outcome::kAuth;
  }
  if (lower == "validationexception" || lower == "resourcenotfoundexception" ||
      lower == "serializationexception" || lower == "conflictexception" ||
      lower == "unknownoperationexception") {
    return Outcome::kClientError;
  }
  if (lower == "modeltimeoutexception") {
    return Outcome::kTimeout;
  }
  if (lower == "modelerrorexception" || lower == "modelstreamerrorexception" ||
      lower == "internalserverexception" || lower == "internalfailure" ||
      lower == "internalservererror") {
    return Outcome::kServerError;
  }
  return std::nullopt;
}

Outcome OutcomeForStatus(int status) {
  if (status == 429) {
    return Outcome::kThrottled;
  }
  if (status == 401 || status == 403) {
    return Outcome::kAuth;
  }
  if (status == 408) {
    return Outcome::kTimeout;
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
  return Outcome::kInvalidResponse;
}

void ReportUsage(const json& usage, StreamEvents& events) {
  ReportUsageFields(usage, "inputTokens", "outputTokens", events);
}

// A content block (Converse) or a block delta (ConverseStream). Reasoning arrives as
// {"reasoningContent":{"text":...}} in deltas and {"reasoningContent":{"reasoningText":{"text":
// ...}}} in whole blocks.
void ReportBlock(const json& block, StreamEvents& events) {
  if (!block.is_object()) {
    return;
  }
  if (auto reasoning = block.find("reasoningContent");
      reasoning != block.end() && reasoning->is_object()) {
    std::string text = StringField(*reasoning, "text");
    if (text.empty()) {
      if (auto nested = reasoning->find("reasoningText"); nested != reasoning->end()) {
        text = StringField(*nested, "text");
      }
    }
    if (!text.empty()) {
      events.OnReasoning(text);
    }
  }
  // gpt-oss opens with an empty text delta: not a token.
  const std::string text = StringField(block, "text");
  if (!text.empty()) {
    events.OnContent(text);
  }
}

std::string ExceptionText(std::string_view type, std::string_view payload) {
  const json parsed = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  std::string message = StringField(parsed, "message");
  if (message.empty()) {
    message = StringField(parsed, "Message");
  }
  std::string text = "stream exception " + std::string(type);
  if (!message.empty()) {
    text += ": " + message;
  }
  return text;
}

class ConverseStreamDecoder final : public StreamDecoder {
 public:
  explicit ConverseStreamDecoder(const DecoderLimits& limits)
      : limits_(limits), frames_(limits.max_event_bytes) {}

  void Feed(std::string_view bytes, StreamEvents& events) override {
    if (bytes.empty() || failed_) {
      return;
    }
    if (!sniffed_) {
      // The seam gives a decoder neither the target nor the content-type, so the first bytes
      // decide between event-stream frames and the OpenAI-compatible endpoint's SSE text. A
      // frame starts with a prelude whose CRC checks (text passes by chance once in 2^32), or,
      // under 16 MiB, with a zero byte; the CRC is what tells an oversized frame from text, so
      // it is refused as a frame rather than misread as SSE.
      head_.append(bytes);
      if (head_.front() != '\0' && head_.size() < kEventStreamPreludeBytes) {
        return;  // wait for a whole prelude
      }
      Decide();
      const std::string head = std::move(head_);
      head_.clear();
      Dispatch(head, events);
      return;
    }
    Dispatch(bytes, events);
  }

  void Finish(StreamEvents& events) override {
    if (!sniffed_ && !head_.empty()) {
      Decide();  // a body shorter than a prelude
      const std::string head = std::move(head_);
      head_.clear();
      Dispatch(head, events);
    }
    if (sse_) {
      sse_->Finish(events);
      return;
    }
    if (failed_) {
      return;
    }
    if (frames_.Finish() != EventStreamDecoder::Status::kOk) {
      failed_ = true;
      events.OnMalformed(EventStreamDecoder::Describe(EventStreamDecoder::Status::kTruncated));
    }
  }

 private:
  void Decide() {
    sniffed_ = true;
    if (head_.front() != '\0' && !IsEventStreamPrelude(head_)) {
      sse_ = OpenAIWire().NewStreamDecoder(limits_);
    }
  }

  void Dispatch(std::string_view bytes, StreamEvents& events) {
    if (failed_) {
      return;
    }
    if (sse_) {
      sse_->Feed(bytes, events);
      return;
    }
    const EventStreamDecoder::Status status =
        frames_.Feed(bytes, [&](const EventStreamMessage& message) { OnMessage(message, events); });
    if (status != EventStreamDecoder::Status::kOk) {
      failed_ = true;
      events.OnMalformed(EventStreamDecoder::Describe(status));
    }
  }

  void OnMessage(const EventStreamMessage& message, StreamEvents& events) {
    events.OnChunk();
    if (message.message_type == "exception") {
      const std::string type =
          message.exception_type.empty() ? message.event_type : message.exception_type;
      const std::string text = ExceptionText(type, message.payload);
      events.OnError({OutcomeForAwsCode(type, text).value_or(Outcome::kServerError), text});
      return;
    }
    if (message.message_type == "error") {
      std::string text = "stream error " + message.error_code;
      if (!message.error_message.empty()) {
        text += ": " + message.error_message;
      }
      events.OnError(
          {OutcomeForAwsCode(message.error_code, text).value_or(Outcome::kServerError), text});
      return;
    }
    if (message.message_type != "event") {
      events.OnMalformed("event stream frame with unknown :message-type");
      return;
    }
    const json payload = json::parse(message.payload, nullptr, /*allow_exceptions=*/false);
    if (payload.is_discarded() || !payload.is_object()) {
      events.OnMalformed("malformed JSON in event stream frame");
      return;
    }
    const std::string& type = message.event_type;
    if (type == "contentBlockDelta") {
      if (auto delta = payload.find("delta"); delta != payload.end()) {
        ReportBlock(*delta, events);
      }
    } else if (type == "messageStop") {
      events.OnTerminator();
    } else if (type == "metadata") {
      // metrics.latencyMs is Bedrock's own server time; the seam has no field for it yet.
      if (auto usage = payload.find("usage"); usage != payload.end()) {
        ReportUsage(*usage, events);
      }
    }
    // messageStart, contentBlockStart, contentBlockStop and unknown events carry no tokens.
  }

  DecoderLimits limits_;
  EventStreamDecoder frames_;
  std::unique_ptr<StreamDecoder> sse_;
  std::string head_;  // the first bytes, until they tell frames from text
  bool sniffed_ = false;
  bool failed_ = false;
};

// The host of an absolute URL, lower-cased, without port.
std::string HostOf(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) {
    return {};
  }
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  rest = rest.substr(0, rest.find(':'));
  return Lower(rest);
}

// "us-east-1" from bedrock-runtime.us-east-1.amazonaws.com or bedrock-mantle.us-east-1.api.aws.
std::string RegionFromHost(std::string_view host) {
  for (std::string_view prefix : {"bedrock-runtime-fips.", "bedrock-runtime.", "bedrock-mantle."}) {
    if (host.substr(0, prefix.size()) == prefix) {
      std::string_view rest = host.substr(prefix.size());
      return std::string(rest.substr(0, rest.find('.')));
    }
  }
  return {};
}

class BedrockAdapter final : public ProviderAdapter {
 public:
  Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                   const RequestContext& context) const override {
    std::string base = target.base_url;
    if (base.empty()) {
      if (target.region.empty()) {
        return Fail(Error::InvalidArgument("bedrock target needs a region or a base_url"));
      }
      base = "https://bedrock-runtime." + target.region + ".amazonaws.com";
    }
    while (!base.empty() && base.back() == '/') {
      base.pop_back();
    }
    const std::string model = target.provider_model.empty() ? target.model : target.provider_model;
    if (model.empty()) {
      return Fail(Error::InvalidArgument("bedrock target has no model id"));
    }

    HttpRequest request;
    if (target.flavor == ApiFlavor::kOpenAICompatible) {
      TargetSpec openai = target;
      std::string prefix = target.openai_path_prefix.empty() ? std::string(kDefaultOpenAIPrefix)
                                                             : target.openai_path_prefix;
      if (prefix.front() != '/') {
        prefix.insert(prefix.begin(), '/');
      }
      openai.base_url = base + prefix;
      // The OpenAI builder adds "Authorization: Bearer <api_key>": right for a Bedrock API key,
      // and nothing for SigV4, which adds its own Authorization below.
      if (!UsesBearer(target.auth.mode)) {
        openai.api_key = Secret();
      }
      Result<HttpRequest> built = OpenAIWire().BuildRequest(openai, context);
      if (!built) {
        return built;
      }
      request = std::move(*built);
    } else {
      // The model id is a path label: ':' and '/' (ARNs) are percent-encoded on the wire.
      request.url = base + "/model/" + PercentEncode(model) +
                    (target.stream ? "/converse-stream" : "/converse");
      request.headers.emplace_back("Content-Type", Secret("application/json"));
      if (UsesBearer(target.auth.mode) && !target.api_key.empty()) {
        request.headers.emplace_back("Authorization", Secret("Bearer " + target.api_key.Reveal()));
      }
      for (const auto& header : target.headers) {
        request.headers.push_back(header);
      }
      const json body = {
          {"messages", json::array({{{"role", "user"},
                                     {"content", json::array({{{"text", target.prompt}}})}}})},
          {"inferenceConfig", {{"maxTokens", target.max_tokens}}},
      };
      request.body = body.dump();
    }

    switch (target.auth.mode) {
      case AuthMode::kAwsSigV4:
        if (Status signed_ok = Sign(target, context, request); !signed_ok) {
          return Fail(signed_ok.error());
        }
        break;
      case AuthMode::kNone:
      case AuthMode::kApiKey:
      case AuthMode::kBearerToken:
        break;
      case AuthMode::kTokenCommand:
      case AuthMode::kGoogleServiceAccount:
        return Fail(Error::InvalidArgument(
            "bedrock supports auth sigv4, bearer_token (Bedrock API key) or none"));
    }
    return request;
  }

  std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const override {
    return std::make_unique<ConverseStreamDecoder>(limits);
  }

  void ParseBody(std::string_view body, StreamEvents& events) const override {
    json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded() && parsed.is_object() &&
        (parsed.contains("choices") || parsed.contains("error") ||
         StringField(parsed, "object") == "chat.completion")) {
      OpenAIWire().ParseBody(body, events);  // the OpenAI-compatible endpoint
      return;
    }
    events.OnChunk();
    if (parsed.is_discarded()) {
      events.OnMalformed("malformed JSON body");
      return;
    }
    if (!parsed.is_object()) {
      events.OnMalformed("response is not a JSON object");
      return;
    }
    auto output = parsed.find("output");
    if (output == parsed.end() || !output->is_object()) {
      events.OnMalformed("Converse response without output");
      return;
    }
    auto message = output->find("message");
    if (message == output->end() || !message->is_object()) {
      events.OnMalformed("Converse response without output.message");
      return;
    }
    if (auto content = message->find("content"); content != message->end() && content->is_array()) {
      for (const json& block : *content) {
        ReportBlock(block, events);
      }
    }
    if (auto usage = parsed.find("usage"); usage != parsed.end()) {
      ReportUsage(*usage, events);
    }
    events.OnTerminator();
  }

  ProviderError ClassifyHttpError(int status, const HttpHeaders& headers,
                                  std::string_view body) const override {
    const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
    std::string code;
    if (std::optional<std::string_view> header = headers.Find("x-amzn-errortype")) {
      code = CleanErrorCode(*header);
    }
    std::string message;
    if (!parsed.is_discarded() && parsed.is_object()) {
      for (const char* key : {"code", "Code", "__type"}) {
        if (!code.empty()) {
          break;
        }
        code = CleanErrorCode(StringField(parsed, key));
      }
      message = StringField(parsed, "message");
      if (message.empty()) {
        message = StringField(parsed, "Message");
      }
    }
    // The OpenAI-compatible endpoint answers its own errors in OpenAI's shape.
    if (code.empty() && !parsed.is_discarded() && parsed.is_object() && parsed.contains("error")) {
      return OpenAIWire().ClassifyHttpError(status, headers, body);
    }
    if (message.empty() && parsed.is_discarded()) {
      message = std::string(body.substr(0, 200));
    }
    std::string text = "HTTP " + std::to_string(status);
    if (!code.empty()) {
      text += " " + code;
    }
    if (!message.empty()) {
      text += ": " + message;
    }
    return {OutcomeForAwsCode(code, message).value_or(OutcomeForStatus(status)), text};
  }

  HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const override {
    HeaderInfo info;
    // bedrock-runtime sends no headroom headers; the OpenAI-compatible endpoint might.
    ReadOpenAIRateLimits(headers, info.requests, info.tokens);
    info.retry_after_seconds = ParseRetryAfter(headers, now_unix_ms);
    info.request_id = ReadRequestId(headers, {"x-amzn-requestid", "x-request-id"});
    return info;
  }

 private:
  static bool UsesBearer(AuthMode mode) {
    return mode == AuthMode::kBearerToken || mode == AuthMode::kApiKey;
  }

  // Adds x-amz-date, x-amz-content-sha256, x-amz-security-token and Authorization, signing every
  // header the request carries at this point: they are all sent as they are.
  static Status Sign(const TargetSpec& target, const RequestContext& context,
                     HttpRequest& request) {
    const std::string host = HostOf(request.url);
    SigV4Params params;
    params.region = target.region.empty() ? RegionFromHost(host) : target.region;
    if (params.region.empty()) {
      return Fail(Error::InvalidArgument("bedrock SigV4 needs a region"));
    }
    params.service = host.rfind("bedrock-mantle.", 0) == 0 ? "bedrock-mantle" : "bedrock";
    params.unix_seconds = context.now_unix_ms / 1000;
    params.payload_hash_header = PayloadHashHeader::kSend;
    SigV4Request to_sign;
    to_sign.method = request.method;
    to_sign.url = request.url;
    to_sign.body = request.body;
    for (const auto& [name, value] : request.headers) {
      to_sign.headers.emplace_back(name, value.Reveal());
    }
    Result<SigV4Signature> signature = SignSigV4(to_sign, target.auth.aws, params);
    if (!signature) {
      return Fail(signature.error());
    }
    for (auto& header : signature->headers) {
      request.headers.push_back(std::move(header));
    }
    return {};
  }
};

}  // namespace

ProviderProfile BedrockProfile() {
  ProviderProfile profile;
  profile.cloud = "aws";
  profile.auth_modes = {AuthMode::kAwsSigV4, AuthMode::kBearerToken};
  profile.missing_credential_help =
      "provider bedrock needs AWS credentials: set auth.aws ({} for the default chain: "
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials; or {profile: "
      "NAME}), or auth.bearer_token_env (e.g. AWS_BEARER_TOKEN_BEDROCK) for a Bedrock API "
      "key";
  profile.default_base_url = [](const std::string& region) {
    return "https://bedrock-runtime." + region + ".amazonaws.com" +
           (region.starts_with("cn-") ? ".cn" : "");
  };
  profile.detail_keys = {"region", "api", "openai_path_prefix"};
  profile.is_region = IsAwsRegion;
  profile.region_kind = "an AWS region (e.g. us-east-1)";
  profile.region_needed_because =
      "(e.g. us-east-1): it picks the endpoint and scopes the SigV4 signature";
  profile.region_from_host = [](const std::string& host) {
    std::string region = RegionFromHost(host);
    return region == "global" && host != "aiplatform.googleapis.com" ? std::string() : region;
  };
  profile.refused_auth_hint = [](AuthMode mode) {
    return mode == AuthMode::kApiKey ? std::string_view(
                                           " (a Bedrock API key is sent as a bearer token: use "
                                           "auth.bearer_token_env, e.g. AWS_BEARER_TOKEN_BEDROCK)")
                                     : std::string_view();
  };
  return profile;
}

std::unique_ptr<ProviderAdapter> NewBedrockAdapter() { return std::make_unique<BedrockAdapter>(); }

}  // namespace modelpulse::collector
