// The alert template engine: CheckTemplate (the load-time check), then ExpandTemplate with fixed
// labels, value and external labels, and a `query` function over the tiny source. Errors are
// fine; crashes, hangs and unbounded allocations are not.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/rules/tiny_source.h"
#include "fuzz/targets.h"
#include "rules/rules.h"

int modelpulse::fuzz::Template(const uint8_t* data, size_t size) {
  static const modelpulse::fuzz::TinySource* const source = new modelpulse::fuzz::TinySource();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!modelpulse::rules::CheckTemplate("fuzz", text).has_value())
    return 0;
  modelpulse::rules::TemplateData template_data;
  template_data.labels = {{"target", "a"}, {"severity", "page"}, {"instance", "h:1"}};
  template_data.value = 0.4321;
  template_data.external_labels = {{"cluster", "c1"}};
  template_data.external_url = "http://monitor.example:9090";
  (void)modelpulse::rules::ExpandTemplate("fuzz", text, template_data,
                                          modelpulse::fuzz::QueryOver(source->overlay));
  return 0;
}
