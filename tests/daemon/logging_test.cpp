#include "daemon/logging.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse::daemon {
namespace {

constexpr int64_t kTime = 1796528357123;  // 2026-12-06T03:39:17.123Z

TEST_CASE("logging: only Prometheus's level and format names are accepted") {
  CHECK(ParseLogLevel("debug").has_value());
  CHECK(ParseLogLevel("info").has_value());
  CHECK(ParseLogLevel("warn").has_value());
  CHECK(ParseLogLevel("error").has_value());
  CHECK_FALSE(ParseLogLevel("warning").has_value());
  CHECK_FALSE(ParseLogLevel("trace").has_value());
  CHECK_FALSE(ParseLogLevel("INFO").has_value());
  CHECK(ParseLogFormat("logfmt") == LogFormat::kLogfmt);
  CHECK(ParseLogFormat("json") == LogFormat::kJson);
  CHECK_FALSE(ParseLogFormat("text").has_value());
}

TEST_CASE("logging: a logfmt line has ts, level, msg and the fields, quoted as go-logfmt does") {
  CHECK(FormatLogLine(LogFormat::kLogfmt, kTime, "info",
                      WithFields("configuration reloaded", {{"targets", "3"}})) ==
        "ts=2026-12-06T03:39:17.123Z level=info msg=\"configuration reloaded\" targets=3\n");
  CHECK(FormatLogLine(LogFormat::kLogfmt, kTime, "warning",
                      WithFields("target probe failing", {{"target", "gpt@openai"},
                                                          {"outcome", "throttled"},
                                                          {"err", "HTTP 429: \"slow down\"\nretry"},
                                                          {"ttft", ""}})) ==
        "ts=2026-12-06T03:39:17.123Z level=warn msg=\"target probe failing\" target=gpt@openai "
        "outcome=throttled err=\"HTTP 429: \\\"slow down\\\"\\nretry\" ttft=\n");
  // A module's plain message is the msg; spdlog's trace and critical fold into debug and error.
  CHECK(FormatLogLine(LogFormat::kLogfmt, kTime, "critical", "cannot start: a=b") ==
        "ts=2026-12-06T03:39:17.123Z level=error msg=\"cannot start: a=b\"\n");
  CHECK(FormatLogLine(LogFormat::kLogfmt, kTime, "trace", "x") ==
        "ts=2026-12-06T03:39:17.123Z level=debug msg=x\n");
}

TEST_CASE("logging: a json line has the same keys in the same order") {
  CHECK(FormatLogLine(LogFormat::kJson, kTime, "info",
                      WithFields("target recovered", {{"target", "t"}, {"previous", "timeout"}})) ==
        "{\"ts\":\"2026-12-06T03:39:17.123Z\",\"level\":\"info\",\"msg\":\"target recovered\","
        "\"target\":\"t\",\"previous\":\"timeout\"}\n");
  // Invalid UTF-8 from a provider's error text is replaced, not fatal.
  CHECK(FormatLogLine(LogFormat::kJson, kTime, "error", WithFields("x", {{"err", "bad \xff"}})) ==
        "{\"ts\":\"2026-12-06T03:39:17.123Z\",\"level\":\"error\",\"msg\":\"x\","
        "\"err\":\"bad \xef\xbf\xbd\"}\n");
}

TEST_CASE("logging: field text cannot forge a field") {
  // The separators WithFields uses inside its payload are blanked in what it is given.
  CHECK(FormatLogLine(LogFormat::kLogfmt, kTime, "info",
                      WithFields("m", {{"err",
                                        "a\x1f"
                                        "forged\x1e"
                                        "1"}})) ==
        "ts=2026-12-06T03:39:17.123Z level=info msg=m err=\"a forged 1\"\n");
}

TEST_CASE("logging: FormatTimestamp is RFC 3339 UTC with milliseconds") {
  CHECK(FormatTimestamp(0) == "1970-01-01T00:00:00.000Z");
  CHECK(FormatTimestamp(kTime) == "2026-12-06T03:39:17.123Z");
}

}  // namespace
}  // namespace modelpulse::daemon
