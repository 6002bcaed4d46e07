#ifndef MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_H_
#define MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_H_

// The provider-adapter seam. The prober knows HTTP, timing and scheduling; an adapter knows one
// wire protocol: how to build the request, how to decode the (streamed) body, how to read the
// provider's headers and how to classify its errors. A new provider is one file under
// collector/providers/ defining a ProviderAdapter, plus one line in providers/registry.cpp.
//
// Private to the collector module. No libcurl or JSON headers here.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"

namespace modelpulse::collector {

// Response headers as received: names lower-cased, values trimmed, in arrival order.
class HttpHeaders {
 public:
  void Add(std::string lower_name, std::string value) {
    items_.emplace_back(std::move(lower_name), std::move(value));
  }
  void Clear() { items_.clear(); }
  // The first value of `lower_name`, or nullopt.
  std::optional<std::string_view> Find(std::string_view lower_name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// What the adapter wants sent. Header values are Secrets because some carry credentials; the
// transport reveals them only when handing them to libcurl.
struct HttpRequest {
  std::string method = "POST";
  std::string url;  // may carry a query (e.g. api-version, key=): never copied into results
  std::vector<std::pair<std::string, Secret>> headers;  // "Name", value
  std::string body;
};

// Facts an adapter may need while building a request (SigV4 date, OAuth token cache...).
struct RequestContext {
  int64_t now_unix_ms = 0;
};

// A failure the provider told us about, already classified.
struct ProviderError {
  Outcome outcome = Outcome::kServerError;
  std::string message;  // short; sanitised again by the transport before it is stored
  // A retry delay the provider put in the body rather than a header (Google's
  // google.rpc.RetryInfo retryDelay); the transport prefers a header's value.
  std::optional<double> retry_after_seconds;
};

// Token counts as the provider reported them. Absent fields leave earlier values alone.
struct Usage {
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
};

// What a decoder reports while it reads a body. Implemented by the transport, which stamps each
// call with the arrival time of the bytes being decoded.
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual void OnChunk() = 0;                           // one data event / frame / JSON object
  virtual void OnContent(std::string_view text) = 0;    // non-empty answer delta
  virtual void OnReasoning(std::string_view text) = 0;  // non-empty reasoning/thinking delta
  virtual void OnUsage(const Usage& usage) = 0;
  virtual void OnError(const ProviderError& error) = 0;  // an error inside a 2xx body
  virtual void OnMalformed(std::string_view what) = 0;   // bad JSON, bad framing, over a limit
  virtual void OnTerminator() = 0;                       // [DONE], message_stop, final frame...
};

// Per-probe decoder for a streamed 2xx body. Not thread-safe; one per probe.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Consumes the next bytes of the body (any split, down to one byte at a time).
  virtual void Feed(std::string_view bytes, StreamEvents& events) = 0;
  // The body ended. Decoders whose protocol has no explicit terminator (Gemini) report
  // OnTerminator here if the stream was complete.
  virtual void Finish(StreamEvents& events) = 0;
};

// Bounds a decoder must respect so a hostile stream cannot exhaust memory.
struct DecoderLimits {
  size_t max_line_bytes = 256 * 1024;
  size_t max_event_bytes = 1024 * 1024;
};

// Rate-limit headroom, retry hint and request id read from response headers.
struct HeaderInfo {
  RateLimit requests;
  RateLimit tokens;
  std::optional<double> retry_after_seconds;
  std::string request_id;
};

// One wire protocol. Stateless: every method is const and safe to call from any thread.
class ProviderAdapter {
 public:
  virtual ~ProviderAdapter() = default;

  // The request for one probe of `target` (streaming or not per target.stream). Fails only on
  // an unusable target (e.g. missing base_url); that becomes a client_error outcome.
  virtual Result<HttpRequest> BuildRequest(const TargetSpec& target,
                                           const RequestContext& context) const = 0;

  virtual std::unique_ptr<StreamDecoder> NewStreamDecoder(const DecoderLimits& limits) const = 0;

  // A complete non-streaming 2xx body, reported through the same events (content, usage, error,
  // terminator when the body is a complete answer).
  virtual void ParseBody(std::string_view body, StreamEvents& events) const = 0;

  // A non-2xx response. `body` is at most a bounded prefix of the real body.
  virtual ProviderError ClassifyHttpError(int status, const HttpHeaders& headers,
                                          std::string_view body) const = 0;

  virtual HeaderInfo ReadHeaders(const HttpHeaders& headers, int64_t now_unix_ms) const = 0;
};

// One target's provider details while collector/target_config.cpp reads them, as a provider's
// own checks (ProviderProfile::check_details) see them. Lives for one check.
class TargetDetails {
 public:
  // `values`: the detail keys that apply to the provider and read as non-empty strings;
  // `entries`: every detail key given, where messages point; `node` the target's map, `where` its
  // name in messages ("target \"x\"").
  TargetDetails(const std::map<std::string, std::string>& values,
                const std::map<std::string, const yaml::Entry*>& entries, const YAML::Node& node,
                std::string_view where, yaml::Diagnostics& diag)
      : values_(values), entries_(entries), node_(node), where_(where), diag_(diag) {}

