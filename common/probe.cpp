#include "common/probe.h"

namespace modelpulse {

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kThrottled:
      return "throttled";
    case Outcome::kQuotaExhausted:
      return "quota_exhausted";
    case Outcome::kOverloaded:
      return "overloaded";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kNetwork:
      return "network";
    case Outcome::kAuth:
      return "auth";
    case Outcome::kClientError:
      return "client_error";
    case Outcome::kServerError:
      return "server_error";
    case Outcome::kInvalidResponse:
      return "invalid_response";
    case Outcome::kContentMismatch:
      return "content_mismatch";
  }
  return "unknown";
}

std::optional<Outcome> OutcomeFromName(std::string_view name) {
  for (Outcome outcome : kAllOutcomes) {
    if (OutcomeName(outcome) == name) {
      return outcome;
    }
  }
  return std::nullopt;
}

}  // namespace modelpulse
