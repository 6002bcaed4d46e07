// Token commands: real /bin/sh scripts in a scratch directory that print a token, fail, hang, or
// print too much; the cache's TTL and failure backoff; no token in any error.

#include "collector/internal/auth/token_command.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using testing::ScratchDir;
using namespace std::chrono_literals;

constexpr const char* kToken = "eyJ0eXAiOiJKV1QiLCJTECRET.tok-0123456789";

int CountLines(const std::filesystem::path& file) {
  std::ifstream in(file);
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
  }
  return lines;
}

TEST_CASE("token command: trimmed stdout is the token, stderr is ignored") {
  ScratchDir dir;
  const std::string script = dir.Script(
      "ok.sh", std::string("echo 'diagnostic noise' >&2\nprintf '  %s\\n\\n' '") + kToken + "'");
  Result<Secret> token = RunTokenCommand({script}, {});
  REQUIRE(token.has_value());
  CHECK(token->Reveal() == kToken);

  // Arguments reach the command as argv, untouched by any shell.
  const std::string echo = dir.Script("echo.sh", "printf '%s' \"$1\"");
  Result<Secret> arg = RunTokenCommand({echo, "a;b$(x)"}, {});
  REQUIRE(arg.has_value());
  CHECK(arg->Reveal() == "a;b$(x)");
}

