#include "daemon/http_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

namespace modelpulse::daemon {

namespace {

using SteadyClock = std::chrono::steady_clock;

// A private request header through which Admit (which sees the connection) tells the routing
// hooks (which do not) how to answer; a client's own copy is removed first.
constexpr const char* kRefusalHeader = "X-Modelpulse-Refusal";
// Debian's libcpp-httplib parses a form-encoded body itself and answers 413 beyond 8 KiB (its
// CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH, compiled into the shared library), where
// Prometheus takes any form up to its body limit: Grafana POSTs long dashboard queries that way.
// Admit moves such a Content-Type here before httplib reads the body; the query API parses it.
constexpr const char* kFormContentTypeHeader = "X-Modelpulse-Form-Content-Type";
constexpr std::string_view kFormContentType = "application/x-www-form-urlencoded";

// How often a waiting worker looks at the stop flag, so shutdown never waits for a slow client.
constexpr std::chrono::milliseconds kStopCheck{100};

struct Limits {
  std::chrono::milliseconds read_timeout;
  std::chrono::milliseconds idle_timeout;
  size_t max_body_bytes;
  size_t max_header_bytes;
};

bool EqualsIgnoringCase(const std::string& a, const char* b) {
  return strcasecmp(a.c_str(), b) == 0;
}

bool StartsWithIgnoringCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
}

// One accepted connection (and its TLS session), as the stream httplib reads requests from and
// writes answers to. Every read and write is bounded: by the current deadline (the whole request,
// or the whole answer, or the idle wait between requests), by the bytes the request may still
// send (its header allowance, then the body its Content-Length announced), and by the server
// stopping. The socket is non-blocking; waits are poll() in short slices.
class Connection final : public httplib::Stream {
 public:
  Connection(int fd, SSL* ssl, const Limits& limits, const std::atomic<bool>& stopping)
      : fd_(fd), ssl_(ssl), limits_(limits), stopping_(stopping) {}

  // The TLS handshake, within one read timeout: a client that opens a connection and sends
  // nothing (or plain HTTP) holds its worker no longer than that.
  bool Handshake() {
    deadline_ = SteadyClock::now() + limits_.read_timeout;
    for (;;) {
      ERR_clear_error();
      const int r = SSL_accept(ssl_);
      if (r == 1) {
        handshaken_ = true;
        return true;
      }
      if (!WaitFor(SSL_get_error(ssl_, r))) {
        return false;
      }
    }
  }

  // Waits up to the idle timeout for the next request to start.
  bool WaitForRequest() {
    if (begin_ < end_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0)) {
      return true;
    }
    deadline_ = SteadyClock::now() + limits_.idle_timeout;
    return Wait(POLLIN);
  }

  void BeginRequest() {
    deadline_ = SteadyClock::now() + limits_.read_timeout;
    allowance_ = limits_.max_header_bytes;
    writing_ = false;
  }
  void AllowBody(size_t bytes) { allowance_ += bytes; }
  void CloseAfterThisRequest() { close_ = true; }
  bool close_requested() const { return close_; }

  void Shutdown() {
    if (ssl_ != nullptr && handshaken_) {
      ERR_clear_error();
      SSL_shutdown(ssl_);  // best effort, non-blocking: the socket closes right after
    }
  }

