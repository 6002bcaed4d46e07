"""Many vantage points (issue 9 item 7): two modelpulse instances on one machine, each naming
itself with `global: external_labels: {vantage: a|b}`, probe the same simulator, where one
endpoint throttles. One real Prometheus scrapes both (each scrape target labelled with its
vantage: modelpulse does not put external labels on /metrics, as Prometheus's own exporters do
not) and evaluates the rules `modelpulse export rules` writes; both modelpulse instances and that
Prometheus send their alerts to one real Alertmanager. Checked: Alertmanager holds exactly one
Throttled alert per vantage (two, from four senders: the same labels from modelpulse and from
Prometheus are one alert), grouped by alertname into one notification to a webhook; Prometheus
fires the same alerts, with the same labels, from the exported rules. Real processes on
loopback, 1 s probe/scrape/evaluation intervals, bounded waits."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (BINARY, Daemon, Simulator, free_port, http_get, requires_peer, series,
                     wait_until)
from test_alerting import Receiver
import test_portable_rules

HEALTHY_SECONDS = 3

SCENARIO = f"""
seed: 11
endpoints:
  - name: steady
    protocol: openai
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 3
  - name: flappy
    protocol: openai
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 3
    phases:
      - name: healthy
        duration: {HEALTHY_SECONDS}s
      - name: throttling
        duration: 600s
        errors: [{{kind: rate_limit, probability: 1.0}}]
"""

# Portable (counters only), so Prometheus evaluates it over the scraped counters and modelpulse
# over its stored probes with the same meaning: test_portable_rules' rule, whose agreement that
# test checks.
RULES = test_portable_rules.RULES

# group_wait spans the seconds between the first and the last sender's first post (about two
# here, more on a loaded machine), so the first notification already holds every alert of the
# group.
AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 10s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{port}/am
        send_resolved: true
"""


def daemon_config(vantage, sim_port, am_port):
    return f"""
global:
  external_labels: {{vantage: {vantage}}}
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: steady
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/steady/v1
  - name: flappy
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/flappy/v1
rule_files: [rules.yaml]
alerting:
  alertmanagers:
    - url: http://127.0.0.1:{am_port}
"""


def prometheus_config(rule_file, daemons, am_port):
    # The vantage comes from the scrape config, the way an operator labels each instance;
    # job and instance are dropped so an alert's labels are the target's plus its vantage,
    # exactly what modelpulse sends (its own labels plus its external labels).
    targets = "\n".join(
        f'      - {{targets: ["127.0.0.1:{d.port}"], labels: {{vantage: {v}}}}}'
        for v, d in daemons.items())
    return f"""
global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
rule_files: [{rule_file}]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]
scrape_configs:
  - job_name: modelpulse
    static_configs:
{targets}
    metric_relabel_configs:
      - {{action: labeldrop, regex: "job|instance"}}
"""


def throttled(alerts):
    return [a for a in alerts if a["labels"].get("alertname") == "Throttled"]


@requires_peer(shutil.which("prometheus") and shutil.which("prometheus-alertmanager"),
               "prometheus and prometheus-alertmanager")
