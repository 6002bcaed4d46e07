#include "daemon/api.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/duration.h"
#include "common/probe_series.h"
#include "rules/promql.h"

namespace modelpulse::daemon {
namespace {

using json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

// Prometheus's error types and the status codes its API answers them with.
enum class ErrorType { kBadData, kExecution, kTimeout };

ApiAnswer ErrorAnswer(ErrorType type, const std::string& message) {
  const char* name = "bad_data";
  int status = 400;
  if (type == ErrorType::kExecution) {
    name = "execution";
    status = 422;
  } else if (type == ErrorType::kTimeout) {
    name = "timeout";
    status = 503;
  }
  return {status, json{{"status", "error"}, {"errorType", name}, {"error", message}}.dump()};
}

ApiAnswer Success(json data) {
  return {200, json{{"status", "success"}, {"data", std::move(data)}}.dump()};
}

// Unix seconds as a JSON number: whole seconds print without a fraction, as Prometheus's do.
json Timestamp(int64_t t_ms) {
  if (t_ms % 1000 == 0) {
    return t_ms / 1000;
  }
  return static_cast<double>(t_ms) / 1000.0;
}

json Point(int64_t t_ms, double v) {
  return json::array({Timestamp(t_ms), rules::FormatFloatShortest(v)});
}

json Metric(const Labels& labels) {
  json out = json::object();
  for (const auto& [name, value] : labels) {
    out[name] = value;
  }
  return out;
}

// Timestamp(t_ms) as JSON, written out: whole seconds as an integer, others as the shortest
// decimal of t_ms / 1000, which below 2^53 ms is the seconds and up to three digits of
// milliseconds without trailing zeros (a double's spacing there is far below a millisecond).
void AppendTimestamp(std::string& out, int64_t t_ms) {
  constexpr int64_t kExact = int64_t{1} << 53;
  char digits[24];
  if (t_ms % 1000 == 0) {
    out.append(digits, std::to_chars(digits, digits + sizeof digits, t_ms / 1000).ptr);
    return;
  }
  if (t_ms <= -kExact || t_ms >= kExact) {
    out += Timestamp(t_ms).dump();
    return;
  }
  const int64_t magnitude = t_ms < 0 ? -t_ms : t_ms;
  if (t_ms < 0) {
    out += '-';
  }
  out.append(digits, std::to_chars(digits, digits + sizeof digits, magnitude / 1000).ptr);
  int64_t millis = magnitude % 1000;
  int width = 3;
  for (; millis % 10 == 0; millis /= 10) {
    --width;
  }
  out += '.';
  const auto written = std::to_chars(digits, digits + sizeof digits, millis).ptr - digits;
  out.append(static_cast<size_t>(width - written), '0');
  out.append(digits, static_cast<size_t>(written));
}

// A range query's success body, written out directly: the JSON tree costs an allocation or more
// per point, an eighth of a 200-series, 721-step query. The same bytes as Success() with Metric
// and Point would give (sample values are FormatFloatShortest's digits, NaN or +/-Inf, which
// need no escaping).
std::string MatrixBody(const rules::Matrix& matrix) {
  std::string body = R"({"status":"success","data":{"resultType":"matrix","result":[)";
  for (size_t i = 0; i < matrix.size(); ++i) {
    body += i == 0 ? R"({"metric":)" : R"(,{"metric":)";
    body += Metric(matrix[i].labels).dump();
    body += R"(,"values":[)";
    const std::vector<rules::Sample>& samples = matrix[i].samples;
    for (size_t j = 0; j < samples.size(); ++j) {
      body += j == 0 ? "[" : ",[";
      AppendTimestamp(body, samples[j].t_ms);
      body += ",\"";
      body += rules::FormatFloatShortest(samples[j].v);
      body += "\"]";
    }
    body += "]}";
  }
  body += "]}}";
  return body;
}

const std::string* Param(const ApiRequest& request, const char* name) {
  auto it = request.params.find(name);
  return it == request.params.end() ? nullptr : &it->second;
}

// Prometheus's parseTime: unix seconds (a float), else RFC 3339 with optional fraction and zone.
std::optional<int64_t> ParseTime(const std::string& text) {
  double seconds = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(seconds)) {
    return static_cast<int64_t>(std::llround(seconds * 1000));
  }
  std::tm tm = {};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  // timegm would carry month 13 into the next year; Go's parser refuses it.
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 59) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    int64_t scale = 100;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      ms += (text[i] - '0') * scale;
      scale /= 10;
    }
  }
  const std::string zone = text.substr(i);
  if (zone == "Z" || zone == "z") {
    return ms;
  }
  int hours = 0;
  int minutes = 0;
  if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') &&
      std::sscanf(zone.c_str() + 1, "%2d:%2d", &hours, &minutes) == 2) {
    const int64_t offset = (hours * 60LL + minutes) * 60'000;
    return zone[0] == '+' ? ms - offset : ms + offset;
  }
  return std::nullopt;
}

