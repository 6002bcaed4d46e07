#include "simulator/internal/endpoint.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace modelpulse::simulator {
namespace {

Micros Millis(double ms) { return Micros(static_cast<int64_t>(std::llround(ms * 1000.0))); }

}  // namespace

Endpoint::Endpoint(EndpointSpec spec, std::unique_ptr<Protocol> protocol, uint64_t seed,
                   TimePoint start)
    : spec_(std::move(spec)),
      protocol_(std::move(protocol)),
      start_(start),
      rng_(seed),
      id_rng_(std::random_device{}()) {
  if (spec_.ratelimit)
    limiter_.emplace(*spec_.ratelimit, start_);
}

const Phase& Endpoint::PhaseAt(TimePoint now) const {
  Micros elapsed = std::chrono::duration_cast<Micros>(now - start_);
  for (size_t i = 0; i + 1 < spec_.phases.size(); ++i) {
    const Micros length = spec_.phases[i].duration.value_or(Micros(0));
    if (elapsed < length)
      return spec_.phases[i];
    elapsed -= length;
  }
  return spec_.phases.back();
}

std::string Endpoint::RandomHex(size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(digits, '0');
  for (auto& c : out)
    c = kHex[id_rng_() % 16];
  return out;
}

std::string Endpoint::RandomAlnum(size_t chars) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(chars, 'A');
  for (auto& c : out)
    c = kAlnum[id_rng_() % (sizeof(kAlnum) - 1)];
  return out;
}

Plan Endpoint::Decide(const Call& call, TimePoint arrival) {
  std::lock_guard lock(mu_);
  const Phase& phase = PhaseAt(arrival);
  Plan plan;
  plan.phase = phase.name;
  plan.request_id = "req_" + RandomHex(32);
  plan.completion_id = "chatcmpl-" + RandomAlnum(29);
  plan.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  plan.model = spec_.model.empty() ? call.model : spec_.model;
  plan.input_tokens = call.input_tokens;

  // Every request consumes the same draws whatever its fate, so one request's outcome does not
  // shift the latencies of all those after it.
  plan.first_token = Millis(Draw(phase.first_token_ms.value_or(spec_.first_token_ms), rng_));
  plan.inter_token = Millis(Draw(phase.inter_token_ms.value_or(spec_.inter_token_ms), rng_));
  int64_t tokens = std::max<int64_t>(
      1, std::llround(Draw(phase.output_tokens.value_or(spec_.output_tokens), rng_)));
  const double error_draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  if (call.max_tokens && *call.max_tokens >= 0 && tokens > *call.max_tokens) {
    tokens = std::max<int64_t>(1, *call.max_tokens);
    plan.cut_by_max_tokens = true;
  }
  plan.output_tokens = tokens;

  if (call.auth == AuthState::kMissing || call.auth == AuthState::kWrong) {
    plan.behaviour = Behaviour::kUnauthorized401;
    if (limiter_)
      plan.ratelimit = limiter_->Peek(arrival);
    return plan;
  }

  if (limiter_) {
    const auto decision = limiter_->Admit(arrival, call.input_tokens + tokens);
    plan.ratelimit = decision.after;
    if (decision.verdict != RateLimiter::Verdict::kAdmitted) {
      plan.behaviour = Behaviour::kRateLimit;
      plan.limited_resource =
          decision.verdict == RateLimiter::Verdict::kTokensExhausted ? "tokens" : "requests";
      plan.retry_after = decision.retry_after;
      return plan;
    }
  }

  double cumulative = 0;
  for (const auto& rule : phase.errors) {
    cumulative += rule.probability;
    if (error_draw < cumulative) {
      plan.behaviour = rule.kind;
      break;
    }
  }
  if (plan.behaviour == Behaviour::kEmptyCompletion)
    plan.output_tokens = 0;
  if (plan.behaviour == Behaviour::kRateLimit) {
    // An injected throttle looks like a dry request budget.
    plan.limited_resource = "requests";
    plan.retry_after = std::chrono::seconds(1);
    BudgetState dry = plan.ratelimit.requests.value_or(BudgetState{500, 0, plan.retry_after});
    dry.remaining = 0;
    dry.reset = std::max(dry.reset, plan.retry_after);
    plan.ratelimit.requests = dry;
  }
  return plan;
}

}  // namespace modelpulse::simulator
