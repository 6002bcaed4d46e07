#ifndef MODELPULSE_COMMON_GO_QUOTE_H_
#define MODELPULSE_COMMON_GO_QUOTE_H_

// Go's strconv.Quote, which Prometheus and Alertmanager use wherever they print a label value,
// a matcher or a group key (labels.Labels.String, %q): what they print, modelpulse must print
// byte for byte, or fingerprints, group keys and promtool's messages differ.

#include <string>
#include <string_view>

namespace modelpulse {

// `text` in double quotes with Go's escapes: \" \\ \a \b \f \n \r \t \v, other ASCII control
// bytes and DEL as \xNN. Bytes from 0x80 pass through (Go keeps valid UTF-8 as it is).
std::string GoQuote(std::string_view text);

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_GO_QUOTE_H_
