#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <span>
#include <utility>

#include "collector/collector.h"
#include "collector/internal/auth/target_auth.h"
#include "collector/internal/http_util.h"
#include "collector/internal/providers/provider.h"
#include "common/regex.h"
#include "common/yaml_reader.h"

namespace modelpulse::collector {
namespace {

using yaml::Diagnostics;
using yaml::Entry;
using yaml::KindName;
using yaml::MapEntries;
using yaml::ReadNonEmptyString;

std::string DefaultCloud(Provider provider, const std::string& host) {
  if (const std::string_view cloud = ProfileFor(provider).cloud; !cloud.empty()) {
    return std::string(cloud);
  }
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kHosts = {{
      {"openrouter.ai", "openrouter"},
      {"api.groq.com", "groq"},
      {"api.together.xyz", "together"},
      {"api.fireworks.ai", "fireworks"},
      {"api.mistral.ai", "mistral"},
      {"localhost", "local"},
      {"127.0.0.1", "local"},
      {"::1", "local"},
  }};
  for (const auto& [known_host, cloud] : kHosts) {
    if (host == known_host) {
      return std::string(cloud);
    }
  }
  return host;
}

}  // namespace

// us-east-1, us-gov-west-1, cn-north-1: the one place the AWS region pattern is written.
bool IsAwsRegion(const std::string& text) {
  static const Regex kAws =
      Regex::Compile(
          R"([a-z]{2}(-gov|-iso[a-z]*)?-(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]+)")
          .value();
  return kAws.FullMatch(text);
}

// The region where the host name carries one: AWS (bedrock-runtime.us-east-1.amazonaws.com), GCP
// (us-central1-aiplatform.googleapis.com), OpenAI data residency (eu.api.openai.com), Azure AI
// regional endpoints (eastus.api.cognitive.microsoft.com). Otherwise "global".
std::string RegionFromHost(const std::string& host) {
  static const Regex kGcp = Regex::Compile(R"(([a-z]+-[a-z]+[0-9]+)(-aiplatform)?)").value();
  if (host.ends_with(".api.openai.com")) {
    return host.substr(0, host.size() - std::string_view(".api.openai.com").size());
  }
  if (host.ends_with(".api.cognitive.microsoft.com")) {
    return host.substr(0, host.find('.'));
  }
  size_t begin = 0;
  while (begin <= host.size()) {
    const size_t end = std::min(host.find('.', begin), host.size());
    const std::string part = host.substr(begin, end - begin);
    if (IsAwsRegion(part)) {
      return part;
    }
    if (host.ends_with(".googleapis.com")) {
      if (auto groups = kGcp.FullMatchGroups(part)) {
        return std::string((*groups)[1]);
      }
    }
    begin = end + 1;
  }
  return "global";
}

namespace {

bool NeedsCredentials(Provider provider) {
  return !ProfileFor(provider).missing_credential_help.empty();
}

// What to write when a provider that needs credentials has none: `modelpulse check config`'s
// answer to "why does my target not load".
std::string MissingCredentialHelp(Provider provider) {
  return std::string(ProfileFor(provider).missing_credential_help);
}

bool IsHeaderName(std::string_view name) {
  constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           kTokenPunctuation.find(c) != std::string_view::npos;
  });
}

constexpr std::array<std::string_view, 3> kHeaderRefKeys = {"env", "file", "credential"};

std::vector<std::pair<std::string, Secret>> ReadHeaders(const Entry& e, std::string_view where,
                                                        ConfigReadContext& ctx) {
  std::vector<std::pair<std::string, Secret>> headers;
  for (const Entry& header : MapEntries(e.value, e.ValueMark(), "headers",
                                        fmt::format("in \"headers\" of {}", where), {}, ctx.diag)) {
    const std::string path = "headers." + header.key;
    if (!IsHeaderName(header.key)) {
      ctx.diag.Add(header.key_node.Mark(),
                   fmt::format("\"headers\": invalid header name \"{}\"", header.key));
      continue;
    }
    std::optional<Secret> value;
    if (header.value.IsMap()) {
      const std::vector<Entry> refs =
          MapEntries(header.value, header.ValueMark(), path, fmt::format("in \"{}\"", path),
                     kHeaderRefKeys, ctx.diag);
      if (refs.size() != 1) {
        ctx.diag.Add(header.ValueMark(),
                     fmt::format("\"{}\": give exactly one of env, file, credential", path));
        continue;
      }
      const SecretSource source = refs[0].key == "env"    ? SecretSource::kEnv
                                  : refs[0].key == "file" ? SecretSource::kFile
                                                          : SecretSource::kCredential;
      value = ResolveSecret(source, refs[0], path + "." + refs[0].key, ctx);
    } else if (header.value.IsScalar()) {
      value = Secret(header.value.Scalar());
    } else {
      ctx.diag.Add(header.ValueMark(), fmt::format("\"{}\": expected a string or {{env: VAR}}, "
                                                   "got {}",
                                                   path, KindName(header.value)));
      continue;
    }
    if (!value) {
      continue;
    }
    if (value->Reveal().find_first_of("\r\n") != std::string::npos) {
      // Said without the value: it may be a credential.
      ctx.diag.Add(header.ValueMark(), fmt::format("\"{}\": value contains a line break", path));
      continue;
    }
    headers.emplace_back(header.key, std::move(*value));
  }
  return headers;
}
// The providers that take detail `key` (a key that means something to some providers only), in
// declaration order.
std::vector<Provider> DetailProviders(std::string_view key) {
  std::vector<Provider> providers;
  for (int i = 0; i <= static_cast<int>(Provider::kGemini); ++i) {  // every provider, in order
    const Provider provider = static_cast<Provider>(i);
    const std::vector<std::string_view>& keys = ProfileFor(provider).detail_keys;
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) {
      providers.push_back(provider);
    }
  }
  return providers;
}

