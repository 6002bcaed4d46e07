// The prober fetches command and OAuth tokens off its event loop: a target whose credential is
// slow waits for it, the others keep their schedule. Real loopback server, real (gated) command.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "tests/collector/loopback_server.h"
#include "tests/collector/provider_test_util.h"

namespace modelpulse::collector {
namespace {

using namespace std::chrono_literals;

class CountingSink final : public ProbeSink {
 public:
  void OnProbe(const ProbeResult& result) override {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(result);
  }
  std::vector<ProbeResult> For(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ProbeResult> out;
    for (const ProbeResult& r : results_) {
      if (r.target == name) {
        out.push_back(r);
      }
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<ProbeResult> results_;
};

// Polls `done` until it holds or `limit` passes (a bound against hanging, not a timing claim).
template <typename Predicate>
bool PollFor(Predicate done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TargetSpec AzureV1(const testing::LoopbackServer& server, const std::string& name) {
  TargetSpec target;
  target.name = name;
  target.provider = Provider::kAzure;
  target.model = "gpt-4o-mini";
  target.provider_model = "gpt-4o-mini";
  target.base_url = server.BaseUrl();
  target.api_key = Secret("azure-key-SECRET-123");
  target.auth.mode = AuthMode::kApiKey;
  target.labels = {{"target", name}};
  target.stream = false;
  target.interval = 50ms;
  target.timeouts.connect = 2000ms;
  target.timeouts.first_token = 3000ms;
  target.timeouts.total = 5000ms;
  return target;
}

TEST_CASE("prober: a slow token command delays only its own target") {
  testing::CurlGlobalInit curl;
  testing::LoopbackServer server;
  testing::ScratchDir dir;
  server.Post("/openai/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        R"({"choices":[{"finish_reason":"stop","index":0,"message":{"content":"OK","role":"assistant"}}],"usage":{"completion_tokens":1,"prompt_tokens":9,"total_tokens":10}})",
        "application/json");
  });
  server.Start();

  const std::string gate = (dir.path() / "gate").string();
  TargetSpec slow = AzureV1(server, "slow");
  slow.auth.mode = AuthMode::kTokenCommand;
  // Prints its token only once the test opens the gate (bounded by the command timeout, 10 s).
  slow.auth.token_command = {dir.Script(
      "gated.sh", "while [ ! -e '" + gate + "' ]; do sleep 0.01; done\necho cmd-token-SECRET")};
  const TargetSpec fast = AzureV1(server, "fast");

  SystemClock clock;
  CountingSink sink;
  ProberOptions options;
  options.shutdown_grace = 3000ms;
  auto prober = Prober::Create(options, sink, clock);
  REQUIRE(prober.has_value());
  (*prober)->SetTargets({slow, fast});
  std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });

  // While the slow target's command is blocked, the fast one probes again and again, and the
  // prober's state stays readable. The loop used to run the command itself: nothing else moved.
  const bool fast_kept_going = PollFor([&] { return sink.For("fast").size() >= 3; }, 5000ms);
  CHECK(fast_kept_going);
  CHECK(sink.For("slow").empty());
  CHECK((*prober)->Status().size() == 2);

  std::ofstream(gate) << "open\n";
  const bool slow_done = PollFor([&] { return !sink.For("slow").empty(); }, 12000ms);
  loop.request_stop();
  loop.join();
  REQUIRE(slow_done);
  const ProbeResult r = sink.For("slow")[0];
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.error.empty());
  for (const ProbeResult& fast_result : sink.For("fast")) {
    CHECK(fast_result.outcome == Outcome::kOk);
  }
}

}  // namespace
}  // namespace modelpulse::collector
