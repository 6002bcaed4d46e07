// Go's number semantics; see go_compat.h.
#include "rules/internal/go_compat.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace modelpulse::rules {

namespace {

// Shortest round-trip digits and decimal exponent: v = 0.d1d2d3... * 10^(point).
struct Digits {
  std::string digits;  // no leading/trailing zeros, "0" for zero
  int exponent = 0;    // v = d.ddd * 10^exponent
  bool negative = false;
};

Digits ShortestDigits(double v) {
  Digits out;
  out.negative = std::signbit(v);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), std::fabs(v), std::chars_format::scientific);
  std::string s(buf, res.ptr);  // d.ddde±xx
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  out.exponent = std::stoi(s.substr(e + 1));
  mant.erase(std::remove(mant.begin(), mant.end(), '.'), mant.end());
  while (mant.size() > 1 && mant.back() == '0') {
    mant.pop_back();
  }
  out.digits = mant;
  return out;
}

std::string ExponentText(int x) {
  std::string s = x < 0 ? "-" : "+";
  int a = std::abs(x);
  if (a < 10) {
    s += "0";
  }
  return s + std::to_string(a);
}

std::string SpecialFloat(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  return v > 0 ? "+Inf" : "-Inf";
}

std::string FormatC(const char* format, double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  // Sized from a first pass: printf's width and precision reach 1 MiB in templates, and a fixed
  // buffer cut "%.600f" of 1e300 short.
  const int size = std::snprintf(nullptr, 0, format, v);
  if (size <= 0) {
    return {};
  }
  std::string out(static_cast<size_t>(size) + 1, '\0');
  std::snprintf(out.data(), out.size(), format, v);
  out.pop_back();
  return out;
}

}  // namespace

std::string FormatGoFloat(double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  if (v == 0) {
    return std::signbit(v) ? "-0" : "0";
  }
  Digits d = ShortestDigits(v);
  std::string out = d.negative ? "-" : "";
  const int x = d.exponent;
  if (x < -4 || x >= 6) {
    out += d.digits.substr(0, 1);
    if (d.digits.size() > 1) {
      out += "." + d.digits.substr(1);
    }
    return out + "e" + ExponentText(x);
  }
  if (x < 0) {
    return out + "0." + std::string(static_cast<size_t>(-x - 1), '0') + d.digits;
  }
  const size_t int_len = static_cast<size_t>(x) + 1;
  if (d.digits.size() <= int_len) {
    return out + d.digits + std::string(int_len - d.digits.size(), '0');
  }
  return out + d.digits.substr(0, int_len) + "." + d.digits.substr(int_len);
}

std::string FormatGoFloatE(double v) {
  if (!std::isfinite(v)) {
    return SpecialFloat(v);
  }
  Digits d = v == 0 ? Digits{"0", 0, std::signbit(v)} : ShortestDigits(v);
  std::string out = d.negative ? "-" : "";
  out += d.digits.substr(0, 1);
  if (d.digits.size() > 1) {
    out += "." + d.digits.substr(1);
  }
  return out + "E" + ExponentText(d.exponent);
}

std::string FormatGo4g(double v) { return FormatC("%.4g", v); }

std::string FormatGoPrintfFloat(const char* c_format, double v) { return FormatC(c_format, v); }

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

