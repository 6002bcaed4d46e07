// The query API's own bounds, over a sample source the test controls: the concurrency limit and
// the queue timeout cannot be shown reliably with a real store whose queries end when they like.
#include "daemon/api.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <vector>

namespace modelpulse::daemon {
namespace {

// Holds every Select until Release, counting how many are inside at once.
class GatedSource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    std::unique_lock lock(mu_);
    ++inside_;
    most_inside_ = std::max(most_inside_, inside_);
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
    --inside_;
    return std::vector<Series>{
        Series{{{"__name__", "up"}, {"target", "t"}}, {Sample{1'000'000, 1}}}};
  }

  void WaitUntilInside(int n) const {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return inside_ >= n; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    changed_.notify_all();
  }
  int most_inside() const {
    std::lock_guard lock(mu_);
    return most_inside_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable int inside_ = 0;
  mutable int most_inside_ = 0;
  bool released_ = false;
};

ApiRequest Query(const std::string& expr, const std::string& timeout = "") {
  ApiRequest request{"GET", "/api/v1/query", {{"query", expr}, {"time", "1000"}}};
  if (!timeout.empty()) {
    request.params.emplace("timeout", timeout);
  }
  return request;
}

TEST_CASE("queries beyond the concurrency limit wait in a queue and time out there") {
  GatedSource source;
  SystemClock clock;
  QueryApiOptions options;
  options.max_concurrency = 4;
  QueryApi api(source, clock, options);
  std::vector<std::future<ApiAnswer>> running;
  for (int i = 0; i < 4; ++i) {
    running.push_back(std::async(std::launch::async, [&] { return api.Handle(Query("up")); }));
  }
  source.WaitUntilInside(4);
  // A fifth query finds no free slot and gives up within its own timeout, as Prometheus's
  // query queue answers.
  const ApiAnswer queued = api.Handle(Query("up", "50ms"));
  CHECK(queued.status == 503);
  CHECK(queued.json.find(R"("errorType":"timeout")") != std::string::npos);
  CHECK(queued.json.find("query timed out in query queue") != std::string::npos);
  source.Release();
  for (auto& answer : running) {
    const ApiAnswer done = answer.get();
    CHECK(done.status == 200);
    CHECK(done.json.find(R"("status":"success")") != std::string::npos);
  }
  CHECK(source.most_inside() == 4);
  // Slots are given back: the next query runs.
  CHECK(api.Handle(Query("up", "1s")).status == 200);
}

TEST_CASE("hostile expressions are bad_data errors, not crashes") {
  GatedSource source;
  source.Release();
  SystemClock clock;
  QueryApi api(source, clock, QueryApiOptions{});
  const std::string deep = std::string(100'000, '(') + "1" + std::string(100'000, ')');
  const std::string deep_regex =
      "up{target=~\"" + std::string(30'000, '(') + "a" + std::string(30'000, ')') + "\"}";
  const std::string unary = std::string(200'000, '-') + "1";
  for (const std::string& expr : {deep, deep_regex, unary}) {
    const ApiAnswer answer = api.Handle(Query(expr));
    CHECK(answer.status == 400);
    CHECK(answer.json.find(R"("errorType":"bad_data")") != std::string::npos);
  }
  // A catastrophic-backtracking pattern is linear on RE2: answered, not stalled.
  CHECK(api.Handle(Query(R"(up{target=~"(a+)+$"})")).status == 200);
}

}  // namespace
}  // namespace modelpulse::daemon
