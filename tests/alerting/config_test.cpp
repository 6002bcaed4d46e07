// The `alerting:` section: values, defaults and every problem reported with its position.

#include "alerting/config.h"

#include <doctest/doctest.h>

#include <map>

#include "tests/map_environment.h"

namespace modelpulse::alerting {
namespace {

// Parses `yaml` (a document whose top key is `alerting`); the error text, or "" when valid.
std::string Read(const std::string& yaml, const Environment& env, AlertingConfig& config,
                 const TemplateCheck& check = nullptr) {
  const YAML::Node root = YAML::Load(yaml);
  yaml::Diagnostics diag;
  for (const yaml::Entry& e :
       yaml::MapEntries(root, root.Mark(), "", "at the top level", {}, diag)) {
    ReadAlertingSection(e, env, "/etc/mp", config, diag, check);
  }
  return diag.empty() ? "" : diag.ToError("f.yml").message;
}

TEST_CASE("a full alerting section is read with its secrets and defaults") {
  testing::MapEnvironment env;
  env.vars["HOOK_SECRET"] = "s3";
  env.files["/etc/mp/token"] = "tok\n";
  AlertingConfig config;
  const std::string error = Read(R"(
alerting:
  alertmanagers:
    - url: http://127.0.0.1:9093
      timeout: 3s
      auth: {bearer_token_file: token}
  receivers:
    - name: ops
      webhook:
        url: https://hooks.example/x?k=1
        hmac_secret_env: HOOK_SECRET
      matchers: ['severity=~"warning|critical"', 'team=ml']
      group_by: [alertname, model]
      group_wait: 10s
      send_resolved: false
)",
                                 env, config);
  CHECK(error.empty());
  REQUIRE(config.alertmanagers.size() == 1);
  CHECK(config.alertmanagers[0].endpoint.url.Reveal() == "http://127.0.0.1:9093");
  CHECK(config.alertmanagers[0].endpoint.timeout == Millis(3000));
  CHECK(config.alertmanagers[0].endpoint.bearer_token.Reveal() == "tok");
  REQUIRE(config.receivers.size() == 1);
  const ReceiverConfig& r = config.receivers[0];
  CHECK(r.name == "ops");
  CHECK(r.hmac_secret.Reveal() == "s3");
  CHECK(r.matchers.size() == 2);
  CHECK(r.group_by == std::vector<std::string>{"alertname", "model"});
  CHECK(r.group_wait == Millis(10000));
  CHECK(r.group_interval == Millis(300000));  // Alertmanager's defaults
  CHECK(r.repeat_interval == Millis(4LL * 3600 * 1000));
  CHECK_FALSE(r.send_resolved);
}

TEST_CASE("alerting problems are all reported with positions and no secret") {
  testing::MapEnvironment env;
  env.vars["LEAKY"] = "http://hooks.example/x?token=topsecret";
  AlertingConfig config;
  const std::string error = Read(R"(alerting:
  alertmanagers:
    - url: ftp://x
  receivers:
    - name: a
      webhook: {url: "not a url", hmac_secret_env: MISSING}
      matchers: ['severity=~"("']
      group_by: [bad-label]
      group_wiat: 1s
    - name: a
      webhook: {url_env: LEAKY, url: http://x}
)",
                                 env, config);
  CHECK(error.find("f.yml:3:12: \"alerting.alertmanagers[0].url\": expected an http:// or "
                   "https:// URL") != std::string::npos);
  CHECK(error.find("f.yml:6:22:") != std::string::npos);
  CHECK(error.find("environment variable MISSING is not set") != std::string::npos);
  CHECK(error.find("regular expression") != std::string::npos);
  CHECK(error.find("invalid label name \"bad-label\"") != std::string::npos);
  CHECK(error.find("unknown key \"group_wiat\"") != std::string::npos);
  CHECK(error.find("did you mean \"group_wait\"") != std::string::npos);
  CHECK(error.find("duplicate receiver name \"a\"") != std::string::npos);
  CHECK(error.find("give exactly one of url, url_env, url_file") != std::string::npos);
  CHECK(error.find("topsecret") == std::string::npos);
}

TEST_CASE("receivers need a name and a webhook or a template") {
  testing::MapEnvironment env;
  AlertingConfig config;
  const std::string error = Read("alerting:\n  receivers:\n    - group_wait: 1s\n", env, config);
  CHECK(error.find("missing required key \"name\"") != std::string::npos);
  CHECK(error.find("give exactly one of \"webhook\", \"template\"") != std::string::npos);
}

}  // namespace
TEST_CASE("a template receiver reads its URL secret and body, and its template is checked") {
  testing::MapEnvironment env;
  env.vars["SLACK_URL"] = "https://hooks.slack.example/services/T/B/secret";
  env.files["/etc/mp/templates/slack.json.tmpl"] = "{\"text\": {{ toJson .Status }}}";
  env.files["/etc/mp/bad.tmpl"] = "{{ .Status ";
  std::vector<std::string> checked;
  const TemplateCheck check = [&](std::string_view name, std::string_view text) -> Status {
    checked.emplace_back(name);
    if (text.find("}}") == std::string_view::npos) {
      return Fail(Error::InvalidArgument(std::string("template: ") + std::string(name) +
                                         ":1: unclosed action"));
    }
    return {};
  };
  AlertingConfig config;
  CHECK(Read(R"(
alerting:
  receivers:
    - name: chat
      template:
        url_env: SLACK_URL
        body_file: templates/slack.json.tmpl
)",
             env, config, check) == "");
  REQUIRE(config.receivers.size() == 1);
  const ReceiverConfig& chat = config.receivers[0];
  CHECK(chat.webhook.url.Reveal() == "https://hooks.slack.example/services/T/B/secret");
  CHECK(chat.body_template == "{\"text\": {{ toJson .Status }}}");
  CHECK(chat.body_template_name == "slack.json.tmpl");
  CHECK(chat.content_type == "application/json");
  CHECK(checked == std::vector<std::string>{"slack.json.tmpl"});

  AlertingConfig bad;
  const std::string error = Read(R"(
alerting:
  receivers:
    - name: chat
      template:
        url: https://hooks.example/x?token=secret
        body_file: bad.tmpl
        content_type: text/plain
    - name: nobody
      template: {url: https://hooks.example/y}
    - name: both
      webhook: {url: https://hooks.example/z}
      template: {url: https://hooks.example/z, body_file: bad.tmpl}
)",
                                 env, bad, check);
  CHECK(error.find("f.yml:7:20: \"alerting.receivers[0].template.body_file\": /etc/mp/bad.tmpl: "
                   "template: bad.tmpl:1: unclosed action") != std::string::npos);
  CHECK(error.find("\"alerting.receivers[1].template\": missing required key \"body_file\"") !=
        std::string::npos);
  CHECK(error.find("\"alerting.receivers[2]\": give exactly one of \"webhook\", \"template\"") !=
        std::string::npos);
  CHECK(error.find("secret") == std::string::npos);
}

}  // namespace modelpulse::alerting
