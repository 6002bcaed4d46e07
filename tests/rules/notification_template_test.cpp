// Notification templates (issue 8): the webhook payload version "4" as Alertmanager's template
// data, toJson, and the chat templates shipped under config/templates/, each rendering a firing
// and a resolved group to valid JSON with the fields its service reads.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "rules/rules.h"

namespace modelpulse::rules {
namespace {

// Values a template must escape: quotes, a backslash, newlines, a tab, non-ASCII.
constexpr std::string_view kHostileSummary = "Model \"gpt\\x\" throttled\nsecond line\tend é";

nlohmann::json AlertJson(const std::string& status, const std::string& model,
                         const std::string& summary) {
  return {{"status", status},
          {"labels", {{"alertname", "ModelThrottled"}, {"model", model}, {"severity", "warning"}}},
          {"annotations",
           {{"summary", summary},
            {"description", "429 for 2m on " + model},
            {"runbook_url", "https://runbooks.example/throttled"}}},
          {"startsAt", "2026-11-26T03:02:50Z"},
          {"endsAt", status == "firing" ? "0001-01-01T00:00:00Z" : "2026-11-26T03:12:50Z"},
          {"generatorURL", "http://127.0.0.1:9464/graph?g0.expr=up&g0.tab=1"},
          {"fingerprint", "0123456789abcdef"}};
}

// A group as modelpulse's webhook receiver posts it.
std::string Payload(const std::string& status, const nlohmann::json& alerts) {
  return nlohmann::json{
      {"receiver", "chat"},
      {"status", status},
      {"alerts", alerts},
      {"groupLabels", {{"alertname", "ModelThrottled"}}},
      {"commonLabels", {{"alertname", "ModelThrottled"}, {"severity", "warning"}}},
      {"commonAnnotations", nlohmann::json::object()},
      {"externalURL", "http://127.0.0.1:9464"},
      {"version", "4"},
      {"groupKey", "{}:{alertname=\"ModelThrottled\"}"},
      {"truncatedAlerts", 0}}
      .dump();
}

std::string Firing() {
  return Payload("firing", {AlertJson("firing", "gpt-4o", std::string(kHostileSummary)),
                            AlertJson("firing", "claude", "Model claude throttled")});
}
std::string Resolved() {
  // json::array: a braced list of one json would be that json itself, not a list.
  return Payload("resolved", nlohmann::json::array(
                                 {AlertJson("resolved", "gpt-4o", std::string(kHostileSummary))}));
}

std::string ReadShipped(const std::string& name) {
  std::ifstream in(std::string(MODELPULSE_SOURCE_ROOT) + "/config/templates/" + name);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Renders a shipped template and parses its output, failing the test if either fails.
nlohmann::json RenderShipped(const std::string& name, const std::string& payload) {
  const std::string text = ReadShipped(name);
  auto checked = CheckNotificationTemplate(name, text);
  REQUIRE_MESSAGE(checked.has_value(), (checked ? "" : checked.error().message));
  auto out = ExpandNotificationTemplate(name, text, payload);
  REQUIRE_MESSAGE(out.has_value(), (out ? "" : out.error().message));
  const nlohmann::json parsed = nlohmann::json::parse(*out, nullptr, false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), *out);
  return parsed;
}

std::string Render(std::string_view text, const std::string& payload = Firing()) {
  auto out = ExpandNotificationTemplate("t", text, payload);
  return out ? *out : "ERROR: " + out.error().message;
}

}  // namespace

TEST_CASE("notification templates read the payload as Alertmanager's template data") {
  CHECK(Render("{{ .Status }} {{ .Receiver }} {{ len .Alerts }} {{ .GroupLabels.alertname }}") ==
        "firing chat 2 ModelThrottled");
  CHECK(Render("{{ range .Alerts }}{{ .Labels.model }}={{ .Status }};{{ end }}") ==
        "gpt-4o=firing;claude=firing;");
  CHECK(Render("{{ (index .Alerts 1).Annotations.summary }}") == "Model claude throttled");
  CHECK(Render("{{ .ExternalURL }} {{ .TruncatedAlerts }} {{ $.CommonLabels.severity }}") ==
        "http://127.0.0.1:9464 0 warning");
  CHECK(Render("{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }},{{ end }}") ==
        "alertname:ModelThrottled,severity:warning,");
  const std::string mixed =
      Payload("firing", {AlertJson("firing", "a", "s"), AlertJson("resolved", "b", "s")});
  CHECK(Render("{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }} "
               "{{ range .Alerts.Resolved }}{{ .Labels.model }}{{ end }}",
               mixed) == "1/1 b");
}

TEST_CASE("toJson quotes and escapes so a JSON body stays valid") {
  const std::string out = Render("{{ (index .Alerts 0).Annotations.summary | toJson }}");
  CHECK(out == R"("Model \"gpt\\x\" throttled\nsecond line\tend é")");
  CHECK(nlohmann::json::parse(out).get<std::string>() == kHostileSummary);
  CHECK(Render("{{ toJson .GroupLabels }} {{ toJson .TruncatedAlerts }}") ==
        R"({"alertname":"ModelThrottled"} 0)");
  // toJson is ours, not Prometheus's: alert templates (checked against promtool) do not have it.
  CHECK_FALSE(CheckTemplate("a", "{{ toJson $labels }}"));
  CHECK(CheckNotificationTemplate("a", "{{ toJson .Status }}"));
}

TEST_CASE("notification template errors name the template and its line") {
  auto bad = CheckNotificationTemplate("slack.json.tmpl", "{\n{{ .Status \n");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("slack.json.tmpl") != std::string::npos);
  CHECK_FALSE(CheckNotificationTemplate("t", "{{ nosuchfunction .Status }}"));
  // An unknown field fails at rendering, as Go's does on a struct.
  CHECK(Render("{{ .NoSuchField }}").starts_with("ERROR: "));
  CHECK(Render("{{ .Status }}", "not json").starts_with("ERROR: "));
}

