#include "daemon/process_stats.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace modelpulse::daemon {
namespace {

// A real /proc/<pid>/stat line, with a command name holding a space and a ')'.
constexpr const char* kStat =
    "4242 (model pulse) x) S 1 4242 4242 0 -1 4194560 2520 0 0 0 150 50 0 0 20 0 9 0 "
    "12000 734003200 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
constexpr const char* kProcStat = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1796520000\nprocesses 7\n";

TEST_CASE("process stats: /proc stat fields become client_golang's process_* values") {
  auto stats = ParseProcessStat(kStat, kProcStat, 100, 4096);
  REQUIRE(stats.has_value());
  CHECK(stats->cpu_seconds == doctest::Approx(2.0));  // (150 + 50) / 100
  CHECK(stats->virtual_memory_bytes == 734003200);
  CHECK(stats->resident_memory_bytes == 2560.0 * 4096);
  CHECK(stats->start_time_seconds == doctest::Approx(1796520120));  // btime + 12000 / 100
}

TEST_CASE("process stats: a truncated stat or a missing btime is a parse error") {
  CHECK_FALSE(ParseProcessStat("4242 (x) S 1 2 3", kProcStat, 100, 4096).has_value());
  CHECK_FALSE(ParseProcessStat("no name here", kProcStat, 100, 4096).has_value());
  CHECK_FALSE(ParseProcessStat(kStat, "cpu 1 2 3\n", 100, 4096).has_value());
}

TEST_CASE("process stats: read from a proc tree, descriptors counted and the soft limit read") {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("modelpulse-proc-" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "self" / "fd");
  std::ofstream(root / "self" / "stat") << kStat;
  std::ofstream(root / "stat") << kProcStat;
  std::ofstream(root / "self" / "limits")
      << "Limit                     Soft Limit           Hard Limit           Units     \n"
         "Max processes             63438                63438                processes \n"
         "Max open files            1024                 524288               files     \n";
  for (const char* fd : {"0", "1", "2"}) {
    std::ofstream(root / "self" / "fd" / fd) << "";
  }
  auto stats = ReadProcessStats(root.string());
  std::filesystem::remove_all(root);
  REQUIRE(stats.has_value());
  CHECK(stats->open_fds == 3);
  CHECK(stats->max_fds == 1024);
  CHECK(stats->cpu_seconds ==
        doctest::Approx(2.0 * 100 / static_cast<double>(sysconf(_SC_CLK_TCK))));
  CHECK_FALSE(ReadProcessStats((root / "absent").string()).has_value());
}

}  // namespace
}  // namespace modelpulse::daemon