int64_t GoFloatToInt64(double v) {
  constexpr double kTwoTo63 = 9223372036854775808.0;
  if (!(v >= -kTwoTo63 && v < kTwoTo63)) {  // NaN fails both
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(v);
}

double GoMax(double x, double y) {
  if (std::isinf(x) && x > 0) {
    return x;
  }
  if (std::isinf(y) && y > 0) {
    return y;
  }
  if (std::isnan(x) || std::isnan(y)) {
    return kNaN;
  }
  if (x == 0 && x == y) {
    return std::signbit(x) ? y : x;
  }
  return x > y ? x : y;
}

double GoMin(double x, double y) {
  if (std::isinf(x) && x < 0) {
    return x;
  }
  if (std::isinf(y) && y < 0) {
    return y;
  }
  if (std::isnan(x) || std::isnan(y)) {
    return kNaN;
  }
  if (x == 0 && x == y) {
    return std::signbit(x) ? x : y;
  }
  return x < y ? x : y;
}

namespace {
bool IsOddInt(double x) {
  if (std::fabs(x) >= 9007199254740992.0) {  // 2^53: every such float is even
    return false;
  }
  double integral = 0;
  double frac = std::modf(x, &integral);
  return frac == 0 && std::fmod(integral, 2.0) != 0;
}
}  // namespace

namespace {
// Cephes' rational approximation of atan on [0, 0.66], as Go's math package computes it.
double ReducedAtan(double x) {
  constexpr double kP0 = -8.750608600031904122785e-01;
  constexpr double kP1 = -1.615753718733365076637e+01;
  constexpr double kP2 = -7.500855792314704667340e+01;
  constexpr double kP3 = -1.228866684490136173410e+02;
  constexpr double kP4 = -6.485021904942025371773e+01;
  constexpr double kQ0 = +2.485846490142306297962e+01;
  constexpr double kQ1 = +1.650270098316988542046e+02;
  constexpr double kQ2 = +4.328810604912902668951e+02;
  constexpr double kQ3 = +4.853903996359136964868e+02;
  constexpr double kQ4 = +1.945506571482613964425e+02;
  double z = x * x;
  z = z * ((((kP0 * z + kP1) * z + kP2) * z + kP3) * z + kP4) /
      (((((z + kQ0) * z + kQ1) * z + kQ2) * z + kQ3) * z + kQ4);
  return x * z + x;
}

// atan for x >= 0 by range reduction.
double PositiveAtan(double x) {
  constexpr double kPi = 3.14159265358979323846264338327950288419716939937510582097494459;
  constexpr double kMoreBits = 6.123233995736765886130e-17;  // pi/2 = kPi/2 + kMoreBits
  constexpr double kTan3Pi8 = 2.41421356237309504880;
  if (x <= 0.66) {
    return ReducedAtan(x);
  }
  if (x > kTan3Pi8) {
    return kPi / 2 - ReducedAtan(1 / x) + kMoreBits;
  }
  return kPi / 4 + ReducedAtan((x - 1) / (x + 1)) + 0.5 * kMoreBits;
}
}  // namespace

double GoAtan2(double y, double x) {
  constexpr double kPi = 3.14159265358979323846264338327950288419716939937510582097494459;
  if (std::isnan(y) || std::isnan(x)) {
    return kNaN;
  }
  if (y == 0) {
    return x >= 0 && !std::signbit(x) ? std::copysign(0.0, y) : std::copysign(kPi, y);
  }
  if (x == 0) {
    return std::copysign(kPi / 2, y);
  }
  if (std::isinf(x)) {
    if (x > 0) {
      return std::isinf(y) ? std::copysign(kPi / 4, y) : std::copysign(0.0, y);
    }
    return std::isinf(y) ? std::copysign(3 * kPi / 4, y) : std::copysign(kPi, y);
  }
  if (std::isinf(y)) {
    return std::copysign(kPi / 2, y);
  }
  double ratio = y / x;
  double q = ratio == 0 ? ratio : ratio > 0 ? PositiveAtan(ratio) : -PositiveAtan(-ratio);
  if (x < 0) {
    return q <= 0 ? q + kPi : q - kPi;
  }
  return q;
}

double GoPow(double x, double y) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (y == 0 || x == 1) {
    return 1;
  }
  if (y == 1) {
    return x;
  }
  if (std::isnan(x) || std::isnan(y)) {
    return kNaN;
  }
  if (x == 0) {
    if (y < 0) {
      return std::signbit(x) && IsOddInt(y) ? -kInf : kInf;
    }
    return std::signbit(x) && IsOddInt(y) ? x : 0.0;
  }
  if (std::isinf(y)) {
    if (x == -1) {
      return 1;
    }
    if ((std::fabs(x) < 1) == (y > 0)) {
      return 0;
    }
    return kInf;
  }
  if (std::isinf(x)) {
    if (x < 0) {
      return GoPow(1 / x, -y);
    }
    return y < 0 ? 0.0 : kInf;
  }
  if (y == 0.5) {
    return std::sqrt(x);
  }
  if (y == -0.5) {
    return 1 / std::sqrt(x);
  }
  double yi = 0;
  double yf = std::modf(std::fabs(y), &yi);
  if (yf != 0 && x < 0) {
    return kNaN;
  }
  if (yi >= 9223372036854775808.0) {
    if (x == -1) {
      return 1;
    }
    if ((std::fabs(x) < 1) == (y > 0)) {
      return 0;
    }
    return kInf;
  }
  double a1 = 1.0;
  int ae = 0;
  if (yf != 0) {
    if (yf > 0.5) {
      yf--;
      yi++;
    }
    a1 = std::exp(yf * std::log(x));
  }
  int xe = 0;
  double x1 = std::frexp(x, &xe);
  for (auto i = static_cast<int64_t>(yi); i != 0; i >>= 1) {
    if (xe < -(1 << 12) || (1 << 12) < xe) {
      ae += xe;
      break;
    }
    if ((i & 1) == 1) {
      a1 *= x1;
      ae += xe;
    }
    x1 *= x1;
    xe <<= 1;
    if (x1 < .5) {
      x1 += x1;
      xe--;
    }
  }
  if (y < 0) {
    a1 = 1 / a1;
    ae = -ae;
  }
  return std::ldexp(a1, ae);
}

