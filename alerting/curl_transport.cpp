#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "alerting/alerting.h"

namespace modelpulse::alerting {
namespace {

constexpr long kMaxConnectMs = 5000;

struct CurlDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// The receiver's answer is not used; reading it bounded by the timeout is enough, so a huge body
// costs time on the sender's own thread and no memory.
size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

class CurlTransportImpl final : public Transport {
 public:
  Result<int> Post(const HttpRequest& request) override {
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) {
      return Fail(Error::Internal("curl_easy_init failed"));
    }
    CURL* h = curl.get();
    const HttpEndpoint& endpoint = *request.endpoint;
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    for (const auto& [name, value] : request.headers) {
      const std::string line = name + ": " + value;
      headers.reset(curl_slist_append(headers.release(), line.c_str()));
    }
    if (!endpoint.bearer_token.empty()) {
      const std::string line = "Authorization: Bearer " + endpoint.bearer_token.Reveal();
      headers.reset(curl_slist_append(headers.release(), line.c_str()));
    }
    // No "Expect: 100-continue" round trip before larger bodies.
    headers.reset(curl_slist_append(headers.release(), "Expect:"));
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    const long timeout = static_cast<long>(endpoint.timeout.count());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout, kMaxConnectMs));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Discard);
    if (!endpoint.ca_file.empty()) {
      curl_easy_setopt(h, CURLOPT_CAINFO, endpoint.ca_file.c_str());
    }
    if (!endpoint.basic_username.empty()) {
      curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(h, CURLOPT_USERNAME, endpoint.basic_username.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, endpoint.basic_password.Reveal().c_str());
    }
    const CURLcode code = curl_easy_perform(h);
    if (code != CURLE_OK) {
      // curl's message names the host at most, never the query or credentials.
      return Fail(Error::Unavailable(
          fmt::format("POST {}: {}", RedactedUrl(request.url), curl_easy_strerror(code))));
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return static_cast<int>(status);
  }
};

}  // namespace

std::unique_ptr<Transport> CurlTransport() { return std::make_unique<CurlTransportImpl>(); }

std::string RedactedUrl(const std::string& url) {
  std::string out = url;
  const size_t cut = out.find_first_of("?#");
  if (cut != std::string::npos) {
    out.resize(cut);
  }
  const size_t scheme = out.find("://");
  const size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t path = out.find('/', host_start);
  const size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at != std::string::npos && at >= host_start) {
    out.erase(host_start, at + 1 - host_start);
  }
  return out;
}

}  // namespace modelpulse::alerting
