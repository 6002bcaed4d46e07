#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder (modelpulse-*.json). Edit here, then run
`python3 config/grafana/generate.py`; tests/integration/test_grafana.py runs every panel and
variable query of the written files against a real Prometheus and against modelpulse's own API.

Every query works on either data source, a Prometheus that scrapes modelpulse's /metrics or
modelpulse's own /api/v1 over its stored history, because it reads only series both serve:
  - counters and histograms (modelpulse_probes_total{outcome}, modelpulse_probe_ttft_seconds,
    modelpulse_probe_duration_seconds, modelpulse_probe_output_tokens_per_second) for rates,
    shares and quantiles: per-probe exact in both, whatever the scrape interval;
  - the last-probe gauges (probe_*) for "the last probe said" views only, never averaged over
    time (a scrape sees one probe in several, the embedded engine every probe);
  - alert state as modelpulse_alerts (scraped) or ALERTS (stored by modelpulse's rule engine).
The one exception is cost: modelpulse_estimated_cost_dollars_total exists on /metrics only.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
# The target labels every panel filters on; vantage is an external label a scraping Prometheus
# adds (see provisioning/prometheus-scrape.yml) and absent from modelpulse's own API: "All" is
# ".*", which also matches a series without the label.
SEL = 'vantage=~"$vantage", model=~"$model", cloud=~"$cloud", region=~"$region"'
RI = "$__rate_interval"


def share(outcome, by, sel=SEL):
    """Share of probes with `outcome` among all probes, by `by`; 0 where none had it."""
    total = f"sum by ({by}) (rate(modelpulse_probes_total{{{sel}}}[{RI}]))"
    part = f'sum by ({by}) (rate(modelpulse_probes_total{{{sel}, outcome=~"{outcome}"}}[{RI}]))'
    return f"({part} or 0 * {total}) / {total}"


def quantile(q, family, by, sel=SEL):
    return (f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({family}_bucket{{{sel}}}[{RI}])))")


def variable(name, query, multi=True, include_all=True, label=None):
    return {
        "name": name, "label": label or name, "type": "query", "datasource": DS,
        "definition": query, "query": {"query": query, "refId": f"{name}-var"},
        "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all,
        "allValue": ".*" if include_all else None,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "options": [], "hide": 0,
    }


def datasource_variable():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": [],
            "regex": ""}


def common_variables(single_model=False):
    return [
        datasource_variable(),
        variable("vantage", "label_values(probe_success, vantage)"),
        variable("model", 'label_values(probe_success{vantage=~"$vantage"}, model)',
                 multi=not single_model, include_all=not single_model),
        variable("cloud", 'label_values(probe_success{vantage=~"$vantage", model=~"$model"}, cloud)'),
        variable("region", 'label_values(probe_success{vantage=~"$vantage", model=~"$model", '
                           'cloud=~"$cloud"}, region)'),
    ]


class Panels:
    def __init__(self):
        self.panels = []
        self.y = 0
        self.x = 0

    def add(self, title, targets, kind="timeseries", unit=None, width=12, height=8,
            description="", instant=False, extra=None):
        if self.x + width > 24:
            self.x = 0
            self.y += height
        panel = {
            "id": len(self.panels) + 1, "title": title, "type": kind, "datasource": DS,
            "description": description,
            "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
            "targets": [{"datasource": DS, "expr": expr, "legendFormat": legend,
                         "refId": chr(ord("A") + i), "instant": instant, "range": not instant,
                         **({"format": "table"} if kind == "table" else {})}
                        for i, (expr, legend) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "options": {},
        }
        if extra:
            panel.update(extra)
        self.panels.append(panel)
        self.x += width
        if self.x >= 24:
            self.x = 0
            self.y += height


def dashboard(uid, title, description, variables, panels, tags=()):
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["modelpulse", *tags], "timezone": "", "editable": True,
        "schemaVersion": 37, "version": 1, "graphTooltip": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"title": "modelpulse", "type": "dashboards", "tags": ["modelpulse"],
                   "asDropdown": True}],
        "panels": panels.panels,
    }


