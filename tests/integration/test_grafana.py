"""The shipped Grafana dashboards (config/grafana/) against both data sources they are written
for: every panel query and every variable query of every dashboard runs without error and
returns data against a real Prometheus (Debian's, on loopback) scraping a running demo every
second, and against modelpulse's own /api/v1 over the same run."""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import Daemon, SOURCE_ROOT, free_port, http_get, requires_peer, series, wait_until
import test_demo

DASHBOARDS = sorted(glob.glob(os.path.join(SOURCE_ROOT, "config", "grafana", "*.json")))
PROMETHEUS = shutil.which("prometheus")

# Grafana's interval macros, as a dashboard over the last minute at a 2 s resolution sends them.
MACROS = {"$__rate_interval": "30s", "$__interval": "2s", "$__range": "60s"}
# Single-valued variables take this value when the variable query offers it.
PREFERRED = {"model": "gpt-4o-mini", "target": "gpt-4o-mini@azure-east"}
# Queries that read a series modelpulse's own API does not serve: they must still run, and are
# empty there, for the reason given.
EMPTY_ON_MODELPULSE = {
    "modelpulse_estimated_cost_dollars_total":
        "cost is a /metrics counter only; the stored history has no price",
}
# The counters and histograms the rates, shares and quantiles read. /metrics has
# modelpulse_probes_total; the histograms, and the engine's view of all four over the stored
# history (what modelpulse's own API answers), come with issue 9 item 2 (branch h-counters).
# Without them those panels fail with this reason, never silently.
COUNTERS = ("modelpulse_probes_total", "modelpulse_probe_ttft_seconds",
            "modelpulse_probe_duration_seconds", "modelpulse_probe_output_tokens_per_second")
COUNTERS_MISSING = ("no data: reads {names}, which {source} does not serve: the counters and "
                    "histograms of issue 9 item 2 (branch h-counters) are not in this build")
# label_values(probe_success, vantage): vantage is an external label, which a scraping
# Prometheus adds from its scrape config and which modelpulse's own API does not add to its
# series (nor does Prometheus's to its own); the variable is then empty and "All" (.*) applies.
EMPTY_VARIABLES_ON_MODELPULSE = {"vantage"}


def demo_config(sim_port, scenario_path):
    text = test_demo.demo_config(sim_port)
    text = text.replace(f"{test_demo.CONFIG_DIR}/scenarios/demo.yaml", scenario_path)
    # Rules every second, so alerts go pending within the test; a price, so cost is counted.
    text = text.replace("global:\n", "global:\n  evaluation_interval: 1s\n", 1)
    assert text.count("    base_url: /azure-east\n") == 1
    text = text.replace("    base_url: /azure-east\n", "    base_url: /azure-east\n    price: "
                        "{input_per_million: 0.15, output_per_million: 0.60}\n")
    return text


def demo_scenario():
    with open(os.path.join(test_demo.CONFIG_DIR, "scenarios", "demo.yaml")) as f:
        text = f.read()
    # Azure throttles after 3 s instead of a minute.
    assert "{name: healthy, duration: 60s}" in text
    text = text.replace("{name: healthy, duration: 60s}", "{name: healthy, duration: 3s}")
    # The copy lives in a temp folder: its key file stays in config/scenarios/.
    return text.replace(" keys/", f" {test_demo.CONFIG_DIR}/scenarios/keys/")


