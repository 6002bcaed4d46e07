#include "common/listen_address.h"

#include <charconv>

namespace modelpulse {

Result<HostPort> ParseListenAddress(const std::string& address) {
  auto bad = [&address](const char* why) {
    return Fail(Error::InvalidArgument("invalid listen address \"" + address + "\": " + why +
                                       " (expected HOST:PORT, e.g. 127.0.0.1:9464)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return bad("missing port");
  }
  HostPort out;
  out.host = address.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  if (out.host.empty()) {
    out.host = "0.0.0.0";
  }
  const std::string port = address.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
  if (ec != std::errc() || ptr != port.data() + port.size() || out.port < 0 || out.port > 65535) {
    return bad("port is not a number from 0 to 65535");
  }
  return out;
}

}  // namespace modelpulse
