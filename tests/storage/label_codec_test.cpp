#include "storage/internal/label_codec.h"

#include <doctest/doctest.h>

#include <string>

namespace modelpulse::storage {
namespace {

TEST_CASE("label encoding is canonical and round-trips any bytes") {
  const Labels labels = {{"b", "x=y,z\\"}, {"a", std::string("nul\0in", 6)}, {"", ""}};
  const std::string text = EncodeLabels(labels);
  CHECK(text == std::string("=,a=nul\\0in,b=x\\=y\\,z\\\\"));
  auto decoded = DecodeLabels(text);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == labels);
  CHECK(EncodeLabels({}).empty());
  CHECK(DecodeLabels("")->empty());
  CHECK(EncodeLabels({{"k", "v"}, {"j", "w"}}) == "j=w,k=v");
}

TEST_CASE("malformed label text is a parse error, not a crash") {
  for (const char* bad : {"novalue", "a=b,", "a=b=c", "a=b\\", "a=\\q", "a=1,a=2", ","}) {
    CAPTURE(bad);
    auto decoded = DecodeLabels(bad);
    REQUIRE_FALSE(decoded.has_value());
    CHECK(decoded.error().code == Error::Code::kParse);
  }
}

}  // namespace
}  // namespace modelpulse::storage
