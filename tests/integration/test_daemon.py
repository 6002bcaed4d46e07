"""The daemon and its simulator as real processes on loopback."""
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
import unittest
import urllib.error

from harness import Daemon, free_port, http_get, http_post, series, wait_until
import harness

SCENARIO = """
seed: 7
endpoints:
  - name: fast
    protocol: openai
    first_token_ms: 80
    inter_token_ms: 5
    output_tokens: 6
    phases: [{name: healthy}]
  - name: throttled
    protocol: openai
    first_token_ms: 20
    inter_token_ms: 5
    output_tokens: 4
    phases:
      - name: throttling
        errors: [{kind: rate_limit, probability: 1.0}]
"""


def config(sim_port, interval="1s", extra_targets=""):
    return f"""
global:
  external_labels: {{vantage: it}}
defaults:
  interval: {interval}
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: fast
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/fast/v1
    labels: {{cloud: simfast}}
  - name: throttled
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/throttled/v1
    labels: {{cloud: simslow}}
{extra_targets}
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


def probe_count(daemon, target):
    return sum(series(daemon.metrics(), "modelpulse_probes_total", target=target).values())


class DaemonWithSimulator(unittest.TestCase):
    def setUp(self):
        self.sim_port = free_port()
        self.daemon = Daemon(config(self.sim_port), {"scenario.yaml": SCENARIO},
                             args=["--web.enable-lifecycle"])
        self.daemon.start()

    def tearDown(self):
        self.daemon.close()

    def test_stored_rows_match_what_the_simulator_injected(self):
        wait_until(lambda: probe_count(self.daemon, "fast") >= 3 and
                   probe_count(self.daemon, "throttled") >= 3, timeout=20, what="3 probes each")
        started = time.monotonic()
        self.assertEqual(self.daemon.stop(), 0, "SIGTERM must exit 0")
        self.assertLess(time.monotonic() - started, 10, "graceful stop within its deadline")
        db = sqlite3.connect(self.daemon.db)
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        rows = db.execute(
            "SELECT t.name, p.outcome, p.http_status, p.ttft_s, p.output_tokens "
            "FROM probes p JOIN targets t ON t.id = p.target_id").fetchall()
        fast = [r for r in rows if r[0] == "fast"]
        throttled = [r for r in rows if r[0] == "throttled"]
        self.assertGreaterEqual(len(fast), 3)
        self.assertGreaterEqual(len(throttled), 3)
        for _, outcome, status, ttft, tokens in fast:
            self.assertEqual((outcome, status, tokens), (0, 200, 6))
            # The simulator injects 80 ms before the first token; loopback adds little.
            self.assertGreaterEqual(ttft, 0.080)
            self.assertLess(ttft, 0.080 + 0.1)
        for _, outcome, status, ttft, tokens in throttled:
            self.assertEqual((outcome, status), (1, 429))  # 1 = throttled
            self.assertIsNone(ttft)

    def test_metrics_pass_promtool_and_carry_the_series(self):
        wait_until(lambda: probe_count(self.daemon, "throttled") >= 1 and
                   probe_count(self.daemon, "fast") >= 1, timeout=20, what="probes")
        status, text = http_get(self.daemon.url("/metrics"))
        self.assertEqual(status, 200)
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                               capture_output=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout.decode() + check.stderr.decode())
        m = self.daemon.metrics()
        self.assertEqual(list(series(m, "probe_success", target="fast").values()), [1.0])
        self.assertEqual(list(series(m, "probe_throttled", target="throttled").values()), [1.0])
        self.assertEqual(list(series(m, "probe_http_status_code", target="throttled").values()),
                         [429.0])
        self.assertTrue(series(m, "modelpulse_probes_total", target="throttled",
                               outcome="throttled"))
        (_, label_set), = series(m, "probe_success", target="fast").keys()
        labels = dict(label_set)
        self.assertEqual(labels["cloud"], "simfast")
        self.assertEqual(labels["model"], "gpt-4o-mini")
        self.assertTrue(series(m, "modelpulse_build_info"))

    def test_bad_reload_keeps_the_old_config_probing(self):
        wait_until(lambda: probe_count(self.daemon, "fast") >= 1, what="first probe")
        self.daemon.write_config("targets:\n  - name: [oops\n")
        self.daemon.signal(signal.SIGHUP)
        wait_until(lambda: list(series(self.daemon.metrics(),
                                       "modelpulse_config_last_reload_successful").values())
                   == [0.0], what="reload failure visible")
        before = probe_count(self.daemon, "fast")
        wait_until(lambda: probe_count(self.daemon, "fast") >= before + 2, timeout=15,
                   what="probing continues after a bad reload")
        self.assertIsNone(self.daemon.proc.poll())
        self.assertIn("reload failed", self.daemon.log_text())
        status, body = http_post(self.daemon.url("/-/reload"))
        self.assertEqual(status, 500)
        # A good config with one more target takes effect through the HTTP endpoint.
        self.daemon.write_config(config(self.sim_port, extra_targets=f"""
  - name: added
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{self.sim_port}/fast/v1
"""))
        status, body = http_post(self.daemon.url("/-/reload"))
        self.assertEqual(status, 200, body)
        wait_until(lambda: probe_count(self.daemon, "added") >= 1, what="new target probed")


class SlowTokenCommand(unittest.TestCase):
    """Issue 12: a token command that takes 3 s on every probe of its target (its token lives
    1 ms) used to run on the prober's loop, with the lock /metrics needs held."""
    SLOW = """
  - name: slow
    provider: azure
    model: gpt-4o-mini
    provider_model: gpt-4o-mini
    base_url: http://127.0.0.1:{port}/az
    auth:
      token_command: [sh, -c, "sleep 3; echo slow-command-token"]
      token_command_ttl: 1ms
"""
    AZURE_ENDPOINT = """
  - name: az
    protocol: azure
    first_token_ms: 20
    inter_token_ms: 2
    output_tokens: 3
    phases: [{name: healthy}]
"""

    def setUp(self):
        self.sim_port = free_port()
        slow = self.SLOW.format(port=self.sim_port)
        self.daemon = Daemon(config(self.sim_port, extra_targets=slow),
                             {"scenario.yaml": SCENARIO + self.AZURE_ENDPOINT})
        self.daemon.start()

    def tearDown(self):
        self.daemon.close()

    def test_other_targets_keep_their_schedule_and_metrics_answer(self):
        slowest_scrape = 0.0
        deadline = time.monotonic() + 30
        while probe_count(self.daemon, "slow") < 2:  # 6 s of token commands
            self.assertLess(time.monotonic(), deadline, "two probes of the slow target")
            started = time.monotonic()
            self.assertEqual(http_get(self.daemon.url("/metrics"))[0], 200)
            slowest_scrape = max(slowest_scrape, time.monotonic() - started)
            time.sleep(0.2)
        self.assertLess(slowest_scrape, 1.0, "/metrics answers while a token command runs")
        self.assertEqual(list(series(self.daemon.metrics(), "probe_success",
                                     target="slow").values()), [1.0])
        journal = json.loads(http_get(f"http://127.0.0.1:{self.sim_port}/_simulator/journal")[1])
        fast = sorted(e["received_unix_ms"] for e in journal if e["endpoint"] == "fast")
        self.assertGreaterEqual(len(fast), 5)
        gaps = [(b - a) / 1000.0 for a, b in zip(fast, fast[1:])]
        # Interval 1 s, jitter 10 %, plus 1 s of slack; a loop held by the command gaps >= 3 s.
        self.assertLess(max(gaps), 1.1 + 1.0, f"fast target's gaps {gaps}")
        started = time.monotonic()
        self.assertEqual(self.daemon.stop(), 0)
        self.assertLess(time.monotonic() - started, 10, "SIGTERM within its deadline")


