#include <memory>

#include "collector/internal/providers/provider.h"

namespace modelpulse::collector {

// One line per provider file. Adapters are stateless, so one instance each serves every probe.
const ProviderAdapter* AdapterFor(Provider provider) {
  static const std::unique_ptr<ProviderAdapter> kOpenAI = NewOpenAIAdapter(Provider::kOpenAI);
  static const std::unique_ptr<ProviderAdapter> kOpenAICompatible =
      NewOpenAIAdapter(Provider::kOpenAICompatible);
  static const std::unique_ptr<ProviderAdapter> kBedrock = NewBedrockAdapter();
  static const std::unique_ptr<ProviderAdapter> kVertex = NewGoogleAdapter(Provider::kVertex);
  static const std::unique_ptr<ProviderAdapter> kGemini = NewGoogleAdapter(Provider::kGemini);
  static const std::unique_ptr<ProviderAdapter> kAzure = NewAzureAdapter();
  static const std::unique_ptr<ProviderAdapter> kAnthropic = NewAnthropicAdapter();
  switch (provider) {
    case Provider::kOpenAI:
      return kOpenAI.get();
    case Provider::kOpenAICompatible:
      return kOpenAICompatible.get();
    case Provider::kAzure:
      return kAzure.get();
    case Provider::kAnthropic:
      return kAnthropic.get();
    case Provider::kBedrock:
      return kBedrock.get();
    case Provider::kVertex:
      return kVertex.get();
    case Provider::kGemini:
      return kGemini.get();
  }
  return nullptr;
}

const ProviderProfile& ProfileFor(Provider provider) {
  static const ProviderProfile kOpenAI = OpenAIProfile(Provider::kOpenAI);
  static const ProviderProfile kOpenAICompatible = OpenAIProfile(Provider::kOpenAICompatible);
  static const ProviderProfile kAzure = AzureProfile();
  static const ProviderProfile kAnthropic = AnthropicProfile();
  static const ProviderProfile kBedrock = BedrockProfile();
  static const ProviderProfile kVertex = GoogleProfile(Provider::kVertex);
  static const ProviderProfile kGemini = GoogleProfile(Provider::kGemini);
  switch (provider) {
    case Provider::kOpenAI:
      return kOpenAI;
    case Provider::kOpenAICompatible:
      return kOpenAICompatible;
    case Provider::kAzure:
      return kAzure;
    case Provider::kAnthropic:
      return kAnthropic;
    case Provider::kBedrock:
      return kBedrock;
    case Provider::kVertex:
      return kVertex;
    case Provider::kGemini:
      break;
  }
  return kGemini;
}

}  // namespace modelpulse::collector
