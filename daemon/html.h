#ifndef MODELPULSE_DAEMON_HTML_H_
#define MODELPULSE_DAEMON_HTML_H_

// What the daemon's HTML pages (the report's --format=html, the status page) share.

#include <string>
#include <string_view>

namespace modelpulse::daemon {

// `text` safe inside an HTML element or a double-quoted attribute: & < > " escaped.
inline std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace modelpulse::daemon

#endif  // MODELPULSE_DAEMON_HTML_H_
