#include "alerting/config.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>
#include <set>
#include <span>

#include "alerting/internal/matcher.h"
#include "common/secret_reference.h"

namespace modelpulse::alerting {
namespace {

using yaml::Diagnostics;
using yaml::Entry;
using yaml::MapEntries;
using yaml::Sign;

constexpr std::array<std::string_view, 2> kSectionKeys = {"alertmanagers", "receivers"};
constexpr std::array<std::string_view, 5> kAlertmanagerKeys = {"url", "timeout", "ca_file", "auth",
                                                               "max_age"};
constexpr std::array<std::string_view, 11> kReceiverKeys = {
    "name",           "webhook",         "template",      "matchers", "group_by",  "group_wait",
    "group_interval", "repeat_interval", "send_resolved", "max_age",  "max_alerts"};
constexpr std::array<std::string_view, 10> kWebhookKeys = {"url",
                                                           "url_env",
                                                           "url_file",
                                                           "url_credential",
                                                           "hmac_secret_env",
                                                           "hmac_secret_file",
                                                           "hmac_secret_credential",
                                                           "timeout",
                                                           "ca_file",
                                                           "auth"};
// A template receiver: the webhook's keys and the body's.
constexpr std::array<std::string_view, 12> kTemplateKeys = {"url",
                                                            "url_env",
                                                            "url_file",
                                                            "url_credential",
                                                            "body_file",
                                                            "content_type",
                                                            "hmac_secret_env",
                                                            "hmac_secret_file",
                                                            "hmac_secret_credential",
                                                            "timeout",
                                                            "ca_file",
                                                            "auth"};
constexpr std::array<std::string_view, 3> kAuthKeys = {"bearer_token_file", "bearer_token_env",
                                                       "basic_auth"};
constexpr std::array<std::string_view, 3> kBasicAuthKeys = {"username", "password_file",
                                                            "password_env"};

struct Context {
  const Environment& env;
  std::string folder;
  Diagnostics& diag;
  const TemplateCheck& check_template;
};

// A secret by reference (common/secret_reference.h), warning about files others may read as the
// collector does for API keys.
std::optional<Secret> ReadSecret(const Entry& e, std::string_view path, SecretSource from,
                                 Context& ctx) {
  return ReadSecretReference(from, e, path,
                             {ctx.diag, ctx.env, ctx.folder, [](const std::string& file) {
                                if (std::optional<std::string> warning = SecretFileExposure(file)) {
                                  spdlog::warn("{}", *warning);
                                }
                              }});
}

std::optional<std::string> ReadUrl(const Entry& e, std::string_view path, Diagnostics& diag) {
  std::optional<std::string> url = yaml::ReadNonEmptyString(e, path, diag);
  if (url && !IsHttpUrl(*url)) {
    diag.Add(e.ValueMark(), fmt::format("\"{}\": expected an http:// or https:// URL, got \"{}\"",
                                        path, RedactedUrl(*url)));
    return std::nullopt;
  }
  return url;
}

void ReadAuth(const Entry& section, const std::string& path, HttpEndpoint& endpoint, Context& ctx) {
  const auto entries = MapEntries(section.value, section.ValueMark(), path,
                                  fmt::format("in \"{}\"", path), kAuthKeys, ctx.diag);
  if (entries.size() > 1) {
    ctx.diag.Add(section.ValueMark(),
                 fmt::format("\"{}\": give one of bearer_token_file, bearer_token_env, "
                             "basic_auth",
                             path));
  }
  for (const Entry& e : entries) {
    const std::string key_path = path + "." + e.key;
    if (e.key == "basic_auth") {
      bool has_password = false;
      for (const Entry& b :
           MapEntries(e.value, e.ValueMark(), key_path, fmt::format("in \"{}\"", key_path),
                      kBasicAuthKeys, ctx.diag)) {
        const std::string p = key_path + "." + b.key;
        if (b.key == "username") {
          endpoint.basic_username = yaml::ReadNonEmptyString(b, p, ctx.diag).value_or("");
        } else {
          has_password = true;
          endpoint.basic_password =
              ReadSecret(b, p, b.key == "password_env" ? SecretSource::kEnv : SecretSource::kFile,
                         ctx)
                  .value_or(Secret());
        }
      }
      if (endpoint.basic_username.empty() || !has_password) {
        ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": needs username and one of "
                                                "password_file, password_env",
                                                key_path));
      }
    } else {
      endpoint.bearer_token =
          ReadSecret(e, key_path,
                     e.key == "bearer_token_env" ? SecretSource::kEnv : SecretSource::kFile, ctx)
              .value_or(Secret());
    }
  }
}

