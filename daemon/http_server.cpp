#include "daemon/http_server.h"

#include <httplib.h>

#include <thread>

namespace modelpulse::daemon {

namespace {

class HttplibServer final : public HttpServer {
 public:
  explicit HttplibServer(HttpHandlers handlers) : handlers_(std::move(handlers)) {}

  ~HttplibServer() override {
    server_.stop();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  Status Listen(const HostPort& where) {
    Route();
    port_ = where.port == 0 ? server_.bind_to_any_port(where.host)
                            : (server_.bind_to_port(where.host, where.port) ? where.port : -1);
    if (port_ < 0) {
      return Fail(Error::Unavailable("cannot listen on " + where.host + ":" +
                                     std::to_string(where.port) +
                                     " (address in use or not available)"));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return {};
  }

  int port() const override { return port_; }

 private:
  void Route() {
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(handlers_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/-/healthy", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("modelpulse is Healthy.\n", "text/plain");
    });
    server_.Get("/-/ready", [this](const httplib::Request&, httplib::Response& res) {
      if (handlers_.ready()) {
        res.set_content("modelpulse is Ready.\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content("modelpulse is not ready.\n", "text/plain");
      }
    });
    auto reload = [this](const httplib::Request&, httplib::Response& res) {
      Status status = handlers_.reload();
      if (status) {
        res.set_content("configuration reloaded\n", "text/plain");
      } else {
        res.status = 500;
        res.set_content("failed to reload config: " + status.error().ToString() + "\n",
                        "text/plain");
      }
    };
    server_.Post("/-/reload", reload);
    server_.Put("/-/reload", reload);
    server_.Get("/api/v1/targets", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(handlers_.targets_json(), "application/json");
    });
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><head><title>modelpulse</title></head><body><h1>modelpulse</h1>"
          "<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/api/v1/targets\">Targets</a>"
          "</p></body></html>",
          "text/html");
    });
  }

  HttpHandlers handlers_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen_address,
                                                      HttpHandlers handlers) {
  auto where = ParseListenAddress(listen_address);
  if (!where) {
    return Fail(where.error());
  }
  auto server = std::make_unique<HttplibServer>(std::move(handlers));
  if (auto listening = server->Listen(*where); !listening) {
    return Fail(listening.error());
  }
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace modelpulse::daemon
