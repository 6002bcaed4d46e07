#ifndef MODELPULSE_DAEMON_HTTP_SERVER_H_
#define MODELPULSE_DAEMON_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/common.h"
#include "common/listen_address.h"
#include "daemon/web_config.h"

namespace modelpulse::daemon {

// A request to the query API (/api/v1/query and its siblings): its parameters from the URL and,
// for a form-encoded POST, from the body, as Prometheus reads them.
struct ApiRequest {
  std::string method;
  std::string path;
  std::multimap<std::string, std::string> params;
};
struct ApiAnswer {
  int status = 200;
  std::string json;
};

// What the endpoints answer with; each callback runs on an HTTP worker thread.
struct HttpHandlers {
  std::function<std::string()> metrics;       // GET /metrics
  std::function<bool()> ready;                // GET /-/ready: 200 when true, else 503
  std::function<Status()> reload;             // POST or PUT /-/reload, with lifecycle enabled
  std::function<std::string()> targets_json;  // GET /api/v1/targets
  std::function<std::string()> alerts_json;   // GET /api/v1/alerts
  std::function<std::string()> status_html;   // GET /status (daemon/status_page.h); may be empty
  // GET /api/v1/rules; `type`: the query's type parameter ("", "alert", "record"...)
  std::function<ApiAnswer(const std::string& type)> rules_json;
  // GET or POST /api/v1/{query,query_range,series,labels,label/<name>/values,metadata,
  // status/buildinfo}
  std::function<ApiAnswer(const ApiRequest&)> api;
};

// How the server treats its clients. Every connection holds one worker thread from accept to
// close, so `max_connections` is both the connection limit and the worker pool's size: a client
// past the limit waits in the listen queue until a worker is free (as Prometheus's
// --web.max-connections). What bounds the time a worker is held: a request (its headers and body,
// and for TLS the handshake before it) must arrive whole within `read_timeout`; writing the
// answer has as long again; a kept-alive connection that sends nothing for `idle_timeout` is
// closed. So slow clients can hold at most the workers they connect with, for at most those
// timeouts, and /metrics keeps answering while fewer than `max_connections` of them connect.
struct HttpServerOptions {
  std::string listen_address = "127.0.0.1:9464";
  std::optional<WebConfig> web;   // --web.config.file: TLS, basic auth, extra headers
  bool enable_lifecycle = false;  // --web.enable-lifecycle: /-/reload answers 403 without it
  int max_connections = 64;
  Millis read_timeout{10'000};
  Millis idle_timeout{5'000};
  // Only the query API reads a body (form-encoded parameters); elsewhere a body (e.g.
  // `curl -d ''`) is read and ignored up to this size. Beyond it the answer is 413. Compressed
  // bodies are refused (415), never inflated.
  size_t max_body_bytes = 64 * 1024;
  size_t max_header_bytes = 64 * 1024;  // request line and headers together; beyond it, 400
};

// The one HTTP server of the daemon (cpp-httplib, kept out of this header to keep builds fast).
class HttpServer {
 public:
  // Binds HOST:PORT ("127.0.0.1:9464", "[::1]:0", ":9464" = all interfaces) and serves on its own
  // thread. kUnavailable when the address cannot be bound, kInvalidArgument when malformed or
  // when the TLS certificate, key or client CA of `options.web` cannot be loaded.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandlers handlers);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_HTTP_SERVER_H_