// A version string that goes into a header or a query: no spaces, no URL syntax.
bool IsVersionText(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

// The endpoint a provider is reached at when base_url is not given; empty when it has none.
std::string DefaultBaseUrl(Provider provider, const std::string& region) {
  return ProfileFor(provider).default_base_url(region);
}

// Where a target's endpoint is, as read from base_url (if given).
struct Endpoint {
  std::optional<std::string> host;  // set when base_url was given and valid
  bool given = false;               // base_url was in the file, valid or not
};

// region, project, api_version, anthropic_version, api and openai_path_prefix, checked against
// `provider`; then the defaults that follow from them (region from the host, base_url).
void ReadProviderDetails(Provider provider, const std::map<std::string, const Entry*>& details,
                         const YAML::Node& node, std::string_view where, Endpoint& endpoint,
                         TargetSpec& spec, Diagnostics& diag) {
  const std::string_view name = ProviderName(provider);
  std::map<std::string, std::string> value;  // the detail keys that apply and read well
  for (const auto& [key, e] : details) {
    const std::vector<Provider> providers = DetailProviders(key);
    if (std::find(providers.begin(), providers.end(), provider) == providers.end()) {
      std::vector<std::string_view> names;
      for (Provider p : providers) {
        names.push_back(ProviderName(p));
      }
      diag.Add(e->key_node.Mark(), fmt::format("\"{}\": does not apply to provider {} (only to "
                                               "{})",
                                               key, name, fmt::join(names, ", ")));
      continue;
    }
    if (std::optional<std::string> text = ReadNonEmptyString(*e, key, diag)) {
      value[key] = *text;
    }
  }
  const auto at = [&](const std::string& key) { return details.at(key)->ValueMark(); };
  bool ok = true;

  const ProviderProfile& profile = ProfileFor(provider);
  if (auto it = value.find("region"); it != value.end()) {
    if (!profile.is_region(it->second)) {
      diag.Add(at("region"),
               fmt::format("\"region\": \"{}\" is not {}", it->second, profile.region_kind));
      ok = false;
    } else {
      spec.region = it->second;
    }
  }
  for (const char* key : {"api_version", "anthropic_version"}) {
    if (auto it = value.find(key); it != value.end()) {
      if (!IsVersionText(it->second)) {
        diag.Add(at(key), fmt::format("\"{}\": \"{}\" is not a version (e.g. {})", key, it->second,
                                      profile.version_example));
        ok = false;
      } else {
        (std::string_view(key) == "api_version" ? spec.api_version : spec.anthropic_version) =
            it->second;
      }
    }
  }
  std::optional<ApiFlavor> api;
  if (auto it = value.find("api"); it != value.end()) {
    if (it->second == "native") {
      api = ApiFlavor::kNative;
    } else if (it->second == "openai") {
      api = ApiFlavor::kOpenAICompatible;
    } else {
      diag.Add(at("api"),
               fmt::format("\"api\": expected native or openai, got \"{}\"", it->second));
      ok = false;
    }
  }
  if (api) {
    spec.flavor = *api;
  }
  if (auto it = value.find("openai_path_prefix"); it != value.end()) {
    std::string prefix = it->second;
    while (prefix.size() > 1 && prefix.back() == '/') {
      prefix.pop_back();
    }
    if (spec.flavor != ApiFlavor::kOpenAICompatible) {
      diag.Add(details.at("openai_path_prefix")->key_node.Mark(),
               fmt::format("\"openai_path_prefix\": applies only with api: openai"));
    } else if (!prefix.starts_with('/') || prefix.find_first_of(" \t?#") != std::string::npos) {
      diag.Add(at("openai_path_prefix"),
               "\"openai_path_prefix\": expected a path starting with / (e.g. /openai/v1)");
    } else {
      spec.openai_path_prefix = prefix;
    }
  }

  // Providers that put the region into every request take it from `region`, else from a host
  // name that carries one.
  if (profile.region_from_host) {
    const std::string from_host =
        endpoint.host ? profile.region_from_host(*endpoint.host) : std::string();
    if (!spec.region.empty() && !from_host.empty() && from_host != spec.region) {
      diag.Add(at("region"), fmt::format("\"region\": {} differs from the region {} of "
                                         "\"base_url\"",
                                         spec.region, from_host));
    } else if (spec.region.empty() && value.count("region") == 0) {
      if (!from_host.empty()) {
        spec.region = from_host;
      } else {
        diag.Add(node.Mark(), fmt::format("{}: provider {} needs \"region\" {}", where, name,
                                          profile.region_needed_because));
        ok = false;
      }
    }
  }
  if (profile.check_details) {
    TargetDetails checked(value, details, node, where, diag);
    ok = profile.check_details(checked, spec) && ok;
  }
  if (!endpoint.given) {
    const std::string url = DefaultBaseUrl(provider, spec.region);
    if (url.empty()) {
      diag.Add(node.Mark(), fmt::format("{}: missing required key \"base_url\" (provider {} has "
                                        "no default endpoint)",
                                        where, name));
    } else if (ok) {
      spec.base_url = url;
      endpoint.host = UrlHost(url).value_or("");
    }
  }
}

}  // namespace