// timeout, ca_file and auth, shared by Alertmanagers and webhooks. Returns whether `e` was one.
bool ReadEndpointKey(const Entry& e, const std::string& path, HttpEndpoint& endpoint,
                     Context& ctx) {
  const std::string key_path = path + "." + e.key;
  if (e.key == "timeout") {
    if (auto timeout = yaml::ReadDuration(e, key_path, Sign::kPositive, ctx.diag)) {
      endpoint.timeout = *timeout;
    }
  } else if (e.key == "ca_file") {
    if (auto file = yaml::ReadNonEmptyString(e, key_path, ctx.diag)) {
      endpoint.ca_file = yaml::ResolvePath(ctx.folder, *file).string();
      if (!ctx.env.ReadFile(endpoint.ca_file)) {
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": cannot read {}", key_path, endpoint.ca_file));
      }
    }
  } else if (e.key == "auth") {
    ReadAuth(e, key_path, endpoint, ctx);
  } else {
    return false;
  }
  return true;
}

void ReadAlertmanager(const YAML::Node& node, size_t index, AlertingConfig& config, Context& ctx) {
  const std::string path = fmt::format("alerting.alertmanagers[{}]", index);
  AlertmanagerConfig am;
  bool has_url = false;
  for (const Entry& e : MapEntries(node, node.Mark(), path, fmt::format("in \"{}\"", path),
                                   kAlertmanagerKeys, ctx.diag)) {
    if (ReadEndpointKey(e, path, am.endpoint, ctx)) {
      continue;
    }
    if (e.key == "url") {
      has_url = true;
      if (auto url = ReadUrl(e, path + ".url", ctx.diag)) {
        am.endpoint.url = Secret(*url);
      }
    } else if (auto age = yaml::ReadDuration(e, path + ".max_age", Sign::kPositive, ctx.diag)) {
      am.max_age = *age;
    }
  }
  if (!has_url && node.IsMap()) {
    ctx.diag.Add(node.Mark(), fmt::format("\"{}\": missing required key \"url\"", path));
  }
  config.alertmanagers.push_back(std::move(am));
}

// The body of a template receiver: its file read (relative to the config's folder) and its
// template parsed, so that `check config` finds a broken template before a page needs it.
void ReadBodyFile(const Entry& e, const std::string& key_path, ReceiverConfig& receiver,
                  Context& ctx) {
  std::optional<std::string> file = yaml::ReadNonEmptyString(e, key_path, ctx.diag);
  if (!file) {
    return;
  }
  const std::string resolved = yaml::ResolvePath(ctx.folder, *file).string();
  Result<std::string> text = ctx.env.ReadFile(resolved);
  if (!text) {
    ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": {}", key_path, text.error().message));
    return;
  }
  receiver.body_template_name = std::filesystem::path(resolved).filename().string();
  receiver.body_template = std::move(*text);
  if (ctx.check_template) {
    if (auto parsed = ctx.check_template(receiver.body_template_name, receiver.body_template);
        !parsed) {
      ctx.diag.Add(e.ValueMark(),
                   fmt::format("\"{}\": {}: {}", key_path, resolved, parsed.error().message));
    }
  }
}

