#include "daemon/build_info.h"

#include <fmt/format.h>

namespace modelpulse::daemon {

std::string VersionText(const BuildInfo& info) {
  return fmt::format(
      "modelpulse, version {} (branch: {}, revision: {})\n"
      "  build user:       {}\n"
      "  build date:       {}\n"
      "  compiler:         {}\n"
      "  platform:         {}\n",
      info.version, info.branch, info.revision, info.build_user, info.build_date, info.compiler,
      info.platform);
}

}  // namespace modelpulse::daemon
