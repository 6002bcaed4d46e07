#include "simulator/internal/protocol.h"

#include <array>

namespace modelpulse::simulator {

std::string HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name)
      return value;
  }
  return {};
}

std::optional<std::string> HttpRequest::Query(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name)
      return value;
  }
  return std::nullopt;
}

Status Protocol::Configure(const EndpointSpec& endpoint) {
  if (!endpoint.options.empty()) {
    return Fail(Error::Parse("protocol '" + std::string(Name()) + "' takes no options (got '" +
                             endpoint.options.begin()->first + "')"));
  }
  return {};
}

bool Protocol::Supports(Behaviour behaviour) const {
  return static_cast<int>(behaviour) <= static_cast<int>(Behaviour::kHangAfterHeaders);
}

std::unique_ptr<Protocol> MakeProtocol(std::string_view name) {
  if (name == "openai")
    return MakeOpenAiProtocol();
  if (name == "bedrock")
    return MakeBedrockProtocol();
  if (name == "vertex")
    return MakeVertexProtocol();
  if (name == "gemini")
    return MakeGeminiProtocol();
  if (name == "azure")
    return MakeAzureProtocol();
  if (name == "anthropic")
    return MakeAnthropicProtocol();
  return nullptr;
}

bool IsKnownProtocol(std::string_view name) { return MakeProtocol(name) != nullptr; }

std::vector<std::string> ProtocolNames() {
  std::vector<std::string> names = {"openai"};
  names.push_back("bedrock");
  names.push_back("vertex");
  names.push_back("gemini");
  names.push_back("azure");
  names.push_back("anthropic");
  return names;
}

std::string TokenText(int64_t index) {
  static constexpr std::array<std::string_view, 16> kFiller = {
      "lorem", "ipsum", "dolor",  "sit", "amet",   "consectetur", "adipiscing", "elit",
      "sed",   "do",    "tempor", "ut",  "labore", "et",          "magna",      "aliqua"};
  if (index <= 0)
    return "OK";
  return " " + std::string(kFiller[static_cast<size_t>(index - 1) % kFiller.size()]);
}

}  // namespace modelpulse::simulator