  bool is_readable() const override {
    if (begin_ < end_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0)) {
      return true;
    }
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }
  bool is_writable() const override { return !stopping_ && SteadyClock::now() < deadline_; }

  ssize_t read(char* ptr, size_t size) override {
    if (allowance_ == 0) {
      // The request is larger than its limits: fail it rather than buffer more. httplib answers
      // 400; what is left of the request is unread, so the connection ends there too.
      close_ = true;
      return -1;
    }
    if (begin_ == end_) {
      const ssize_t n = Fill();
      if (n <= 0) {
        // A request cut short by its deadline is answered 400 and ends the connection, so a
        // slow client cannot start over on the same socket.
        close_ = true;
        return n;
      }
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min({size, end_ - begin_, allowance_});
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    allowance_ -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {
      // The answer gets its own budget, as long as the request's: a client that reads slowly
      // holds its worker no longer than that.
      writing_ = true;
      deadline_ = SteadyClock::now() + limits_.read_timeout;
    }
    size_t done = 0;
    while (done < size) {
      const size_t chunk = std::min(size - done, size_t{1} << 20);
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int r = SSL_write(ssl_, ptr + done, static_cast<int>(chunk));
        if (r > 0) {
          done += static_cast<size_t>(r);
        } else if (!WaitFor(SSL_get_error(ssl_, r))) {
          return -1;
        }
        continue;
      }
      const ssize_t n = ::send(fd_, ptr + done, chunk, MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<size_t>(n);
      } else if (errno != EINTR && (errno != EAGAIN || !Wait(POLLOUT))) {
        return -1;
      }
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      Describe(addr, len, ip, port);
    }
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      Describe(addr, len, ip, port);
    }
  }
  socket_t socket() const override { return fd_; }

 private:
  static void Describe(const sockaddr_storage& addr, socklen_t len, std::string& ip, int& port) {
    std::array<char, NI_MAXHOST> host{};
    std::array<char, NI_MAXSERV> service{};
    if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host.data(), host.size(),
                    service.data(), service.size(), NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host.data();
      port = std::atoi(service.data());
    }
  }

  // One read from the socket or the TLS session into the buffer: bytes read, 0 at the end of the
  // stream, -1 on an error, the deadline or a stop.
  ssize_t Fill() {
    for (;;) {
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int r = SSL_read(ssl_, buffer_.data(), static_cast<int>(buffer_.size()));
        if (r > 0) {
          return r;
        }
        const int error = SSL_get_error(ssl_, r);
        if (error == SSL_ERROR_ZERO_RETURN) {
          return 0;
        }
        if (!WaitFor(error)) {
          return -1;
        }
        continue;
      }
      const ssize_t n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
      if (n >= 0) {
        return n;
      }
      if (errno != EINTR && (errno != EAGAIN || !Wait(POLLIN))) {
        return -1;
      }
    }
  }

  // After an SSL call that did not complete: waits for what it wants; false for a real error.
  bool WaitFor(int ssl_error) {
    if (ssl_error == SSL_ERROR_WANT_READ) {
      return Wait(POLLIN);
    }
    if (ssl_error == SSL_ERROR_WANT_WRITE) {
      return Wait(POLLOUT);
    }
    return false;
  }

  bool Wait(short events) {
    for (;;) {
      const auto now = SteadyClock::now();
      if (stopping_ || now >= deadline_) {
        return false;
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now);
      pollfd p{fd_, events, 0};
      const int r = poll(&p, 1, static_cast<int>(std::min(left, kStopCheck).count()));
      if (r > 0) {
        return true;  // readiness, or an error or hang-up the next call reports
      }
      if (r < 0 && errno != EINTR) {
        return false;
      }
    }
  }

  int fd_;
  SSL* ssl_;
  const Limits& limits_;
  const std::atomic<bool>& stopping_;
  SteadyClock::time_point deadline_{};
  size_t allowance_ = 0;
  bool writing_ = false;
  bool close_ = false;
  bool handshaken_ = false;
  std::array<char, 4096> buffer_{};
  size_t begin_ = 0;
  size_t end_ = 0;
};

// The worker pool: one thread per connection being served, `capacity` of them. When all are
// taken, enqueue (called by httplib's accept loop) blocks, so further clients wait in the
// kernel's listen queue instead of piling up as accepted sockets, as Go's LimitListener does for
// Prometheus's --web.max-connections.
class WorkerPool final : public httplib::TaskQueue {
 public:
  explicit WorkerPool(size_t capacity) : capacity_(capacity) {
    threads_.reserve(capacity);
    for (size_t i = 0; i < capacity; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [this] { return busy_ + jobs_.size() < capacity_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    work_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    work_.notify_all();
    room_.notify_all();
    for (std::thread& thread : threads_) {
      thread.join();
    }
  }

 private:
  void Work() {
    // A TLS write to a client that went away raises SIGPIPE (plain sends use MSG_NOSIGNAL); on
    // this thread it stays blocked and the write just fails.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) {
          return;
        }
        fn = std::move(jobs_.front());
        jobs_.pop_front();
        ++busy_;
      }
      fn();
      {
        std::lock_guard lock(mutex_);
        --busy_;
      }
      room_.notify_one();
    }
  }

  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<std::function<void()>> jobs_;
  size_t busy_ = 0;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