// Prometheus's parseDuration: float seconds, else a duration like "1m30s".
std::optional<int64_t> ParseDurationMs(const std::string& text) {
  double seconds = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(seconds)) {
    return static_cast<int64_t>(std::llround(seconds * 1000));
  }
  auto duration = ParsePromDuration(text);
  if (!duration) {
    return std::nullopt;
  }
  return duration->count();
}

// Fails every read once the query's time is up, so the evaluator stops at its next read.
class DeadlineSource final : public SampleSource {
 public:
  DeadlineSource(const SampleSource& base, SteadyClock::time_point deadline)
      : base_(base), deadline_(deadline) {}

  Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers, int64_t from_ms,
                                     int64_t to_ms) const override {
    if (auto late = Check(); !late) {
      return Fail(late.error());
    }
    return base_.Select(matchers, from_ms, to_ms);
  }
  Result<std::vector<SeriesAggregate>> SelectAggregate(const std::vector<LabelMatcher>& matchers,
                                                       int64_t from_ms, int64_t to_ms,
                                                       RangeAggregate aggregate,
                                                       double q) const override {
    if (auto late = Check(); !late) {
      return Fail(late.error());
    }
    return base_.SelectAggregate(matchers, from_ms, to_ms, aggregate, q);
  }
  // Checked once per call: a range query asks for its steps a bounded chunk at a time.
  Result<std::vector<SeriesSteps>> SelectAggregateSteps(const std::vector<LabelMatcher>& matchers,
                                                        int64_t first_to_ms, int64_t last_to_ms,
                                                        int64_t step_ms, int64_t range_ms,
                                                        RangeAggregate aggregate,
                                                        double q) const override {
    if (auto late = Check(); !late) {
      return Fail(late.error());
    }
    return base_.SelectAggregateSteps(matchers, first_to_ms, last_to_ms, step_ms, range_ms,
                                      aggregate, q);
  }
  bool timed_out() const { return timed_out_ || SteadyClock::now() >= deadline_; }

 private:
  Status Check() const {
    if (SteadyClock::now() >= deadline_) {
      timed_out_ = true;
      return Fail(Error::Unavailable("query timed out in expression evaluation"));
    }
    return {};
  }
  const SampleSource& base_;
  const SteadyClock::time_point deadline_;
  mutable bool timed_out_ = false;
};

ApiAnswer EvaluationError(const DeadlineSource& source, const Error& error) {
  if (source.timed_out()) {
    return ErrorAnswer(ErrorType::kTimeout, "query timed out in expression evaluation");
  }
  if (error.code == Error::Code::kParse || error.code == Error::Code::kInvalidArgument) {
    return ErrorAnswer(ErrorType::kBadData, error.ToString());
  }
  return ErrorAnswer(ErrorType::kExecution, error.ToString());
}

std::optional<size_t> ParseLimit(const ApiRequest& request) {
  const std::string* text = Param(request, "limit");
  if (text == nullptr || text->empty()) {
    return size_t{0};
  }
  size_t limit = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
  if (ec != std::errc() || ptr != text->data() + text->size()) {
    return std::nullopt;
  }
  return limit;
}

}  // namespace

QueryApi::QueryApi(const SampleSource& source, const SeriesIndex& index, const Clock& clock,
                   QueryApiOptions options)
    : source_(source), index_(index), clock_(clock), options_(std::move(options)) {}

ApiAnswer QueryApi::Handle(const ApiRequest& request) {
  if (request.path == "/api/v1/status/buildinfo") {
    return BuildInfo();
  }
  Millis timeout = options_.timeout;
  if (const std::string* text = Param(request, "timeout"); text != nullptr && !text->empty()) {
    auto ms = ParseDurationMs(*text);
    if (!ms || *ms <= 0) {
      return ErrorAnswer(ErrorType::kBadData, "invalid parameter \"timeout\": cannot parse \"" +
                                                  *text + "\" to a valid duration");
    }
    timeout = std::min(timeout, Millis(*ms));
  }
  const Deadline deadline = SteadyClock::now() + timeout;
  {
    // The concurrency limit: a query waits for a slot within its own timeout.
    std::unique_lock lock(mu_);
    if (!slot_free_.wait_until(lock, deadline,
                               [this] { return running_ < options_.max_concurrency; })) {
      return ErrorAnswer(ErrorType::kTimeout, "query timed out in query queue");
    }
    ++running_;
  }
  ApiAnswer answer = Dispatch(request, deadline);
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  slot_free_.notify_one();
  return answer;
}