// `webhook:` or, with `is_template`, `template:`.
void ReadWebhook(const Entry& section, const std::string& path, ReceiverConfig& receiver,
                 bool is_template, Context& ctx) {
  int urls = 0;
  int secrets = 0;
  bool has_body = false;
  const std::span<const std::string_view> keys =
      is_template ? std::span<const std::string_view>(kTemplateKeys)
                  : std::span<const std::string_view>(kWebhookKeys);
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), path,
                                   fmt::format("in \"{}\"", path), keys, ctx.diag)) {
    const std::string key_path = path + "." + e.key;
    if (ReadEndpointKey(e, path, receiver.webhook, ctx)) {
      continue;
    }
    if (e.key == "body_file") {
      has_body = true;
      ReadBodyFile(e, key_path, receiver, ctx);
    } else if (e.key == "content_type") {
      if (auto type = yaml::ReadNonEmptyString(e, key_path, ctx.diag)) {
        if (type->find_first_of("\r\n") != std::string::npos) {
          ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": must be one line", key_path));
        } else {
          receiver.content_type = *type;
        }
      }
    } else if (e.key.starts_with("url")) {
      ++urls;
      std::optional<std::string> url;
      if (e.key == "url") {
        url = ReadUrl(e, key_path, ctx.diag);
      } else if (auto secret = ReadSecret(e, key_path,
                                          e.key == "url_env"    ? SecretSource::kEnv
                                          : e.key == "url_file" ? SecretSource::kFile
                                                                : SecretSource::kCredential,
                                          ctx)) {
        url = secret->Reveal();
        if (!IsHttpUrl(*url)) {
          ctx.diag.Add(e.ValueMark(),
                       fmt::format("\"{}\": does not hold an http:// or https:// URL", key_path));
          url.reset();
        }
      }
      if (url) {
        receiver.webhook.url = Secret(*url);
      }
    } else {
      ++secrets;
      const SecretSource from = e.key == "hmac_secret_env"    ? SecretSource::kEnv
                                : e.key == "hmac_secret_file" ? SecretSource::kFile
                                                              : SecretSource::kCredential;
      receiver.hmac_secret = ReadSecret(e, key_path, from, ctx).value_or(Secret());
    }
  }
  if (urls != 1 && section.value.IsMap()) {
    ctx.diag.Add(section.ValueMark(), fmt::format("\"{}\": give exactly one of url, url_env, "
                                                  "url_file, url_credential",
                                                  path));
  }
  if (is_template && !has_body && section.value.IsMap()) {
    ctx.diag.Add(section.ValueMark(),
                 fmt::format("\"{}\": missing required key \"body_file\"", path));
  }
  if (secrets > 1) {
    ctx.diag.Add(section.ValueMark(),
                 fmt::format("\"{}\": give at most one of hmac_secret_env, hmac_secret_file, "
                             "hmac_secret_credential",
                             path));
  }
}

std::vector<std::string> ReadStringList(const Entry& e, const std::string& path,
                                        Diagnostics& diag) {
  std::vector<std::string> out;
  if (!e.value.IsSequence()) {
    diag.Add(e.ValueMark(),
             fmt::format("\"{}\": expected a list, got {}", path, yaml::KindName(e.value)));
    return out;
  }
  for (const YAML::Node& item : e.value) {
    const Entry one{e.key, e.key_node, item};
    if (auto text = yaml::ReadNonEmptyString(one, path, diag)) {
      out.push_back(*text);
    }
  }
  return out;
}

