#ifndef MODELPULSE_DAEMON_BUILD_INFO_H_
#define MODELPULSE_DAEMON_BUILD_INFO_H_

#include <string>
#include <string_view>

namespace modelpulse::daemon {

// What the build recorded about itself at configure time (daemon/CMakeLists.txt): for
// `modelpulse --version` and modelpulse_build_info, as Prometheus's binaries report theirs.
// Fields git cannot answer (a source tarball) are "unknown".
struct BuildInfo {
  std::string_view version;
  std::string_view revision;
  std::string_view branch;
  std::string_view build_user;
  std::string_view build_date;
  std::string_view compiler;
  std::string_view platform;
};

BuildInfo GetBuildInfo();

// Prometheus's version text: "modelpulse, version V (branch: B, revision: R)" and indented
// "build user", "build date", "compiler" (Prometheus: "go version") and "platform" lines.
std::string VersionText(const BuildInfo& info);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_BUILD_INFO_H_
