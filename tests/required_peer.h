#ifndef MODELPULSE_TESTS_REQUIRED_PEER_H_
#define MODELPULSE_TESTS_REQUIRED_PEER_H_

// Outside programs that tests use as oracles (promtool, python3-botocore) are required: a
// machine without one must not report a pass it never checked. A developer may opt out on
// their own machine with MODELPULSE_ALLOW_MISSING_PEERS=1 (refused when CI=true); the test case
// then prints kSkipMarker, which ctest's SKIP_REGULAR_EXPRESSION (cmake/dependencies.cmake)
// reports as Skipped, and scripts/test.sh counts in its summary. Test-only.

#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

namespace modelpulse::testing {

// Kept in step with SKIP_REGULAR_EXPRESSION in cmake/dependencies.cmake and scripts/test.sh.
inline constexpr std::string_view kSkipMarker = "MODELPULSE SKIPPED: ";

inline bool EnvIs(const char* name, std::string_view value) {
  const char* set = std::getenv(name);
  return set != nullptr && value == set;
}

// For a peer that is missing: fails the test case (never returns) unless the developer opted
// out, in which case it reports the skip and returns true so the caller returns.
inline bool SkipForMissingPeer(std::string_view peer) {
  const bool opted_out = EnvIs("MODELPULSE_ALLOW_MISSING_PEERS", "1");
  if (opted_out && EnvIs("CI", "true")) {
    FAIL("missing " << peer << ": MODELPULSE_ALLOW_MISSING_PEERS is refused when CI=true");
  }
  if (!opted_out) {
    FAIL("missing " << peer
                    << " (required; MODELPULSE_ALLOW_MISSING_PEERS=1 skips it on a developer "
                       "machine)");
  }
  std::cout << kSkipMarker << "missing " << peer << std::endl;
  return true;
}

}  // namespace modelpulse::testing

#endif  // MODELPULSE_TESTS_REQUIRED_PEER_H_