ApiAnswer QueryApi::Dispatch(const ApiRequest& request, Deadline deadline) {
  const std::string& path = request.path;
  if (path == "/api/v1/query") {
    return InstantQuery(request, deadline);
  }
  if (path == "/api/v1/query_range") {
    return RangeQuery(request, deadline);
  }
  if (path == "/api/v1/series") {
    return Series(request, deadline);
  }
  if (path == "/api/v1/labels") {
    return Labels(request, nullptr, deadline);
  }
  if (path == "/api/v1/metadata") {
    return Metadata(request, deadline);
  }
  const std::string prefix = "/api/v1/label/";
  const std::string suffix = "/values";
  if (path.rfind(prefix, 0) == 0 && path.size() > prefix.size() + suffix.size() &&
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string name =
        path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    return Labels(request, &name, deadline);
  }
  return {404,
          json{{"status", "error"}, {"errorType", "not_found"}, {"error", "not found"}}.dump()};
}

ApiAnswer QueryApi::InstantQuery(const ApiRequest& request, Deadline deadline) {
  const std::string* text = Param(request, "query");
  auto query = rules::Query::Parse(text == nullptr ? "" : *text);
  if (!query) {
    return ErrorAnswer(ErrorType::kBadData, query.error().ToString());
  }
  int64_t at_ms = clock_.NowUnixMillis();
  if (const std::string* time = Param(request, "time"); time != nullptr && !time->empty()) {
    auto parsed = ParseTime(*time);
    if (!parsed) {
      return ErrorAnswer(ErrorType::kBadData, "invalid parameter \"time\": cannot parse \"" +
                                                  *time + "\" to a valid timestamp");
    }
    at_ms = *parsed;
  }
  DeadlineSource source(source_, deadline);
  auto value = query->Evaluate(source, at_ms);
  if (!value) {
    return EvaluationError(source, value.error());
  }
  json data;
  json result = json::array();
  if (const auto* vector = std::get_if<rules::Vector>(&*value)) {
    if (vector->size() > options_.max_series) {
      return ErrorAnswer(
          ErrorType::kExecution,
          "query returned more than " + std::to_string(options_.max_series) + " series");
    }
    data["resultType"] = "vector";
    for (const rules::VectorSample& sample : *vector) {
      result.push_back({{"metric", Metric(sample.labels)}, {"value", Point(at_ms, sample.value)}});
    }
  } else if (const auto* matrix = std::get_if<rules::Matrix>(&*value)) {
    if (matrix->size() > options_.max_series) {
      return ErrorAnswer(
          ErrorType::kExecution,
          "query returned more than " + std::to_string(options_.max_series) + " series");
    }
    data["resultType"] = "matrix";
    for (const rules::Series& series : *matrix) {
      json values = json::array();
      for (const rules::Sample& sample : series.samples) {
        values.push_back(Point(sample.t_ms, sample.v));
      }
      result.push_back({{"metric", Metric(series.labels)}, {"values", std::move(values)}});
    }
  } else if (const auto* scalar = std::get_if<rules::Scalar>(&*value)) {
    data["resultType"] = "scalar";
    result = Point(at_ms, scalar->value);
  } else if (const auto* string = std::get_if<rules::String>(&*value)) {
    data["resultType"] = "string";
    result = json::array({Timestamp(at_ms), string->value});
  }
  data["result"] = std::move(result);
  return Success(std::move(data));
}