TEST_CASE("shipped Slack template: firing and resolved render to Slack's fields") {
  const nlohmann::json firing = RenderShipped("slack.json.tmpl", Firing());
  CHECK(firing["text"] == "[FIRING:2] ModelThrottled");
  REQUIRE(firing["attachments"].size() == 1);
  const nlohmann::json& attachment = firing["attachments"][0];
  CHECK(attachment["color"] == "#d00000");
  CHECK(attachment["title_link"] == "http://127.0.0.1:9464");
  const std::string text = attachment["text"];
  CHECK(text.find(std::string(kHostileSummary)) != std::string::npos);
  CHECK(text.find("Model claude throttled") != std::string::npos);
  CHECK(text.find("Runbook: https://runbooks.example/throttled") != std::string::npos);
  const nlohmann::json resolved = RenderShipped("slack.json.tmpl", Resolved());
  CHECK(resolved["text"] == "[RESOLVED:1] ModelThrottled");
  CHECK(resolved["attachments"][0]["color"] == "#2eb886");
}

TEST_CASE("shipped Microsoft Teams template: firing and resolved render to an Adaptive Card") {
  const nlohmann::json firing = RenderShipped("teams.json.tmpl", Firing());
  CHECK(firing["type"] == "message");
  REQUIRE(firing["attachments"].size() == 1);
  CHECK(firing["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive");
  const nlohmann::json& card = firing["attachments"][0]["content"];
  CHECK(card["type"] == "AdaptiveCard");
  CHECK(card["version"] == "1.4");
  const nlohmann::json& body = card["body"];
  CHECK(body[0]["text"] == "[FIRING:2] ModelThrottled");
  CHECK(body[0]["color"] == "Attention");
  CHECK(body[1]["text"] == "**FIRING** " + std::string(kHostileSummary));
  // Title, then per alert: its line, its description and its labels as facts.
  REQUIRE(body.size() == 7);
  CHECK(body[3]["type"] == "FactSet");
  CHECK(body[3]["facts"].size() == 3);
  CHECK(body[3]["facts"][1] == nlohmann::json{{"title", "model"}, {"value", "gpt-4o"}});
  CHECK(card["actions"][0]["url"] == "http://127.0.0.1:9464");
  const nlohmann::json resolved = RenderShipped("teams.json.tmpl", Resolved());
  CHECK(resolved["attachments"][0]["content"]["body"][0]["text"] == "[RESOLVED:1] ModelThrottled");
  CHECK(resolved["attachments"][0]["content"]["body"][0]["color"] == "Good");
}

TEST_CASE("shipped Discord template: firing and resolved render to content and embeds") {
  const nlohmann::json firing = RenderShipped("discord.json.tmpl", Firing());
  CHECK(firing["content"] == "[FIRING:2] ModelThrottled");
  CHECK(firing["username"] == "modelpulse");
  REQUIRE(firing["embeds"].size() == 2);
  CHECK(firing["embeds"][0]["title"] == "FIRING: " + std::string(kHostileSummary));
  CHECK(firing["embeds"][0]["color"] == 13631488);
  CHECK(firing["embeds"][0]["description"] == "429 for 2m on gpt-4o");
  CHECK(firing["embeds"][1]["url"] == "http://127.0.0.1:9464/graph?g0.expr=up&g0.tab=1");
  const nlohmann::json resolved = RenderShipped("discord.json.tmpl", Resolved());
  CHECK(resolved["content"] == "[RESOLVED:1] ModelThrottled");
  REQUIRE(resolved["embeds"].size() == 1);
  CHECK(resolved["embeds"][0]["color"] == 3066993);
  // Discord takes at most 10 embeds.
  nlohmann::json many = nlohmann::json::array();
  for (int i = 0; i < 12; ++i) {
    many.push_back(AlertJson("firing", "m" + std::to_string(i), "s"));
  }
  CHECK(RenderShipped("discord.json.tmpl", Payload("firing", many))["embeds"].size() == 10);
}

TEST_CASE("shipped Google Chat template: firing and resolved render to a text message") {
  const nlohmann::json firing = RenderShipped("googlechat.json.tmpl", Firing());
  REQUIRE(firing.size() == 1);
  const std::string text = firing["text"];
  CHECK(text.starts_with("*[FIRING:2] ModelThrottled*\nFIRING: " + std::string(kHostileSummary)));
  CHECK(text.find("<https://runbooks.example/throttled|Runbook>") != std::string::npos);
  const nlohmann::json resolved = RenderShipped("googlechat.json.tmpl", Resolved());
  CHECK(std::string(resolved["text"]).starts_with("*[RESOLVED:1] ModelThrottled*\nRESOLVED: "));
}

}  // namespace modelpulse::rules

namespace modelpulse::rules {

TEST_CASE("Go's lexing: a comment may hold quotes, a field after ') ' is an argument") {
  // The comment's apostrophe is not a quote; Go scans a comment to "*/".
  CHECK(Render("{{/* the group's title */}}x{{- /* it's \"quoted\" */ -}} y") == "xy");
  // "(len .Alerts) .Status" is two arguments; "(index .Alerts 0).Status" a field of the value.
  CHECK(Render("{{ printf \"%d %s\" (len .Alerts) .Status }}") == "2 firing");
  CHECK(Render("{{ (index .Alerts 0).Status }}") == "firing");
  CHECK(ExpandTemplate("t", "{{ printf \"%d %s\" (len $labels) .Labels.a }}",
                       TemplateData{{{"a", "b"}}, 0, {}, ""}) == std::string("1 b"));
}

}  // namespace modelpulse::rules
