#include "common/listen_address.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse {
namespace {

TEST_CASE("ParseListenAddress splits host and port as --web.listen-address does") {
  Result<HostPort> v4 = ParseListenAddress("127.0.0.1:9464");
  REQUIRE(v4.has_value());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 9464);

  Result<HostPort> v6 = ParseListenAddress("[::1]:0");
  REQUIRE(v6.has_value());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);

  Result<HostPort> any = ParseListenAddress(":9465");
  REQUIRE(any.has_value());
  CHECK(any->host == "0.0.0.0");
  CHECK(any->port == 9465);
}

TEST_CASE("ParseListenAddress refuses an address without a usable port") {
  for (const std::string address : {"localhost", "localhost:http", "localhost:65536", "h:-1"}) {
    INFO(address);
    Result<HostPort> parsed = ParseListenAddress(address);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().code == Error::Code::kInvalidArgument);
    CHECK(parsed.error().message.find("\"" + address + "\"") != std::string::npos);
  }
}

}  // namespace
}  // namespace modelpulse