ApiAnswer QueryApi::RangeQuery(const ApiRequest& request, Deadline deadline) {
  int64_t range[2] = {0, 0};
  const char* names[2] = {"start", "end"};
  for (int i = 0; i < 2; ++i) {
    const std::string* text = Param(request, names[i]);
    auto parsed = text == nullptr ? std::nullopt : ParseTime(*text);
    if (!parsed) {
      return ErrorAnswer(ErrorType::kBadData,
                         std::string("invalid parameter \"") + names[i] + "\": cannot parse \"" +
                             (text == nullptr ? "" : *text) + "\" to a valid timestamp");
    }
    range[i] = *parsed;
  }
  if (range[1] < range[0]) {
    return ErrorAnswer(ErrorType::kBadData,
                       "invalid parameter \"end\": end timestamp must not be before start time");
  }
  const std::string* step_text = Param(request, "step");
  auto step = step_text == nullptr ? std::nullopt : ParseDurationMs(*step_text);
  if (!step) {
    return ErrorAnswer(ErrorType::kBadData, "invalid parameter \"step\": cannot parse \"" +
                                                (step_text == nullptr ? "" : *step_text) +
                                                "\" to a valid duration");
  }
  if (*step <= 0) {
    return ErrorAnswer(ErrorType::kBadData,
                       "invalid parameter \"step\": zero or negative query resolution step "
                       "widths are not accepted. Try a positive integer");
  }
  // Prometheus's own bound, in its words: (end - start) / step above 11,000.
  if ((range[1] - range[0]) / *step > 11'000) {
    return ErrorAnswer(ErrorType::kBadData,
                       "exceeded maximum resolution of 11,000 points per timeseries. Try "
                       "decreasing the query resolution (?step=XX)");
  }
  const std::string* text = Param(request, "query");
  auto query = rules::Query::Parse(text == nullptr ? "" : *text);
  if (!query) {
    return ErrorAnswer(ErrorType::kBadData, query.error().ToString());
  }
  DeadlineSource source(source_, deadline);
  auto matrix = query->EvaluateRange(source, range[0], range[1], *step, options_.max_series);
  if (!matrix) {
    if (!source.timed_out() && matrix.error().code == Error::Code::kUnavailable) {
      return ErrorAnswer(ErrorType::kExecution, matrix.error().message);
    }
    return EvaluationError(source, matrix.error());
  }
  return {200, MatrixBody(*matrix)};
}

namespace {

// The label sets of every series matching any of the request's match[] selectors (all series
// without one, when `required` is false) with a sample in [start, end] (all of history and now
// by default, as Prometheus's), as the index lists them: the counter families included, from
// the rollups and kept totals for long ranges, never raw samples for a whole range.
struct SeriesSet {
  std::set<modelpulse::Labels> labels;
  size_t limit = 0;  // the request's `limit`: at most this many results, 0 for all
  std::optional<ApiAnswer> error;
};

ApiAnswer TimedOut() {
  return ErrorAnswer(ErrorType::kTimeout, "query timed out in expression evaluation");
}

// `max_series` bounds the label sets collected (QueryApiOptions::max_discovery_series), for every
// discovery endpoint alike: even a label endpoint's short answer is built from all of them.
SeriesSet MatchingSeries(const ApiRequest& request, const SeriesIndex& index, const Clock& clock,
                         SteadyClock::time_point deadline, bool required, size_t max_series) {
  SeriesSet out;
  auto limit = ParseLimit(request);
  if (!limit) {
    out.error = ErrorAnswer(ErrorType::kBadData, "invalid parameter \"limit\"");
    return out;
  }
  out.limit = *limit;
  int64_t range[2] = {0, clock.NowUnixMillis()};
  const char* names[2] = {"start", "end"};
  for (int i = 0; i < 2; ++i) {
    const std::string* text = Param(request, names[i]);
    if (text == nullptr || text->empty()) {
      continue;
    }
    auto parsed = ParseTime(*text);
    if (!parsed) {
      out.error = ErrorAnswer(ErrorType::kBadData, std::string("invalid parameter \"") + names[i] +
                                                       "\": cannot parse \"" + *text +
                                                       "\" to a valid timestamp");
      return out;
    }
    range[i] = *parsed;
  }
  std::vector<std::string> texts;
  auto [begin, end] = request.params.equal_range("match[]");
  for (auto it = begin; it != end; ++it) {
    texts.push_back(it->second);
  }
  if (texts.empty()) {
    if (required) {
      out.error = ErrorAnswer(ErrorType::kBadData, "no match[] parameter provided");
      return out;
    }
    texts.push_back("{__name__=~\".+\"}");
  }
  std::vector<rules::Selector> selectors;
  for (const std::string& text : texts) {
    auto selector = rules::Selector::Parse(text);
    if (!selector) {
      out.error = ErrorAnswer(ErrorType::kBadData, selector.error().ToString());
      return out;
    }
    selectors.push_back(std::move(*selector));
  }
  for (const rules::Selector& selector : selectors) {
    if (SteadyClock::now() >= deadline) {
      out.error = TimedOut();
      return out;
    }
    auto found = index.SeriesIn(selector.matchers(), range[0], range[1]);
    if (!found) {
      out.error = ErrorAnswer(ErrorType::kExecution, found.error().ToString());
      return out;
    }
    if (SteadyClock::now() >= deadline) {
      out.error = TimedOut();
      return out;
    }
    for (modelpulse::Labels& labels : *found) {
      if (selector.Matches(labels)) {
        out.labels.insert(std::move(labels));
      }
    }
    // With a `limit`, the first `limit` series in order are answered, so more may be found.
    if (out.labels.size() > max_series && (out.limit == 0 || out.limit > max_series)) {
      out.error = ErrorAnswer(ErrorType::kExecution,
                              "more than " + std::to_string(max_series) +
                                  " series match; narrow the match[] selectors or the time range");
      return out;
    }
  }
  return out;
}

// Metadata as Prometheus keeps it from a scrape of /metrics: by family name (a histogram's
// _bucket, _sum and _count series under the family's), with the exposition's type and HELP.
struct FamilyMetadata {
  std::string family;
  const char* type = "gauge";
  std::string help;
};

const std::map<std::string, FamilyMetadata, std::less<>>& KnownMetadata() {
  static const auto* known = [] {
    auto* out = new std::map<std::string, FamilyMetadata, std::less<>>();
    for (const ProbeSeriesInfo& info : ProbeSeriesNames()) {
      (*out)[info.name] = {info.name, "gauge", info.help};
    }
    const auto families = ProbeCounterFamilies();
    for (const ProbeCounterSlot& slot : ProbeCounterSlots()) {
      const ProbeCounterFamily& family = families[slot.family];
      const bool histogram = family.type == ProbeCounterFamily::Type::kHistogram;
      (*out)[slot.name] = {family.name, histogram ? "histogram" : "counter", family.help};
    }
    return out;
  }();
  return *known;
}

}  // namespace

