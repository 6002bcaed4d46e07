#include "common/go_quote.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse {
namespace {

TEST_CASE("GoQuote escapes as Go's strconv.Quote does") {
  // Expected texts as Go 1.19's fmt.Println(strconv.Quote(s)) prints them.
  CHECK(GoQuote("") == R"("")");
  CHECK(GoQuote("gpt-4o-mini") == R"("gpt-4o-mini")");
  CHECK(GoQuote(R"(a"b\c)") == R"("a\"b\\c")");
  CHECK(GoQuote("\a\b\f\n\r\t\v") == R"("\a\b\f\n\r\t\v")");
  CHECK(GoQuote(std::string("\x00\x01\x1f\x7f", 4)) == R"("\x00\x01\x1f\x7f")");
  CHECK(GoQuote("☺ é") == "\"☺ é\"");  // printable UTF-8 stays as it is
  CHECK(GoQuote("{job=\"x\"}") == R"("{job=\"x\"}")");
}

}  // namespace
}  // namespace modelpulse
