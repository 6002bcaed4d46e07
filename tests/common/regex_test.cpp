#include "common/regex.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse {

TEST_CASE("Regex matches whole texts and searches inside them") {
  auto regex = Regex::Compile("gpt-4o(-mini)?");
  REQUIRE(regex.has_value());
  CHECK(regex->FullMatch("gpt-4o"));
  CHECK(regex->FullMatch("gpt-4o-mini"));
  CHECK_FALSE(regex->FullMatch("openai/gpt-4o"));
  CHECK(regex->Search("openai/gpt-4o-mini today"));
  CHECK_FALSE(regex->Search("claude"));
  CHECK(regex->pattern() == "gpt-4o(-mini)?");
}

TEST_CASE("Regex case-insensitive option and inline flags") {
  auto insensitive = Regex::Compile("ok", {.case_insensitive = true});
  REQUIRE(insensitive.has_value());
  CHECK(insensitive->FullMatch("OK"));
  auto inline_flag = Regex::Compile("(?i)ok");
  REQUIRE(inline_flag.has_value());
  CHECK(inline_flag->FullMatch("Ok"));
  auto sensitive = Regex::Compile("ok");
  REQUIRE(sensitive.has_value());
  CHECK_FALSE(sensitive->FullMatch("OK"));
}

TEST_CASE("Regex refuses Perl-only constructs and bad syntax with RE2's reason") {
  for (const char* bad : {"(?=a)b", "a(", "(a)\\1", "a**"}) {
    CAPTURE(bad);
    auto regex = Regex::Compile(bad);
    REQUIRE_FALSE(regex.has_value());
    CHECK(regex.error().message.find("invalid regular expression") != std::string::npos);
    CHECK(regex.error().message.find(bad) != std::string::npos);
  }
}

TEST_CASE("Regex runs backtracking bombs on long texts in linear time without recursion") {
  // std::regex recursed once per character here and overflowed the stack at about 16 KiB.
  const std::string answer = std::string(1 << 20, 'x') + "\nOK";
  auto dot_or_newline = Regex::Compile("(.|\n)*OK");
  REQUIRE(dot_or_newline.has_value());
  CHECK(dot_or_newline->Search(answer));
  auto nested = Regex::Compile("(a+)+$");
  REQUIRE(nested.has_value());
  CHECK_FALSE(nested->FullMatch(std::string(1 << 16, 'a') + "b"));
  CHECK(nested->FullMatch(std::string(1 << 16, 'a')));
}

TEST_CASE("Regex program memory budget refuses patterns that would take gigabytes") {
  auto huge = Regex::Compile("((a{1000}){1000}){1000}");
  REQUIRE_FALSE(huge.has_value());
  auto small_budget = Regex::Compile("[a-z]{500}", {.max_program_memory = 4096});
  CHECK_FALSE(small_budget.has_value());
  auto fits = Regex::Compile("[a-z]{50}");
  CHECK(fits.has_value());
}

TEST_CASE("Regex capture groups of whole-text matches") {
  auto regex = Regex::Compile("(?P<region>[a-z]+-[a-z]+)-(\\d+)(x)?");
  REQUIRE(regex.has_value());
  CHECK(regex->GroupCount() == 3);
  CHECK(regex->GroupIndex("region") == 1);
  CHECK_FALSE(regex->GroupIndex("zone").has_value());
  auto groups = regex->FullMatchGroups("us-east-1");
  REQUIRE(groups.has_value());
  REQUIRE(groups->size() == 4);
  CHECK((*groups)[0] == "us-east-1");
  CHECK((*groups)[1] == "us-east");
  CHECK((*groups)[2] == "1");
  CHECK((*groups)[3].empty());
  CHECK_FALSE(regex->FullMatchGroups("us-east-1 ").has_value());
}

TEST_CASE("Regex Expand follows Go's regexp.Expand") {
  auto regex = Regex::Compile("(?P<region>[a-z]+-[a-z]+)-(\\d+)(x)?");
  REQUIRE(regex.has_value());
  auto groups = regex->FullMatchGroups("us-east-1");
  REQUIRE(groups.has_value());
  CHECK(regex->Expand("$region/${2}", *groups) == "us-east/1");
  CHECK(regex->Expand("${region}x $1x $$1 [$3] $zone", *groups) == "us-eastx  $1 [] ");
  // Malformed references keep their '$'; a leading zero makes a name, not a number.
  CHECK(regex->Expand("${1 $ $- $01", *groups) == "${1 $ $- ");
}

TEST_CASE("Regex ReplaceAll follows Go's ReplaceAllString, bounded in size") {
  auto word = Regex::Compile("(\\w+)@(\\w+)");
  REQUIRE(word.has_value());
  CHECK(*word->ReplaceAll("a@b, c@d", "$2.$1", 100) == "b.a, d.c");
  auto empty = Regex::Compile("x*");
  REQUIRE(empty.has_value());
  CHECK(*empty->ReplaceAll("abc", "-", 100) == "-a-b-c-");
  CHECK(*empty->ReplaceAll("xxa", "-", 100) == "-a-");
  auto anchored = Regex::Compile("^a");
  REQUIRE(anchored.has_value());
  CHECK(*anchored->ReplaceAll("aaa", "b", 100) == "baa");
  auto any = Regex::Compile("");
  REQUIRE(any.has_value());
  CHECK(*any->ReplaceAll("é", ".", 100) == ".é.");  // advances a whole UTF-8 character
  auto too_long = any->ReplaceAll(std::string(1000, 'a'), "0123456789", 4096);
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().message.find("longer than 4096 bytes") != std::string::npos);
}

}  // namespace modelpulse