class ManyVantagePoints(unittest.TestCase):
    def setUp(self):
        self.procs, self.logs, self.daemons = [], [], {}
        self.dir = tempfile.mkdtemp(prefix="modelpulse-vantage-")
        self.sim = None
        self.receiver = None

    def tearDown(self):
        for d in self.daemons.values():
            d.close()
            shutil.rmtree(d.dir, ignore_errors=True)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in self.logs:
            f.close()
        if self.sim is not None:
            self.sim.close()
        if self.receiver is not None:
            self.receiver.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        self.logs.append(log)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def test_two_vantages_one_prometheus_one_alertmanager(self):
        am_port, prom_port, hook_port = free_port(), free_port(), free_port()
        self.receiver = Receiver(hook_port)
        with open(os.path.join(self.dir, "am.yml"), "w") as f:
            f.write(AM_CONFIG.format(port=hook_port))
        self.spawn("alertmanager", [
            "prometheus-alertmanager", f"--config.file={self.dir}/am.yml",
            f"--storage.path={self.dir}/am-data", f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address="])
        am = f"http://127.0.0.1:{am_port}"

        # One simulator for both instances, so both see the throttling start together.
        self.sim = Simulator(SCENARIO)
        for vantage in ("a", "b"):
            self.daemons[vantage] = Daemon(daemon_config(vantage, self.sim.port, am_port),
                                           {"rules.yaml": RULES})

        # Prometheus loads modelpulse's own export of its configuration (the same for a and b).
        exported = os.path.join(self.dir, "exported.yml")
        run = subprocess.run([BINARY, "export", "rules",
                              f"--config.file={self.daemons['a'].config}",
                              f"--output={exported}", "--strict"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("exported 1 rules, refused 0", run.stderr)

        wait_until(lambda: http_get(am + "/-/ready")[0] == 200, timeout=20,
                   what="alertmanager ready")
        for d in self.daemons.values():
            d.start()
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(prometheus_config(exported, self.daemons, am_port))
        self.spawn("prometheus", [
            "prometheus", f"--config.file={self.dir}/prometheus.yml",
            f"--storage.tsdb.path={self.dir}/prom-data",
            f"--web.listen-address=127.0.0.1:{prom_port}"])
        prom = f"http://127.0.0.1:{prom_port}"
        wait_until(lambda: http_get(prom + "/-/ready")[0] == 200, timeout=30,
                   what="Prometheus ready")
        started = time.monotonic()

        def am_alerts():
            return throttled(json.loads(http_get(am + "/api/v2/alerts")[1]))

        def prom_firing():
            alerts = json.loads(http_get(prom + "/api/v1/alerts")[1])["data"]["alerts"]
            return [a for a in throttled(alerts) if a["state"] == "firing"]

        wait_until(lambda: len(prom_firing()) == 2, timeout=60, interval=0.5,
                   what="Throttled firing in Prometheus for both vantages")
        wait_until(lambda: len(am_alerts()) == 2, timeout=30, interval=0.5,
                   what="two Throttled alerts in Alertmanager")

        # modelpulse names its vantage in what it sends, not on /metrics: the scrape config
        # above is what labels the scraped series.
        metrics = self.daemons["a"].metrics()
        self.assertTrue(any(name == "modelpulse_probes_total" for name, _ in metrics))
        self.assertFalse(any(k == "vantage" for _, labels in metrics for k, _ in labels))

        # Both modelpulse instances fire it too, each from its own stored probes.
        for d in self.daemons.values():
            ours = json.loads(http_get(d.url("/api/v1/alerts"))[1])["data"]["alerts"]
            ours = [a for a in throttled(ours) if a["state"] == "firing"]
            self.assertEqual(len(ours), 1, ours)
            self.assertEqual(ours[0]["labels"]["target"], "flappy")

        # Every sender has posted by now (Prometheus resends each evaluation, modelpulse
        # within its resend delay); the alerts still number two.
        def prometheus_sent():
            status, text = http_get(prom + "/metrics")
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("prometheus_notifications_sent_total"))
        wait_until(lambda: prometheus_sent() >= 1, timeout=20, what="Prometheus sent alerts")
        for vantage, d in self.daemons.items():
            wait_until(lambda: series(d.metrics(), "modelpulse_notifications_total",
                                      receiver="alertmanager/0", result="sent"),
                       timeout=20, what=f"modelpulse {vantage} posted to Alertmanager")
        in_am = am_alerts()
        self.assertEqual(len(in_am), 2, in_am)
        self.assertEqual(sorted(a["labels"]["vantage"] for a in in_am), ["a", "b"])
        for a in in_am:
            self.assertEqual(a["status"]["state"], "active")
            self.assertEqual(a["labels"]["target"], "flappy")
            self.assertEqual(a["labels"]["severity"], "warning")
            self.assertNotIn("job", a["labels"])
            self.assertNotIn("instance", a["labels"])
        # Prometheus's alerts from the exported rules carry exactly the labels modelpulse sent.
        self.assertEqual(sorted(json.dumps(a["labels"], sort_keys=True) for a in prom_firing()),
                         sorted(json.dumps(a["labels"], sort_keys=True) for a in in_am))

        # One group (alertname), one notification holding both vantages' alerts, and no
        # second one while nothing changes (two group intervals plus slack).
        def notifications():
            return [json.loads(r["body"]) for r in self.receiver.delivered() if r["path"] == "/am"]
        wait_until(notifications, timeout=30, what="Alertmanager's notification")
        time.sleep(6)
        sent = notifications()
        self.assertEqual(len(sent), 1, [m["alerts"] for m in sent])
        message = sent[0]
        self.assertEqual(message["status"], "firing")
        self.assertEqual(message["groupLabels"], {"alertname": "Throttled"})
        self.assertEqual(sorted(a["labels"]["vantage"] for a in message["alerts"]), ["a", "b"])
        self.assertEqual(message["commonLabels"]["target"], "flappy")
        self.assertNotIn("vantage", message["commonLabels"])
        print(f"\nboth vantages alerting through one Alertmanager {time.monotonic() - started:.1f} s "
              f"after Prometheus was ready; Prometheus sent {prometheus_sent():g} alert posts",
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
