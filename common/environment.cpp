#include "common/environment.h"

#include <glob.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace modelpulse {
namespace {

// Larger than any sane config or key file; keeps a mistaken path (a disk image, /dev/zero) from
// exhausting memory.
constexpr size_t kMaxFileBytes = 16u << 20;

}  // namespace

std::optional<std::string> SystemEnvironment::GetEnv(const std::string& name) const {
  // getenv is safe here: nothing in the daemon calls setenv after main starts threads.
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? std::nullopt : std::optional<std::string>(value);
}

Result<std::string> SystemEnvironment::ReadFile(const std::string& path) const {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Fail(Error::Io("cannot read " + path + ": is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    const std::string message = "cannot read " + path + ": " + std::strerror(error);
    return Fail(error == ENOENT ? Error::NotFound(message) : Error::Io(message));
  }
  std::string content;
  char buffer[8192];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    content.append(buffer, static_cast<size_t>(in.gcount()));
    if (content.size() > kMaxFileBytes) {
      return Fail(Error::Io("cannot read " + path + ": larger than " +
                            std::to_string(kMaxFileBytes) + " bytes"));
    }
  }
  if (in.bad()) {
    return Fail(Error::Io("cannot read " + path + ": read error"));
  }
  return content;
}

Result<std::vector<std::string>> SystemEnvironment::Glob(const std::string& pattern) const {
  glob_t matches{};
  // No GLOB_ERR: a folder that does not exist (or cannot be listed) simply matches nothing, as in
  // Prometheus; a literal rule file that is missing is reported by the caller.
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) {
      paths.emplace_back(matches.gl_pathv[i]);
    }
  }
  globfree(&matches);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    return Fail(Error::Io("cannot expand " + pattern + ": " +
                          (rc == GLOB_NOSPACE ? "out of memory" : "read error")));
  }
  // glob(3) sorts already (no GLOB_NOSORT); sorting again keeps the contract explicit.
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace modelpulse
