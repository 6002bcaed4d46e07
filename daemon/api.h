#ifndef MODELPULSE_DAEMON_API_H_
#define MODELPULSE_DAEMON_API_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>

#include "common/common.h"
#include "common/sample_source.h"
#include "common/series_index.h"
#include "daemon/http_server.h"

namespace modelpulse::daemon {

// Bounds of the query API: each one, when hit, is an error the client reads in Prometheus's
// envelope rather than a daemon that stalls.
struct QueryApiOptions {
  Millis timeout{120'000};     // as Prometheus's --query.timeout; `timeout=` may only lower it
  size_t max_series = 10'000;  // per result (instant vector or range query matrix)
  // Label sets one discovery request (series, labels, label values, metadata) may collect, over
  // all its match[] selectors: listing is cheap next to a query (no samples), and Grafana lists
  // every series of a selector, so this is far above max_series (the 13,800 series of 200
  // targets in bench/README.md, each target's gauges, counters and histogram buckets), yet it
  // bounds what a request holds while its answer is built (that listing raised the daemon's
  // peak RSS by 15 MB, about 1.1 KB a series: some 55 MB at this bound).
  size_t max_discovery_series = 50'000;
  int max_concurrency = 4;  // queries evaluated at once; others wait within their timeout
  std::string version;      // for /api/v1/status/buildinfo
};

// Prometheus's HTTP query API (/api/v1/query, query_range, series, labels, label values,
// metadata, buildinfo) over a SampleSource, as Grafana's Prometheus data source and `promtool
// query` use it; the discovery endpoints (series, labels, label values, metadata) list what
// `index` lists, which is every series a query can return. Thread-safe: each HTTP worker calls
// Handle.
class QueryApi {
 public:
  // REQUIRES: `source`, `index` and `clock` outlive this.
  QueryApi(const SampleSource& source, const SeriesIndex& index, const Clock& clock,
           QueryApiOptions options);
  ApiAnswer Handle(const ApiRequest& request);

 private:
  using Deadline = std::chrono::steady_clock::time_point;
  ApiAnswer Dispatch(const ApiRequest& request, Deadline deadline);
  ApiAnswer InstantQuery(const ApiRequest& request, Deadline deadline);
  ApiAnswer RangeQuery(const ApiRequest& request, Deadline deadline);
  ApiAnswer Series(const ApiRequest& request, Deadline deadline);
  ApiAnswer Labels(const ApiRequest& request, const std::string* values_of, Deadline deadline);
  ApiAnswer Metadata(const ApiRequest& request, Deadline deadline);
  ApiAnswer BuildInfo() const;

  const SampleSource& source_;
  const SeriesIndex& index_;
  const Clock& clock_;
  const QueryApiOptions options_;
  std::mutex mu_;
  std::condition_variable slot_free_;
  int running_ = 0;  // Guarded by mu_.
};

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_API_H_