std::string OpenSslError() {
  std::array<char, 256> text{};
  const unsigned long code = ERR_get_error();
  if (code == 0) {
    return "unknown OpenSSL error";
  }
  ERR_error_string_n(code, text.data(), text.size());
  ERR_clear_error();
  return text.data();
}

int AcceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

Result<SslCtxPtr> MakeTlsContext(const WebConfig::Tls& tls, const std::string& web_config) {
  auto fail = [&web_config](const std::string& what) {
    return Fail(
        Error::InvalidArgument("web config " + web_config + ": " + what + ": " + OpenSslError()));
  };
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    return fail("cannot create a TLS context");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), tls.min_version);
  SSL_CTX_set_max_proto_version(ctx.get(), tls.max_version);
  // Client-initiated renegotiation costs the server a handshake per request of the client.
  uint64_t options = SSL_OP_NO_RENEGOTIATION;
  if (tls.prefer_server_cipher_suites) {
    options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  }
  SSL_CTX_set_options(ctx.get(), options);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert_file.c_str()) != 1) {
    return fail("cannot load cert_file " + tls.cert_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot load key_file " + tls.key_file);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return fail("key_file " + tls.key_file + " does not match cert_file " + tls.cert_file);
  }
  if (!tls.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), tls.client_ca_file.c_str(), nullptr) != 1) {
      return fail("cannot load client_ca_file " + tls.client_ca_file);
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) {
      return fail("no certificate in client_ca_file " + tls.client_ca_file);
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);
  }
  // Go's tls.ClientAuthType, which exporter-toolkit exposes by name.
  using enum WebConfig::ClientAuth;
  switch (tls.client_auth) {
    case kNoClientCert:
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
      break;
    case kRequestClientCert:
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, AcceptAnyCertificate);
      break;
    case kRequireAnyClientCert:
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                         AcceptAnyCertificate);
      break;
    case kVerifyClientCertIfGiven:
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
      break;
    case kRequireAndVerifyClientCert:
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      break;
  }
  return ctx;
}

