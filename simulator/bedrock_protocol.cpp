// AWS Bedrock Runtime (protocols.md §4): Converse, ConverseStream framed as
// application/vnd.amazon.eventstream, the OpenAI-compatible chat route, AWS's error bodies and
// x-amzn-ErrorType headers, and SigV4 verified for real (or a Bedrock API key as a Bearer token).
// Written from the AWS documents, independently of collector/: see DESIGN.md §2.
//
// Options (the endpoint's `options:`):
//   access_key_id, secret_access_key  SigV4 credentials the simulator recomputes signatures with
//   session_token                     when set, SigV4 requests must carry it (x-amz-security-token)
//   expired_session_token             a session token answered with ExpiredTokenException
//   region (us-east-1), service (bedrock)   the credential scope a signature must use
//   verify_signature (true)           false: any SigV4 header passes (load tests)
//   max_clock_skew (5m)               x-amz-date further than this from now: "Signature expired"
//   openai_prefix (/openai/v1)        the OpenAI-compatible route is <prefix>/chat/completions
// The endpoint's `api_key` is the Bedrock API key (Authorization: Bearer). With neither an
// access key nor an api_key, requests are not authenticated at all.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/duration.h"
#include "simulator/internal/cloud_crypto.h"
#include "simulator/internal/protocol.h"
#include "simulator/internal/protocol_util.h"

namespace modelpulse::simulator {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kEventStreamType = "application/vnd.amazon.eventstream";
constexpr std::string_view kSigV4 = "AWS4-HMAC-SHA256";
constexpr std::string_view kInvalidSignatureMessage =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

// ---- event-stream encoding (protocols.md §4.3) ----

void PutU32(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xFF);
  out += static_cast<char>((v >> 16) & 0xFF);
  out += static_cast<char>((v >> 8) & 0xFF);
  out += static_cast<char>(v & 0xFF);
}

// One message: prelude (total length, headers length, prelude CRC), string headers (type 7),
// payload, message CRC over everything before it.
std::string Frame(const std::vector<std::pair<std::string, std::string>>& headers,
                  std::string_view payload) {
  std::string encoded_headers;
  for (const auto& [name, value] : headers) {
    encoded_headers += static_cast<char>(name.size());
    encoded_headers += name;
    encoded_headers += static_cast<char>(7);
    encoded_headers += static_cast<char>((value.size() >> 8) & 0xFF);
    encoded_headers += static_cast<char>(value.size() & 0xFF);
    encoded_headers += value;
  }
  std::string out;
  PutU32(out, static_cast<uint32_t>(12 + encoded_headers.size() + payload.size() + 4));
  PutU32(out, static_cast<uint32_t>(encoded_headers.size()));
  PutU32(out, Crc32(out));
  out += encoded_headers;
  out += payload;
  PutU32(out, Crc32(out));
  return out;
}

// Real event payloads carry a random-length "p" padding field against length side channels.
std::string Padding(size_t index) {
  static constexpr std::string_view kAlphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return std::string(kAlphabet.substr(0, 1 + (index * 17 + 5) % (kAlphabet.size() - 1)));
}

std::string EventFrame(std::string_view type, Json payload, size_t index) {
  Json padded{{"p", Padding(index)}};
  for (auto& [key, value] : payload.items())
    padded[key] = value;
  return Frame({{":event-type", std::string(type)},
                {":content-type", "application/json"},
                {":message-type", "event"}},
               padded.dump());
}

std::string ExceptionFrame(std::string_view type, std::string_view message) {
  return Frame({{":exception-type", std::string(type)},
                {":content-type", "application/json"},
                {":message-type", "exception"}},
               Json{{"message", message}}.dump());
}

// ---- SigV4 verification ----

std::string Trim(std::string_view s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos)
    return {};
  const auto end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

