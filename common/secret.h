#ifndef MODELPULSE_COMMON_SECRET_H_
#define MODELPULSE_COMMON_SECRET_H_

#include <string>
#include <string_view>
#include <utility>

namespace modelpulse {

// A credential. It has no stream operator and no implicit conversion, so it cannot drift into a
// log line or an error message by accident; Reveal() is the single, greppable way to read it, used
// only where a request is signed or a header is set.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  bool empty() const { return value_.empty(); }
  const std::string& Reveal() const { return value_; }
  // Safe to print: says only whether a value is present.
  std::string_view Redacted() const { return value_.empty() ? "<unset>" : "<redacted>"; }

  friend bool operator==(const Secret&, const Secret&) = default;

 private:
  std::string value_;
};

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_SECRET_H_
