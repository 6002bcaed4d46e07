#include <doctest/doctest.h>

#include "alerting/internal/matcher.h"

namespace modelpulse::alerting {
namespace {

TEST_CASE("matchers parse Alertmanager's syntax and match anchored") {
  auto m = ParseMatchers(R"(severity=~"warning|critical")");
  REQUIRE(m);
  REQUIRE(m->size() == 1);
  CHECK(MatchAll(*m, {{"severity", "critical"}}));
  CHECK_FALSE(MatchAll(*m, {{"severity", "critical2"}}));
  CHECK_FALSE(MatchAll(*m, {}));

  auto several = ParseMatchers(R"({team="ml", env!=dev , model!~"gpt.*"})");
  REQUIRE(several);
  REQUIRE(several->size() == 3);
  CHECK(MatchAll(*several, {{"team", "ml"}, {"env", "prod"}, {"model", "claude"}}));
  CHECK_FALSE(MatchAll(*several, {{"team", "ml"}, {"env", "dev"}, {"model", "claude"}}));
  CHECK_FALSE(MatchAll(*several, {{"team", "ml"}, {"model", "gpt-4o"}}));
  // A missing label is the empty string.
  CHECK(MatchAll(*ParseMatchers("missing=\"\""), {}));
}

TEST_CASE("bad matchers are refused with a reason") {
  CHECK_FALSE(ParseMatchers(""));
  CHECK_FALSE(ParseMatchers("=x"));
  CHECK_FALSE(ParseMatchers("a~x"));
  CHECK_FALSE(ParseMatchers("a=\"unterminated"));
  auto bad_regex = ParseMatchers("a=~\"(\"");
  REQUIRE_FALSE(bad_regex);
  CHECK(bad_regex.error().message.find("regular expression") != std::string::npos);
}

TEST_CASE("matchers print sorted as Alertmanager's route key") {
  auto m = ParseMatchers(R"(severity=~"warning|critical",alertname="A\"B")");
  REQUIRE(m);
  CHECK(MatchersString(*m) == R"({alertname="A\"B",severity=~"warning|critical"})");
}

}  // namespace
}  // namespace modelpulse::alerting
