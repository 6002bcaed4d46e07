"""Alerts that reach people (issue 8): the daemon's notifications delivered to a webhook that is
down, then fails once, then works; through kill -9; and to a real Alertmanager, whose own webhook
message must equal modelpulse's for the same alert. Real processes on loopback, bounded waits."""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (BINARY, SOURCE_ROOT, Daemon, free_port, http_get, http_post, series,
                     wait_until)

SECRET = "it-hook-secret"


def scenario(throttle_seconds):
    return f"""
seed: 7
endpoints:
  - name: flappy
    protocol: openai
    first_token_ms: 10
    inter_token_ms: 2
    output_tokens: 3
    phases:
      - name: throttling
        duration: {throttle_seconds}s
        errors: [{{kind: rate_limit, probability: 1.0}}]
      - name: healthy
"""


RULES = """
groups:
  - name: it
    interval: 1s
    rules:
      - alert: Throttled
        expr: probe_throttled == 1
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.target }} throttled"
          runbook: "https://runbooks.example/throttled?x=1&y=<2>"
"""


def daemon_config(sim_port, alerting, external_url="http://modelpulse.it:9464"):
    return f"""
global:
  external_labels: {{vantage: it}}
  external_url: {external_url}
defaults:
  interval: 1s
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: flappy
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/flappy/v1
rule_files: [rules.yaml]
alerting:
{alerting}
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


def webhook_receiver(port, name="hook", signed=True):
    return f"""    - name: {name}
      webhook:
        url: http://127.0.0.1:{port}/hook?token=do-not-log-me
        timeout: 2s
{"        hmac_secret_env: HOOK_SECRET" if signed else ""}
      matchers: ['severity=~"warning|critical"']
      group_by: [alertname]
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 1h
"""


class Receiver:
    """A webhook receiver on loopback recording every request; `fail_first` answers the first
    N requests with 500."""

    def __init__(self, port, fail_first=0):
        self.requests = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    failing = outer.fail_first > 0
                    if failing:
                        outer.fail_first -= 1
                    outer.requests.append(
                        {"headers": dict(self.headers), "body": body, "status":
                         500 if failing else 200, "path": self.path})
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self):
        with self.lock:
            return [r for r in self.requests if r["status"] == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def key(request):
    return request["headers"]["Idempotency-Key"]


def verify_signature(request):
    header = request["headers"]["X-Modelpulse-Signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(SECRET.encode(), fields["t"].encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def unique_in_order(requests):
    seen, out = set(), []
    for r in requests:
        if key(r) not in seen:
            seen.add(key(r))
            out.append(r)
    return out


class WebhookDelivery(unittest.TestCase):
    def test_down_then_500_then_200_delivers_everything_in_order_with_stable_keys(self):
        hook_port, sim_port = free_port(), free_port()
        alerting = "  receivers:\n" + webhook_receiver(hook_port)
        daemon = Daemon(daemon_config(sim_port, alerting),
                        {"scenario.yaml": scenario(5), "rules.yaml": RULES},
                        env={"HOOK_SECRET": SECRET})
        receiver = None
        try:
            daemon.start()
            # The receiver is down while the alert fires and resolves.
            wait_until(lambda: "alert Throttled resolved" in daemon.log_text(), timeout=30,
                       what="alert fired and resolved")
            self.assertIn("failed, attempt", daemon.log_text())
            receiver = Receiver(hook_port, fail_first=1)
            wait_until(lambda: len(receiver.delivered()) >= 2, timeout=60,
                       what="both notifications delivered")
            time.sleep(1.5)
            all_requests = list(receiver.requests)
            self.assertEqual(all_requests[0]["status"], 500)
            # The retry after the 500 carries the same key and body.
            retried = [r for r in all_requests[1:] if key(r) == key(all_requests[0])]
            self.assertTrue(retried, "the failed message was retried")
            self.assertEqual(retried[0]["body"], all_requests[0]["body"])
            messages = [json.loads(r["body"]) for r in unique_in_order(receiver.delivered())]
            self.assertEqual([m["status"] for m in messages], ["firing", "resolved"])
            firing = messages[0]
            self.assertEqual(firing["version"], "4")
            self.assertEqual(firing["groupKey"],
                             '{}/{severity=~"warning|critical"}:{alertname="Throttled"}')
            self.assertEqual(firing["externalURL"], "http://modelpulse.it:9464")
            alert = firing["alerts"][0]
            self.assertEqual(alert["labels"]["vantage"], "it")
            self.assertEqual(alert["annotations"]["summary"], "flappy throttled")
            self.assertEqual(alert["endsAt"], "0001-01-01T00:00:00Z")
            self.assertTrue(alert["generatorURL"].startswith(
                "http://modelpulse.it:9464/graph?g0.expr=probe_throttled"))
            self.assertEqual(len(alert["fingerprint"]), 16)
            self.assertEqual(messages[1]["alerts"][0]["fingerprint"], alert["fingerprint"])
            for r in receiver.requests:
                self.assertTrue(verify_signature(r), "signature verifies with Python's hmac")
                self.assertEqual(r["headers"]["Content-Type"], "application/json")
            metrics = http_get(daemon.url("/metrics"))[1]
            self.assertIn('modelpulse_notifications_total{receiver="hook",result="sent"} 2',
                          metrics)
            self.assertIn('modelpulse_notification_queue_length{receiver="hook"} 0', metrics)
            self.assertNotIn("do-not-log-me", daemon.log_text())
            self.assertNotIn(SECRET, daemon.log_text())
            self.assertEqual(daemon.stop(), 0)
        finally:
            if receiver:
                receiver.close()
            daemon.close()

    def test_kill_9_after_the_state_change_delivers_after_restart(self):
        hook_port, sim_port = free_port(), free_port()
        alerting = "  receivers:\n" + webhook_receiver(hook_port, signed=False)
        daemon = Daemon(daemon_config(sim_port, alerting),
                        {"scenario.yaml": scenario(600), "rules.yaml": RULES})
        receiver = None
        try:
            daemon.start()
            wait_until(lambda: "alert Throttled firing" in daemon.log_text(), timeout=30,
                       what="alert firing")

            def pending_keys():
                db = sqlite3.connect(daemon.db)
                try:
                    rows = db.execute("SELECT idempotency_key FROM notifications").fetchall()
                    events = db.execute("SELECT count(*) FROM alert_events").fetchone()[0]
                finally:
                    db.close()
                return [r[0] for r in rows] if rows and events == 0 else None

            keys = wait_until(pending_keys, timeout=10, what="notification in the outbox")
            # Prometheus's alerts API shows it, with its rendered annotations.
            api = json.loads(http_get(daemon.url("/api/v1/alerts"))[1])
            self.assertEqual(api["status"], "success")
            (listed,) = [a for a in api["data"]["alerts"]
                         if a["labels"]["alertname"] == "Throttled"]
            self.assertEqual(listed["state"], "firing")
            self.assertEqual(listed["annotations"]["summary"], "flappy throttled")
            self.assertEqual(listed["value"], "1e+00")
            self.assertTrue(listed["activeAt"].endswith("Z"))
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
            daemon.log.close()
            receiver = Receiver(hook_port)
            daemon.start()
            wait_until(lambda: keys[0] in [key(r) for r in receiver.delivered()], timeout=30,
                       what="the notification queued before kill -9 delivered")
            self.assertEqual(daemon.stop(), 0)
        finally:
            if receiver:
                receiver.close()
            daemon.close()


# The template data, flattened so that Python can rebuild it from the webhook payload.
PROBE_TEMPLATE = """{{ .Receiver }}|{{ .Status }}|{{ .GroupKey }}|{{ .ExternalURL }}|
{{- range .GroupLabels }}{{ . }},{{ end }}|{{ len .Alerts.Firing }}|
{{- range .Alerts }}{{ .Fingerprint }},{{ .StartsAt }},{{ .EndsAt }},{{ .Labels.vantage }},
{{- .Annotations.summary }},{{ .GeneratorURL }};{{ end }}"""


def probe_text(payload, receiver):
    alerts = "".join(f"{a['fingerprint']},{a['startsAt']},{a['endsAt']},{a['labels']['vantage']},"
                     f"{a['annotations']['summary']},{a['generatorURL']};"
                     for a in payload["alerts"])
    firing = sum(1 for a in payload["alerts"] if a["status"] == "firing")
    groups = "".join(v + "," for _, v in sorted(payload["groupLabels"].items()))
    return (f"{receiver}|{payload['status']}|{payload['groupKey']}|{payload['externalURL']}|"
            f"{groups}|{firing}|{alerts}")


def template_receiver(name, body_file, url_line, extra=""):
    return f"""    - name: {name}
      template:
        {url_line}
        body_file: {body_file}
        timeout: 2s
{extra}      group_by: [alertname]
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 1h
"""


class TemplateReceivers(unittest.TestCase):
    def test_bodies_are_what_the_templates_render_from_the_webhook_payload(self):
        hook_port, sim_port = free_port(), free_port()
        with open(os.path.join(SOURCE_ROOT, "config/templates/slack.json.tmpl")) as f:
            slack = f.read()
        alerting = ("  receivers:\n" +
                    webhook_receiver(hook_port, name="raw", signed=False)
                    .replace("/hook?token=do-not-log-me", "/raw")
                    .replace("      matchers: ['severity=~\"warning|critical\"']\n", "") +
                    template_receiver("slack", "slack.json.tmpl", "url_env: SLACK_URL") +
                    template_receiver("probe", "probe.tmpl",
                                      f"url: http://127.0.0.1:{hook_port}/probe",
                                      "        content_type: text/plain; charset=utf-8\n"))
        daemon = Daemon(daemon_config(sim_port, alerting),
                        {"scenario.yaml": scenario(5), "rules.yaml": RULES,
                         "slack.json.tmpl": slack, "probe.tmpl": PROBE_TEMPLATE},
                        env={"SLACK_URL":
                             f"http://127.0.0.1:{hook_port}/slack/T0/B0?token=slack-secret"})
        receiver = Receiver(hook_port)
        try:
            daemon.start()

            def by_path(path):
                return [r for r in unique_in_order(receiver.delivered())
                        if r["path"].startswith(path)]
            wait_until(lambda: all(len(by_path(p)) >= 2 for p in ("/raw", "/slack", "/probe")),
                       timeout=60, what="firing and resolved on all three receivers")
            raw = [json.loads(r["body"]) for r in by_path("/raw")]
            self.assertEqual([m["status"] for m in raw[:2]], ["firing", "resolved"])
            # The template saw exactly the webhook payload's data (receiver name aside).
            probes = by_path("/probe")
            for message, request in zip(raw[:2], probes[:2]):
                self.assertEqual(request["body"].decode(), probe_text(message, "probe"))
                self.assertEqual(request["headers"]["Content-Type"], "text/plain; charset=utf-8")
            slack_messages = [json.loads(r["body"]) for r in by_path("/slack")]
            self.assertEqual(slack_messages[0]["text"], "[FIRING:1] Throttled")
            self.assertEqual(slack_messages[0]["attachments"][0]["color"], "#d00000")
            self.assertIn("*FIRING* flappy throttled", slack_messages[0]["attachments"][0]["text"])
            self.assertEqual(slack_messages[1]["text"], "[RESOLVED:1] Throttled")
            self.assertEqual(by_path("/slack")[0]["path"], "/slack/T0/B0?token=slack-secret")
            self.assertEqual(by_path("/slack")[0]["headers"]["Content-Type"], "application/json")
            metrics = http_get(daemon.url("/metrics"))[1]
            self.assertIn('modelpulse_notifications_total{receiver="slack",result="sent"} 2',
                          metrics)
            # A chat webhook URL is a secret: its path is logged at most, never its query.
            self.assertNotIn("slack-secret", daemon.log_text())
            self.assertEqual(daemon.stop(), 0)
        finally:
            receiver.close()
            daemon.close()

    def test_check_config_reports_a_broken_body_template_with_positions(self):
        alerting = "  receivers:\n" + template_receiver(
            "chat", "broken.tmpl", "url: http://127.0.0.1:9/x")
        daemon = Daemon(daemon_config(free_port(), alerting),
                        {"scenario.yaml": scenario(5), "rules.yaml": RULES,
                         "broken.tmpl": '{"text": {{ toJson .Status }}}\n{"x": {{ .Status }'})
        try:
            check = subprocess.run([BINARY, "check", "config", daemon.config],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 1, check.stdout + check.stderr)
            self.assertIn("alerting.receivers[0].template.body_file", check.stderr)
            self.assertIn("broken.tmpl", check.stderr)
            self.assertRegex(check.stderr, r"modelpulse\.yml:\d+:\d+")
            with open(os.path.join(daemon.dir, "broken.tmpl"), "w") as f:
                f.write(PROBE_TEMPLATE)
            check = subprocess.run([BINARY, "check", "config", daemon.config],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        finally:
            daemon.close()


class AlertingReload(unittest.TestCase):
    def test_receivers_change_on_reload_and_a_bad_config_keeps_the_running_one(self):
        dead_port, live_port, sim_port = free_port(), free_port(), free_port()

        def receiver_at(name, url):
            return webhook_receiver(0, name=name, signed=False).replace(
                "http://127.0.0.1:0/hook?token=do-not-log-me", url)
        first = ("  receivers:\n" + receiver_at("hook", f"http://127.0.0.1:{dead_port}/hook") +
                 receiver_at("gone", f"http://127.0.0.1:{dead_port}/gone"))
        daemon = Daemon(daemon_config(sim_port, first),
                        {"scenario.yaml": scenario(600), "rules.yaml": RULES},
                        args=["--web.enable-lifecycle"])
        receiver = Receiver(live_port)
        try:
            daemon.start()

            def pending():
                db = sqlite3.connect(daemon.db)
                try:
                    return dict(db.execute(
                        "SELECT destination, idempotency_key FROM notifications").fetchall())
                finally:
                    db.close()
            keys = wait_until(lambda: (lambda p: p if len(p) == 2 else None)(pending()),
                              timeout=30, what="a notification pending for each receiver")
            # A bad matcher: the reload fails and both receivers stay as they were.
            daemon.write_config(daemon_config(sim_port, first.replace(
                "severity=~\"warning|critical\"", "severity=~\"(\"")))
            status, _ = http_post(daemon.url("/-/reload"))
            self.assertEqual(status, 500)
            self.assertIn("reload failed, keeping the running configuration", daemon.log_text())
            self.assertEqual(pending(), keys)
            # "hook" moves to a receiver that answers; "gone" is removed; "fresh" is new.
            second = ("  receivers:\n" +
                      receiver_at("hook", f"http://127.0.0.1:{live_port}/hook") +
                      receiver_at("fresh", f"http://127.0.0.1:{live_port}/fresh"))
            daemon.write_config(daemon_config(sim_port, second))
            daemon.signal(signal.SIGHUP)
            wait_until(lambda: keys["hook"] in [key(r) for r in receiver.delivered()], timeout=30,
                       what="the pending notification delivered at the receiver's new URL")
            log = daemon.log_text()
            self.assertIn("alerting reloaded", log)
            self.assertIn('gave up 1 pending notification(s) to \\"gone\\": no longer configured',
                          log)  # logfmt escapes the quotes
            self.assertNotIn("gone", pending())
            metrics = http_get(daemon.url("/metrics"))[1]
            self.assertIn('modelpulse_notifications_total{receiver="gone",result="given_up"} 1',
                          metrics)
            self.assertIn('modelpulse_notification_queue_length{receiver="fresh"}', metrics)
            self.assertEqual(daemon.stop(), 0)
        finally:
            receiver.close()
            daemon.close()


class HangingReceiver(unittest.TestCase):
    def test_a_receiver_that_never_answers_stalls_neither_probing_nor_rules(self):
        hook_port, sim_port = free_port(), free_port()
        # Accepts connections (the kernel's backlog) and never answers a byte.
        hang = socket.socket()
        hang.bind(("127.0.0.1", hook_port))
        hang.listen(64)
        alerting = "  receivers:\n" + webhook_receiver(hook_port, signed=False)
        daemon = Daemon(daemon_config(sim_port, alerting),
                        {"scenario.yaml": scenario(600), "rules.yaml": RULES})
        try:
            daemon.start()
            wait_until(lambda: "alert Throttled firing" in daemon.log_text(), timeout=30,
                       what="alert firing")

            def figures():
                m = daemon.metrics()
                return (sum(series(m, "modelpulse_probes_total").values()),
                        sum(series(m, "modelpulse_rule_group_evaluations_total").values()))
            probes, evaluations = figures()
            # Two request timeouts (2 s each) against the silent receiver.
            wait_until(lambda: daemon.log_text().count("failed, attempt") >= 2, timeout=30,
                       what="two timed-out attempts")
            later_probes, later_evaluations = figures()
            self.assertGreaterEqual(later_probes - probes, 3, "probing went on")
            self.assertGreaterEqual(later_evaluations - evaluations, 3, "rules went on")
            self.assertIn("Timeout was reached", daemon.log_text())
            self.assertEqual(daemon.stop(), 0)
        finally:
            daemon.close()
            hang.close()


AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:{port}/am
        send_resolved: true
"""


