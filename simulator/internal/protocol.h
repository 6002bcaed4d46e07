#ifndef MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_H_
#define MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_H_

// The seam between the simulator's engine (timing, phases, budgets, the HTTP server) and one
// provider's wire format. A protocol reads a request into a Call and renders a Plan into a Reply:
// bytes with the moment each must leave. It never sleeps or touches a socket, so a new provider is
// one file: its Parse, its encodings of an answer (RenderAnswer in protocol_util.h shapes ok,
// empty, truncated, malformed and hanging replies from them) and its own error replies. Private.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "simulator/internal/rate_limiter.h"
#include "simulator/internal/scenario.h"

namespace modelpulse::simulator {

// The parts of an HTTP request a protocol needs. Header names are lower case.
struct HttpRequest {
  std::string method;
  std::string path;  // below the endpoint's mount, e.g. "/v1/chat/completions"
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::pair<std::string, std::string>> query;  // decoded ?name=value pairs
  std::string body;
  // The request target exactly as received: the full path with the mount and its
  // percent-encoding intact, and the query ("/bedrock/model/a%3A0/converse?x=1"). Signature
  // checks (SigV4) need the bytes the client signed.
  std::string target;
  // When the request arrived, on the simulator's clock (for token lifetimes).
  Clock::MonotonicTime arrival{};

  // The first value of a header (name in lower case), or empty.
  std::string Header(std::string_view lower_name) const;
  // The first value of a query parameter, or nullopt when absent.
  std::optional<std::string> Query(std::string_view name) const;
};

enum class AuthState { kNotRequired, kOk, kMissing, kWrong };

// What the protocol understood of a valid request.
struct Call {
  bool stream = false;
  bool include_usage = false;
  std::string model;
  int64_t input_tokens = 0;
  std::optional<int64_t> max_tokens;
  AuthState auth = AuthState::kNotRequired;
  // Protocol-private facts Parse hands to Render: which credential header was used, the API
  // version, the deployment, and the endpoint's `options`. The engine never reads them.
  std::map<std::string, std::string> extras;
};

// What the endpoint decided to do with a Call; all times are offsets from the request's arrival.
struct Plan {
  Behaviour behaviour = Behaviour::kOk;
  std::string phase;
  std::string request_id;     // "req_" + 32 hex digits
  std::string completion_id;  // "chatcmpl-..."
  int64_t created_unix = 0;
  std::string model;
  Micros first_token{0};
  Micros inter_token{0};
  int64_t output_tokens = 0;  // as generated (after any max_tokens cut)
  bool cut_by_max_tokens = false;
  int64_t input_tokens = 0;
  RateLimitSnapshot ratelimit;
  std::string limited_resource = "requests";  // for kRateLimit: "requests" or "tokens"
  Micros retry_after{0};                      // for kRateLimit
};

struct TimedChunk {
  Micros at{0};
  std::string bytes;
};

struct Reply {
  enum class Mode {
    kBody,    // headers and the whole body at `body_at`
    kStream,  // headers at once, then each chunk at its moment
    kHang,    // nothing at all, until the client leaves or the hang cap
  };
  Mode mode = Mode::kBody;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";
  std::string body;
  Micros body_at{0};
  std::vector<TimedChunk> chunks;
  bool hang_after_chunks = false;  // kStream: after the last chunk, hold the connection silent
  // What the journal records: tokens actually sent and when the first content token is due
  // (nullopt when none is sent).
  int64_t sent_output_tokens = 0;
  std::optional<Micros> first_token_at;
};

class Protocol {
 public:
  virtual ~Protocol() = default;

  virtual std::string_view Name() const = 0;
  // Paths below the endpoint's mount answered with POST, e.g. "/v1/chat/completions".
  virtual std::vector<std::string> PostRoutes() const = 0;
  // Reads a request. A request the real API refuses before any work (unparseable JSON, a missing
  // field) yields the Reply to send at once instead.
  virtual std::variant<Call, Reply> Parse(const HttpRequest& request,
                                          const EndpointSpec& endpoint) const = 0;
  // Turns the decision into bytes and moments.
  virtual Reply Render(const Call& call, const Plan& plan) const = 0;

  // Reads the endpoint's protocol-specific `options` (credentials, key files) once, before any
  // request; called before PostRoutes(). An unknown option or an unreadable file is an error.
  // The default accepts no options.
  virtual Status Configure(const EndpointSpec& endpoint);
  // Whether Render has its own rendering of `behaviour`; the scenario loader refuses the others.
  // The default: the kinds up to kHangAfterHeaders.
  virtual bool Supports(Behaviour behaviour) const;
};

// Returns nullptr for an unknown name.
std::unique_ptr<Protocol> MakeProtocol(std::string_view name);
bool IsKnownProtocol(std::string_view name);
std::vector<std::string> ProtocolNames();

// The text of generated token `index`: "OK" first (so a probe's default (?i)\bok\b matches), then
// filler words, each with its leading space.
std::string TokenText(int64_t index);

std::unique_ptr<Protocol> MakeOpenAiProtocol();
std::unique_ptr<Protocol> MakeBedrockProtocol();
std::unique_ptr<Protocol> MakeVertexProtocol();
std::unique_ptr<Protocol> MakeGeminiProtocol();
std::unique_ptr<Protocol> MakeAzureProtocol();
std::unique_ptr<Protocol> MakeAnthropicProtocol();

}  // namespace modelpulse::simulator

#endif  // MODELPULSE_SIMULATOR_INTERNAL_PROTOCOL_H_
