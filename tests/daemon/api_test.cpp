// The query API's own bounds, over a sample source the test controls: the concurrency limit and
// the queue timeout cannot be shown reliably with a real store whose queries end when they like.
// Its discovery endpoints over a real SQLite store and the probe series source.
#include "daemon/api.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "daemon/http_server.h"
#include "rules/promql.h"
#include "storage/series_source.h"
#include "storage/storage.h"
#include "tests/storage/test_support.h"

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
  CountingIndex index(source);
  QueryApi api(source, index, clock, options);
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

// Two series with values that print in every form: a fraction, +Inf, a large exponent.
class FixedSource final : public SampleSource {
 public:
  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>&, int64_t,
                                     int64_t) const override {
    return std::vector<Series>{
        Series{{{"__name__", "up"}, {"target", "a\"b"}},
               {Sample{999'000, 0.1}, Sample{1'000'500, std::numeric_limits<double>::infinity()}}},
        Series{{{"__name__", "up"}, {"target", "z"}}, {Sample{999'000, 1e21}}}};
  }
};

TEST_CASE("a range query's body is Prometheus's JSON, whole and fractional timestamps alike") {
  FixedSource source;
  SystemClock clock;
  CountingIndex index(source);
  QueryApi api(source, index, clock, QueryApiOptions{});
  const ApiAnswer answer =
      api.Handle({"GET",
                  "/api/v1/query_range",
                  {{"query", "up"}, {"start", "999.5"}, {"end", "1001"}, {"step", "0.5"}}});
  REQUIRE(answer.status == 200);
  const std::string inf = rules::FormatFloatShortest(std::numeric_limits<double>::infinity());
  const std::string big = rules::FormatFloatShortest(1e21);
  CHECK(answer.json ==
        R"({"status":"success","data":{"resultType":"matrix","result":[)"
        R"({"metric":{"__name__":"up","target":"a\"b"},"values":[[999.5,"0.1"],[1000,"0.1"],)"
        R"([1000.5,")" +
            inf + R"("],[1001,")" + inf +
            R"("]]},)"
            R"({"metric":{"__name__":"up","target":"z"},"values":[[999.5,")" +
            big + R"("],[1000,")" + big + R"("],[1000.5,")" + big + R"("],[1001,")" + big +
            R"("]]}]}})");
  CHECK(nlohmann::json::parse(answer.json)["data"]["result"][1]["values"][3][1] == big);

  // Steps of 13 ms (fractions of one, two and three digits): each timestamp written as a JSON
  // number of the step's seconds would be (the shortest decimal).
  for (const auto& [start, end] : {std::pair{"999.001", "1001"}, std::pair{"999.09", "1000.2"}}) {
    CAPTURE(start);
    const ApiAnswer steps =
        api.Handle({"GET",
                    "/api/v1/query_range",
                    {{"query", "up"}, {"start", start}, {"end", end}, {"step", "0.013"}}});
    REQUIRE(steps.status == 200);
    const nlohmann::json values = nlohmann::json::parse(steps.json)["data"]["result"][0]["values"];
    REQUIRE(values.size() > 80);
    const auto first_ms = static_cast<int64_t>(std::llround(std::stod(start) * 1000));
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t t_ms = first_ms + static_cast<int64_t>(i) * 13;
      const std::string want = t_ms % 1000 == 0
                                   ? nlohmann::json(t_ms / 1000).dump()
                                   : nlohmann::json(static_cast<double>(t_ms) / 1000.0).dump();
      CAPTURE(t_ms);
      CHECK(steps.json.find("[" + want + ",\"") != std::string::npos);
      CHECK(values[i][0].dump() == want);
    }
  }
}

