#include "daemon/probe_output.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace modelpulse::daemon {
namespace {

template <typename T>
nlohmann::json OrNull(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json RateLimitJson(const RateLimit& limit) {
  return {{"limit", OrNull(limit.limit)},
          {"remaining", OrNull(limit.remaining)},
          {"reset_seconds", OrNull(limit.reset_seconds)}};
}

std::string LabelOr(const ProbeResult& result, const char* name) {
  auto it = result.labels.find(name);
  return it == result.labels.end() ? std::string() : it->second;
}

std::string Seconds(const std::optional<double>& seconds) {
  return seconds ? fmt::format("{:8.1f} ms", *seconds * 1000) : std::string("       -");
}

std::string Headroom(const char* name, const RateLimit& limit) {
  if (!limit.limit && !limit.remaining) {
    return fmt::format("  {:<20}-\n", name);
  }
  std::string reset = limit.reset_seconds ? fmt::format(", resets in {:.3f}s", *limit.reset_seconds)
                                          : std::string();
  return fmt::format("  {:<20}{} of {} left{}\n", name,
                     limit.remaining ? fmt::format("{:g}", *limit.remaining) : "?",
                     limit.limit ? fmt::format("{:g}", *limit.limit) : "?", reset);
}

}  // namespace

std::string ProbeToJsonLine(const ProbeResult& r) {
  nlohmann::json line = {
      {"target", r.target},
      {"provider", LabelOr(r, "provider")},
      {"model", LabelOr(r, "model")},
      {"cloud", LabelOr(r, "cloud")},
      {"region", LabelOr(r, "region")},
      {"start_unix_ms", r.start_unix_ms},
      {"outcome", std::string(OutcomeName(r.outcome))},
      {"http_status", r.http_status == 0 ? nlohmann::json(nullptr) : nlohmann::json(r.http_status)},
      {"dns_seconds", OrNull(r.dns_seconds)},
      {"connect_seconds", OrNull(r.connect_seconds)},
      {"tls_seconds", OrNull(r.tls_seconds)},
      {"first_byte_seconds", OrNull(r.first_byte_seconds)},
      {"ttft_seconds", OrNull(r.ttft_seconds)},
      {"first_answer_token_seconds", OrNull(r.first_answer_token_seconds)},
      {"last_token_seconds", OrNull(r.last_token_seconds)},
      {"total_seconds", r.total_seconds},
      {"input_tokens", OrNull(r.input_tokens)},
      {"output_tokens", OrNull(r.output_tokens)},
      {"output_tokens_per_second", OrNull(r.output_tokens_per_second)},
      {"inter_token_latency_seconds", OrNull(r.inter_token_latency_seconds)},
      {"chunks", r.chunk_count},
      {"ratelimit", {{"requests", RateLimitJson(r.requests)}, {"tokens", RateLimitJson(r.tokens)}}},
      {"retry_after_seconds", OrNull(r.retry_after_seconds)},
      {"request_id", r.request_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.request_id)},
      {"error", r.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.error)},
  };
  // Provider error text may hold invalid UTF-8; replace rather than throw.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ProbeToText(const ProbeResult& r) {
  std::string out = fmt::format("{} ({} {} on {}, {})\n", r.target, LabelOr(r, "provider"),
                                LabelOr(r, "model"), LabelOr(r, "cloud"), LabelOr(r, "region"));
  out += fmt::format("  outcome             {}{}\n", OutcomeName(r.outcome),
                     r.http_status ? fmt::format(" (HTTP {})", r.http_status) : std::string());
  if (!r.error.empty()) {
    out += fmt::format("  error               {}\n", r.error);
  }
  out += fmt::format("  dns                 {}\n", Seconds(r.dns_seconds));
  out += fmt::format("  connect             {}\n", Seconds(r.connect_seconds));
  out += fmt::format("  tls                 {}\n", Seconds(r.tls_seconds));
  out += fmt::format("  first byte          {}\n", Seconds(r.first_byte_seconds));
  out += fmt::format("  first token         {}\n", Seconds(r.ttft_seconds));
  out += fmt::format("  first answer token  {}\n", Seconds(r.first_answer_token_seconds));
  out += fmt::format("  last token          {}\n", Seconds(r.last_token_seconds));
  out += fmt::format("  total               {}\n", Seconds(r.total_seconds));
  out += fmt::format("  tokens in/out       {} / {}\n",
                     r.input_tokens ? std::to_string(*r.input_tokens) : "-",
                     r.output_tokens ? std::to_string(*r.output_tokens) : "-");
  if (r.output_tokens_per_second) {
    out += fmt::format("  tokens per second   {:.1f}\n", *r.output_tokens_per_second);
  }
  out += Headroom("requests headroom", r.requests);
  out += Headroom("tokens headroom", r.tokens);
  if (r.retry_after_seconds) {
    out += fmt::format("  retry after         {:.3f}s\n", *r.retry_after_seconds);
  }
  if (!r.request_id.empty()) {
    out += fmt::format("  request id          {}\n", r.request_id);
  }
  return out;
}

int ExitCodeFor(Outcome outcome) {
  return outcome == Outcome::kOk ? 0 : 10 + static_cast<int>(outcome);
}

}  // namespace modelpulse::daemon
