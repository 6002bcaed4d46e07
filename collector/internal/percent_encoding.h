#ifndef MODELPULSE_COLLECTOR_INTERNAL_PERCENT_ENCODING_H_
#define MODELPULSE_COLLECTOR_INTERNAL_PERCENT_ENCODING_H_

// The collector's one RFC 3986 percent-encoder, for URL path segments, query values and SigV4's
// canonical request. Private to the collector. The simulator keeps its own on purpose
// (DESIGN.md §2): it checks the collector's signatures, and a shared encoder would pass its own
// bugs.

#include <string>
#include <string_view>

namespace modelpulse::collector {

// Every byte except the unreserved characters A-Z a-z 0-9 - . _ ~ and those in `keep` (such as
// "/" for a whole path, "@" for Vertex's versioned model ids) becomes %XX, upper-case hex.
std::string PercentEncode(std::string_view text, std::string_view keep = {});

// Decodes each %XX; a '%' without two hex digits after it stays as it is.
std::string PercentDecode(std::string_view text);

}  // namespace modelpulse::collector

#endif  // MODELPULSE_COLLECTOR_INTERNAL_PERCENT_ENCODING_H_