// Header values as SigV4 canonicalises them: trimmed, inner runs of spaces collapsed.
std::string CanonicalValue(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : Trim(value)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space)
      out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    const size_t end = std::min(query.find('&', start), query.size());
    const auto item = query.substr(start, end - start);
    if (!item.empty()) {
      const auto eq = item.find('=');
      const auto key = PercentDecode(item.substr(0, eq)).value_or(std::string(item.substr(0, eq)));
      const auto value =
          eq == std::string_view::npos
              ? std::string()
              : PercentDecode(item.substr(eq + 1)).value_or(std::string(item.substr(eq + 1)));
      pairs.emplace_back(UriEncode(key, false), UriEncode(value, false));
    }
    start = end + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty())
      out += '&';
    out += key + "=" + value;
  }
  return out;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%dT%H%M%SZ", &tm);
  return buffer;
}

std::optional<std::chrono::system_clock::time_point> ParseAmzDate(const std::string& text) {
  std::tm tm{};
  if (text.size() != 16 || strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &tm) == nullptr) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

struct BedrockConfig {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string expired_session_token;
  std::string region = "us-east-1";
  std::string service = "bedrock";
  bool verify_signature = true;
  std::chrono::seconds max_clock_skew{300};
  std::string openai_prefix = "/openai/v1";
  std::string api_key;
};

struct AuthVerdict {
  AuthState state = AuthState::kOk;
  std::string failure;  // "<x-amzn-ErrorType>|<message>"
};

AuthVerdict Deny(AuthState state, std::string_view type, std::string_view message) {
  return {state, fmt::format("{}|{}", type, message)};
}

