#include "collector/internal/auth/token_command.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

extern char** environ;

namespace modelpulse::collector {
namespace {

// Tokens kept for Redact; more than any sane config has token commands.
constexpr size_t kMaxIssuedTokens = 32;

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

 private:
  int fd_;
};

struct SpawnActions {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnActions() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnActions() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
};

int RemainingMs(Clock::MonotonicTime deadline, const Clock& clock) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.MonotonicNow())
          .count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1000));
}

// Waits for `pid` until `deadline`; kills its process group when the deadline passes or `kill_now`.
// Returns the wait status, or nullopt when the command had to be killed for the timeout.
std::optional<int> Reap(pid_t pid, Clock::MonotonicTime deadline, bool kill_now,
                        const Clock& clock) {
  if (kill_now) {
    kill(-pid, SIGKILL);
  }
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      return status;
    }
    if (done < 0 && errno != EINTR) {
      return std::nullopt;
    }
    if (clock.MonotonicNow() >= deadline) {
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return std::nullopt;
    }
    // The command closed its stdout but has not exited yet: poll its exit, bounded by deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool IsTokenChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

}  // namespace

Result<Secret> RunTokenCommand(const std::vector<std::string>& argv,
                               const TokenCommandLimits& limits) {
  if (argv.empty() || argv[0].empty()) {
    return Fail(CredentialError("token command is empty"));
  }
  const std::string& program = argv[0];
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return Fail(CredentialError(fmt::format("{}: pipe: {}", program, std::strerror(errno))));
  }
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);

  SpawnActions spawn;
  posix_spawn_file_actions_addopen(&spawn.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&spawn.actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  // Its own process group, so a timeout kills the tools it started too (gcloud runs python).
  posix_spawnattr_setflags(&spawn.attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&spawn.attr, 0);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);

  const SystemClock system_clock;
  const Clock& clock = limits.clock != nullptr ? *limits.clock : system_clock;
  const Clock::MonotonicTime deadline = clock.MonotonicNow() + limits.timeout;
  pid_t pid = 0;
  const int spawn_error =
      posix_spawnp(&pid, program.c_str(), &spawn.actions, &spawn.attr, args.data(), environ);
  if (spawn_error != 0) {
    return Fail(CredentialError(
        fmt::format("{} could not start: {}", program, std::strerror(spawn_error))));
  }
  write_end.Reset();  // so end-of-file arrives when the command (and its children) close stdout

  std::string output;
  bool too_long = false;
  bool timed_out = false;
  char buffer[4096];
  while (true) {
    if (clock.MonotonicNow() >= deadline) {
      timed_out = true;
      break;
    }
    pollfd pfd{read_end.get(), POLLIN, 0};
    const int ready = poll(&pfd, 1, RemainingMs(deadline, clock));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    if (ready <= 0) {
      continue;
    }
    const ssize_t n = read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;  // end of file (or an error, treated the same)
    }
    if (output.size() + static_cast<size_t>(n) > limits.max_output_bytes) {
      too_long = true;
      break;
    }
    output.append(buffer, static_cast<size_t>(n));
  }
  read_end.Reset();
  const std::optional<int> status = Reap(pid, deadline, timed_out || too_long, clock);
  if (timed_out || !status) {
    return Fail(CredentialError(
        fmt::format("{} did not finish within {} ms", program, limits.timeout.count())));
  }
  if (too_long) {
    return Fail(CredentialError(
        fmt::format("{} printed more than {} bytes", program, limits.max_output_bytes)));
  }
  if (WIFSIGNALED(*status)) {
    return Fail(
        CredentialError(fmt::format("{} was killed by signal {}", program, WTERMSIG(*status))));
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return Fail(
        CredentialError(fmt::format("{} exited with status {}", program, WEXITSTATUS(*status))));
  }
  const size_t begin = output.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    return Fail(CredentialError(fmt::format("{} printed no token", program)));
  }
  const size_t end = output.find_last_not_of(" \t\r\n");
  std::string token = output.substr(begin, end - begin + 1);
  // One header-safe word: a token with a newline inside would split the header it goes into.
  if (!std::all_of(token.begin(), token.end(), IsTokenChar)) {
    return Fail(CredentialError(fmt::format("{} printed more than one token", program)));
  }
  return Secret(std::move(token));
}

std::shared_ptr<TokenCommandCache::Entry> TokenCommandCache::EntryFor(
    const std::vector<std::string>& argv) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Entry>& entry = entries_[argv];
  if (!entry) {
    entry = std::make_shared<Entry>();
  }
  return entry;
}

Result<Secret> TokenCommandCache::Token(const std::vector<std::string>& argv, Millis ttl,
                                        int64_t now_unix_ms) {
  std::shared_ptr<Entry> entry = EntryFor(argv);
  std::lock_guard<std::mutex> lock(entry->mu);
  if (!entry->token.empty() && now_unix_ms >= entry->fetched_ms &&
      now_unix_ms - entry->fetched_ms < ttl.count()) {
    return entry->token;
  }
  if (now_unix_ms < entry->retry_at_ms) {
    return Fail(entry->last_error);
  }
  Result<Secret> token = RunTokenCommand(argv, options_.limits);
  if (!token) {
    Error error = token.error();
    error.message = "token command: " + error.message;
    entry->last_error = error;
    entry->retry_at_ms = now_unix_ms + options_.failure_backoff.count();
    entry->token = Secret();
    return Fail(std::move(error));
  }
  entry->token = *token;
  entry->fetched_ms = now_unix_ms;
  entry->retry_at_ms = 0;
  {
    std::lock_guard<std::mutex> issued_lock(mu_);
    if (std::find(issued_.begin(), issued_.end(), *token) == issued_.end()) {
      if (issued_.size() >= kMaxIssuedTokens) {
        issued_.erase(issued_.begin());
      }
      issued_.push_back(*token);
    }
  }
  return token;
}

std::string TokenCommandCache::Redact(std::string text) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Secret& token : issued_) {
    const std::string& value = token.Reveal();
    if (value.size() < 4) {
      continue;
    }
    for (size_t pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos)) {
      text.replace(pos, value.size(), "<redacted>");
      pos += 10;
    }
  }
  return text;
}

}  // namespace modelpulse::collector