  // The text of detail `key`, or nullptr when the target does not give it as a string.
  const std::string* Find(std::string_view key) const;
  // A problem with the value of `key`, which the target gives.
  void ProblemAt(std::string_view key, std::string message);
  // A problem with the target as a whole; the message follows "target \"x\": ".
  void TargetProblem(std::string_view message);

 private:
  const std::map<std::string, std::string>& values_;
  const std::map<std::string, const yaml::Entry*>& entries_;
  const YAML::Node& node_;
  std::string_view where_;
  yaml::Diagnostics& diag_;
};

// What a config may say about one provider, declared by its adapter file beside its wire
// protocol: read by collector/target_config.cpp when a target's provider-owned keys are read.
struct ProviderProfile {
  // The `cloud` label; empty when it follows from the base_url host (openai_compatible).
  std::string_view cloud;
  // The auth modes the provider accepts, in the order messages list them.
  std::vector<AuthMode> auth_modes;
  // What to write when a target of this provider has no credential; empty when the provider may
  // be reached without one (open OpenAI-style hosts: vLLM, Ollama, the simulator).
  std::string_view missing_credential_help;
  // The endpoint when base_url is not given, for the target's region; empty when there is none.
  std::string (*default_base_url)(const std::string& region) = nullptr;
  // The provider detail keys of a target it takes, of region, project, api_version,
  // anthropic_version, api and openai_path_prefix; the others are refused where they stand.
  std::vector<std::string_view> detail_keys;
  // For providers that put a region into every request (a signature scope, a location path): what
  // a valid region is, how messages describe one ("an AWS region (e.g. us-east-1)"), why it is
  // needed (said after 'needs "region" '), and the region a base_url host names (empty if none).
  // All null or empty for providers without a region.
  bool (*is_region)(const std::string& text) = nullptr;
  std::string_view region_kind;
  std::string_view region_needed_because;
  std::string (*region_from_host)(const std::string& host) = nullptr;
  // Said after refusing `mode`, to point at the form the provider takes instead; null if none.
  std::string_view (*refused_auth_hint)(AuthMode mode) = nullptr;
  // An example of the version key the provider takes (api_version or anthropic_version), for the
  // message about one that is not a version; empty when it takes neither.
  std::string_view version_example;
  // The provider's own rules on its details, beyond the checks every provider shares (each key's
  // applicability, region, versions, api, openai_path_prefix): keys it needs, keys that decide
  // each other. Runs after those, with `spec` filled from them; may complete `spec`. Returns false
  // when a detail is unusable, so that no default endpoint is derived. Null when there are none.
  bool (*check_details)(TargetDetails& details, TargetSpec& spec) = nullptr;
};

// us-east-1, us-gov-west-1, cn-north-1. Defined in target_config.cpp.
bool IsAwsRegion(const std::string& text);
// The region a host name carries (AWS, GCP, OpenAI data residency, Azure AI regional endpoints),
// else "global". Defined in target_config.cpp.
std::string RegionFromHost(const std::string& host);

// The profile of `provider`. Lives for the whole program. Defined in providers/registry.cpp.
const ProviderProfile& ProfileFor(Provider provider);

// Profiles, one per provider file.
ProviderProfile OpenAIProfile(Provider provider);  // openai.cpp: openai, openai_compatible
ProviderProfile BedrockProfile();                  // bedrock.cpp
ProviderProfile GoogleProfile(Provider provider);  // vertex.cpp: vertex, gemini
ProviderProfile AzureProfile();                    // azure.cpp
ProviderProfile AnthropicProfile();                // anthropic.cpp

// The adapter for `provider`, or nullptr when none is implemented yet. The returned object lives
// for the whole program. Defined in providers/registry.cpp.
const ProviderAdapter* AdapterFor(Provider provider);

// Factories, one per provider file.
std::unique_ptr<ProviderAdapter> NewOpenAIAdapter(Provider provider);  // openai, openai_compatible
std::unique_ptr<ProviderAdapter> NewBedrockAdapter();                  // bedrock.cpp
std::unique_ptr<ProviderAdapter> NewGoogleAdapter(Provider provider);  // vertex.cpp: vertex, gemini
std::unique_ptr<ProviderAdapter> NewAzureAdapter();                    // azure.cpp
std::unique_ptr<ProviderAdapter> NewAnthropicAdapter();                // anthropic.cpp

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_PROVIDERS_PROVIDER_H_
