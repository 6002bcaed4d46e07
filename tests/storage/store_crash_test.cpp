// kill -9 at a random moment while the store writes: afterwards the database passes
// PRAGMA integrity_check and holds at least every row the writer reported as committed.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/storage/test_support.h"

extern char** environ;

namespace modelpulse::storage {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct CrashRun {
  int64_t last_committed = -1;  // -1: the writer never reported a commit
  int wait_status = 0;
};

// Parses "committed N" lines out of `buffer`, leaving any incomplete last line in it.
void ParseLines(std::string& buffer, int64_t& last_committed) {
  size_t end = 0;
  while ((end = buffer.find('\n')) != std::string::npos) {
    const std::string line = buffer.substr(0, end);
    buffer.erase(0, end + 1);
    constexpr std::string_view kPrefix = "committed ";
    if (line.rfind(kPrefix, 0) == 0) {
      last_committed = std::stoll(line.substr(kPrefix.size()));
    }
  }
}

// Starts the writer, waits for its first commit, lets it run `run_for`, then SIGKILLs it.
CrashRun RunAndKill(const std::string& db_path, std::chrono::milliseconds run_for) {
  CrashRun run;
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::string program = MODELPULSE_CRASH_WRITER_PATH;
  // At most 5 M rows or 30 s: the kill comes long before either.
  std::vector<std::string> args = {program, db_path, "5000000", "30"};
  std::vector<char*> argv;
  for (std::string& arg : args) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  REQUIRE(spawned == 0);

  std::string buffer;
  bool started = false;
  bool open = true;
  const auto give_up = SteadyClock::now() + std::chrono::seconds(20);
  SteadyClock::time_point kill_at = give_up;
  while (open && SteadyClock::now() < kill_at) {
    pollfd pfd{fds[0], POLLIN, 0};
    if (poll(&pfd, 1, 5) > 0) {
      char chunk[4096];
      const ssize_t n = read(fds[0], chunk, sizeof chunk);
      if (n <= 0) {
        open = false;
      } else {
        buffer.append(chunk, static_cast<size_t>(n));
        ParseLines(buffer, run.last_committed);
      }
    }
    if (!started && run.last_committed >= 0) {
      started = true;
      kill_at = SteadyClock::now() + run_for;
    }
  }
  kill(pid, SIGKILL);
  REQUIRE(waitpid(pid, &run.wait_status, 0) == pid);
  // Lines written before the kill may still sit in the pipe.
  char chunk[4096];
  ssize_t n = 0;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0) {
    buffer.append(chunk, static_cast<size_t>(n));
  }
  ParseLines(buffer, run.last_committed);
  close(fds[0]);
  return run;
}

std::string QueryText(sqlite3* db, const char* sql) {
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  std::string value(reinterpret_cast<const char*>(sqlite3_column_text(statement, 0)));
  sqlite3_finalize(statement);
  return value;
}

TEST_CASE("kill -9 while writing loses no committed probe and leaves a sound database") {
  testing::TempDir dir;
  const std::string path = dir.File("crash.db");
  std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(50, 450);
  int64_t committed_before = 0;
  for (int round = 0; round < 4; ++round) {
    const int delay = delay_ms(random);
    CAPTURE(round);
    CAPTURE(delay);
    const CrashRun run = RunAndKill(path, std::chrono::milliseconds(delay));
    REQUIRE_MESSAGE(run.last_committed >= 0, "the writer never reported a commit");
    CHECK(WIFSIGNALED(run.wait_status));

    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    CHECK(QueryText(db, "PRAGMA integrity_check") == "ok");
    const int64_t stored = std::stoll(QueryText(db, "SELECT COUNT(*) FROM probes"));
    sqlite3_close(db);
    // Each round appends to the database the previous rounds left behind.
    CHECK(stored >= committed_before + run.last_committed);
    committed_before = stored;
  }
}

}  // namespace
}  // namespace modelpulse::storage
