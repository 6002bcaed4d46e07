#ifndef MODELPULSE_TESTS_MAP_ENVIRONMENT_H_
#define MODELPULSE_TESTS_MAP_ENVIRONMENT_H_

// An Environment (common/environment.h) from maps, for config tests: no setenv, no real files.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/environment.h"

namespace modelpulse::testing {

class MapEnvironment final : public Environment {
 public:
  std::map<std::string, std::string> vars;
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<std::string>> globs;

  std::optional<std::string> GetEnv(const std::string& name) const override {
    auto it = vars.find(name);
    return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  // Worded as SystemEnvironment words a missing file.
  Result<std::string> ReadFile(const std::string& path) const override {
    auto it = files.find(path);
    if (it == files.end()) {
      return Fail(Error::NotFound("cannot read " + path + ": No such file or directory"));
    }
    return it->second;
  }
  Result<std::vector<std::string>> Glob(const std::string& pattern) const override {
    auto it = globs.find(pattern);
    if (it != globs.end()) {
      return it->second;
    }
    // A literal path matches itself when it is a known file, as glob(3) does.
    if (files.count(pattern) > 0) {
      return std::vector<std::string>{pattern};
    }
    return std::vector<std::string>{};
  }
};

}  // namespace modelpulse::testing

#endif  // MODELPULSE_TESTS_MAP_ENVIRONMENT_H_
