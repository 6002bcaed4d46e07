#ifndef MODELPULSE_COMMON_RESULT_H_
#define MODELPULSE_COMMON_RESULT_H_

#include <string>
#include <tl/expected.hpp>
#include <utility>

namespace modelpulse {

// An expected failure: bad input, an I/O problem, a peer that misbehaved. Broken invariants are
// not Errors; they abort. `location` is "file:line:column" for config and rule files, or an offset
// into an expression for PromQL, and is empty when there is nothing to point at.
struct Error {
  enum class Code { kInvalidArgument, kNotFound, kIo, kParse, kUnavailable, kInternal };

  Code code = Code::kInternal;
  std::string message;
  std::string location;

  static Error InvalidArgument(std::string msg, std::string where = {}) {
    return {Code::kInvalidArgument, std::move(msg), std::move(where)};
  }
  static Error NotFound(std::string msg) { return {Code::kNotFound, std::move(msg), {}}; }
  static Error Io(std::string msg) { return {Code::kIo, std::move(msg), {}}; }
  static Error Parse(std::string msg, std::string where = {}) {
    return {Code::kParse, std::move(msg), std::move(where)};
  }
  static Error Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg), {}}; }
  static Error Internal(std::string msg) { return {Code::kInternal, std::move(msg), {}}; }

  // "where: message", or just the message when there is no location.
  std::string ToString() const { return location.empty() ? message : location + ": " + message; }
};

// C++23's std::expected is a one-line change here.
template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> Fail(Error error) { return tl::unexpected<Error>(std::move(error)); }

}  // namespace modelpulse

#endif  // MODELPULSE_COMMON_RESULT_H_