def overview():
    p = Panels()
    by = "model, cloud"
    p.add("Availability (share of probes ok)", [(share("ok", by), "{{model}} on {{cloud}}")],
          unit="percentunit", description="Probes with outcome ok among all probes, per model and "
          "cloud, from modelpulse_probes_total.")
    p.add("Throttled share", [(share("throttled", by), "{{model}} on {{cloud}}")],
          unit="percentunit", description="Probes refused with a rate limit (HTTP 429).")
    p.add("First token p50", [(quantile(0.5, "modelpulse_probe_ttft_seconds", by),
                               "{{model}} on {{cloud}}")], unit="s")
    p.add("First token p95", [(quantile(0.95, "modelpulse_probe_ttft_seconds", by),
                               "{{model}} on {{cloud}}")], unit="s")
    p.add("Rate-limit headroom (last probe)",
          [(f"min by ({by}, resource) (probe_ratelimit_remaining_ratio{{{SEL}}})",
            "{{model}} on {{cloud}} {{resource}}")], unit="percentunit",
          description="Remaining over limit of the provider's request and token rate limits, "
                      "as the last probe read them from the response headers.")
    p.add("Every model on every cloud, over the range", [
        (f"sum by ({by}) (increase(modelpulse_probes_total{{{SEL}, outcome=\"ok\"}}[$__range]))"
         f" / sum by ({by}) (increase(modelpulse_probes_total{{{SEL}}}[$__range]))", "availability"),
        (f"histogram_quantile(0.5, sum by (le, {by}) "
         f"(increase(modelpulse_probe_ttft_seconds_bucket{{{SEL}}}[$__range])))", "ttft p50"),
        (f"histogram_quantile(0.95, sum by (le, {by}) "
         f"(increase(modelpulse_probe_ttft_seconds_bucket{{{SEL}}}[$__range])))", "ttft p95"),
        (f"min by ({by}) (probe_ratelimit_remaining_ratio{{{SEL}}})", "headroom"),
    ], kind="table", width=24, instant=True,
        extra={"transformations": [{"id": "merge", "options": {}}]})
    return dashboard("modelpulse-overview", "modelpulse / Overview",
                     "Every model on every cloud: availability, first token, throttling and "
                     "rate-limit headroom.", common_variables(), p)