// httplib's server with modelpulse's own connection handling: bounded streams (see Connection),
// TLS done here rather than by httplib's SSLServer so the handshake is bounded too, and every
// request admitted (auth, body size, encoding) before httplib reads a byte of its body.
class BoundedServer final : public httplib::Server {
 public:
  BoundedServer(const HttpServerOptions& options, SslCtxPtr tls)
      : limits_{options.read_timeout, options.idle_timeout, options.max_body_bytes,
                options.max_header_bytes},
        tls_(std::move(tls)),
        auth_(options.web ? options.web->basic_auth_users : std::map<std::string, std::string>{}) {
    const size_t workers = static_cast<size_t>(std::max(1, options.max_connections));
    new_task_queue = [workers] { return new WorkerPool(workers); };
    set_payload_max_length(options.max_body_bytes);
    set_keep_alive_max_count(100);
    httplib::Headers headers;
    if (options.web) {
      for (const auto& [name, value] : options.web->headers) {
        headers.emplace(name, value);
      }
    }
    set_default_headers(std::move(headers));
    set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      const int status = RefusalOf(req);
      if (status == 0) {
        return HandlerResponse::Unhandled;
      }
      Refuse(status, res);
      return HandlerResponse::Handled;
    });
    // A client that asks before sending a large body (curl does above 1 MiB) gets the refusal
    // instead of "100 Continue", and sends nothing.
    set_expect_100_continue_handler([](const httplib::Request& req, httplib::Response& res) {
      const int status = RefusalOf(req);
      if (status == 0) {
        return 100;
      }
      Refuse(status, res);
      return status;
    });
  }

  void Stop() {
    stopping_ = true;
    stop();
  }

 private:
  static int RefusalOf(const httplib::Request& req) {
    const std::string value = req.get_header_value(kRefusalHeader);
    return value.empty() ? 0 : std::atoi(value.c_str());
  }

  static void Refuse(int status, httplib::Response& res) {
    res.status = status;
    switch (status) {
      case 401:
        res.set_header("WWW-Authenticate", "Basic");
        res.set_content("Unauthorized\n", "text/plain; charset=utf-8");
        break;
      case 413:
        res.set_content("request body too large\n", "text/plain; charset=utf-8");
        break;
      case 415:
        res.set_content("compressed request bodies are not accepted\n",
                        "text/plain; charset=utf-8");
        break;
      case 501:
        res.set_content("unsupported transfer encoding\n", "text/plain; charset=utf-8");
        break;
      default:
        res.set_content("bad request\n", "text/plain; charset=utf-8");
        break;
    }
  }

  // Called by httplib once the request line and headers are read, before anything else.
  int Admission(const httplib::Request& req, bool has_length, bool has_encoding, uint64_t& length) {
    if (!auth_.Check(req.get_header_value("Authorization"))) {
      return 401;
    }
    if (has_length) {
      const std::string text = req.get_header_value("Content-Length");
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
      if (ec != std::errc() || end != text.data() + text.size() || text.empty() ||
          req.get_header_value_count("Content-Length") > 1) {
        return 400;
      }
    }
    if (length == 0 && !has_encoding) {
      return 0;
    }
    const std::string coding = req.get_header_value("Content-Encoding");
    if (!coding.empty() && !EqualsIgnoringCase(coding, "identity")) {
      return 415;
    }
    if (has_encoding) {
      if (has_length) {
        return 400;  // both framings at once: the classic request-smuggling shape (RFC 9112 §6.3)
      }
      return EqualsIgnoringCase(req.get_header_value("Transfer-Encoding"), "chunked") ? 0 : 501;
    }
    return length > limits_.max_body_bytes ? 413 : 0;
  }

  void Admit(httplib::Request& req, Connection& conn) {
    req.headers.erase(kRefusalHeader);
    req.headers.erase(kFormContentTypeHeader);
    if (auto type = req.headers.find("Content-Type");
        type != req.headers.end() && StartsWithIgnoringCase(type->second, kFormContentType)) {
      req.headers.emplace(kFormContentTypeHeader, type->second);
      req.headers.erase(type);
    }
    const bool has_length = req.has_header("Content-Length");
    const bool has_encoding = req.has_header("Transfer-Encoding");
    // RFC 9112 §6.3: a request with neither has no body. httplib would wait for the connection
    // to close instead, which is why a bare `curl -X POST` got 400 after the read timeout.
    if (!has_length && !has_encoding) {
      req.set_header("Content-Length", "0");
    }
    uint64_t length = 0;
    const int refusal = Admission(req, has_length, has_encoding, length);
    if (refusal != 0) {
      req.set_header(kRefusalHeader, std::to_string(refusal));
      if (length > 0 || has_encoding) {
        // The body stays unread, so the connection cannot carry another request.
        conn.CloseAfterThisRequest();
        req.set_header("Connection", "close");
      }
      return;
    }
    conn.AllowBody(has_encoding ? limits_.max_body_bytes + 4096  // chunk framing
                                : static_cast<size_t>(length));
  }

  bool process_and_close_socket(socket_t sock) override {
    const int flags = fcntl(sock, F_GETFL, 0);
    fcntl(sock, F_SETFL, flags | O_NONBLOCK);
    SSL* ssl = nullptr;
    if (tls_) {
      ssl = SSL_new(tls_.get());
      if (ssl != nullptr && SSL_set_fd(ssl, sock) != 1) {
        SSL_free(ssl);
        ssl = nullptr;
      }
    }
    bool ok = false;
    if (!tls_ || ssl != nullptr) {
      Connection conn(sock, ssl, limits_, stopping_);
      if (ssl == nullptr || conn.Handshake()) {
        ok = true;
        for (size_t left = keep_alive_max_count_; left > 0 && !stopping_; --left) {
          if (!conn.WaitForRequest()) {
            break;
          }
          conn.BeginRequest();
          bool closed = false;
          ok = process_request(conn, left == 1, closed,
                               [this, &conn](httplib::Request& req) { Admit(req, conn); });
          if (!ok || closed || conn.close_requested()) {
            break;
          }
        }
        conn.Shutdown();
      } else {
        std::string ip;
        int port = 0;
        conn.get_remote_ip_and_port(ip, port);
        spdlog::debug("TLS handshake with {}:{} failed: {}", ip, port, OpenSslError());
      }
    }
    if (ssl != nullptr) {
      SSL_free(ssl);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  const Limits limits_;
  SslCtxPtr tls_;
  BasicAuth auth_;
  std::atomic<bool> stopping_{false};
};

class HttplibServer final : public HttpServer {
 public:
  HttplibServer(const HttpServerOptions& options, SslCtxPtr tls, HttpHandlers handlers)
      : handlers_(std::move(handlers)),
        enable_lifecycle_(options.enable_lifecycle),
        server_(options, std::move(tls)) {}

  ~HttplibServer() override {
    server_.Stop();
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
    // Prometheus's lifecycle API: state changes over HTTP only when the operator opted in.
    auto reload = [this](const httplib::Request&, httplib::Response& res) {
      if (!enable_lifecycle_) {
        res.status = 403;
        res.set_content("Lifecycle API is not enabled.\n", "text/plain; charset=utf-8");
        return;
      }
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
    server_.Get("/-/reload", [](const httplib::Request&, httplib::Response& res) {
      res.status = 405;
      res.set_content("This endpoint requires a POST request.\n", "text/plain; charset=utf-8");
    });
    server_.Get("/api/v1/targets", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(handlers_.targets_json(), "application/json");
    });
    server_.Get("/api/v1/alerts", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(handlers_.alerts_json(), "application/json");
    });
    if (handlers_.rules_json) {
      server_.Get("/api/v1/rules", [this](const httplib::Request& req, httplib::Response& res) {
        std::string type = req.get_param_value("type");
        std::transform(type.begin(), type.end(), type.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        ApiAnswer answer = handlers_.rules_json(type);
        res.status = answer.status;
        res.set_content(answer.json, "application/json");
      });
    }
    if (handlers_.api) {
      // Prometheus's query API answers GET and form-encoded POST alike (Grafana POSTs).
      auto api = [this](const httplib::Request& req, httplib::Response& res) {
        ApiRequest request;
        request.method = req.method;
        request.path = req.path;
        request.params.insert(req.params.begin(), req.params.end());
        if (req.method == "POST" && req.has_header(kFormContentTypeHeader)) {
          httplib::Params form;
          httplib::detail::parse_query_text(req.body, form);
          request.params.insert(form.begin(), form.end());
        }
        ApiAnswer answer = handlers_.api(request);
        res.status = answer.status;
        res.set_content(answer.json, "application/json");
      };
      const char* kApiPaths =
          R"(/api/v1/(query|query_range|series|labels|label/[^/]+/values|metadata|status/buildinfo))";
      server_.Get(kApiPaths, api);
      server_.Post(kApiPaths, api);
    }
    if (handlers_.status_html) {
      server_.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(handlers_.status_html(), "text/html; charset=utf-8");
      });
    }
    // Relative links, so the page works behind a proxy that serves the daemon under a path.
    server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><head><title>modelpulse</title>"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>"
          "<body><h1>modelpulse</h1>"
          "<p><a href=\"status\">Status</a> &middot; <a href=\"metrics\">Metrics</a> &middot; "
          "<a href=\"api/v1/targets\">Targets</a></p></body></html>",
          "text/html");
    });
  }

  HttpHandlers handlers_;
  const bool enable_lifecycle_;
  BoundedServer server_;
  std::thread thread_;
  int port_ = -1;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandlers handlers) {
  auto where = ParseListenAddress(options.listen_address);
  if (!where) {
    return Fail(where.error());
  }
  SslCtxPtr tls;
  if (options.web && options.web->tls) {
    auto ctx = MakeTlsContext(*options.web->tls, options.web->file);
    if (!ctx) {
      return Fail(ctx.error());
    }
    tls = std::move(*ctx);
  }
  auto server = std::make_unique<HttplibServer>(options, std::move(tls), std::move(handlers));
  if (auto listening = server->Listen(*where); !listening) {
    return Fail(listening.error());
  }
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace modelpulse::daemon
