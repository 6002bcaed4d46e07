#ifndef MODELPULSE_RULES_INTERNAL_GO_COMPAT_H_
#define MODELPULSE_RULES_INTERNAL_GO_COMPAT_H_

// Private to rules/: Go's number semantics, where PromQL evaluation, templates and promtool's
// reports must agree with Prometheus byte for byte. Go formats and computes some floats unlike
// C++ (shortest round-trip text, math.Max's NaN rule, math.Pow's repeated squaring), so every
// place that prints or computes a value the way Prometheus would comes here.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/go_quote.h"
#include "common/regex.h"
#include "common/result.h"

namespace modelpulse::rules {

// Go's regexp dialect (Prometheus's matchers, label_replace and the template functions) on RE2,
// which agrees with Go except where Go refuses more: `\C` (one byte) and capture groups nested
// over kMaxGoRegexCaptureDepth (Go's syntax.Parse caps a pattern's tree at height 1000, which
// `^(?:` ... `)$` plus 998 nested groups reaches). Other nodes Go counts in that height
// (repetitions, alternations) are not, so a pattern within two or three levels of the cap can
// still be accepted here and refused by Go.
inline constexpr int kMaxGoRegexCaptureDepth = 998;
Result<Regex> CompileGoRegex(std::string_view pattern);
// A label matcher's pattern: Go's verdict on the pattern itself (Prometheus 2.42 parses it alone
// as well as inside ^(?:...)$, so "a)(b" is refused) and matched with FullMatch, which is
// Prometheus's ^(?:re)$.
Result<Regex> CompileAnchoredRegex(std::string_view pattern);
// label_replace's regex, compiled as Prometheus compiles it: "^(?:" + pattern + ")$" only.
Result<Regex> CompileWrappedRegex(std::string_view pattern);

// Go's %v for a float64 (strconv.FormatFloat(v, 'g', -1, 64)), exactly as §1.6. Also declared
// in rules/rules.h, the public surface the CLI prints query results with.
std::string FormatGoFloat(double v);
// strconv.FormatFloat(v, 'E', -1, 64): "3E+00", "1.5E-01", "NaN", "+Inf".
std::string FormatGoFloatE(double v);
// Go's strconv.FormatFloat(v, 'f', -1, 64): "0.1", "1e+21" -> "1000000000000000000000", "+Inf".
std::string FormatFloatShortest(double v);
// C-style "%.4g" as Go prints it (identical to printf for finite values; "NaN", "+Inf", "-Inf").
std::string FormatGo4g(double v);
// One printf conversion of a double (`c_format` such as "%8.3f"), with Go's texts for NaN and
// the infinities, which C's printf spells "nan" and "inf".
std::string FormatGoPrintfFloat(const char* c_format, double v);

// Go's int64(v) on amd64 (CVTTSD2SQ): truncation toward zero, and math.MinInt64 for NaN and for
// anything out of range, where a C++ cast would be undefined.
int64_t GoFloatToInt64(double v);

// Go's math.Max/math.Min: NaN wins, +0 beats -0 (std::fmax would ignore the NaN).
double GoMax(double x, double y);
double GoMin(double x, double y);
// Go's math.Pow, which is not glibc's pow: integer exponents are computed by the same repeated
// squaring, so results agree bit for bit; fractional exponents go through exp/log and may differ
// from Go's in the last ulp.
double GoPow(double x, double y);
// Go's math.Atan2 (pure Go on amd64, Cephes polynomials), not glibc's correctly rounded one.
double GoAtan2(double y, double x);

}  // namespace modelpulse::rules

#endif  // MODELPULSE_RULES_INTERNAL_GO_COMPAT_H_