def target_detail():
    sel = 'vantage=~"$vantage", target="$target"'
    p = Panels()
    p.add("Timing phases (last probe)", [
        (f'{{__name__=~"probe_(dns|connect|tls|first_byte|ttft|first_answer_token|duration)_seconds", {sel}}}',
         "{{__name__}}")], unit="s",
        description="Each phase of the last probe, from the request start (dns, connect and tls "
                    "alone).")
    p.add("First token and total, p50 / p95", [
        (quantile(0.5, "modelpulse_probe_ttft_seconds", "target", sel), "first token p50"),
        (quantile(0.95, "modelpulse_probe_ttft_seconds", "target", sel), "first token p95"),
        (quantile(0.5, "modelpulse_probe_duration_seconds", "target", sel), "total p50"),
        (quantile(0.95, "modelpulse_probe_duration_seconds", "target", sel), "total p95"),
    ], unit="s")
    p.add("Output tokens per second", [
        (quantile(0.5, "modelpulse_probe_output_tokens_per_second", "target", sel), "p50"),
        (quantile(0.05, "modelpulse_probe_output_tokens_per_second", "target", sel), "p5"),
    ], unit="none", description="Output tokens per second after the first token; p5 is the "
                                "slow tail.")
    p.add("Outcome mix", [
        (f"sum by (outcome) (increase(modelpulse_probes_total{{{sel}}}[{RI}]))", "{{outcome}}")],
        unit="short", extra={"fieldConfig": {"defaults": {"custom": {"stacking": {
            "mode": "normal"}, "drawStyle": "bars"}}, "overrides": []}})
    p.add("Rate-limit headroom (last probe)", [
        (f"probe_ratelimit_remaining_ratio{{{sel}}}", "{{resource}}")], unit="percentunit")
    p.add("Retry-After asked (last throttled probe)", [
        (f"probe_retry_after_seconds{{{sel}}}", "retry-after")], unit="s")
    p.add("Estimated cost over the range", [
        (f"sum(increase(modelpulse_estimated_cost_dollars_total{{{sel}}}[$__range]))", "cost")],
        kind="stat", unit="currencyUSD", instant=True,
        description="From the target's configured price. On /metrics only: modelpulse's own "
                    "API has no cost series, so this panel is empty on that data source.")
    p.add("HTTP status (last probe)", [(f"probe_http_status_code{{{sel}}}", "status")],
          kind="stat", unit="none", instant=True)
    variables = common_variables() + [
        variable("target", 'label_values(probe_success{vantage=~"$vantage", model=~"$model", '
                           'cloud=~"$cloud", region=~"$region"}, target)',
                 multi=False, include_all=False)]
    return dashboard("modelpulse-target", "modelpulse / Target detail",
                     "One target: each timing phase, tokens per second, outcomes, rate limits "
                     "and cost.", variables, p)


def clouds():
    p = Panels()
    by = "cloud"
    p.add("Availability by cloud", [(share("ok", by), "{{cloud}}")], unit="percentunit")
    p.add("Throttled or overloaded share by cloud",
          [(share("throttled", by), "{{cloud}} throttled"),
           (share("overloaded", by), "{{cloud}} overloaded")], unit="percentunit")
    p.add("First token p50 by cloud",
          [(quantile(0.5, "modelpulse_probe_ttft_seconds", by), "{{cloud}}")], unit="s")
    p.add("First token p95 by cloud",
          [(quantile(0.95, "modelpulse_probe_ttft_seconds", by), "{{cloud}}")], unit="s")
    p.add("Output tokens per second p50 by cloud",
          [(quantile(0.5, "modelpulse_probe_output_tokens_per_second", by), "{{cloud}}")],
          unit="none")
    p.add("Total duration p95 by cloud",
          [(quantile(0.95, "modelpulse_probe_duration_seconds", by), "{{cloud}}")], unit="s")
    return dashboard("modelpulse-clouds", "modelpulse / Clouds side by side",
                     "One model on every cloud that serves it.", common_variables(True), p)


def alerts():
    sel = SEL
    # modelpulse_alerts is what a Prometheus scrapes from /metrics; ALERTS is what modelpulse's
    # own API serves (its rule engine stores it as Prometheus's does). Either answers.
    active = f"(modelpulse_alerts{{{sel}}} or ALERTS{{{sel}}})"
    p = Panels()
    p.add("Pending and firing alerts", [
        (f"max by (alertname, alertstate, severity, target, model, cloud) ({active})", "")],
        kind="table", width=24, instant=True)
    p.add("Active alerts over time", [
        (f"count by (alertstate) (max by (alertname, alertstate, target, model, cloud) ({active}))",
         "{{alertstate}}")], unit="short", width=24,
        extra={"fieldConfig": {"defaults": {"custom": {"stacking": {"mode": "normal"}}},
                               "overrides": []}})
    return dashboard("modelpulse-alerts", "modelpulse / Alerts",
                     "Alerts of modelpulse's rule engine, pending and firing.",
                     common_variables(), p, tags=("alerts",))


def main():
    for name, board in [("overview", overview()), ("target", target_detail()),
                        ("clouds", clouds()), ("alerts", alerts())]:
        with open(os.path.join(HERE, f"modelpulse-{name}.json"), "w") as f:
            json.dump(board, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
