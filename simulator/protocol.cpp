#include "simulator/protocol.h"

#include <array>

namespace modelpulse::simulator {

std::string HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::unique_ptr<Protocol> MakeProtocol(std::string_view name) {
  if (name == "openai") return MakeOpenAiProtocol();
  return nullptr;
}

bool IsKnownProtocol(std::string_view name) { return MakeProtocol(name) != nullptr; }

std::vector<std::string> ProtocolNames() { return {"openai"}; }

std::string TokenText(int64_t index) {
  static constexpr std::array<std::string_view, 16> kFiller = {
      "lorem", "ipsum", "dolor",  "sit", "amet",   "consectetur", "adipiscing", "elit",
      "sed",   "do",    "tempor", "ut",  "labore", "et",          "magna",      "aliqua"};
  if (index <= 0) return "OK";
  return " " + std::string(kFiller[static_cast<size_t>(index - 1) % kFiller.size()]);
}

}  // namespace modelpulse::simulator
