"""SLOs end to end (issue 10): a simulator scenario with an outage and a throttling window, the
daemon probing it every second with an availability SLO, the generated burn-rate alert firing,
modelpulse_slo_* on /metrics, and `modelpulse report` whose figures equal what this test computes
independently from the SQLite rows (read with Python's sqlite3, not through modelpulse)."""
import json
import math
import os
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import BINARY, Daemon, free_port, series, wait_until

SCENARIO = """
seed: 11
endpoints:
  - name: steady
    protocol: openai
    first_token_ms: {distribution: uniform, min: 20, max: 120}
    inter_token_ms: 3
    output_tokens: 5
    phases: [{name: healthy}]
  - name: flaky
    protocol: openai
    first_token_ms: {distribution: uniform, min: 20, max: 120}
    inter_token_ms: 3
    output_tokens: 5
    phases:
      - {name: healthy, duration: 3s}
      - {name: outage, duration: 5s, errors: [{kind: server_error_500, probability: 1.0}]}
      - {name: throttling, duration: 4s, errors: [{kind: rate_limit, probability: 1.0}]}
      - {name: recovered}
"""


def config(sim_port):
    return f"""
global:
  evaluation_interval: 1s
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: m@steady
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/steady/v1
    labels: {{cloud: east}}
  - name: m@flaky
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/flaky/v1
    labels: {{cloud: west}}
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
slos:
  - name: m-availability
    selector: {{model: m}}
    kind: availability
    objective: 99.9
    window: 30d
"""

LATENCY_SLO = """  - name: m-first-token
    selector: {{model: m}}
    kind: latency
    latency: {{phase: first_token, threshold: {threshold}}}
    objective: 99
"""

OK, THROTTLED, QUOTA, OVERLOADED, AUTH = 0, 1, 2, 3, 6


def run(*args, timeout=60):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)


def type7(values, q):
    v = sorted(values)
    h = q * (len(v) - 1)
    lo = math.floor(h)
    if lo + 1 >= len(v):
        return v[-1]
    return v[lo] + (h - lo) * (v[lo + 1] - v[lo])


