"""Rules that mean the same in modelpulse and in Prometheus (issue 9 item 2): one rule file over
the probe counters, loaded by modelpulse (which derives modelpulse_probes_total from its probes)
and by a real Prometheus scraping modelpulse's /metrics every second, fires the same alert, with
the same labels, within one scrape plus one evaluation interval, for the same simulated
throttling. Also: `export rules` passes that file through and promtool accepts the output, and
/metrics passes `promtool check metrics`. And a latency SLO (issue 10): its generated burn-rate
rules over the ttft histogram page in both, with the same labels, within a probe of each other.
Real processes on loopback, bounded waits."""
import datetime
import json
import os
import shutil
import subprocess
import sys
import unittest

from harness import BINARY, Daemon, free_port, http_get, requires_peer, wait_until

HEALTHY_SECONDS = 10

SCENARIO = f"""
seed: 7
endpoints:
  - name: flappy
    protocol: openai
    first_token_ms: 10
    inter_token_ms: 2
    output_tokens: 3
    phases:
      - name: healthy
        duration: {HEALTHY_SECONDS}s
      - name: throttling
        duration: 600s
        errors: [{{kind: rate_limit, probability: 1.0}}]
"""

# Portable: counters only. 2 s of `for` so "pending" and "firing" are both seen.
RULES = """
groups:
  - name: portable
    interval: 1s
    rules:
      - alert: Throttled
        expr: |
          sum without (outcome) (rate(modelpulse_probes_total{outcome="throttled"}[10s]))
            / sum without (outcome) (rate(modelpulse_probes_total[10s]))
          >= 0.5
        for: 2s
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.target }} throttled"
"""


def config(sim_port):
    return f"""
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: flappy
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/flappy/v1
rule_files: [rules.yaml]
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


def parse_time(text):
    # Go's RFC 3339 with up to nanoseconds; Python takes microseconds.
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    return datetime.datetime.fromisoformat(text).timestamp()


def firing(url, alertname="Throttled", **labels):
    status, body = http_get(url)
    if status != 200:
        return None
    alerts = [a for a in json.loads(body)["data"]["alerts"]
              if a["labels"].get("alertname") == alertname and a["state"] == "firing"
              and all(a["labels"].get(k) == v for k, v in labels.items())]
    return alerts or None


# A latency SLO whose every probe is slow (300 ms to the first token, threshold 250 ms): its
# burn-rate rules read the ttft histogram (increase of _count and of the bucket le="0.25").
LATENCY_SCENARIO = """
seed: 3
endpoints:
  - name: slow
    protocol: openai
    first_token_ms: 300
    inter_token_ms: 2
    output_tokens: 3
    phases: [{name: slow}]
"""


def latency_config(sim_port):
    return f"""
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: slow
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/slow/v1
global: {{evaluation_interval: 1s}}
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
slos:
  - name: first-token
    selector: {{model: gpt-4o-mini}}
    kind: latency
    latency: {{phase: first_token, threshold: 250ms}}
    objective: 99