TEST_CASE("token command: failures say how the command ended, never what it printed") {
  ScratchDir dir;
  std::vector<std::string> errors;

  SUBCASE("non-zero exit") {
    const std::string script = dir.Script(
        "fail.sh", std::string("echo '") + kToken + "'\necho '" + kToken + "' >&2\nexit 3");
    Result<Secret> token = RunTokenCommand({script}, {});
    REQUIRE_FALSE(token.has_value());
    CHECK(IsCredentialError(token.error()));
    CHECK(token.error().message.find("exited with status 3") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("hangs: killed at the timeout, with its children") {
    const std::string script = dir.Script(
        "hang.sh", std::string("echo '") + kToken + "'\nsleep 30 &\nsleep 30\necho late");
    TokenCommandLimits limits;
    limits.timeout = 300ms;
    Result<Secret> token = RunTokenCommand({script}, limits);
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("did not finish within 300 ms") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("closes stdout but does not exit") {
    const std::string script =
        dir.Script("linger.sh", std::string("echo '") + kToken + "'\nexec >&-\nsleep 30");
    TokenCommandLimits limits;
    limits.timeout = 300ms;
    Result<Secret> token = RunTokenCommand({script}, limits);
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("did not finish") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("endless output is cut off at the limit") {
    const std::string script =
        dir.Script("yes.sh", std::string("while :; do echo '") + kToken + "'; done");
    TokenCommandLimits limits;
    limits.max_output_bytes = 1024;
    Result<Secret> token = RunTokenCommand({script}, limits);
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("more than 1024 bytes") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("two words are not a token") {
    const std::string script = dir.Script("two.sh", std::string("echo 'Bearer' '") + kToken + "'");
    Result<Secret> token = RunTokenCommand({script}, {});
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("more than one token") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("empty output") {
    Result<Secret> token = RunTokenCommand({dir.Script("empty.sh", "echo")}, {});
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("printed no token") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("missing program") {
    Result<Secret> token = RunTokenCommand({(dir.path() / "nope").string()}, {});
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("could not start") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("killed by a signal") {
    Result<Secret> token = RunTokenCommand(
        {dir.Script("kill.sh", std::string("echo ") + kToken + "\nkill -9 $$")}, {});
    REQUIRE_FALSE(token.has_value());
    CHECK(token.error().message.find("signal 9") != std::string::npos);
    errors.push_back(token.error().ToString());
  }
  SUBCASE("empty argv") {
    Result<Secret> token = RunTokenCommand({}, {});
    REQUIRE_FALSE(token.has_value());
    errors.push_back(token.error().ToString());
  }
  for (const std::string& error : errors) {
    CHECK(error.find("SECRET") == std::string::npos);
    CHECK(error.find("tok-0123456789") == std::string::npos);
  }
}

// Each reading of its monotonic time is an hour after the last: any deadline has passed by the
// next look.
class LeapingClock final : public Clock {
 public:
  int64_t NowUnixMillis() const override { return 0; }
  MonotonicTime MonotonicNow() const override {
    std::lock_guard lock(mu_);
    now_ += std::chrono::hours(1);
    return now_;
  }
  void WaitUntil(std::condition_variable&, std::unique_lock<std::mutex>&,
                 MonotonicTime) const override {}

 private:
  mutable std::mutex mu_;
  mutable MonotonicTime now_;
};

TEST_CASE("token command: the timeout runs on the injected clock") {
  // Against the system clock this command would run its 10 s; the injected clock has passed the
  // deadline at its first look, so the command is killed without anyone waiting.
  ScratchDir dir;
  const std::string script =
      dir.Script("hang.sh", std::string("echo '") + kToken + "'\nsleep 30 &\nsleep 30");
  LeapingClock clock;
  TokenCommandLimits limits;
  limits.clock = &clock;
  Result<Secret> token = RunTokenCommand({script}, limits);
  REQUIRE_FALSE(token.has_value());
  CHECK(token.error().message.find("did not finish within 10000 ms") != std::string::npos);

  // The cache hands its limits, clock included, to every run.
  TokenCommandCacheOptions options;
  options.limits = limits;
  TokenCommandCache cache(options);
  Result<Secret> cached = cache.Token({script}, 60s, 1'000);
  REQUIRE_FALSE(cached.has_value());
  CHECK(cached.error().message.find("did not finish within 10000 ms") != std::string::npos);
}

TEST_CASE("token command cache: reuse within the TTL, rerun after it, back off after failure") {
  ScratchDir dir;
  const std::filesystem::path runs = dir.path() / "runs";
  const std::filesystem::path fail_flag = dir.path() / "fail";
  const std::string script =
      dir.Script("count.sh", "echo run >> '" + runs.string() + "'\n[ -e '" + fail_flag.string() +
                                 "' ] && exit 7\nprintf 'tok-%s' \"$(wc -l < '" + runs.string() +
                                 "' | tr -d ' ')\"");
  TokenCommandCacheOptions options;
  options.failure_backoff = 10s;
  TokenCommandCache cache(options);
  const std::vector<std::string> argv = {script};

  Result<Secret> first = cache.Token(argv, 300s, 1'000'000);
  REQUIRE(first.has_value());
  CHECK(first->Reveal() == "tok-1");
  Result<Secret> again = cache.Token(argv, 300s, 1'000'000 + 299'999);
  REQUIRE(again.has_value());
  CHECK(again->Reveal() == "tok-1");
  CHECK(CountLines(runs) == 1);

  Result<Secret> renewed = cache.Token(argv, 300s, 1'000'000 + 300'000);
  REQUIRE(renewed.has_value());
  CHECK(renewed->Reveal() == "tok-2");
  CHECK(CountLines(runs) == 2);

  // Both tokens handed out are redacted from provider text.
  CHECK(cache.Redact("echo tok-1 and tok-2") == "echo <redacted> and <redacted>");

  std::ofstream(fail_flag) << "x";
  const int64_t expired = 1'000'000 + 700'000;
  Result<Secret> failed = cache.Token(argv, 300s, expired);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().message.find("token command: ") == 0);
  CHECK(failed.error().message.find("status 7") != std::string::npos);
  CHECK(IsCredentialError(failed.error()));
  CHECK(CountLines(runs) == 3);
  // Within the backoff the failure is returned without running the command again.
  Result<Secret> backed_off = cache.Token(argv, 300s, expired + 9'999);
  REQUIRE_FALSE(backed_off.has_value());
  CHECK(CountLines(runs) == 3);

  std::filesystem::remove(fail_flag);
  Result<Secret> recovered = cache.Token(argv, 300s, expired + 10'000);
  REQUIRE(recovered.has_value());
  CHECK(recovered->Reveal() == "tok-4");
}

}  // namespace
}  // namespace modelpulse::collector