TEST_CASE("hostile expressions are bad_data errors, not crashes") {
  GatedSource source;
  source.Release();
  SystemClock clock;
  CountingIndex index(source);
  QueryApi api(source, index, clock, QueryApiOptions{});
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

constexpr int64_t kT0 = 1'800'000'000'000;

using storage::testing::TempDir;

ProbeResult Probe(const std::string& target, int64_t offset_ms, Outcome outcome) {
  ProbeResult p;
  p.target = target;
  p.labels = {{"target", target}, {"cloud", "c-" + target}};
  p.start_unix_ms = kT0 + offset_ms;
  p.outcome = outcome;
  p.http_status = outcome == Outcome::kOk ? 200 : 429;
  p.total_seconds = 0.5;
  if (outcome == Outcome::kOk) {
    p.ttft_seconds = 0.2;
    p.output_tokens_per_second = 40;
  }
  return p;
}

nlohmann::json Get(QueryApi& api, const std::string& path,
                   std::multimap<std::string, std::string> params = {}) {
  const ApiAnswer answer = api.Handle({"GET", path, std::move(params)});
  CAPTURE(answer.json);
  REQUIRE(answer.status == 200);
  const auto body = nlohmann::json::parse(answer.json);
  REQUIRE(body.at("status") == "success");
  return body.at("data");
}

std::string Seconds(int64_t offset_ms) {
  return std::to_string((kT0 + offset_ms) / 1000) + "." + std::to_string((kT0 + offset_ms) % 1000);
}

TEST_CASE("discovery endpoints list the counter and histogram families, from a real store") {
  TempDir dir;
  ManualClock clock{kT0 + 10'000};
  storage::StorageOptions options;
  options.path = dir.File("s.db");
  options.retention = Millis(0);
  auto store = storage::Store::Open(options, clock);
  REQUIRE(store.has_value());
  // a: ok at 1 s, throttled at 5 s, ok at 9 s; b: ok at 2 s only.
  for (const ProbeResult& p :
       {Probe("a", 1000, Outcome::kOk), Probe("b", 2000, Outcome::kOk),
        Probe("a", 5000, Outcome::kThrottled), Probe("a", 9000, Outcome::kOk)}) {
    (*store)->Append(p);
  }
  REQUIRE((*store)->Flush().has_value());
  // Restarted after the probes: everything is read from the SQLite file.
  storage::ProbeSeriesSource source(store->get(), Millis(3'600'000), kT0 + 9500);
  QueryApi api(source, source, clock, QueryApiOptions{});

  const auto names = Get(api, "/api/v1/label/__name__/values").get<std::set<std::string>>();
  for (const char* name :
       {"probe_success", "modelpulse_probes_total", "modelpulse_probe_ttft_seconds_bucket",
        "modelpulse_probe_ttft_seconds_sum", "modelpulse_probe_ttft_seconds_count",
        "modelpulse_probe_duration_seconds_bucket",
        "modelpulse_probe_output_tokens_per_second_count"}) {
    CHECK(names.count(name) == 1);
  }
  CHECK(Get(api, "/api/v1/labels").get<std::set<std::string>>() ==
        std::set<std::string>{"__name__", "cloud", "le", "outcome", "target"});

  // Outcomes by target, over all of history and within windows.
  auto outcomes = [&](const std::string& match, int64_t from, int64_t to) {
    return Get(api, "/api/v1/label/outcome/values",
               {{"match[]", match}, {"start", Seconds(from)}, {"end", Seconds(to)}})
        .get<std::vector<std::string>>();
  };
  using Values = std::vector<std::string>;
  CHECK(outcomes("modelpulse_probes_total", 0, 10'000) == Values{"ok", "throttled"});
  CHECK(outcomes("modelpulse_probes_total{target=\"b\"}", 0, 10'000) == Values{"ok"});
  // Before a's throttled probe that series did not exist yet; after it, it does at every probe.
  CHECK(outcomes("modelpulse_probes_total{target=\"a\"}", 0, 4000) == Values{"ok"});
  CHECK(outcomes("modelpulse_probes_total{target=\"a\"}", 8000, 10'000) ==
        Values{"ok", "throttled"});
  // A window in which b did not probe has none of b's series.
  CHECK(outcomes("{target=\"b\"}", 3000, 10'000).empty());

  // series: several match[] selectors, a regex on __name__, and limit.
  const auto series = Get(api, "/api/v1/series",
                          {{"match[]", "{__name__=~\"modelpulse_probe_ttft_seconds_(sum|count)\"}"},
                           {"match[]", "modelpulse_probes_total{outcome=\"throttled\"}"}});
  std::set<std::string> listed;
  for (const auto& labels : series) {
    listed.insert(labels.at("__name__").get<std::string>() + "/" +
                  labels.at("target").get<std::string>());
  }
  CHECK(listed == std::set<std::string>{
                      "modelpulse_probe_ttft_seconds_sum/a", "modelpulse_probe_ttft_seconds_sum/b",
                      "modelpulse_probe_ttft_seconds_count/a",
                      "modelpulse_probe_ttft_seconds_count/b", "modelpulse_probes_total/a"});
  CHECK(
      Get(api, "/api/v1/series", {{"match[]", "modelpulse_probes_total"}, {"limit", "2"}}).size() ==
      2);

  // Every series an instant query returns is listed for its lookback window, and no other.
  const int64_t at = 9000;
  std::set<std::string> queried;
  for (const std::string& name : names) {
    const auto result =
        Get(api, "/api/v1/query", {{"query", name}, {"time", Seconds(at)}}).at("result");
    for (const auto& sample : result) {
      queried.insert(sample.at("metric").dump());
    }
  }
  std::set<std::string> in_lookback;
  for (const auto& labels : Get(api, "/api/v1/series",
                                {{"match[]", "{__name__=~\".+\"}"},
                                 {"start", Seconds(at - 300'000)},
                                 {"end", Seconds(at)}})) {
    in_lookback.insert(labels.dump());
  }
  CHECK(queried == in_lookback);

  // Metadata by family, with the /metrics type and help.
  const auto metadata = Get(api, "/api/v1/metadata");
  CHECK(metadata.at("modelpulse_probes_total").at(0).at("type") == "counter");
  CHECK(metadata.at("modelpulse_probe_ttft_seconds").at(0).at("type") == "histogram");
  CHECK(metadata.at("probe_success").at(0).at("type") == "gauge");
  CHECK_FALSE(metadata.at("probe_success").at(0).at("help").get<std::string>().empty());
  CHECK_FALSE(metadata.contains("modelpulse_probe_ttft_seconds_bucket"));
  const auto one = Get(api, "/api/v1/metadata", {{"metric", "modelpulse_probe_ttft_seconds"}});
  CHECK(one.size() == 1);
  CHECK(one.contains("modelpulse_probe_ttft_seconds"));
}

// One GET over a real socket, as any client sends it: (status, body).
std::pair<int, std::string> HttpGet(int port, const std::string& path,
                                    const std::vector<std::pair<std::string, std::string>>& query) {
  std::string target = path;
  for (size_t i = 0; i < query.size(); ++i) {
    target += i == 0 ? "?" : "&";
    for (const std::string* part : {&query[i].first, &query[i].second}) {
      for (const unsigned char c : *part) {
        if (std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.') {
          target += static_cast<char>(c);
        } else {
          char escaped[4];
          std::snprintf(escaped, sizeof escaped, "%%%02X", c);
          target += escaped;
        }
      }
      if (part == &query[i].first) {
        target += "=";
      }
    }
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[65536];
  ssize_t n = 0;
  while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) {
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  CAPTURE(response.substr(0, 300));
  REQUIRE(response.rfind("HTTP/1.1 ", 0) == 0);
  const size_t body = response.find("\r\n\r\n");
  REQUIRE(body != std::string::npos);
  return {std::stoi(response.substr(9, 3)), response.substr(body + 4)};
}

TEST_CASE("discovery endpoints have their own bound, far above a query's, over real HTTP") {
  TempDir dir;
  ManualClock clock{kT0 + 10'000};
  storage::StorageOptions options;
  options.path = dir.File("s.db");
  options.retention = Millis(0);
  auto store = storage::Store::Open(options, clock);
  REQUIRE(store.has_value());
  for (const char* target : {"a", "b", "c"}) {
    (*store)->Append(Probe(target, 1000, Outcome::kOk));
  }
  REQUIRE((*store)->Flush().has_value());
  storage::ProbeSeriesSource source(store->get(), Millis(3'600'000), kT0 + 9500);
  const std::string everything = "{__name__=~\".+\"}";
  QueryApi unbounded(source, source, clock, QueryApiOptions{});
  const size_t all = Get(unbounded, "/api/v1/series", {{"match[]", everything}}).size();
  const size_t of_a = Get(unbounded, "/api/v1/series", {{"match[]", "{target=\"a\"}"}}).size();
  REQUIRE(of_a > 7);
  REQUIRE(all > of_a + 1);

  // A query may return 5 series; a listing may hold one series fewer than the store has.
  QueryApiOptions bounded;
  bounded.max_series = 5;
  bounded.max_discovery_series = all - 1;
  QueryApi api(source, source, clock, bounded);
  HttpHandlers handlers;
  handlers.api = [&api](const ApiRequest& request) { return api.Handle(request); };
  HttpServerOptions server_options;
  server_options.listen_address = "127.0.0.1:0";
  auto server = HttpServer::Start(server_options, std::move(handlers));
  REQUIRE(server.has_value());
  const int port = (*server)->port();

  // More series than a query may return: listed all the same.
  auto [status, body] = HttpGet(port, "/api/v1/series", {{"match[]", "{target=\"a\"}"}});
  CAPTURE(body);
  CHECK(status == 200);
  CHECK(nlohmann::json::parse(body).at("data").size() == of_a);
  // The query bound still holds for queries.
  std::tie(status, body) =
      HttpGet(port, "/api/v1/query", {{"query", "{target=\"a\"}"}, {"time", Seconds(1000)}});
  CHECK(status == 422);

  // Past the discovery bound, every discovery endpoint answers Prometheus's execution error.
  const std::string message = "more than " + std::to_string(all - 1) +
                              " series match; narrow the match[] selectors or the time range";
  using Query = std::vector<std::pair<std::string, std::string>>;
  const std::vector<std::pair<std::string, Query>> too_many = {
      {"/api/v1/series", {{"match[]", everything}}},
      {"/api/v1/series", {{"match[]", "{target=\"a\"}"}, {"match[]", "{target=~\"b|c\"}"}}},
      {"/api/v1/labels", {}},
      {"/api/v1/label/__name__/values", {}},
      {"/api/v1/metadata", {}}};
  for (const auto& [path, query] : too_many) {
    CAPTURE(path);
    std::tie(status, body) = HttpGet(port, path, query);
    CHECK(status == 422);
    CHECK(nlohmann::json::parse(body) ==
          nlohmann::json{{"status", "error"}, {"errorType", "execution"}, {"error", message}});
  }
  // Within it again: a narrower selector, or a `limit` below the bound.
  std::tie(status, body) =
      HttpGet(port, "/api/v1/label/__name__/values", {{"match[]", "{target=~\"a|b\"}"}});
  CHECK(status == 200);
  std::tie(status, body) =
      HttpGet(port, "/api/v1/series", {{"match[]", everything}, {"limit", "7"}});
  CHECK(status == 200);
  CHECK(nlohmann::json::parse(body).at("data").size() == 7);
}

}  // namespace
}  // namespace modelpulse::daemon
