#ifndef MODELPULSE_FUZZ_TARGETS_H_
#define MODELPULSE_FUZZ_TARGETS_H_

// Every fuzz target's entry point, one per fuzz/<module>/<name>_fuzz.cpp. libFuzzer calls them
// through a generated LLVMFuzzerTestOneInput (fuzz/libfuzzer_entry.cpp.in, the `fuzz` preset);
// tests/fuzz/ replays their corpora and mutations of them in the ordinary builds, so every
// target runs under ASan and UBSan in the test command too. Each returns 0 and aborts on a
// broken invariant; a crash or a sanitizer report is the finding.

#include <cstddef>
#include <cstdint>

namespace modelpulse::fuzz {

int Sse(const uint8_t* data, size_t size);
int EventStream(const uint8_t* data, size_t size);
int Provider(const uint8_t* data, size_t size);
int Promql(const uint8_t* data, size_t size);
int PromtoolSeries(const uint8_t* data, size_t size);
int RuleFile(const uint8_t* data, size_t size);
int Template(const uint8_t* data, size_t size);
int Config(const uint8_t* data, size_t size);

}  // namespace modelpulse::fuzz

#endif  // MODELPULSE_FUZZ_TARGETS_H_