class SloEndToEnd(unittest.TestCase):
    def setUp(self):
        self.sim_port = free_port()
        self.daemon = Daemon(config(self.sim_port), {"scenario.yaml": SCENARIO})
        self.daemon.start()

    def tearDown(self):
        self.daemon.close()

    def test_burn_alert_metrics_and_report_agree_with_the_rows(self):
        d = self.daemon
        # The page fires once the outage gave the 1h and 5m windows two failures or more.
        wait_until(lambda: series(d.metrics(), "modelpulse_alerts", alertname="SLOErrorBudgetBurn",
                                  severity="page", alertstate="firing"),
                   timeout=40, what="the SLO's page")
        # Past the throttling phase (3 + 5 + 4 s) plus a few recovered probes.
        wait_until(lambda: sum(series(d.metrics(), "modelpulse_probes_total", target="m@flaky",
                              outcome="ok").values()) >= 6,
                   timeout=40, what="recovered probes")
        # The SLO figures are recomputed at most every 15 s.
        wait_until(lambda: series(d.metrics(), "modelpulse_slo_burn_rate", slo="m-availability",
                                  window="5m"), timeout=40, what="the SLO figures")
        metrics = d.metrics()
        self.assertEqual(list(series(metrics, "modelpulse_slo_objective_ratio",
                                     slo="m-availability").values()), [0.999])
        burn_5m = series(metrics, "modelpulse_slo_burn_rate", slo="m-availability", window="5m")
        self.assertEqual(len(burn_5m), 1)
        self.assertGreater(list(burn_5m.values())[0], 14.4)
        events = list(series(metrics, "modelpulse_slo_events_total", slo="m-availability").values())
        good = list(series(metrics, "modelpulse_slo_good_total", slo="m-availability").values())
        self.assertGreater(events[0], good[0])

        # The report runs beside the daemon (read-only) ...
        beside = run("report", "--storage.path", d.db, "--config.file", d.config,
                     "--format", "json", "--from", "0")
        self.assertEqual(beside.returncode, 0, beside.stderr)
        self.assertEqual(d.stop(), 0)

        # ... and after it, compared with the rows.
        end = int(time.time()) + 60
        out = run("report", "--storage.path", d.db, "--config.file", d.config, "--format", "json",
                  "--from", "0", "--to", str(end))
        self.assertEqual(out.returncode, 0, out.stderr)
        report = json.loads(out.stdout)
        db = sqlite3.connect(d.db)
        rows = db.execute("SELECT t.name, p.start_ms, p.outcome, p.ttft_s, p.total_s, "
                          "p.request_id FROM probes p JOIN targets t ON t.id = p.target_id "
                          "ORDER BY t.name, p.start_ms").fetchall()
        by_target = {}
        for name, start, outcome, ttft, total, request_id in rows:
            by_target.setdefault(name, []).append((start, outcome, ttft, total, request_id))
        got = {t["name"]: t for t in report["targets"]}
        self.assertEqual(set(got), {"m@steady", "m@flaky"})
        flaky = by_target["m@flaky"]
        self.assertGreaterEqual(sum(1 for r in flaky if r[1] == 8), 3, "the outage was probed")
        self.assertGreaterEqual(sum(1 for r in flaky if r[1] == THROTTLED), 2,
                                "the throttling was probed")
        for name, probes in by_target.items():
            with self.subTest(target=name):
                t = got[name]
                bad = sum(1 for p in probes if p[1] not in (OK, QUOTA, AUTH))
                good = sum(1 for p in probes if p[1] == OK)
                self.assertEqual(t["probes"], len(probes))
                self.assertEqual(t["bad"], bad)
                self.assertEqual(t["good"], good)
                self.assertAlmostEqual(t["availability"], good / (good + bad), places=12)
                minutes = {}
                for p in probes:
                    minutes.setdefault(p[0] // 60000, []).append(p[1] not in (OK, QUOTA, AUTH))
                self.assertEqual(t["downtime_minutes"], sum(1 for v in minutes.values() if all(v)))
                self.assertAlmostEqual(t["throttled_share"],
                                       sum(1 for p in probes if p[1] == THROTTLED) / len(probes),
                                       places=12)
                ttft = [p[2] for p in probes if p[1] == OK and p[2] is not None]
                total = [p[3] for p in probes if p[1] == OK]
                # From the probe summaries' sketches (exact before them): within their 1 %.
                for q, key in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                    for field, values in (("first_token_seconds", ttft), ("total_seconds", total)):
                        want = type7(values, q)
                        self.assertLessEqual(abs(t[field][key] - want), 0.01 * want + 1e-12,
                                             (field, key))
        # The SLO over both targets, and the incident with the outage's request ids behind it.
        slo = report["slos"][0]
        all_probes = [p for probes in by_target.values() for p in probes]
        bad = sum(1 for p in all_probes if p[1] not in (OK, QUOTA, AUTH))
        events = sum(1 for p in all_probes if p[1] not in (QUOTA, AUTH))
        self.assertEqual((slo["events"], slo["bad"]), (events, bad))
        self.assertFalse(slo["met"])
        self.assertAlmostEqual(slo["budget_consumed"], bad / (events * 0.001), places=6)
        incidents = [i for i in got["m@flaky"]["incidents"]
                     if i["alertname"] == "SLOErrorBudgetBurn"
                     and i["labels"].get("severity") == "page"]
        self.assertEqual(len(incidents), 1, got["m@flaky"]["incidents"])
        evidence = {p["request_id"] for p in incidents[0]["failed_probes"]}
        outage_ids = {p[4] for p in flaky if p[1] == 8 and p[4]}
        self.assertTrue(outage_ids, "the simulator sent request ids")
        self.assertTrue(outage_ids <= evidence, (outage_ids, evidence))
        for fmt in ("table", "markdown", "csv"):
            text = run("report", "--storage.path", d.db, "--format", fmt, "--from", "0")
            self.assertEqual(text.returncode, 0, text.stderr)
            self.assertIn("m@flaky", text.stdout)


LATENCY_SCENARIO = """
seed: 5
endpoints:
  - name: fast
    protocol: openai
    first_token_ms: {distribution: uniform, min: 20, max: 80}
    inter_token_ms: 3
    output_tokens: 5
    phases: [{name: healthy}]
  - name: slow
    protocol: openai
    first_token_ms: {distribution: uniform, min: 150, max: 450}
    inter_token_ms: 3
    output_tokens: 5
    phases:
      - {name: mixed, errors: [{kind: server_error_500, probability: 0.3}]}
"""


def latency_config(sim_port):
    return f"""
global:
  evaluation_interval: 1s
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: m@fast
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/fast/v1
  - name: m@slow
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/slow/v1
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
slos:
  - name: m-total
    selector: {{model: m}}
    kind: latency
    latency: {{phase: total, threshold: 250ms}}
    objective: 99
  - name: m-first-token
    selector: {{model: m}}
    kind: latency
    latency: {{phase: first_token, threshold: 250ms}}
    objective: 99
"""


class SloLatencyEndToEnd(unittest.TestCase):
    """A latency SLO's generated burn-rate rules over the histograms, in the embedded engine,
    and modelpulse_slo_* counting exactly the probes those histograms observe: successful ones,
    good when at most the threshold (the bucket le="0.25"). m@slow's 500s have a total time
    but are no latency event."""

    def setUp(self):
        self.daemon = Daemon(latency_config(free_port()), {"scenario.yaml": LATENCY_SCENARIO})
        self.daemon.start()

    def tearDown(self):
        self.daemon.close()

    def test_latency_page_fires_and_slo_counters_equal_the_histograms(self):
        d = self.daemon
        for slo in ("m-total", "m-first-token"):
            wait_until(lambda: series(d.metrics(), "modelpulse_alerts",
                                      alertname="SLOErrorBudgetBurn", severity="page", slo=slo,
                                      slo_kind="latency", alertstate="firing"),
                       timeout=60, what=f"the latency page of {slo}")
        wait_until(lambda: sum(series(d.metrics(), "modelpulse_probes_total", target="m@slow",
                                      outcome="server_error").values()) >= 2,
                   timeout=60, what="failed probes of m@slow")
        # One scrape: the SLO counters and the histograms move under the same lock per probe.
        metrics = d.metrics()
        for slo, family in (("m-total", "modelpulse_probe_duration_seconds"),
                            ("m-first-token", "modelpulse_probe_ttft_seconds")):
            with self.subTest(slo=slo):
                events = series(metrics, "modelpulse_slo_events_total", slo=slo)
                good = series(metrics, "modelpulse_slo_good_total", slo=slo)
                self.assertEqual(len(events), 1, events)
                observed = sum(series(metrics, family + "_count", model="m").values())
                under = sum(series(metrics, family + "_bucket", model="m", le="0.25").values())
                self.assertEqual(list(events.values())[0], observed)
                self.assertEqual(list(good.values())[0], under)
                self.assertGreater(observed, under, "some probes were slow")
                self.assertGreater(under, 0, "some probes were fast")
        ok = sum(series(metrics, "modelpulse_probes_total", model="m", outcome="ok").values())
        self.assertEqual(sum(series(metrics, "modelpulse_probe_duration_seconds_count",
                                    model="m").values()), ok)


class SloCommands(unittest.TestCase):
    def test_report_refuses_a_missing_database_and_creates_none(self):
        missing = os.path.join(tempfile.mkdtemp(), "none.db")
        out = run("report", "--storage.path", missing, "--config.file", "/nonexistent.yml")
        self.assertEqual(out.returncode, 2)
        out = run("report", "--storage.path", missing)
        self.assertEqual(out.returncode, 1, out.stderr)  # as `query`
        self.assertIn("does not exist", out.stderr)
        self.assertFalse(os.path.exists(missing))

    def test_exported_slo_rules_pass_promtool(self):
        folder = tempfile.mkdtemp()
        cfg = os.path.join(folder, "m.yml")
        with open(cfg, "w") as f:
            f.write(config(free_port()).replace("simulator:", "# simulator:")
                    .replace("scenario.yaml", "x"))
        rules = os.path.join(folder, "slo.rules.yml")
        out = run("export", "slo-rules", "--config.file", cfg, "-o", rules)
        self.assertEqual(out.returncode, 0, out.stderr)
        check = subprocess.run(["promtool", "check", "rules", rules], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("SUCCESS: 25 rules found", check.stdout)
        # A latency SLO has rules too, over the histogram bucket of its threshold, in
        # `export slo-rules` (embedded) and `export rules` (portable).
        with open(cfg, "a") as f:
            f.write(LATENCY_SLO.format(threshold="500ms"))
        out = run("export", "slo-rules", "--config.file", cfg, "-o", rules)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(rules) as f:
            text = f.read()
        self.assertIn('modelpulse_probe_ttft_seconds_bucket{model="m",le="0.5"}[1h]', text)
        check = subprocess.run(["promtool", "check", "rules", rules], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("SUCCESS: 50 rules found", check.stdout)
        portable = os.path.join(folder, "portable.yml")
        out = run("export", "rules", "--config.file", cfg, f"--output={portable}", "--strict")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("exported 50 rules, refused 0", out.stderr)
        with open(portable) as f:
            self.assertIn('slo:m-first-token', f.read())
        check = subprocess.run(["promtool", "check", "rules", portable], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        ours = run("check", "rules", rules)
        self.assertEqual(ours.returncode, 0, ours.stdout + ours.stderr)
        checked = run("check", "config", cfg)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn("slo m-availability: availability 99.9% over 30d", checked.stdout)

    def test_check_config_refuses_a_latency_threshold_between_buckets(self):
        folder = tempfile.mkdtemp()
        cfg = os.path.join(folder, "m.yml")
        text = (config(free_port()).replace("simulator:", "# simulator:").replace("scenario.yaml", "x")
                + LATENCY_SLO.format(threshold="400ms"))
        with open(cfg, "w") as f:
            f.write(text)
        line = text.splitlines().index("    latency: {phase: first_token, threshold: 400ms}") + 1
        checked = run("check", "config", cfg)
        self.assertNotEqual(checked.returncode, 0, checked.stdout)
        self.assertIn(f'm.yml:{line}:46: "latency.threshold": 400ms is not a bound of the latency '
                      "histograms, which the SLO's burn-rate rules read (valid: 50ms, 100ms, "
                      "250ms, 500ms, 1s, 2s, 3s, 5s, 10s, 20s, 30s, 1m)",
                      checked.stdout + checked.stderr)


if __name__ == "__main__":
    unittest.main()
