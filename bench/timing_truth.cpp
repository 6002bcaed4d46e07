// Timing truth: how far modelpulse's measured first-token and total times are from what the
// simulator injected, with N streams in flight at once. Run through bench/timing_truth.sh, which
// pins the two halves to different cores:
//
//   timing_truth serve --scenario F --workers W     the simulator, in its own process. It is not
//       `modelpulse simulate` because that command has no way to size the worker pool, and every
//       open stream holds one httplib worker (toolchain.md §10): with fewer workers than streams
//       the streams queue and the injected delays are no longer what the client sees.
//   timing_truth probe --base-url URL --streams N --seconds S --first-token-ms F --inter-token-ms I
//       the real collector::Prober with N targets, target i pointing at simulator endpoint e<i>.
//       Each target has a 1 ms interval and no jitter, so it fires again as soon as its previous
//       probe ends: N streams are in flight for the whole window. --stagger-ms T adds the targets
//       one by one over T ms (default: one planned probe duration), so arrivals are spread as the
//       daemon spreads real targets; --stagger-ms 0 makes them all due at once, a burst of N
//       connections every probe duration (the worst case). Afterwards it reads
//       GET /_simulator/journal and pairs the k-th probe of target i with the k-th request the
//       simulator journaled for endpoint e<i> (one target has at most one probe in flight, so the
//       orders agree; start times are checked too).
//
// Errors reported per probe:
//   ttft error  = measured ttft_seconds - injected first_token_delay_seconds
//   total error = measured total_seconds - the simulator's own arrival-to-last-write time
//   sim late    = the simulator's arrival-to-last-write time - planned (F + (n-1) x I)
// The ttft error therefore includes TCP connect and request transfer on loopback, the simulator's
// request parsing and thread scheduling (a late wake-up of its worker), the kernel's delivery and
// the prober's own event-loop latency. The total error excludes the simulator's lateness (its
// clock stops at its last write) but includes connect, request transfer and the client side.

#include <curl/curl.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "collector/collector.h"
#include "common/common.h"
#include "simulator/simulator.h"

namespace {

using modelpulse::Millis;
using modelpulse::Outcome;
using modelpulse::ProbeResult;

struct Args {
  std::string mode;
  std::map<std::string, std::string> flags;

  std::string Get(const std::string& name, const std::string& fallback) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  double Number(const std::string& name, double fallback) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
  }
};

Args ParseArgs(int argc, char** argv) {
  Args args;
  if (argc > 1)
    args.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    if (name.rfind("--", 0) == 0)
      name = name.substr(2);
    args.flags[name] = argv[i + 1];
  }
  return args;
}

int Serve(const Args& args) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts, so all inherit it

  modelpulse::simulator::SimulatorSettings settings;
  settings.scenario_path = args.Get("scenario", "");
  settings.listen_address = "127.0.0.1:" + std::to_string(static_cast<int>(args.Number("port", 0)));
  settings.worker_threads = static_cast<size_t>(args.Number("workers", 532));
  auto options = modelpulse::simulator::OptionsFromSettings(settings);
  if (!options) {
    std::fprintf(stderr, "timing_truth serve: %s\n", options.error().ToString().c_str());
    return 1;
  }
  modelpulse::SystemClock clock;
  auto sim = modelpulse::simulator::Simulator::Start(*options, clock);
  if (!sim) {
    std::fprintf(stderr, "timing_truth serve: %s\n", sim.error().ToString().c_str());
    return 1;
  }
  // The script reads this line to learn the port.
  std::printf("listening %s workers %zu\n", (*sim)->BaseUrl().c_str(), options->worker_threads);
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  return 0;
}

class CollectingSink final : public modelpulse::collector::ProbeSink {
 public:
  void OnProbe(const ProbeResult& result) override {
    std::lock_guard lock(mu_);
    results_.push_back(result);
  }
  std::vector<ProbeResult> Take() {
    std::lock_guard lock(mu_);
    return std::move(results_);
  }

 private:
  std::mutex mu_;
  std::vector<ProbeResult> results_;
};

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

bool HttpGet(const std::string& url, std::string& body) {
  CURL* easy = curl_easy_init();
  if (easy == nullptr)
    return false;
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
  const CURLcode code = curl_easy_perform(easy);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(easy);
  return code == CURLE_OK && status == 200;
}

// User plus system CPU of this process, all threads.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Summary {
  double p50 = 0, p99 = 0, max = 0, min = 0;
};

// Nearest-rank percentiles, in milliseconds.
Summary Summarise(std::vector<double> seconds) {
  Summary s;
  if (seconds.empty())
    return s;
  std::sort(seconds.begin(), seconds.end());
  auto rank = [&](double q) {
    size_t index = static_cast<size_t>(q * static_cast<double>(seconds.size()) + 0.999999);
    index = std::clamp<size_t>(index, 1, seconds.size());
    return seconds[index - 1] * 1000.0;
  };
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = seconds.back() * 1000.0;
  s.min = seconds.front() * 1000.0;
  return s;
}

