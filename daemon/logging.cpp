#include "daemon/logging.h"

#include <fmt/format.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

namespace modelpulse::daemon {
namespace {

// WithFields joins the message and its fields with ASCII separators no log text contains (they
// are replaced in the parts), so the formatter can split them again.
constexpr char kFieldSeparator = '\x1f';
constexpr char kValueSeparator = '\x1e';

std::string Clean(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == kFieldSeparator || c == kValueSeparator) {
      c = ' ';
    }
  }
  return out;
}

struct Record {
  std::string_view msg;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
};

Record Split(std::string_view payload) {
  Record record;
  size_t end = payload.find(kFieldSeparator);
  record.msg = payload.substr(0, end);
  while (end != std::string_view::npos) {
    const size_t start = end + 1;
    end = payload.find(kFieldSeparator, start);
    std::string_view field =
        payload.substr(start, end == std::string_view::npos ? end : end - start);
    const size_t eq = field.find(kValueSeparator);
    if (eq != std::string_view::npos) {
      record.fields.emplace_back(field.substr(0, eq), field.substr(eq + 1));
    }
  }
  return record;
}

// Prometheus's names: spdlog's trace and critical fold into debug and error.
std::string_view PrometheusLevel(std::string_view spdlog_level) {
  if (spdlog_level == "trace") {
    return "debug";
  }
  if (spdlog_level == "warning") {
    return "warn";
  }
  if (spdlog_level == "critical") {
    return "error";
  }
  return spdlog_level;
}

// go-logfmt's rule: quote a value holding a space, '=', '"' or a control character, or nothing.
void AppendLogfmtValue(std::string& out, std::string_view value) {
  bool quote = false;
  for (char c : value) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '=' || c == '"') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out += value;
    return;
  }
  out += '"';
  for (char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < ' ') {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

class PrometheusFormatter final : public spdlog::formatter {
 public:
  explicit PrometheusFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const int64_t unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string line =
        FormatLogLine(format_, unix_ms, std::string_view(level.data(), level.size()),
                      std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<PrometheusFormatter>(format_);
  }

 private:
  LogFormat format_;
};

}  // namespace

std::optional<int> ParseLogLevel(std::string_view name) {
  if (name == "debug") {
    return spdlog::level::debug;
  }
  if (name == "info") {
    return spdlog::level::info;
  }
  if (name == "warn") {
    return spdlog::level::warn;
  }
  if (name == "error") {
    return spdlog::level::err;
  }
  return std::nullopt;
}

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "logfmt") {
    return LogFormat::kLogfmt;
  }
  if (name == "json") {
    return LogFormat::kJson;
  }
  return std::nullopt;
}

void SetUpLogging(int level, LogFormat format) {
  // The _mt sink locks, so lines from the prober, rule and HTTP threads stay whole.
  auto logger = spdlog::stderr_logger_mt("modelpulse");
  logger->set_formatter(std::make_unique<PrometheusFormatter>(format));
  logger->set_level(static_cast<spdlog::level::level_enum>(level));
  // Warnings and errors reach journald at once; routine lines may wait in the buffer.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

std::string FormatTimestamp(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm = {};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

std::string WithFields(std::string_view msg, const LogFields& fields) {
  std::string out = Clean(msg);
  for (const auto& [key, value] : fields) {
    out += kFieldSeparator;
    out += Clean(key);
    out += kValueSeparator;
    out += Clean(value);
  }
  return out;
}

std::string FormatLogLine(LogFormat format, int64_t unix_ms, std::string_view level,
                          std::string_view payload) {
  const Record record = Split(payload);
  const std::string ts = FormatTimestamp(unix_ms);
  const std::string_view name = PrometheusLevel(level);
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json line;
    line["ts"] = ts;
    line["level"] = name;
    line["msg"] = record.msg;
    for (const auto& [key, value] : record.fields) {
      line[std::string(key)] = value;
    }
    // Replace, not throw, on invalid UTF-8: a provider's error text must not kill the logger.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string out = "ts=" + ts + " level=" + std::string(name) + " msg=";
  AppendLogfmtValue(out, record.msg);
  for (const auto& [key, value] : record.fields) {
    out += ' ';
    out += key;
    out += '=';
    AppendLogfmtValue(out, value);
  }
  out += '\n';
  return out;
}

}  // namespace modelpulse::daemon