AuthVerdict VerifySigV4(const HttpRequest& request, const BedrockConfig& config,
                        std::string_view authorization) {
  // Authorization: AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
  //                SignedHeaders=a;b;c, Signature=hex
  std::map<std::string, std::string> fields;
  std::string_view rest = authorization.substr(kSigV4.size());
  size_t start = 0;
  while (start < rest.size()) {
    const size_t end = std::min(rest.find(',', start), rest.size());
    const std::string item = Trim(rest.substr(start, end - start));
    if (const auto eq = item.find('='); eq != std::string::npos) {
      fields[item.substr(0, eq)] = item.substr(eq + 1);
    }
    start = end + 1;
  }
  for (const char* key : {"Credential", "SignedHeaders", "Signature"}) {
    if (!fields.count(key)) {
      return Deny(AuthState::kWrong, "IncompleteSignatureException",
                  fmt::format("Authorization header requires '{}' parameter. Authorization={}", key,
                              std::string(kSigV4) + " ..."));
    }
  }
  std::vector<std::string> scope;
  {
    std::string_view credential = fields["Credential"];
    size_t from = 0;
    while (from <= credential.size()) {
      const size_t slash = std::min(credential.find('/', from), credential.size());
      scope.emplace_back(credential.substr(from, slash - from));
      from = slash + 1;
    }
  }
  if (scope.size() != 5 || scope[4] != "aws4_request") {
    return Deny(AuthState::kWrong, "IncompleteSignatureException",
                "Credential should be scoped to a valid region, not ''. ");
  }
  if (!config.verify_signature)
    return {};
  if (!ConstantTimeEqual(scope[0], config.access_key_id)) {
    return Deny(AuthState::kWrong, "UnrecognizedClientException",
                "The security token included in the request is invalid.");
  }
  const std::string token = request.Header("x-amz-security-token");
  if (!token.empty() && !config.expired_session_token.empty() &&
      ConstantTimeEqual(token, config.expired_session_token)) {
    return Deny(AuthState::kWrong, "ExpiredTokenException",
                "The security token included in the request is expired");
  }
  if (!config.session_token.empty() && !ConstantTimeEqual(token, config.session_token)) {
    return Deny(AuthState::kWrong, "UnrecognizedClientException",
                "The security token included in the request is invalid.");
  }
  const std::string amz_date = request.Header("x-amz-date");
  if (amz_date.empty()) {
    return Deny(AuthState::kWrong, "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                "header. Authorization=AWS4-HMAC-SHA256 ...");
  }
  const auto signed_at = ParseAmzDate(amz_date);
  if (!signed_at) {
    return Deny(AuthState::kWrong, "IncompleteSignatureException",
                fmt::format("Date must be in ISO-8601 'basic format'. Got '{}'.", amz_date));
  }
  if (scope[1] != amz_date.substr(0, 8)) {
    return Deny(
        AuthState::kWrong, "InvalidSignatureException",
        fmt::format("Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                    "of date from HTTP: '{}' != '{}', from '{}'.",
                    scope[1], amz_date.substr(0, 8), amz_date));
  }
  if (scope[2] != config.region) {
    return Deny(AuthState::kWrong, "InvalidSignatureException",
                fmt::format("Credential should be scoped to a valid region, not '{}'. ", scope[2]));
  }
  if (scope[3] != config.service) {
    return Deny(
        AuthState::kWrong, "InvalidSignatureException",
        fmt::format("Credential should be scoped to correct service: '{}'. ", config.service));
  }
  const auto now = std::chrono::system_clock::now();
  if (*signed_at < now - config.max_clock_skew) {
    return Deny(AuthState::kWrong, "InvalidSignatureException",
                fmt::format("Signature expired: {} is now earlier than {} ({} - {} min.)", amz_date,
                            FormatAmzDate(now - config.max_clock_skew), FormatAmzDate(now),
                            config.max_clock_skew.count() / 60));
  }
  if (*signed_at > now + config.max_clock_skew) {
    return Deny(AuthState::kWrong, "InvalidSignatureException",
                fmt::format("Signature not yet current: {} is still later than {} ({} + {} min.)",
                            amz_date, FormatAmzDate(now + config.max_clock_skew),
                            FormatAmzDate(now), config.max_clock_skew.count() / 60));
  }

  // The canonical request, as the client must have built it. The path is the one on the wire
  // (already percent-encoded by the client), encoded once more: non-S3 services double-encode.
  const std::string_view target = request.target;
  const size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  const std::string_view raw_query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string canonical_headers;
  const std::string& signed_headers = fields["SignedHeaders"];
  {
    size_t from = 0;
    while (from <= signed_headers.size()) {
      const size_t semi = std::min(signed_headers.find(';', from), signed_headers.size());
      const std::string name = signed_headers.substr(from, semi - from);
      std::string values;
      for (const auto& [header, value] : request.headers) {
        if (header != name)
          continue;
        if (!values.empty())
          values += ',';
        values += CanonicalValue(value);
      }
      canonical_headers += name + ":" + values + "\n";
      from = semi + 1;
    }
  }
  const std::string canonical_request = fmt::format(
      "{}\n{}\n{}\n{}\n{}\n{}", request.method, UriEncode(raw_path, true),
      CanonicalQuery(raw_query), canonical_headers, signed_headers, LowerHex(Sha256(request.body)));
  const std::string credential_scope =
      fmt::format("{}/{}/{}/aws4_request", scope[1], scope[2], scope[3]);
  const std::string string_to_sign = fmt::format(
      "{}\n{}\n{}\n{}", kSigV4, amz_date, credential_scope, LowerHex(Sha256(canonical_request)));
  std::string key = HmacSha256("AWS4" + config.secret_access_key, scope[1]);
  key = HmacSha256(key, scope[2]);
  key = HmacSha256(key, scope[3]);
  key = HmacSha256(key, "aws4_request");
  const std::string expected = LowerHex(HmacSha256(key, string_to_sign));
  if (!ConstantTimeEqual(expected, fields["Signature"])) {
    return Deny(AuthState::kWrong, "InvalidSignatureException", kInvalidSignatureMessage);
  }
  return {};
}

// ---- bodies ----

int64_t EstimateTokens(const Json& messages) {
  int64_t chars = 0;
  for (const auto& message : messages) {
    if (!message.is_object() || !message.contains("content") || !message["content"].is_array()) {
      continue;
    }
    for (const auto& block : message["content"]) {
      if (block.is_object() && block.contains("text") && block["text"].is_string()) {
        chars += static_cast<int64_t>(block["text"].get_ref<const std::string&>().size());
      }
    }
  }
  return 2 + (chars + 3) / 4;
}

std::string Uuid(const std::string& request_id) {
  // plan.request_id is "req_" + 32 hex digits; AWS request ids are UUIDs.
  std::string hex = request_id.size() >= 36 ? request_id.substr(4, 32) : std::string(32, '0');
  return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4),
                     hex.substr(16, 4), hex.substr(20, 12));
}

