#include "collector/collector.h"

#include <array>
#include <utility>

namespace modelpulse::collector {
namespace {

constexpr std::array<std::pair<Provider, std::string_view>, 7> kProviderNames = {{
    {Provider::kOpenAI, "openai"},
    {Provider::kOpenAICompatible, "openai_compatible"},
    {Provider::kAzure, "azure"},
    {Provider::kAnthropic, "anthropic"},
    {Provider::kBedrock, "bedrock"},
    {Provider::kVertex, "vertex"},
    {Provider::kGemini, "gemini"},
}};

}  // namespace

std::string_view ProviderName(Provider provider) {
  for (const auto& [value, name] : kProviderNames) {
    if (value == provider) {
      return name;
    }
  }
  return "unknown";
}

std::string ProviderNameList() {
  std::string list;
  for (const auto& [value, name] : kProviderNames) {
    list += (list.empty() ? "" : ", ") + std::string(name);
  }
  return list;
}

std::optional<Provider> ProviderFromName(std::string_view name) {
  for (const auto& [value, text] : kProviderNames) {
    if (text == name) {
      return value;
    }
  }
  return std::nullopt;
}

}  // namespace modelpulse::collector