def get_json(url, params, timeout=30):
    query = urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(f"{url}?{query}", timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def regex_escape(value):
    # Grafana's escaping of a multi-value variable for a Prometheus regex matcher, inside a
    # PromQL string (so each regex backslash is doubled).
    return re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\\\1", value)


def substitute(expr, values):
    for macro, text in MACROS.items():
        expr = expr.replace(macro, text)
    # Longest names first ($target before a shorter prefix).
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


def panel_targets(board):
    for panel in board["panels"]:
        for inner in [panel] + panel.get("panels", []):
            for target in inner.get("targets", []):
                yield inner["title"], target


class Source:
    """One data source: Prometheus's or modelpulse's HTTP API at `base`."""

    def __init__(self, name, base):
        self.name, self.base = name, base

    def label_values(self, selector, label, start, end):
        status, body = get_json(self.base + "/api/v1/series",
                                {"match[]": selector, "start": start, "end": end})
        if status != 200 or body.get("status") != "success":
            raise AssertionError(f"{self.name}: series {selector}: {status} {body}")
        return sorted({s[label] for s in body["data"] if label in s})

    def query(self, expr, instant, start, end):
        if instant:
            status, body = get_json(self.base + "/api/v1/query", {"query": expr, "time": end})
        else:
            status, body = get_json(self.base + "/api/v1/query_range",
                                    {"query": expr, "start": start, "end": end, "step": 2})
        if status != 200 or body.get("status") != "success":
            raise AssertionError(f"{self.name}: {expr}: {status} {body}")
        return body["data"]["result"]


@requires_peer(PROMETHEUS, "prometheus (Debian package prometheus)")
class DashboardsOnBothDataSources(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="modelpulse-grafana-")
        scenario = os.path.join(cls.tmp, "scenario.yaml")
        with open(scenario, "w") as f:
            f.write(demo_scenario())
        cls.daemon = Daemon(demo_config(free_port(), scenario))
        cls.prometheus = None
        cls.daemon.start()
        cls.prom_port = free_port()
        with open(os.path.join(cls.tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: modelpulse
    static_configs:
      - targets: ["127.0.0.1:{cls.daemon.port}"]
        labels: {{vantage: demo}}
""")
        cls.prom_log = open(os.path.join(cls.tmp, "prometheus.log"), "wb")
        cls.prometheus = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cls.tmp}/prometheus.yml",
             f"--storage.tsdb.path={cls.tmp}/tsdb",
             f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
            stdout=cls.prom_log, stderr=subprocess.STDOUT)
        cls.prom = Source("prometheus", f"http://127.0.0.1:{cls.prom_port}")
        cls.ours = Source("modelpulse", cls.daemon.url(""))
        wait_until(lambda: http_get(cls.prom.base + "/-/ready")[0] == 200, timeout=30,
                   what="prometheus ready")
        started = time.time()
        # Azure throttled for a while (a pending ModelThrottled), and every target probed often
        # enough for a 30 s rate in both sources.
        wait_until(lambda: series(cls.daemon.metrics(), "modelpulse_alerts",
                                  alertname="ModelThrottled"),
                   timeout=60, what="ModelThrottled pending")
        wait_until(lambda: cls.prom.query('modelpulse_alerts{alertname="ModelThrottled"}', True,
                                          0, time.time()),
                   timeout=20, what="prometheus scraped the alert")
        time.sleep(max(0.0, started + 20 - time.time()))
        cls.end = time.time()
        cls.start = cls.end - 40

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus:
            cls.prometheus.terminate()
            try:
                cls.prometheus.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.prometheus.kill()
                cls.prometheus.wait()
            cls.prom_log.close()
        cls.daemon.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def resolve_variables(self, board, source):
        """Runs each variable query in order, as Grafana does, and returns the values the
        panels are rendered with: every value offered (a regex alternation, as "All" without an
        allValue would give) for multi-value variables, the preferred or first one otherwise."""
        values = {"datasource": "x"}
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = substitute(var["query"]["query"], values)
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
            self.assertIsNotNone(match, f"{var['name']}: unsupported variable query {query}")
            selector, label = match.groups()
            with self.subTest(dashboard=board["uid"], source=source.name, variable=var["name"]):
                found = source.label_values(selector, label, self.start, self.end)
                if source is self.ours and var["name"] in EMPTY_VARIABLES_ON_MODELPULSE:
                    self.assertEqual(found, [], f"{var['name']} on modelpulse's API")
                else:
                    self.assertTrue(found, f"{var['name']}: {query} is empty on {source.name}")
            if not found:
                values[var["name"]] = ".*"
            elif var.get("multi") or var.get("includeAll"):
                values[var["name"]] = "(" + "|".join(regex_escape(v) for v in found) + ")"
            else:
                preferred = PREFERRED.get(var["name"])
                values[var["name"]] = preferred if preferred in found else found[0]
        return values

    def check_dashboards(self, source):
        self.assertEqual(len(DASHBOARDS), 4, DASHBOARDS)
        checked = 0
        for path in DASHBOARDS:
            with open(path) as f:
                board = json.load(f)
            self.assertGreaterEqual(board["schemaVersion"], 36)
            names = {v["name"] for v in board["templating"]["list"]}
            self.assertTrue({"datasource", "model", "cloud", "region", "vantage"} <= names,
                            f"{path} variables {names}")
            values = self.resolve_variables(board, source)
            for title, target in panel_targets(board):
                self.assertEqual(target["datasource"]["uid"], "${datasource}", title)
                expr = substitute(target["expr"], values)
                self.assertNotIn("$", expr, f"{title}: a variable left in {expr}")
                with self.subTest(dashboard=board["uid"], panel=title, source=source.name,
                                  expr=expr):
                    result = source.query(expr, target.get("instant", False), self.start,
                                          self.end)
                    checked += 1
                    reason = next((why for name, why in EMPTY_ON_MODELPULSE.items()
                                   if name in expr), None)
                    if source is self.ours and reason:
                        self.assertEqual(result, [], f"expected empty on modelpulse: {reason}")
                    elif not result:
                        missing = [n for n in COUNTERS if n in expr and
                                   not source.query(f"count({{__name__=~\"{n}(_bucket)?\"}})",
                                                    True, self.start, self.end)]
                        self.fail(COUNTERS_MISSING.format(names=", ".join(missing),
                                                          source=source.name)
                                  if missing else f"no data on {source.name}")
        return checked

    def test_every_query_has_data_on_prometheus(self):
        self.assertGreater(self.check_dashboards(self.prom), 20)

    def test_every_query_has_data_on_modelpulse_api(self):
        self.assertGreater(self.check_dashboards(self.ours), 20)

    def test_discovery_lists_what_prometheus_scraped(self):
        """Grafana's metric browser and label-value variables over either data source: every
        probe series and counter or histogram family Prometheus scraped from /metrics is listed
        by modelpulse's API over the same window, with the same metadata."""
        window = {"start": self.start, "end": self.end}

        def data(source, path, params):
            status, body = get_json(source.base + path, params)
            self.assertEqual((status, body.get("status")), (200, "success"), body)
            return body["data"]

        stored = ("probe_", "modelpulse_probes_total", "modelpulse_probe_ttft_seconds_",
                  "modelpulse_probe_duration_seconds_",
                  "modelpulse_probe_output_tokens_per_second_")
        theirs = {n for n in data(self.prom, "/api/v1/label/__name__/values", window)
                  if n.startswith(stored)}
        ours = set(data(self.ours, "/api/v1/label/__name__/values", window))
        self.assertIn("modelpulse_probes_total", theirs)
        self.assertIn("modelpulse_probe_ttft_seconds_bucket", theirs)
        self.assertEqual(theirs - ours, set())
        their_meta = data(self.prom, "/api/v1/metadata", {})
        our_meta = data(self.ours, "/api/v1/metadata", {})
        for family in ("probe_success", "probe_ttft_seconds", "modelpulse_probes_total",
                       "modelpulse_probe_ttft_seconds", "modelpulse_probe_duration_seconds",
                       "modelpulse_probe_output_tokens_per_second"):
            self.assertEqual(our_meta.get(family), their_meta.get(family), family)
        # Label values of the families, as a dashboard variable reads them. An outcome first
        # seen in the last scrape interval may be in modelpulse's history only.
        for label, selector in (("outcome", "modelpulse_probes_total"),
                                ("le", "modelpulse_probe_ttft_seconds_bucket"),
                                ("target", "modelpulse_probe_output_tokens_per_second_count")):
            params = dict(window, **{"match[]": selector})
            theirs = set(data(self.prom, f"/api/v1/label/{label}/values", params))
            ours = set(data(self.ours, f"/api/v1/label/{label}/values", params))
            self.assertTrue(theirs, selector)
            self.assertEqual(theirs - ours, set(), selector)
            if label == "le":
                self.assertEqual(theirs, ours)

    def test_provisioning_names_the_dashboards_folder_and_both_data_sources(self):
        root = os.path.join(SOURCE_ROOT, "config", "grafana", "provisioning")
        with open(os.path.join(root, "datasources", "modelpulse.yaml")) as f:
            text = f.read()
        self.assertIn("type: prometheus", text)
        self.assertIn("url: http://127.0.0.1:9464", text)
        self.assertIn("url: http://127.0.0.1:9090", text)
        with open(os.path.join(root, "dashboards", "modelpulse.yaml")) as f:
            self.assertIn("type: file", f.read())


if __name__ == "__main__":
    unittest.main()