const std::string* TargetDetails::Find(std::string_view key) const {
  auto it = values_.find(std::string(key));
  return it == values_.end() ? nullptr : &it->second;
}

void TargetDetails::ProblemAt(std::string_view key, std::string message) {
  diag_.Add(entries_.at(std::string(key))->ValueMark(), std::move(message));
}

void TargetDetails::TargetProblem(std::string_view message) {
  diag_.Add(node_.Mark(), fmt::format("{}: {}", where_, message));
}

std::span<const std::string_view> ProviderOwnedTargetKeys() {
  static constexpr std::array<std::string_view, 9> kKeys = {"base_url",    "auth",
                                                            "region",      "project",
                                                            "api_version", "anthropic_version",
                                                            "api",         "openai_path_prefix",
                                                            "headers"};
  return kKeys;
}

std::string ReadProviderKeys(const YAML::Node& node, std::string_view where,
                             std::optional<Provider> provider,
                             std::span<const Entry* const> entries, TargetSpec& spec,
                             ConfigReadContext& ctx) {
  Endpoint endpoint;
  const Entry* auth_entry = nullptr;
  std::map<std::string, const Entry*> details;
  for (const Entry* entry : entries) {
    const Entry& e = *entry;
    const std::string& key = e.key;
    if (key == "base_url") {
      endpoint.given = true;
      if (std::optional<std::string> url = ReadNonEmptyString(e, key, ctx.diag)) {
        Result<std::string> url_host = UrlHost(*url);
        if (!url_host) {
          ctx.diag.Add(e.ValueMark(), "\"base_url\": " + url_host.error().message);
        } else {
          while (url->size() > 1 && url->back() == '/') {
            url->pop_back();
          }
          spec.base_url = *url;
          endpoint.host = *url_host;
        }
      }
    } else if (key == "auth") {
      auth_entry = &e;
    } else if (key == "headers") {
      spec.headers = ReadHeaders(e, where, ctx);
    } else {
      details[key] = &e;
    }
  }

  // Provider-specific keys wait for the provider, wherever it stands in the map.
  if (provider) {
    ReadProviderDetails(*provider, details, node, where, endpoint, spec, ctx.diag);
  }
  std::string auth_source;
  if (auth_entry != nullptr) {
    ParsedAuth auth = ReadAuth(*auth_entry, where, provider, ctx);
    spec.auth = std::move(auth.auth);
    spec.api_key = std::move(auth.key);
    auth_source = std::move(auth.source);
    if (!auth.chose_mode && provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(auth_entry->ValueMark(),
                   fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
    }
  } else {
    auth_source = "none";
    if (provider && NeedsCredentials(*provider)) {
      ctx.diag.Add(node.Mark(), fmt::format("{}: {}", where, MissingCredentialHelp(*provider)));
    }
  }

  // The series identity the provider and URL imply; the target's own labels may refine cloud and
  // region afterwards.
  const std::string host = endpoint.host.value_or("");
  if (provider) {
    spec.provider = *provider;
    spec.labels["provider"] = std::string(ProviderName(*provider));
    spec.labels["cloud"] = DefaultCloud(*provider, host);
  }
  spec.labels["region"] =
      !spec.region.empty() ? spec.region : (host.empty() ? "global" : RegionFromHost(host));
  return auth_source;
}

std::string DescribeProviderDetails(const TargetSpec& target) {
  std::string details;
  const std::vector<std::string_view>& keys = ProfileFor(target.provider).detail_keys;
  if (std::find(keys.begin(), keys.end(), "api") != keys.end()) {
    details += target.flavor == ApiFlavor::kOpenAICompatible ? ", api openai" : ", api native";
  }
  if (!target.project.empty()) {
    details += ", project " + target.project;
  }
  if (!target.api_version.empty()) {
    details += ", api-version " + target.api_version;
  }
  if (!target.openai_path_prefix.empty()) {
    details += ", path prefix " + target.openai_path_prefix;
  }
  return details;
}

}  // namespace modelpulse::collector