"""


@requires_peer(shutil.which("prometheus") and shutil.which("promtool"), "prometheus and promtool")
class PortableRulesTest(unittest.TestCase):
    def setUp(self):
        self.daemon = Daemon(config(free_port()),
                             {"scenario.yaml": SCENARIO, "rules.yaml": RULES})
        self.prom = None

    def tearDown(self):
        if self.prom is not None and self.prom.poll() is None:
            self.prom.terminate()
            self.prom.wait(timeout=20)
        if getattr(self, "prom_log", None):
            self.prom_log.close()
        self.daemon.close()
        shutil.rmtree(self.daemon.dir, ignore_errors=True)

    def start_prometheus(self, rule_file):
        self.prom_port = free_port()
        folder = os.path.join(self.daemon.dir, "prometheus")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "prometheus.yml"), "w") as f:
            # job and instance dropped from the scraped series: the alert's labels are then the
            # target's own, as inside modelpulse.
            f.write(f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
rule_files: [{rule_file}]
scrape_configs:
  - job_name: modelpulse
    static_configs: [{{targets: ["127.0.0.1:{self.daemon.port}"]}}]
    metric_relabel_configs:
      - {{action: labeldrop, regex: "job|instance"}}
""")
        self.prom_log = open(os.path.join(folder, "log"), "wb")
        self.prom = subprocess.Popen(
            ["prometheus", f"--config.file={folder}/prometheus.yml",
             f"--storage.tsdb.path={folder}/data", f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=self.prom_log, stderr=subprocess.STDOUT)

    def test_same_alert_in_modelpulse_and_prometheus(self):
        # The file Prometheus loads is modelpulse's own export of its configuration.
        exported = os.path.join(self.daemon.dir, "exported.yml")
        run = subprocess.run([BINARY, "export", "rules", f"--config.file={self.daemon.config}",
                              f"--output={exported}", "--strict"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("exported 1 rules, refused 0", run.stderr)
        check = subprocess.run(["promtool", "check", "rules", exported],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        self.daemon.start()
        self.start_prometheus(exported)
        ours_url = self.daemon.url("/api/v1/alerts")
        theirs_url = f"http://127.0.0.1:{self.prom_port}/api/v1/alerts"
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.prom_port}/-/ready")[0] == 200,
                   timeout=30, what="Prometheus ready")
        found = {}

        def both_firing():
            for name, url in (("modelpulse", ours_url), ("prometheus", theirs_url)):
                if name not in found:
                    alerts = firing(url)
                    if alerts:
                        found[name] = alerts
            return len(found) == 2
        wait_until(both_firing, timeout=60, interval=0.2, what="Throttled firing in both")
        ours, theirs = found["modelpulse"], found["prometheus"]
        self.assertEqual(len(ours), 1, ours)
        self.assertEqual(len(theirs), 1, theirs)
        self.assertEqual(ours[0]["labels"], theirs[0]["labels"])
        self.assertEqual(ours[0]["labels"]["target"], "flappy")
        self.assertEqual(ours[0]["annotations"]["summary"], "flappy throttled")
        self.assertEqual(ours[0]["annotations"]["summary"], theirs[0]["annotations"]["summary"])
        # Went pending within one scrape (1 s) plus one evaluation (1 s) of each other; the
        # probes' own duration and the writer's lag are well under that.
        ours_at, theirs_at = parse_time(ours[0]["activeAt"]), parse_time(theirs[0]["activeAt"])
        self.assertLessEqual(abs(ours_at - theirs_at), 2.0,
                             f"activeAt modelpulse {ours[0]['activeAt']} "
                             f"prometheus {theirs[0]['activeAt']}")

        # /metrics with the new families passes promtool's exposition check.
        status, text = http_get(self.daemon.url("/metrics"))
        self.assertEqual(status, 200)
        for family in ("modelpulse_probes_total", "modelpulse_probe_ttft_seconds_bucket",
                       "modelpulse_probe_duration_seconds_bucket",
                       "modelpulse_probe_output_tokens_per_second_bucket"):
            self.assertIn(family + "{", text)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

        # The engine's counters over the stored probes agree with the exported ones: both count
        # every probe since this daemon (and its database) started; the few probes that finished
        # between the two reads, or are not committed yet, make the difference.
        def exported_total():
            return sum(v for (name, _), v in self.daemon.metrics().items()
                       if name == "modelpulse_probes_total")
        before = exported_total()
        query = subprocess.run(
            [BINARY, "query", "sum(modelpulse_probes_total)", f"--storage.path={self.daemon.db}"],
            capture_output=True, text=True, timeout=30)
        after = exported_total()
        self.assertEqual(query.returncode, 0, query.stderr)
        engine = float(query.stdout.split("@")[0].split()[-1])
        self.assertGreaterEqual(engine, before - 3, query.stdout)
        self.assertLessEqual(engine, after, query.stdout)
        print(f"\nactiveAt modelpulse {ours[0]['activeAt']} prometheus {theirs[0]['activeAt']} "
              f"(|diff| {abs(ours_at - theirs_at):.3f} s); probes_total /metrics {before:g}..{after:g}, "
              f"engine {engine:g}", file=sys.stderr)

    def test_same_latency_slo_page_in_modelpulse_and_prometheus(self):
        # The generated latency SLO rules, exported (portable), loaded by Prometheus over the
        # scraped histograms; modelpulse evaluates its own (embedded) file over the histograms
        # it derives from the stored probes. The same page fires in both with the same labels.
        self.daemon.write_config(latency_config(free_port()))
        with open(os.path.join(self.daemon.dir, "scenario.yaml"), "w") as f:
            f.write(LATENCY_SCENARIO)
        exported = os.path.join(self.daemon.dir, "exported.yml")
        run = subprocess.run([BINARY, "export", "rules", f"--config.file={self.daemon.config}",
                              f"--output={exported}", "--strict"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("exported 25 rules, refused 0", run.stderr)
        with open(exported) as f:
            self.assertIn('modelpulse_probe_ttft_seconds_bucket{model="gpt-4o-mini",le="0.25"}',
                          f.read())
        check = subprocess.run(["promtool", "check", "rules", exported],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        # Prometheus first, scraping (and failing) before the daemon is up: a counter's
        # increase() cannot see what happened before its first scrape, min_probes counts those
        # probes, and Prometheus applies new targets only every 5 s, so a late first scrape
        # pages late.
        self.start_prometheus(exported)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.prom_port}/-/ready")[0] == 200,
                   timeout=30, what="Prometheus ready")

        def scraped_once():
            status, body = http_get(f"http://127.0.0.1:{self.prom_port}/api/v1/targets")
            return status == 200 and any(t["health"] != "unknown" for t in
                                         json.loads(body)["data"]["activeTargets"])
        wait_until(scraped_once, timeout=30, what="Prometheus's first scrape")
        self.daemon.start()
        urls = {"modelpulse": self.daemon.url("/api/v1/alerts"),
                "prometheus": f"http://127.0.0.1:{self.prom_port}/api/v1/alerts"}
        found = {}

        def both_firing():
            for name, url in urls.items():
                if name not in found:
                    alerts = firing(url, "SLOErrorBudgetBurn", severity="page")
                    if alerts:
                        found[name] = alerts
            return len(found) == 2
        # min_probes 10 at one probe a second, plus a scrape and an evaluation.
        wait_until(both_firing, timeout=90, interval=0.2, what="the latency page in both")
        ours, theirs = found["modelpulse"], found["prometheus"]
        self.assertEqual(len(ours), 1, ours)
        self.assertEqual(len(theirs), 1, theirs)
        self.assertEqual(ours[0]["labels"], theirs[0]["labels"])
        self.assertEqual(ours[0]["labels"]["slo"], "first-token")
        self.assertEqual(ours[0]["labels"]["slo_kind"], "latency")
        ours_at, theirs_at = parse_time(ours[0]["activeAt"]), parse_time(theirs[0]["activeAt"])
        # Both need ten probes in the 1h window; increase() extrapolates over probe instants
        # in modelpulse and over scrapes in Prometheus, so they may differ by a probe or two.
        self.assertLessEqual(abs(ours_at - theirs_at), 5.0,
                             f"activeAt modelpulse {ours[0]['activeAt']} "
                             f"prometheus {theirs[0]['activeAt']}")
        print(f"\nlatency page activeAt modelpulse {ours[0]['activeAt']} prometheus "
              f"{theirs[0]['activeAt']} (|diff| {abs(ours_at - theirs_at):.3f} s)",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
