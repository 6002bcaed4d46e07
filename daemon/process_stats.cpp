#include "daemon/process_stats.h"

#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace modelpulse::daemon {
namespace {

namespace fs = std::filesystem;

std::optional<double> ToNumber(std::string_view text) {
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::vector<std::string_view> SplitSpaces(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) {
      ++i;
    }
    const size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') {
      ++i;
    }
    if (i > start) {
      out.push_back(text.substr(start, i - start));
    }
  }
  return out;
}

std::optional<std::string> ReadWhole(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "Max open files            1024                 524288               files" -> 1024.
std::optional<double> SoftOpenFilesLimit(std::string_view limits) {
  constexpr std::string_view kLine = "Max open files";
  const size_t at = limits.find(kLine);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  const size_t end = limits.find('\n', at);
  const auto fields = SplitSpaces(limits.substr(at + kLine.size(), end - at - kLine.size()));
  if (fields.empty()) {
    return std::nullopt;
  }
  // "unlimited" has no number; client_golang reports it as the largest value, we report none.
  return ToNumber(fields[0]);
}

}  // namespace

Result<ProcessStats> ParseProcessStat(std::string_view stat, std::string_view proc_stat,
                                      double ticks_per_second, double page_size) {
  // The command name (field 2) is in parentheses and may hold spaces and ')': the fields that
  // follow start after the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos) {
    return Fail(Error::Parse("/proc stat: no command name"));
  }
  // After ')': field 3 (state) is index 0, so field N is index N - 3.
  const auto fields = SplitSpaces(stat.substr(close + 1));
  auto field = [&fields](size_t n) -> std::optional<double> {
    return n - 3 < fields.size() ? ToNumber(fields[n - 3]) : std::nullopt;
  };
  const auto utime = field(14);
  const auto stime = field(15);
  const auto start_ticks = field(22);
  const auto vsize = field(23);
  const auto rss_pages = field(24);
  if (!utime || !stime || !start_ticks || !vsize || !rss_pages) {
    return Fail(Error::Parse("/proc stat: missing fields"));
  }
  std::optional<double> boot_time;
  const size_t btime = proc_stat.find("btime ");
  if (btime != std::string_view::npos) {
    const size_t end = proc_stat.find('\n', btime);
    const auto parts = SplitSpaces(proc_stat.substr(btime, end - btime));
    if (parts.size() == 2) {
      boot_time = ToNumber(parts[1]);
    }
  }
  if (!boot_time) {
    return Fail(Error::Parse("/proc/stat: no btime"));
  }
  ProcessStats out;
  out.cpu_seconds = (*utime + *stime) / ticks_per_second;
  out.virtual_memory_bytes = *vsize;
  out.resident_memory_bytes = *rss_pages * page_size;
  out.start_time_seconds = *boot_time + *start_ticks / ticks_per_second;
  return out;
}

Result<ProcessStats> ReadProcessStats(const std::string& proc_root) {
  const fs::path root(proc_root);
  const auto stat = ReadWhole(root / "self" / "stat");
  const auto proc_stat = ReadWhole(root / "stat");
  if (!stat || !proc_stat) {
    return Fail(Error::Io("cannot read " + proc_root + "/self/stat or " + proc_root + "/stat"));
  }
  auto stats = ParseProcessStat(*stat, *proc_stat, static_cast<double>(sysconf(_SC_CLK_TCK)),
                                static_cast<double>(sysconf(_SC_PAGESIZE)));
  if (!stats) {
    return stats;
  }
  std::error_code ec;
  double open = 0;
  for (fs::directory_iterator it(root / "self" / "fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++open;
  }
  if (!ec) {
    // The iterator's own descriptor was open while it counted: client_golang counts the same way.
    stats->open_fds = open;
  }
  if (const auto limits = ReadWhole(root / "self" / "limits")) {
    stats->max_fds = SoftOpenFilesLimit(*limits);
  }
  return stats;
}

}  // namespace modelpulse::daemon