class RealAlertmanager(unittest.TestCase):
    def test_alertmanager_receives_firing_then_resolved_and_sends_what_we_send(self):
        am_port, hook_port, sim_port = free_port(), free_port(), free_port()
        external_url = "http://modelpulse.it:9464"
        workdir = tempfile.mkdtemp(prefix="modelpulse-am-")
        with open(os.path.join(workdir, "am.yml"), "w") as f:
            f.write(AM_CONFIG.format(port=hook_port))
        receiver = Receiver(hook_port)
        am_log = open(os.path.join(workdir, "am.log"), "wb")
        am = subprocess.Popen(
            ["prometheus-alertmanager", f"--config.file={workdir}/am.yml",
             f"--storage.path={workdir}/data", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address=", f"--web.external-url={external_url}"],
            stdout=am_log, stderr=subprocess.STDOUT)
        alerting = (f"  alertmanagers:\n    - url: http://127.0.0.1:{am_port}\n"
                    "  receivers:\n" + webhook_receiver(hook_port, signed=False)
                    .replace("/hook?token=do-not-log-me", "/ours")
                    .replace("      matchers: ['severity=~\"warning|critical\"']\n", ""))
        daemon = Daemon(daemon_config(sim_port, alerting, external_url),
                        {"scenario.yaml": scenario(8), "rules.yaml": RULES})
        try:
            wait_until(lambda: http_get(f"http://127.0.0.1:{am_port}/-/ready")[0] == 200,
                       timeout=20, what="alertmanager ready")
            daemon.start()

            def am_alerts():
                return json.loads(http_get(f"http://127.0.0.1:{am_port}/api/v2/alerts")[1])

            firing = wait_until(lambda: [a for a in am_alerts()
                                         if a["labels"].get("alertname") == "Throttled"],
                                timeout=30, what="alert in Alertmanager")
            self.assertEqual(firing[0]["status"]["state"], "active")
            self.assertEqual(firing[0]["labels"]["vantage"], "it")
            self.assertEqual(firing[0]["annotations"]["summary"], "flappy throttled")
            self.assertTrue(firing[0]["generatorURL"].startswith(external_url + "/graph?g0.expr="))

            def resolved_in_am():
                for a in am_alerts():
                    if a["labels"].get("alertname") == "Throttled":
                        return False
                return True
            wait_until(resolved_in_am, timeout=40, what="alert resolved in Alertmanager")

            def both(path):
                return [json.loads(r["body"]) for r in receiver.delivered() if r["path"] == path]
            wait_until(lambda: len(both("/am")) >= 2 and len(both("/ours")) >= 2, timeout=30,
                       what="firing and resolved through both paths")
            ours, theirs = both("/ours"), both("/am")
            for status in ("firing", "resolved"):
                mine = next(m for m in ours if m["status"] == status)
                am_message = next(m for m in theirs if m["status"] == status)
                for field in ("receiver", "status", "groupLabels", "commonLabels",
                              "commonAnnotations", "externalURL", "version", "groupKey",
                              "truncatedAlerts"):
                    self.assertEqual(mine[field], am_message[field], f"{status}: {field}")
                self.assertEqual(len(mine["alerts"]), len(am_message["alerts"]))
                for a, b in zip(mine["alerts"], am_message["alerts"]):
                    for field in ("status", "labels", "annotations", "startsAt", "endsAt",
                                  "generatorURL", "fingerprint"):
                        self.assertEqual(a[field], b[field], f"{status}: alerts[].{field}")
                self.assertEqual(sorted(mine), sorted(am_message), "same top-level fields")
            self.assertEqual(daemon.stop(), 0)
        finally:
            daemon.close()
            receiver.close()
            am.send_signal(signal.SIGTERM)
            try:
                am.wait(timeout=10)
            except subprocess.TimeoutExpired:
                am.kill()
                am.wait()
            am_log.close()
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