std::string FormatFloatShortest(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[400];
  auto result = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  return std::string(buf, result.ptr);
}

namespace {

// What Go refuses and RE2 accepts, found by one pass over the pattern (no recursion).
Status CheckGoOnlyRules(std::string_view p) {
  auto refuse = [&](const std::string& why) -> Status {
    return Fail(
        Error::InvalidArgument("invalid regular expression \"" + std::string(p) + "\": " + why));
  };
  std::vector<bool> open;  // per open group: is it a capture
  int captures = 0;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char next = p[i + 1];
      if (next == 'Q' && !in_class) {
        const size_t end = p.find("\\E", i + 2);
        if (end == std::string_view::npos) {
          break;
        }
        i = end + 1;
        continue;
      }
      if (next == 'C') {
        return refuse("invalid escape sequence: \\C");
      }
      ++i;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
        const size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          i = end + 1;
        }
      } else if (c == ']') {
        in_class = false;
      }
      continue;
    }
    if (c == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        ++i;  // a leading ']' is a literal
      }
    } else if (c == '(') {
      const bool capture = i + 1 >= p.size() || p[i + 1] != '?' || p.substr(i + 1, 3) == "?P<";
      open.push_back(capture);
      if (capture && ++captures > kMaxGoRegexCaptureDepth) {
        return refuse("expression nests too deeply");
      }
    } else if (c == ')' && !open.empty()) {
      captures -= open.back() ? 1 : 0;
      open.pop_back();
    }
  }
  return {};
}

}  // namespace

Result<Regex> CompileGoRegex(std::string_view pattern) {
  if (auto go = CheckGoOnlyRules(pattern); !go) {
    return Fail(go.error());
  }
  return Regex::Compile(pattern);
}

Result<Regex> CompileAnchoredRegex(std::string_view pattern) { return CompileGoRegex(pattern); }

Result<Regex> CompileWrappedRegex(std::string_view pattern) {
  auto wrapped = CompileGoRegex("^(?:" + std::string(pattern) + ")$");
  if (!wrapped) {
    return Fail(
        Error::InvalidArgument("invalid regular expression \"" + std::string(pattern) + "\""));
  }
  return wrapped;
}

}  // namespace modelpulse::rules
