// Every provider adapter's response side on arbitrary bytes: the stream decoder (fed in chunks
// whose size the input chooses), the non-streaming body parser, the HTTP error classifier and the
// rate-limit header reader. The first bytes choose the provider, the path and the chunk size or
// status; header lines ("name: value", up to a blank line) come before the body. Invariants: no
// crash, answer and reasoning deltas are never empty, a classified error is never `ok`.
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collector/internal/providers/provider.h"
#include "fuzz/targets.h"

namespace {

using modelpulse::Outcome;
using modelpulse::collector::AdapterFor;
using modelpulse::collector::DecoderLimits;
using modelpulse::collector::HttpHeaders;
using modelpulse::collector::Provider;
using modelpulse::collector::ProviderError;
using modelpulse::collector::StreamEvents;
using modelpulse::collector::Usage;

constexpr std::array<Provider, 7> kProviders = {
    Provider::kOpenAI,  Provider::kOpenAICompatible, Provider::kAzure, Provider::kAnthropic,
    Provider::kBedrock, Provider::kVertex,           Provider::kGemini};
constexpr int64_t kNowMs = 1'760'000'000'000;

class CheckingEvents final : public StreamEvents {
 public:
  void OnChunk() override {}
  void OnContent(std::string_view text) override {
    if (text.empty())
      std::abort();
  }
  void OnReasoning(std::string_view text) override {
    if (text.empty())
      std::abort();
  }
  void OnUsage(const Usage&) override {}
  void OnError(const ProviderError& error) override {
    if (error.outcome == Outcome::kOk)
      std::abort();
  }
  void OnMalformed(std::string_view) override {}
  void OnTerminator() override {}
};

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Header lines up to the first empty line, as the transport hands them to an adapter; returns
// the rest (the body).
std::string_view ReadHeaderLines(std::string_view input, HttpHeaders& headers) {
  while (!input.empty()) {
    const size_t end = input.find('\n');
    const std::string_view line = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
    if (Trim(line).empty())
      break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    headers.Add(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  return input;
}

}  // namespace

int modelpulse::fuzz::Provider(const uint8_t* data, size_t size) {
  if (size < 3)
    return 0;
  const auto* adapter = AdapterFor(kProviders[data[0] % kProviders.size()]);
  if (adapter == nullptr)
    std::abort();
  const uint8_t path = data[1] % 4;
  const uint8_t parameter = data[2];
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  CheckingEvents events;
  switch (path) {
    case 0: {
      DecoderLimits limits;
      limits.max_line_bytes = 4096;
      limits.max_event_bytes = 16384;
      auto decoder = adapter->NewStreamDecoder(limits);
      const size_t chunk = static_cast<size_t>(parameter % 32) + 1;
      while (!rest.empty()) {
        const size_t n = rest.size() < chunk ? rest.size() : chunk;
        decoder->Feed(rest.substr(0, n), events);
        rest.remove_prefix(n);
      }
      decoder->Finish(events);
      break;
    }
    case 1:
      adapter->ParseBody(rest, events);
      break;
    case 2: {
      HttpHeaders headers;
      const std::string_view body = ReadHeaderLines(rest, headers);
      const int status = 400 + parameter % 200;
      if (adapter->ClassifyHttpError(status, headers, body).outcome == Outcome::kOk)
        std::abort();
      break;
    }
    default: {
      HttpHeaders headers;
      ReadHeaderLines(rest, headers);
      (void)adapter->ReadHeaders(headers, kNowMs);
      break;
    }
  }
  return 0;
}
