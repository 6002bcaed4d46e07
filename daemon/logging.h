#ifndef MODELPULSE_DAEMON_LOGGING_H_
#define MODELPULSE_DAEMON_LOGGING_H_

// Prometheus's log lines (--log.level, --log.format) for every spdlog call in the process:
//   logfmt: ts=2026-12-06T03:39:17.123Z level=info msg="configuration reloaded" targets=3
//   json:   {"ts":"2026-12-06T03:39:17.123Z","level":"info","msg":"configuration reloaded",...}
// Modules keep calling spdlog with a plain message (it becomes msg); a caller that wants fields
// passes WithFields(...) as the message, so both formats can render them as fields.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace modelpulse::daemon {

enum class LogFormat { kLogfmt, kJson };

// Prometheus's spellings only: "debug", "info", "warn", "error"; "logfmt", "json".
std::optional<int> ParseLogLevel(std::string_view name);  // spdlog::level::level_enum value
std::optional<LogFormat> ParseLogFormat(std::string_view name);

// Makes a stderr logger in `format` at `level` (from ParseLogLevel) the default logger.
void SetUpLogging(int level, LogFormat format);

using LogFields = std::vector<std::pair<std::string_view, std::string>>;

// A message with fields, to pass to spdlog as its whole message.
std::string WithFields(std::string_view msg, const LogFields& fields);

// RFC 3339 in UTC with milliseconds ("2026-12-06T03:39:17.123Z"), as log lines and
// /api/v1/targets print times.
std::string FormatTimestamp(int64_t unix_ms);

// One line (newline included) of `format`: `unix_ms` UTC with milliseconds, `level` a spdlog
// level name, `payload` a plain message or one from WithFields.
std::string FormatLogLine(LogFormat format, int64_t unix_ms, std::string_view level,
                          std::string_view payload);

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_LOGGING_H_