ApiAnswer QueryApi::Series(const ApiRequest& request, Deadline deadline) {
  SeriesSet set =
      MatchingSeries(request, index_, clock_, deadline, true, options_.max_discovery_series);
  if (set.error) {
    return *set.error;
  }
  json result = json::array();
  for (const modelpulse::Labels& labels : set.labels) {
    if (set.limit != 0 && result.size() >= set.limit) {
      break;
    }
    result.push_back(Metric(labels));
  }
  return Success(std::move(result));
}

ApiAnswer QueryApi::Labels(const ApiRequest& request, const std::string* values_of,
                           Deadline deadline) {
  SeriesSet set =
      MatchingSeries(request, index_, clock_, deadline, false, options_.max_discovery_series);
  if (set.error) {
    return *set.error;
  }
  std::set<std::string> names;
  for (const modelpulse::Labels& labels : set.labels) {
    for (const auto& [name, value] : labels) {
      if (values_of == nullptr) {
        names.insert(name);
      } else if (name == *values_of) {
        names.insert(value);
      }
    }
  }
  json result = json::array();
  for (const std::string& name : names) {
    if (set.limit != 0 && result.size() >= set.limit) {
      break;
    }
    result.push_back(name);
  }
  return Success(std::move(result));
}

// In Prometheus's shape: the probe series, counters and histograms with the type and help of
// their /metrics families; any other stored metric (a recording rule's output) as a gauge
// without help or unit.
ApiAnswer QueryApi::Metadata(const ApiRequest& request, Deadline deadline) {
  ApiRequest all = request;
  all.params.erase("match[]");
  if (const std::string* metric = Param(request, "metric"); metric != nullptr) {
    // A histogram is asked for by its family name, which no series carries.
    std::string name = *metric;
    for (const auto& [series, known] : KnownMetadata()) {
      if (known.family == *metric && std::string_view(known.type) == "histogram") {
        name = *metric + "_count";
        break;
      }
    }
    all.params.emplace("match[]", "{__name__=" + json(name).dump() + "}");
  }
  SeriesSet set =
      MatchingSeries(all, index_, clock_, deadline, false, options_.max_discovery_series);
  if (set.error) {
    return *set.error;
  }
  const auto& known = KnownMetadata();
  json data = json::object();
  for (const modelpulse::Labels& labels : set.labels) {
    auto name = labels.find("__name__");
    if (name == labels.end()) {
      continue;
    }
    FamilyMetadata family{name->second, "gauge", ""};
    if (auto it = known.find(name->second); it != known.end()) {
      family = it->second;
    }
    if (data.contains(family.family)) {
      continue;
    }
    if (set.limit != 0 && data.size() >= set.limit) {
      break;
    }
    data[family.family] =
        json::array({{{"type", family.type}, {"help", family.help}, {"unit", ""}}});
  }
  return Success(std::move(data));
}

ApiAnswer QueryApi::BuildInfo() const {
  return Success({{"version", options_.version},
                  {"revision", ""},
                  {"branch", ""},
                  {"buildUser", ""},
                  {"buildDate", ""},
                  {"goVersion", ""}});
}

}  // namespace modelpulse::daemon