CRASH_RULES = """
groups:
  - name: crash
    interval: 200ms
    rules:
      - alert: Throttled
        expr: probe_throttled == 1
        for: 1s
      - alert: Flapping
        expr: probe_success{target="flaky"} == 0
"""

CRASH_SCENARIO = SCENARIO.replace("first_token_ms: 80", "first_token_ms: 1") + """
  - name: flaky
    protocol: openai
    first_token_ms: 1
    inter_token_ms: 1
    output_tokens: 2
    phases:
      - name: coin
        errors: [{kind: server_error_500, probability: 0.5}]
"""


def throttled_alert(daemon):
    alerts = json.loads(http_get(daemon.url("/api/v1/alerts"))[1])["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == "Throttled"]


def events_committed(db):
    # AUTOINCREMENT's high-water mark: alert events are consumed once sent, their ids never reused.
    row = db.execute("SELECT max(seq) FROM sqlite_sequence WHERE name = 'alert_events'").fetchone()
    return row[0] or 0


class CrashLoop(unittest.TestCase):
    """kill -9 at random moments, 50 times, while 60 targets write 600 probes a second and an
    alert flaps every evaluation: each restart finds an intact database, nothing a scrape had
    counted as written is gone, at most one batch of finished probes is lost, and the firing
    alert keeps the time it became active."""

    ROUNDS = 50
    BATCH_ROWS = 512  # storage's default batch_size: a killed writer loses at most this many

    def test_fifty_kills_lose_at_most_one_batch_and_keep_alert_state(self):
        sim_port = free_port()
        many = "".join(f"""
  - name: load-{i}
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/fast/v1
""" for i in range(60)) + f"""
  - name: flaky
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{sim_port}/flaky/v1
"""
        text = config(sim_port, interval="100ms", extra_targets=many).replace(
            "simulator:", "rule_files: [rules.yaml]\nsimulator:")
        daemon = Daemon(text, {"scenario.yaml": CRASH_SCENARIO, "rules.yaml": CRASH_RULES})
        rng = random.Random(12)
        try:
            daemon.start()
            firing = wait_until(lambda: [a for a in throttled_alert(daemon)
                                         if a["state"] == "firing"], timeout=30,
                                what="Throttled firing")
            active_at = firing[0]["activeAt"]
            # The database is this daemon's own: every row in it was written since its start.
            rows_before = flaps_before = flaps_seen = most_lost = 0
            for round_ in range(self.ROUNDS):
                with self.subTest(round=round_):
                    if round_ > 0:
                        daemon.start()
                        alert = wait_until(lambda: throttled_alert(daemon), timeout=10,
                                           what="Throttled restored")
                        self.assertEqual(alert[0]["activeAt"], active_at)
                        self.assertEqual(alert[0]["state"], "firing")
                    time.sleep(rng.uniform(0.05, 1.2))
                    metrics = daemon.metrics()
                    daemon.proc.send_signal(signal.SIGKILL)
                    daemon.proc.wait(timeout=10)
                    finished = sum(series(metrics, "modelpulse_probes_total").values())
                    written = sum(series(metrics,
                                         "modelpulse_storage_rows_written_total").values())
                    db = sqlite3.connect(daemon.db)
                    self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                    rows_now = db.execute("SELECT count(*) FROM probes").fetchone()[0]
                    stored, rows_before = rows_now - rows_before, rows_now
                    flaps_now = events_committed(db)
                    flaps_seen, flaps_before = flaps_seen + flaps_now - flaps_before, flaps_now
                    db.close()
                    self.assertGreaterEqual(stored, written, "a committed row is gone")
                    self.assertLessEqual(finished - stored, self.BATCH_ROWS,
                                         f"{finished} probes finished, {stored} stored")
                    most_lost = max(most_lost, finished - stored)
            print(f"crash loop: {self.ROUNDS} kills; at most {most_lost:.0f} finished probes "
                  f"lost in one; {rows_before} rows; {flaps_seen} alert events committed")
            self.assertGreater(flaps_seen, self.ROUNDS, "the alert did not change under the kills")
            daemon.start()
            self.assertEqual(throttled_alert(daemon)[0]["activeAt"], active_at)
            self.assertEqual(daemon.stop(), 0)
        finally:
            daemon.close()


RULES = """
groups:
  - name: it
    interval: 1s
    rules:
      - alert: Throttled
        expr: probe_throttled == 1
        for: 12s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.target }} throttled"}
"""


def alert_series(daemon, name):
    return series(daemon.metrics(), name, alertname="Throttled", target="throttled")


class AlertsSurviveRestart(unittest.TestCase):
    def test_pending_alert_keeps_its_active_time_and_fires_on_schedule(self):
        sim_port = free_port()
        text = config(sim_port).replace("simulator:", "rule_files: [rules.yaml]\nsimulator:")
        daemon = Daemon(text, {"scenario.yaml": SCENARIO, "rules.yaml": RULES})
        try:
            daemon.start()
            pending = wait_until(
                lambda: series(daemon.metrics(), "modelpulse_alerts", alertname="Throttled",
                               alertstate="pending"), timeout=20, what="alert pending")
            (_, labels), = pending.keys()
            self.assertEqual(dict(labels)["target"], "throttled")
            # Prometheus's own synthetic names stay off /metrics (the scraping Prometheus
            # writes them itself); the engine still records ALERTS, served by /api/v1/query.
            scraped = daemon.metrics()
            self.assertFalse(series(scraped, "ALERTS") or series(scraped, "ALERTS_FOR_STATE"))
            (active_at,) = alert_series(daemon, "modelpulse_alerts_for_state").values()
            # Stop about half way through `for`, then start again on the same database.
            time.sleep(max(0.0, active_at + 6 - time.time()))
            self.assertEqual(daemon.stop(), 0)
            daemon.start()
            restored = wait_until(lambda: alert_series(daemon, "modelpulse_alerts_for_state"), timeout=10,
                                  what="alert restored")
            self.assertEqual(list(restored.values()), [active_at])
            self.assertTrue(series(daemon.metrics(), "modelpulse_alerts", alertname="Throttled",
                                   alertstate="pending"),
                            "still pending right after the restart")
            # Fires on schedule: `for` after the original active time, not after the restart,
            # and not early. A scrape shows the state of an evaluation made before it returned,
            # so firing seen by then must not be before active_at + 12; pending seen after a
            # scrape started means it had not fired when the scrape began.
            last_pending = None
            deadline = time.monotonic() + 20
            while True:
                before = time.time()
                metrics = daemon.metrics()
                after = time.time()
                if series(metrics, "modelpulse_alerts", alertname="Throttled", alertstate="firing"):
                    break
                if series(metrics, "modelpulse_alerts", alertname="Throttled", alertstate="pending"):
                    last_pending = before
                self.assertLess(time.monotonic(), deadline, "alert never fired")
                time.sleep(0.1)
            self.assertGreaterEqual(after, active_at + 12 - 0.05, "fired before its `for`")
            self.assertIsNotNone(last_pending, "never seen pending after the restart")
            self.assertGreater(last_pending, active_at + 6, "pending not seen near its `for`")
            self.assertLess(after - (active_at + 12), 4.0)
            self.assertIn("alert Throttled firing", daemon.log_text())
        finally:
            daemon.close()



def ready_status(daemon):
    try:
        return http_get(daemon.url("/-/ready"))[0]
    except urllib.error.HTTPError as e:
        return e.code


class StorageFaults(unittest.TestCase):
    def test_deleted_database_makes_the_daemon_unready_and_counts_every_lost_row(self):
        daemon = Daemon(config(free_port()), {"scenario.yaml": SCENARIO}).start()
        try:
            wait_until(lambda: probe_count(daemon, "fast") >= 2, timeout=20, what="probes")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(daemon.db + suffix):
                    os.remove(daemon.db + suffix)
            wait_until(lambda: ready_status(daemon) == 503, timeout=20, what="/-/ready 503")

            def lost():
                return sum(series(daemon.metrics(), "modelpulse_storage_rows_dropped_total",
                                  reason="write_failed").values())
            wait_until(lambda: sum(series(daemon.metrics(),
                                          "modelpulse_storage_write_errors_total").values()) >= 3,
                       timeout=20, what="three failed batches")
            self.assertGreaterEqual(lost(), 3)
            self.assertEqual(list(series(daemon.metrics(), "modelpulse_storage_writable").values()),
                             [0.0])
            self.assertIsNone(daemon.proc.poll(), "the daemon keeps running and probing")
            # Logged once when it starts failing, not once per batch.
            self.assertEqual(daemon.log_text().count("deleted or replaced"), 1, daemon.log_text())
        finally:
            daemon.close()

    def test_corrupt_database_is_refused_at_start_with_what_to_do(self):
        daemon = Daemon(config(free_port()), {"scenario.yaml": SCENARIO})
        try:
            db = sqlite3.connect(daemon.db)
            db.execute("CREATE TABLE filler(x BLOB)")
            db.executemany("INSERT INTO filler VALUES (randomblob(1000))", [()] * 2000)
            db.commit()
            db.close()
            size = os.path.getsize(daemon.db)
            with open(daemon.db, "r+b") as f:
                f.seek(size // 2)
                f.write(b"\x5a" * 8 * 4096)
            proc = subprocess.run(
                [harness.BINARY, "run", f"--config.file={daemon.config}",
                 f"--web.listen-address=127.0.0.1:{daemon.port}", f"--storage.path={daemon.db}"],
                capture_output=True, timeout=30)
            output = (proc.stdout + proc.stderr).decode(errors="replace")
            self.assertNotEqual(proc.returncode, 0, output)
            self.assertIn(daemon.db, output)
            self.assertIn("restore it from a backup", output)
        finally:
            daemon.close()

    def test_read_only_database_is_refused_at_start_with_what_to_do(self):
        # As an unprivileged user (root ignores file modes): a database it may read but not
        # write, in a folder where it cannot create <file>-wal and <file>-shm.
        daemon = Daemon(config(free_port()), {"scenario.yaml": SCENARIO})
        try:
            db = sqlite3.connect(daemon.db)
            db.execute("CREATE TABLE filler(x)")
            db.commit()
            db.close()
            # The build folder may not be reachable by `nobody`; a copy in the test's folder is.
            binary = os.path.join(daemon.dir, "modelpulse")
            shutil.copy(harness.BINARY, binary)
            os.chmod(daemon.dir, 0o755)
            for name in os.listdir(daemon.dir):
                os.chmod(os.path.join(daemon.dir, name), 0o755 if name == "modelpulse" else 0o644)
            proc = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary, "run",
                 f"--config.file={daemon.config}", f"--web.listen-address=127.0.0.1:{daemon.port}",
                 f"--storage.path={daemon.db}"],
                capture_output=True, timeout=30)
            output = (proc.stdout + proc.stderr).decode(errors="replace")
            self.assertEqual(proc.returncode, 1, output)
            self.assertIn(f'cannot open database \\"{daemon.db}\\"', output)
            self.assertIn("the user running modelpulse cannot write the database: give it write "
                          "permission on the file and on its directory", output)
            self.assertNotIn("locking protocol", output)
        finally:
            daemon.close()


if __name__ == "__main__":
    unittest.main()