struct JournalEntry {
  int64_t received_unix_ms = 0;
  int http_status = 0;
  std::string behaviour;
  double first_token_delay_seconds = 0;
  double total_seconds = 0;
  int64_t output_tokens = 0;
};

int Probe(const Args& args) {
  const std::string base_url = args.Get("base-url", "");
  const int streams = static_cast<int>(args.Number("streams", 1));
  const double seconds = args.Number("seconds", 10);
  const double first_token_ms = args.Number("first-token-ms", 300);
  const double inter_token_ms = args.Number("inter-token-ms", 10);
  const std::string connection = args.Get("connection", "fresh");
  // 0: all targets due at once. Default: spread over one planned probe duration.
  const double stagger_ms = args.Number(
      "stagger-ms", first_token_ms + inter_token_ms * (args.Number("output-tokens", 16) - 1));
  if (base_url.empty() || streams < 1) {
    std::fprintf(stderr, "timing_truth probe: --base-url and --streams N (>= 1) are required\n");
    return 2;
  }

  std::vector<modelpulse::collector::TargetSpec> targets;
  for (int i = 0; i < streams; ++i) {
    modelpulse::collector::TargetSpec spec;
    spec.name = fmt::format("e{}", i);
    spec.provider = modelpulse::collector::Provider::kOpenAICompatible;
    spec.model = "bench";
    spec.provider_model = "bench";
    spec.base_url = fmt::format("{}/e{}/v1", base_url, i);
    spec.labels = modelpulse::Labels{{"target", spec.name}};
    spec.interval = Millis{1};  // fire again as soon as the previous probe ends
    spec.stream = true;
    spec.max_tokens = 1000;  // never cut the scenario's output length
    spec.expect.clear();
    spec.timeouts.connect = Millis{10000};
    spec.timeouts.first_token = Millis{30000};
    spec.timeouts.total = Millis{60000};
    spec.connection = connection == "keep_warm" ? modelpulse::collector::ConnectionReuse::kKeepWarm
                                                : modelpulse::collector::ConnectionReuse::kFresh;
    targets.push_back(std::move(spec));
  }

  modelpulse::collector::ProberOptions options;
  options.max_concurrency = static_cast<size_t>(streams);
  options.jitter_fraction = 0;
  options.shutdown_grace = Millis{10000};
  modelpulse::SystemClock clock;
  CollectingSink sink;
  auto prober = modelpulse::collector::Prober::Create(options, sink, clock);
  if (!prober) {
    std::fprintf(stderr, "timing_truth probe: %s\n", prober.error().ToString().c_str());
    return 1;
  }
  // CPU is counted from the end of the ramp (SetTargets copies every spec on each call, a cost of
  // this benchmark's ramp, not of probing), per probe started after it.
  double cpu_before = CpuSeconds();
  auto wall_begin = std::chrono::steady_clock::now();
  int64_t ramp_end_unix_ms = clock.NowUnixMillis();
  {
    const auto begin = std::chrono::steady_clock::now();
    std::jthread loop([&](std::stop_token stop) { (*prober)->Run(stop); });
    if (stagger_ms <= 0) {
      (*prober)->SetTargets(targets);  // every target due at once: a burst of N connections
    } else {
      // Add the targets one by one over `stagger_ms`, so their probes stay spread over one probe
      // duration, as the daemon spreads real targets over their interval.
      for (int i = 1; i <= streams; ++i) {
        std::this_thread::sleep_until(
            begin + std::chrono::duration<double, std::milli>(stagger_ms * (i - 1) / streams));
        (*prober)->SetTargets(std::vector(targets.begin(), targets.begin() + i));
      }
    }
    cpu_before = CpuSeconds();
    wall_begin = std::chrono::steady_clock::now();
    ramp_end_unix_ms = clock.NowUnixMillis();
    std::this_thread::sleep_until(begin + std::chrono::duration<double>(seconds));
    loop.request_stop();
  }  // joins: in-flight probes finish within shutdown_grace and are reported
  const double cpu_seconds = CpuSeconds() - cpu_before;
  const double wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_begin).count();
  std::vector<ProbeResult> results = sink.Take();
  const auto after_ramp = std::count_if(results.begin(), results.end(), [&](const ProbeResult& r) {
    return r.start_unix_ms >= ramp_end_unix_ms;
  });

  std::string body;
  if (!HttpGet(base_url + "/_simulator/journal", body)) {
    std::fprintf(stderr, "timing_truth probe: cannot read %s/_simulator/journal\n",
                 base_url.c_str());
    return 1;
  }
  std::map<std::string, std::vector<JournalEntry>> journal;  // by endpoint, in arrival order
  const auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) {
    std::fprintf(stderr, "timing_truth probe: the journal is not a JSON array\n");
    return 1;
  }
  for (const auto& item : parsed) {
    JournalEntry e;
    e.received_unix_ms = item.value("received_unix_ms", int64_t{0});
    e.http_status = item.value("http_status", 0);
    e.behaviour = item.value("behaviour", std::string());
    e.first_token_delay_seconds = item.value("first_token_delay_seconds", 0.0);
    e.total_seconds = item.value("total_seconds", 0.0);
    e.output_tokens = item.value("output_tokens", int64_t{0});
    journal[item.value("endpoint", std::string())].push_back(std::move(e));
  }

  std::map<std::string, std::vector<const ProbeResult*>> by_target;
  for (const ProbeResult& r : results)
    by_target[r.target].push_back(&r);

  std::vector<double> ttft_err, total_err, sim_late, connect, first_byte;
  size_t not_ok = 0, unmatched = 0, skewed = 0;
  for (auto& [name, probes] : by_target) {
    std::sort(probes.begin(), probes.end(), [](const ProbeResult* a, const ProbeResult* b) {
      return a->start_unix_ms < b->start_unix_ms;
    });
    const auto& entries = journal[name];
    for (size_t k = 0; k < probes.size(); ++k) {
      const ProbeResult& p = *probes[k];
      if (p.outcome != Outcome::kOk || !p.ttft_seconds) {
        ++not_ok;
        if (not_ok <= 5) {
          std::fprintf(stderr, "  probe %s: %s %s\n", name.c_str(),
                       std::string(modelpulse::OutcomeName(p.outcome)).c_str(), p.error.c_str());
        }
        continue;
      }
      if (k >= entries.size()) {
        ++unmatched;
        continue;
      }
      const JournalEntry& e = entries[k];
      // Wall clocks of two processes on one host: arrival follows start by connect + send.
      if (e.received_unix_ms < p.start_unix_ms - 2 || e.received_unix_ms > p.start_unix_ms + 1000) {
        ++skewed;
        continue;
      }
      ttft_err.push_back(*p.ttft_seconds - e.first_token_delay_seconds);
      total_err.push_back(p.total_seconds - e.total_seconds);
      const double planned =
          (first_token_ms +
           static_cast<double>(std::max<int64_t>(0, e.output_tokens - 1)) * inter_token_ms) /
          1000.0;
      sim_late.push_back(e.total_seconds - planned);
      if (p.connect_seconds)
        connect.push_back(*p.connect_seconds);
      if (p.first_byte_seconds)
        first_byte.push_back(*p.first_byte_seconds);
    }
  }

  const Summary t = Summarise(ttft_err);
  const Summary s = Summarise(total_err);
  const Summary l = Summarise(sim_late);
  const Summary c = Summarise(connect);
  const Summary f = Summarise(first_byte);
  std::printf(
      "streams=%d connection=%s stagger=%.0fms window=%.0fs probes=%zu matched=%zu not_ok=%zu "
      "unmatched=%zu skewed=%zu\n",
      streams, connection.c_str(), stagger_ms, seconds, results.size(), ttft_err.size(), not_ok,
      unmatched, skewed);
  std::printf(
      "  prober CPU %.2f s in %.1f s after the ramp (%.0f%% of a core), %.0f us per probe\n",
      cpu_seconds, wall_seconds, 100 * cpu_seconds / wall_seconds,
      after_ramp == 0 ? 0.0 : 1e6 * cpu_seconds / static_cast<double>(after_ramp));
  std::printf("  %-26s %9s %9s %9s %9s\n", "ms", "min", "p50", "p99", "max");
  auto row = [](const char* what, const Summary& x) {
    std::printf("  %-26s %9.3f %9.3f %9.3f %9.3f\n", what, x.min, x.p50, x.p99, x.max);
  };
  row("ttft error", t);
  row("total error", s);
  row("sim late (server side)", l);
  row("connect (curl)", c);
  row("first byte (curl)", f);
  // One line for scripts: streams, matched, ttft p50/p99/max, total p50/p99/max (ms).
  std::printf("RESULT %d %zu %.3f %.3f %.3f %.3f %.3f %.3f\n", streams, ttft_err.size(), t.p50,
              t.p99, t.max, s.p50, s.p99, s.max);
  return ttft_err.empty() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = ParseArgs(argc, argv);
  if (args.mode == "serve")
    return Serve(args);
  if (args.mode == "probe") {
    curl_global_init(CURL_GLOBAL_ALL);
    const int rc = Probe(args);
    curl_global_cleanup();
    return rc;
  }
  std::fprintf(stderr,
               "usage: timing_truth serve --scenario F [--port P] [--workers W]\n"
               "       timing_truth probe --base-url URL --streams N [--seconds S]\n"
               "                          [--first-token-ms F] [--inter-token-ms I]\n"
               "                          [--output-tokens N] [--stagger-ms T]\n"
               "                          [--connection fresh|keep_warm]\n");
  return 2;
}