class BedrockProtocol final : public Protocol {
 public:
  std::string_view Name() const override { return "bedrock"; }

  std::vector<std::string> PostRoutes() const override {
    // httplib matches these as regular expressions against the decoded path.
    return {"/model/.+/converse", "/model/.+/converse-stream",
            config_.openai_prefix + "/chat/completions"};
  }

  Status Configure(const EndpointSpec& endpoint) override {
    for (const auto& [key, value] : endpoint.options) {
      if (key == "access_key_id") {
        config_.access_key_id = value;
      } else if (key == "secret_access_key") {
        config_.secret_access_key = value;
      } else if (key == "session_token") {
        config_.session_token = value;
      } else if (key == "expired_session_token") {
        config_.expired_session_token = value;
      } else if (key == "region") {
        config_.region = value;
      } else if (key == "service") {
        config_.service = value;
      } else if (key == "verify_signature") {
        if (value != "true" && value != "false") {
          return Fail(Error::Parse("verify_signature must be true or false"));
        }
        config_.verify_signature = value == "true";
      } else if (key == "max_clock_skew") {
        const auto skew = ParsePromDuration(value);
        if (!skew || skew->count() <= 0) {
          return Fail(Error::Parse("max_clock_skew must be a positive duration like 5m"));
        }
        config_.max_clock_skew = std::chrono::duration_cast<std::chrono::seconds>(*skew);
      } else if (key == "openai_prefix") {
        if (value.empty() || value.front() != '/' || value.back() == '/') {
          return Fail(Error::Parse("openai_prefix must start with '/' and not end with one"));
        }
        config_.openai_prefix = value;
      } else {
        return Fail(Error::Parse(
            fmt::format("unknown bedrock option '{}' (expected access_key_id, secret_access_key, "
                        "session_token, expired_session_token, region, service, verify_signature, "
                        "max_clock_skew, openai_prefix)",
                        key)));
      }
    }
    if (config_.access_key_id.empty() != config_.secret_access_key.empty()) {
      return Fail(
          Error::Parse("bedrock needs both access_key_id and secret_access_key, or neither"));
    }
    config_.api_key = endpoint.api_key;
    model_ = endpoint.model;
    return {};
  }

  bool Supports(Behaviour) const override { return true; }

