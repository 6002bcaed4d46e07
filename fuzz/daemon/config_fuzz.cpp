// The config loader (daemon::ParseConfig: YAML, every module's keys, durations, URLs, auth,
// alerting receivers) on arbitrary text, as a full check and as a syntax-only one. The outside
// world is fixed: every variable and every file reads as a short secret, no glob matches, so the
// run touches nothing. Errors are fine; crashes and hangs are not.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/environment.h"
#include "daemon/config.h"
#include "fuzz/targets.h"

namespace {

class FixedEnvironment final : public modelpulse::Environment {
 public:
  std::optional<std::string> GetEnv(const std::string&) const override { return "fuzz-value"; }
  modelpulse::Result<std::string> ReadFile(const std::string&) const override {
    return std::string("fuzz-secret\n");
  }
  modelpulse::Result<std::vector<std::string>> Glob(const std::string&) const override {
    return std::vector<std::string>{};
  }
};

}  // namespace

int modelpulse::fuzz::Config(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const auto check =
      data[0] % 2 == 0 ? daemon::ConfigCheck::kFull : daemon::ConfigCheck::kSyntaxOnly;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const FixedEnvironment env;
  (void)daemon::ParseConfig(text, "/nonexistent/modelpulse/fuzz.yml", env, check);
  return 0;
}
