#ifndef MODELPULSE_COMMON_LISTEN_ADDRESS_H_
#define MODELPULSE_COMMON_LISTEN_ADDRESS_H_

// "host:port" as Prometheus's --web.listen-address takes it: for the daemon's HTTP server and the
// simulator, which both listen where a config or a flag says.

#include <string>

#include "common/result.h"

namespace modelpulse {

struct HostPort {
  std::string host;
  int port = 0;
};

// Splits "host:port" / "[v6]:port"; an empty host is 0.0.0.0 and port 0 picks a free one.
// kInvalidArgument when malformed, quoting the address.
Result<HostPort> ParseListenAddress(const std::string& address);

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_LISTEN_ADDRESS_H_
