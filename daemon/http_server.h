#ifndef MODELPULSE_DAEMON_HTTP_SERVER_H_
#define MODELPULSE_DAEMON_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "common/common.h"
#include "common/listen_address.h"

namespace modelpulse::daemon {

// What the endpoints answer with; each callback runs on an HTTP worker thread.
struct HttpHandlers {
  std::function<std::string()> metrics;       // GET /metrics
  std::function<bool()> ready;                // GET /-/ready: 200 when true, else 503
  std::function<Status()> reload;             // POST /-/reload (and PUT, as Prometheus accepts)
  std::function<std::string()> targets_json;  // GET /api/v1/targets
};

// The one HTTP server of the daemon (cpp-httplib, kept out of this header to keep builds fast).
class HttpServer {
 public:
  // Binds HOST:PORT ("127.0.0.1:9464", "[::1]:0", ":9464" = all interfaces) and serves on its own
  // thread. kUnavailable when the address cannot be bound, kInvalidArgument when malformed.
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& listen_address,
                                                   HttpHandlers handlers);
  virtual ~HttpServer() = default;
  virtual int port() const = 0;
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_HTTP_SERVER_H_
