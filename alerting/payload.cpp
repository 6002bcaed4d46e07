#include "alerting/internal/payload.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "alerting/internal/matcher.h"

namespace modelpulse::alerting {
namespace {

using nlohmann::ordered_json;

std::string SecondsPart(int64_t unix_ms) {
  const int64_t floor_ms = unix_ms >= 0 ? unix_ms : unix_ms - 999;
  const auto seconds = static_cast<std::time_t>(floor_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int64_t MillisPart(int64_t unix_ms) { return ((unix_ms % 1000) + 1000) % 1000; }

// model.LabelSet.Before: by size, then by the first differing name or value in name order.
bool LabelsBefore(const Labels& a, const Labels& b) {
  if (a.size() != b.size()) {
    return a.size() < b.size();
  }
  std::vector<std::string> names;
  for (const auto& [name, value] : a) {
    names.push_back(name);
  }
  for (const auto& [name, value] : b) {
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    auto ia = a.find(name);
    if (ia == a.end()) {
      return true;
    }
    auto ib = b.find(name);
    if (ib == b.end()) {
      return false;
    }
    if (ia->second != ib->second) {
      return ia->second < ib->second;
    }
  }
  return false;
}

// dispatch.alertsSlice.Less: job, then instance, then the whole label set.
bool AlertBefore(const AlertEvent& a, const AlertEvent& b) {
  for (const char* key : {"job", "instance"}) {
    auto ia = a.labels.find(key);
    auto ib = b.labels.find(key);
    if (ia == a.labels.end() || ib == b.labels.end()) {
      continue;
    }
    if (ia->second != ib->second) {
      return ia->second < ib->second;
    }
  }
  return LabelsBefore(a.labels, b.labels);
}

Labels Common(const std::vector<AlertEvent>& alerts, Labels AlertEvent::*field) {
  if (alerts.empty()) {
    return {};
  }
  Labels common = alerts.front().*field;
  for (const AlertEvent& alert : alerts) {
    for (auto it = common.begin(); it != common.end();) {
      auto found = (alert.*field).find(it->first);
      if (found == (alert.*field).end() || found->second != it->second) {
        it = common.erase(it);
      } else {
        ++it;
      }
    }
  }
  return common;
}

// Alertmanager drops labels (not annotations) with empty values on receipt.
Labels WithoutEmpty(const Labels& labels) {
  Labels out;
  for (const auto& [name, value] : labels) {
    if (!value.empty()) {
      out.emplace(name, value);
    }
  }
  return out;
}

std::string Dump(const ordered_json& doc) {
  return GoJsonEscapeHtml(doc.dump(-1, ' ', false, ordered_json::error_handler_t::replace));
}

}  // namespace

std::string Fingerprint(const Labels& labels) {
  uint64_t hash = 14695981039346656037ULL;
  const auto add = [&hash](std::string_view text) {
    for (const char c : text) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ULL;
    }
    hash ^= 0xFF;
    hash *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {
    add(name);
    add(value);
  }
  return fmt::format("{:016x}", hash);
}

std::string GoTime(int64_t unix_ms) {
  std::string out = SecondsPart(unix_ms);
  int64_t ms = MillisPart(unix_ms);
  if (ms != 0) {
    std::string fraction = fmt::format(".{:03}", ms);
    while (fraction.back() == '0') {
      fraction.pop_back();
    }
    out += fraction;
  }
  return out + "Z";
}

std::string Rfc3339Millis(int64_t unix_ms) {
  return fmt::format("{}.{:03}Z", SecondsPart(unix_ms), MillisPart(unix_ms));
}

std::string LabelSetString(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) {
      out += ", ";
    }
    first = false;
    out += name + "=" + GoQuote(value);
  }
  return out + "}";
}

std::string QuoteMeta(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string GoJsonEscapeHtml(std::string json) {
  std::string out;
  out.reserve(json.size());
  for (const char c : json) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string WebhookPayload(const WebhookMessage& message, int64_t now_ms) {
  std::vector<AlertEvent> alerts = message.alerts;
  for (AlertEvent& alert : alerts) {
    alert.labels = WithoutEmpty(alert.labels);
  }
  std::stable_sort(alerts.begin(), alerts.end(), AlertBefore);
  int64_t truncated = 0;
  if (message.max_alerts > 0 && static_cast<int64_t>(alerts.size()) > message.max_alerts) {
    truncated = static_cast<int64_t>(alerts.size()) - message.max_alerts;
    alerts.resize(static_cast<size_t>(message.max_alerts));
  }
  bool any_firing = false;
  ordered_json items = ordered_json::array();
  for (const AlertEvent& alert : alerts) {
    const bool resolved = alert.resolved || alert.ends_at_ms <= now_ms;
    any_firing = any_firing || !resolved;
    ordered_json item;
    item["status"] = resolved ? "resolved" : "firing";
    item["labels"] = alert.labels;
    item["annotations"] = alert.annotations;
    item["startsAt"] = GoTime(alert.starts_at_ms);
    item["endsAt"] = resolved ? GoTime(alert.ends_at_ms) : std::string(kGoZeroTime);
    item["generatorURL"] = alert.generator_url;
    item["fingerprint"] = Fingerprint(alert.labels);
    items.push_back(std::move(item));
  }
  ordered_json doc;
  doc["receiver"] = QuoteMeta(message.receiver);
  doc["status"] = any_firing ? "firing" : "resolved";
  doc["alerts"] = std::move(items);
  doc["groupLabels"] = message.group_labels;
  doc["commonLabels"] = Common(alerts, &AlertEvent::labels);
  doc["commonAnnotations"] = Common(alerts, &AlertEvent::annotations);
  doc["externalURL"] = message.external_url;
  doc["version"] = "4";
  doc["groupKey"] = message.group_key;
  doc["truncatedAlerts"] = truncated;
  return Dump(doc);
}

std::string AlertmanagerPayload(const std::vector<AlertEvent>& alerts) {
  ordered_json doc = ordered_json::array();
  for (const AlertEvent& alert : alerts) {
    ordered_json item;
    item["labels"] = alert.labels;
    item["annotations"] = alert.annotations;
    item["startsAt"] = Rfc3339Millis(alert.starts_at_ms);
    item["endsAt"] = Rfc3339Millis(alert.ends_at_ms);
    item["generatorURL"] = alert.generator_url;
    doc.push_back(std::move(item));
  }
  return Dump(doc);
}

std::string SignatureHeader(const Secret& secret, int64_t unix_s, std::string_view body) {
  const std::string signed_text = fmt::format("{}.{}", unix_s, body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.Reveal().data(), static_cast<int>(secret.Reveal().size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), digest,
       &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return fmt::format("t={},v1={}", unix_s, hex);
}

}  // namespace modelpulse::alerting