void ReadReceiver(const YAML::Node& node, size_t index, AlertingConfig& config,
                  std::map<std::string, int>& names, Context& ctx) {
  std::string path = fmt::format("alerting.receivers[{}]", index);
  ReceiverConfig receiver;
  int deliveries = 0;  // webhook: and template:
  for (const Entry& e : MapEntries(node, node.Mark(), path, fmt::format("in \"{}\"", path),
                                   kReceiverKeys, ctx.diag)) {
    const std::string key_path = path + "." + e.key;
    if (e.key == "name") {
      if (auto name = yaml::ReadNonEmptyString(e, key_path, ctx.diag)) {
        receiver.name = *name;
        auto [it, inserted] = names.emplace(*name, e.value.Mark().line + 1);
        if (!inserted) {
          ctx.diag.Add(e.ValueMark(), fmt::format("duplicate receiver name \"{}\" (first "
                                                  "defined at line {})",
                                                  *name, it->second));
        }
        if (name->starts_with("alertmanager/")) {
          ctx.diag.Add(e.ValueMark(), fmt::format("\"{}\": names starting with "
                                                  "\"alertmanager/\" are reserved",
                                                  key_path));
        }
      }
    } else if (e.key == "webhook" || e.key == "template") {
      ++deliveries;
      ReadWebhook(e, key_path, receiver, e.key == "template", ctx);
    } else if (e.key == "matchers") {
      const YAML::Node list = e.value;
      for (const std::string& text : ReadStringList(e, key_path, ctx.diag)) {
        if (auto parsed = ParseMatchers(text); !parsed) {
          ctx.diag.Add(e.ValueMark(),
                       fmt::format("\"{}\": \"{}\": {}", key_path, text, parsed.error().message));
        } else {
          receiver.matchers.push_back(text);
        }
      }
    } else if (e.key == "group_by") {
      receiver.group_by = ReadStringList(e, key_path, ctx.diag);
      for (const std::string& label : receiver.group_by) {
        if (label != "..." && !yaml::IsIdentifier(label)) {
          ctx.diag.Add(e.ValueMark(),
                       fmt::format("\"{}\": invalid label name \"{}\"", key_path, label));
        }
      }
      if (receiver.group_by.size() > 1 &&
          std::find(receiver.group_by.begin(), receiver.group_by.end(), "...") !=
              receiver.group_by.end()) {
        ctx.diag.Add(e.ValueMark(),
                     fmt::format("\"{}\": \"...\" must be the only entry", key_path));
      }
    } else if (e.key == "send_resolved") {
      receiver.send_resolved = yaml::ReadBool(e, key_path, ctx.diag).value_or(true);
    } else if (e.key == "max_alerts") {
      receiver.max_alerts = yaml::ReadInt(e, key_path, 0, 1'000'000, ctx.diag).value_or(0);
    } else {
      const Sign sign = e.key == "group_wait" ? Sign::kNonNegative : Sign::kPositive;
      if (auto d = yaml::ReadDuration(e, key_path, sign, ctx.diag)) {
        Millis& slot = e.key == "group_wait"        ? receiver.group_wait
                       : e.key == "group_interval"  ? receiver.group_interval
                       : e.key == "repeat_interval" ? receiver.repeat_interval
                                                    : receiver.max_age;
        slot = *d;
      }
    }
  }
  if (node.IsMap() && receiver.name.empty()) {
    ctx.diag.Add(node.Mark(), fmt::format("\"{}\": missing required key \"name\"", path));
  }
  if (node.IsMap() && deliveries != 1) {
    ctx.diag.Add(node.Mark(),
                 fmt::format("\"{}\": give exactly one of \"webhook\", \"template\"", path));
  }
  config.receivers.push_back(std::move(receiver));
}

}  // namespace

bool IsHttpUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  return !rest.empty() && rest.front() != '/' &&
         rest.find_first_of(" \t\r\n") == std::string_view::npos;
}

void ReadAlertingSection(const yaml::Entry& section, const Environment& env,
                         const std::string& folder, AlertingConfig& config, yaml::Diagnostics& diag,
                         const TemplateCheck& check_template) {
  Context ctx{env, folder, diag, check_template};
  std::map<std::string, int> names;
  for (const Entry& e : MapEntries(section.value, section.ValueMark(), "alerting",
                                   "in \"alerting\"", kSectionKeys, diag)) {
    const std::string path = "alerting." + e.key;
    if (e.value.IsNull()) {
      continue;
    }
    if (!e.value.IsSequence()) {
      diag.Add(e.ValueMark(),
               fmt::format("\"{}\": expected a list, got {}", path, yaml::KindName(e.value)));
      continue;
    }
    size_t index = 0;
    for (const YAML::Node& item : e.value) {
      if (e.key == "alertmanagers") {
        ReadAlertmanager(item, index++, config, ctx);
      } else {
        ReadReceiver(item, index++, config, names, ctx);
      }
    }
  }
}

}  // namespace modelpulse::alerting