  std::variant<Call, Reply> Parse(const HttpRequest& request,
                                  const EndpointSpec& endpoint) const override {
    const AuthVerdict auth = Authenticate(request);
    if (request.path.size() > config_.openai_prefix.size() &&
        request.path.compare(0, config_.openai_prefix.size(), config_.openai_prefix) == 0) {
      EndpointSpec open = endpoint;
      open.api_key.clear();  // authentication is ours: SigV4 or the Bedrock API key
      auto parsed = openai_->Parse(request, open);
      if (auto* call = std::get_if<Call>(&parsed)) {
        call->extras["operation"] = "openai_chat";
        call->auth = auth.state;
        call->extras["auth_failure"] = auth.failure;
      }
      return parsed;
    }

    // /model/<model>/converse or /converse-stream. Parsed by hand: std::regex recurses once per
    // character of the path.
    std::string_view route = request.path;
    std::string_view operation;
    for (const std::string_view suffix : {"/converse-stream", "/converse"}) {
      if (route.size() > suffix.size() && route.ends_with(suffix)) {
        operation = suffix.substr(1);
        route.remove_suffix(suffix.size());
        break;
      }
    }
    if (operation.empty() || !route.starts_with("/model/") || route.size() == 7) {
      return HttpError(404, "UnknownOperationException", "");
    }
    Call call;
    call.auth = auth.state;
    call.extras["auth_failure"] = auth.failure;
    call.model = std::string(route.substr(7));
    call.extras["operation"] = std::string(operation);
    call.stream = operation == "converse-stream";
    const Json body = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded() || !body.is_object()) {
      return HttpError(400, "SerializationException", "Could not parse request body into json.");
    }
    if (!model_.empty() && call.model != model_) {
      return HttpError(400, "ValidationException", "The provided model identifier is invalid.");
    }
    const auto messages = body.find("messages");
    if (messages == body.end() || !messages->is_array() || messages->empty()) {
      return HttpError(400, "ValidationException",
                       "A conversation must start with a user message. Try again with a "
                       "conversation that starts with a user message.");
    }
    call.input_tokens = EstimateTokens(*messages);
    if (const auto config = body.find("inferenceConfig");
        config != body.end() && config->is_object()) {
      if (const auto max = config->find("maxTokens"); max != config->end()) {
        if (!max->is_number_integer() || max->get<int64_t>() < 1) {
          return HttpError(400, "ValidationException",
                           "1 validation error detected: Value at 'inferenceConfig.maxTokens' "
                           "failed to satisfy constraint: Member must have value greater than or "
                           "equal to 1");
        }
        call.max_tokens = max->get<int64_t>();
      }
    }
    return call;
  }

  Reply Render(const Call& call, const Plan& plan) const override {
    Reply reply = Extra(call, "operation") == "openai_chat" ? RenderOpenAi(call, plan)
                                                            : RenderConverse(call, plan);
    reply.headers.emplace_back("x-amzn-RequestId", Uuid(plan.request_id));
    return reply;
  }

 private:
  AuthVerdict Authenticate(const HttpRequest& request) const {
    if (config_.access_key_id.empty() && config_.api_key.empty()) {
      return {AuthState::kNotRequired, {}};
    }
    const std::string authorization = request.Header("authorization");
    if (authorization.empty()) {
      return Deny(AuthState::kMissing, "MissingAuthenticationTokenException",
                  "Missing Authentication Token");
    }
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.compare(0, kBearer.size(), kBearer) == 0) {
      // A Bedrock API key. AWS's wording for a wrong one is not in protocols.md [unverified].
      if (!config_.api_key.empty() &&
          ConstantTimeEqual(authorization.substr(kBearer.size()), config_.api_key)) {
        return {};
      }
      return Deny(AuthState::kWrong, "UnrecognizedClientException",
                  "The security token included in the request is invalid.");
    }
    if (authorization.compare(0, kSigV4.size(), kSigV4) == 0 &&
        authorization.size() > kSigV4.size() && authorization[kSigV4.size()] == ' ') {
      if (config_.access_key_id.empty()) {
        return Deny(AuthState::kWrong, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
      }
      return VerifySigV4(request, config_, authorization);
    }
    return Deny(AuthState::kWrong, "IncompleteSignatureException",
                "Authorization header requires 'Credential' parameter. Authorization header "
                "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
                "parameter.");
  }

  static Reply HttpError(int status, std::string_view type, std::string_view message) {
    Reply reply;
    reply.status = status;
    reply.headers.emplace_back(
        "x-amzn-ErrorType",
        fmt::format("{}:http://internal.amazon.com/coral/com.amazon.bedrock/", type));
    reply.body = Json{{"message", message}}.dump();
    return reply;
  }

  static Reply AuthError(const Call& call) {
    const std::string failure = Extra(call, "auth_failure");
    const auto bar = failure.find('|');
    const std::string type = failure.substr(0, bar);
    const std::string message = bar == std::string::npos ? "" : failure.substr(bar + 1);
    Reply reply = HttpError(403, type, message);
    // Auth failures come from the AWS front end, not Bedrock: the coral namespace differs.
    reply.headers[0].second = type + ":http://internal.amazon.com/coral/com.amazon.coral.service/";
    return reply;
  }

  // Plain HTTP errors for the kinds that are not about the stream.
  static std::optional<Reply> KindError(const Call& call, const Plan& plan) {
    switch (plan.behaviour) {
      case Behaviour::kUnauthorized401:
        if (call.auth == AuthState::kMissing || call.auth == AuthState::kWrong) {
          return AuthError(call);
        }
        return HttpError(403, "AccessDeniedException",
                         "You don't have access to the model with the specified model ID.");
      case Behaviour::kRateLimit:
        return HttpError(429, "ThrottlingException",
                         "Too many requests, please wait before trying again.");
      case Behaviour::kQuotaPerDay:
        return HttpError(429, "ThrottlingException",
                         "Too many tokens per day, please wait before trying again.");
      case Behaviour::kModelNotReady:
        return HttpError(429, "ModelNotReadyException",
                         "Model is not ready to serve inference requests. The SDK will "
                         "automatically retry the operation.");
      case Behaviour::kInsufficientQuota:
        return HttpError(403, "AccessDeniedException",
                         "Model access is denied due to INVALID_PAYMENT_INSTRUMENT:A valid payment "
                         "instrument must be provided.");
      case Behaviour::kOverloaded503:
        return HttpError(503, "ServiceUnavailableException",
                         "Bedrock is unable to process your request.");
      case Behaviour::kServerError500:
        return HttpError(500, "InternalServerException",
                         "The system encountered an unexpected error during processing. Try your "
                         "request again.");
      default:
        return std::nullopt;
    }
  }

  Reply RenderOpenAi(const Call& call, const Plan& plan) const {
    if (call.auth == AuthState::kMissing || call.auth == AuthState::kWrong) {
      return AuthError(call);
    }
    switch (plan.behaviour) {
      case Behaviour::kQuotaPerDay:
      case Behaviour::kModelNotReady:
        return *KindError(call, plan);
      case Behaviour::kExceptionMidstream:
      case Behaviour::kOverloadedMidstream: {
        Plan error_plan = plan;
        error_plan.behaviour = Behaviour::kErrorIn200;
        return openai_->Render(call, error_plan);
      }
      default:
        return openai_->Render(call, plan);
    }
  }

  Reply RenderConverse(const Call& call, const Plan& plan) const {
    if (auto error = KindError(call, plan))
      return *error;
    const AnswerEncoding encoding{
        .body = [&] { return Converse(plan); },
        .stream = [&](int64_t tokens) { return Stream(call, plan, tokens, StreamEnd::kComplete); },
        .truncated_stream =
            [&](int64_t tokens) {
              Reply cut = Stream(call, plan, tokens, StreamEnd::kCut);
              // The last frame stops half way: a truncated frame, then the connection closes.
              auto& last = cut.chunks.back().bytes;
              last.resize(last.size() - 9);
              return cut;
            },
        // Bedrock's malformed stream: a frame whose message CRC does not match.
        .malform_stream =
            [](Reply& stream) {
              if (stream.chunks.size() > 1)
                stream.chunks[1].bytes.back() ^= 0x5A;
            },
        .stream_content_type = std::string(kEventStreamType),
        .opening_chunks =
            [] {
              return std::vector<TimedChunk>{
                  {Micros(0), EventFrame("messageStart", Json{{"role", "assistant"}}, 0)}};
            },
    };
    if (auto answer = RenderAnswer(call, plan, encoding))
      return *answer;
    // What is left: an error in a 200, or an exception in the middle of the stream.
    Reply reply;
    if (plan.behaviour == Behaviour::kErrorIn200) {
      if (!call.stream) {
        return HttpError(424, "ModelErrorException",
                         "Received a model error: the model returned an unexpected response.");
      }
      reply = Stream(call, plan, 0, StreamEnd::kCut);
      reply.chunks.push_back(
          {plan.first_token, ExceptionFrame("internalServerException",
                                            "The system encountered an unexpected error during "
                                            "processing. Try your request again.")});
      return reply;
    }
    const bool throttled = plan.behaviour == Behaviour::kExceptionMidstream;
    const std::string_view message = throttled
                                         ? "Too many requests, please wait before trying again."
                                         : "Bedrock is unable to process your request.";
    if (!call.stream) {
      return throttled ? HttpError(429, "ThrottlingException", message)
                       : HttpError(503, "ServiceUnavailableException", message);
    }
    const int64_t half = std::max<int64_t>(1, plan.output_tokens / 2);
    reply = Stream(call, plan, half, StreamEnd::kCut);
    reply.chunks.push_back(
        {plan.first_token + plan.inter_token * (half - 1),
         ExceptionFrame(throttled ? "throttlingException" : "serviceUnavailableException",
                        message)});
    return reply;
  }

  enum class StreamEnd { kComplete, kCut };

  static Reply Stream(const Call& /*call*/, const Plan& plan, int64_t tokens, StreamEnd end) {
    Reply reply;
    reply.mode = Reply::Mode::kStream;
    reply.content_type = kEventStreamType;
    size_t index = 0;
    reply.chunks.push_back(
        {Micros(0), EventFrame("messageStart", Json{{"role", "assistant"}}, index++)});
    Micros at = plan.first_token;
    for (int64_t i = 0; i < tokens; ++i) {
      at = plan.first_token + plan.inter_token * i;
      reply.chunks.push_back(
          {at, EventFrame("contentBlockDelta",
                          Json{{"contentBlockIndex", 0}, {"delta", {{"text", TokenText(i)}}}},
                          index++)});
    }
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    if (end == StreamEnd::kComplete) {
      reply.chunks.push_back(
          {at, EventFrame("contentBlockStop", Json{{"contentBlockIndex", 0}}, index++)});
      reply.chunks.push_back(
          {at, EventFrame("messageStop",
                          Json{{"stopReason", plan.cut_by_max_tokens ? "max_tokens" : "end_turn"}},
                          index++)});
      reply.chunks.push_back({at, EventFrame("metadata",
                                             Json{{"metrics", {{"latencyMs", Millis(at)}}},
                                                  {"usage",
                                                   {{"inputTokens", plan.input_tokens},
                                                    {"outputTokens", tokens},
                                                    {"serverToolUsage", Json::object()},
                                                    {"totalTokens", plan.input_tokens + tokens}}}},
                                             index++)});
    }
    return reply;
  }

  static Reply Converse(const Plan& plan) {
    const int64_t tokens = plan.output_tokens;
    std::string text;
    for (int64_t i = 0; i < tokens; ++i)
      text += TokenText(i);
    Reply reply;
    reply.body_at = plan.first_token + plan.inter_token * std::max<int64_t>(0, tokens - 1);
    reply.body =
        Json{{"metrics", {{"latencyMs", Millis(reply.body_at)}}},
             {"output",
              {{"message",
                {{"content", Json::array({Json{{"text", text}}})}, {"role", "assistant"}}}}},
             {"stopReason", plan.cut_by_max_tokens ? "max_tokens" : "end_turn"},
             {"usage",
              {{"inputTokens", plan.input_tokens},
               {"outputTokens", tokens},
               {"totalTokens", plan.input_tokens + tokens}}}}
            .dump();
    reply.sent_output_tokens = tokens;
    if (tokens > 0)
      reply.first_token_at = plan.first_token;
    return reply;
  }

  BedrockConfig config_;
  std::string model_;
  std::unique_ptr<Protocol> openai_ = MakeOpenAiProtocol();
};

}  // namespace

std::unique_ptr<Protocol> MakeBedrockProtocol() { return std::make_unique<BedrockProtocol>(); }

}  // namespace modelpulse::simulator
