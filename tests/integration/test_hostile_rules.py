"""Hostile rule files (issue 12): nothing a rule author writes crashes, stalls or exhausts the
daemon, `check rules` or `query`; promtool gives the same verdicts."""
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import BINARY, Daemon, free_port, http_get, series, wait_until
from test_daemon import SCENARIO, config

# std::regex recursed once per nesting level and overflowed the stack on this (SIGSEGV).
DEEP_REGEX = "(" * 30000 + "a" + ")" * 30000


def rule_file(expr, annotations=""):
    return f"""groups:
  - name: g
    rules:
      - alert: A
        expr: '{expr}'
{annotations}"""


class CheckRules(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="modelpulse-hostile-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_both(self, text):
        path = os.path.join(self.dir, "rules.yaml")
        with open(path, "w") as f:
            f.write(text)
        ours = subprocess.run([BINARY, "check", "rules", path], capture_output=True, text=True,
                              timeout=60)
        promtool = subprocess.run(["promtool", "check", "rules", path], capture_output=True,
                                  text=True, timeout=60)
        return ours, promtool

    def test_deeply_nested_regex_is_refused_not_a_crash(self):
        ours, promtool = self.run_both(rule_file(f'up{{a=~"{DEEP_REGEX}"}}'))
        self.assertEqual(ours.returncode, 1, ours.stdout + ours.stderr)  # not a signal
        self.assertIn("nests too deeply", ours.stdout + ours.stderr)
        self.assertNotEqual(promtool.returncode, 0)

    def test_query_with_a_deeply_nested_regex_is_an_error_not_a_crash(self):
        db = os.path.join(self.dir, "q.db")
        result = subprocess.run([BINARY, "query", f'up{{a=~"{DEEP_REGEX}"}}',
                                 f"--storage.path={db}"], capture_output=True, text=True,
                                timeout=60)
        self.assertGreater(result.returncode, 0, result.stdout + result.stderr)

    def test_lookahead_refused_and_re2_syntax_accepted_as_promtool_does(self):
        for expr, accepted in [('up{a=~"x(?=y)"}', False), ('up{a=~"a++"}', False),
                               ('up{a=~"\\\\pL+(?i)x"}', True),
                               ('up{a=~"(?P<n>\\\\d+)"}', True)]:
            with self.subTest(expr=expr):
                ours, promtool = self.run_both(rule_file(expr))
                self.assertEqual(promtool.returncode == 0, accepted, promtool.stdout)
                self.assertEqual(ours.returncode == 0, accepted, ours.stdout + ours.stderr)

    def test_huge_printf_widths_pass_check_rules_as_in_promtool(self):
        annotations = ("        annotations:\n"
                       "          a: '{{ printf \"%99999999999999999999d\" 1 }}'\n"
                       "          b: '{{ printf \"%4000000000d\" 1 }}'\n"
                       "          c: '{{ printf \"%99999999999999999999s\" \"x\" }}'\n")
        ours, promtool = self.run_both(rule_file("up == 0", annotations))
        self.assertEqual(promtool.returncode, 0, promtool.stdout + promtool.stderr)
        self.assertEqual(ours.returncode, 0, ours.stdout + ours.stderr)


# A label of 30 'a's then 'b' against (a+)+$: about 2^30 steps for a backtracking engine (the
# rules thread stayed busy for minutes), linear on RE2. printf widths that aborted the daemon
# (std::out_of_range) or allocated 4 GB, and one over the 1 MiB limit.
HOSTILE_RULES = """
groups:
  - name: hostile
    interval: 1s
    rules:
      - record: hostile:label_replace
        expr: >-
          label_replace(label_replace(probe_throttled, "long", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
          "", ""), "x", "$1", "long", "(a+)+$")
      - alert: HugeWidth
        expr: probe_throttled >= 0
        annotations:
          a: '{{ printf "%99999999999999999999d" 1 }}'
          b: '{{ printf "%4000000000d" 1 }}'
          c: '{{ printf "%2000000d" 1 }}'
          d: '{{ printf "%99999999999999999999s" "x" }}'
"""


class HostileRulesInTheDaemon(unittest.TestCase):
    def test_daemon_keeps_evaluating_and_answering_metrics(self):
        sim_port = free_port()
        text = config(sim_port).replace("simulator:", "rule_files: [rules.yaml]\nsimulator:")
        daemon = Daemon(text, {"scenario.yaml": SCENARIO, "rules.yaml": HOSTILE_RULES})
        try:
            daemon.start()

            def group_total(name, metrics=None):
                found = series(metrics or daemon.metrics(), name)
                return sum(v for (_, labels), v in found.items()
                           if dict(labels).get("rule_group", "").endswith("rules.yaml;hostile"))

            def evaluations():
                return group_total("modelpulse_rule_group_evaluations_total")
            wait_until(lambda: evaluations() >= 1, timeout=20, what="first evaluation")
            first = evaluations()
            # Ten scrapes over about five seconds of 1 s evaluations: each quick, the daemon alive.
            slowest = 0.0
            for _ in range(10):
                start = time.monotonic()
                status, _ = http_get(daemon.url("/metrics"), timeout=5)
                slowest = max(slowest, time.monotonic() - start)
                self.assertEqual(status, 200)
                self.assertIsNone(daemon.proc.poll(), "daemon died")
                time.sleep(0.5)
            self.assertLess(slowest, 1.0, "a /metrics scrape waited for the rules")
            self.assertGreaterEqual(evaluations(), first + 3, "rule evaluation stalled")
            metrics = daemon.metrics()
            self.assertTrue(series(metrics, "modelpulse_alerts", alertname="HugeWidth"),
                            "the alert with hostile annotations did not fire")
            failures = group_total("modelpulse_rule_evaluation_failures_total", metrics)
            self.assertEqual(failures, 0, daemon.log_text()[-2000:])
            self.assertEqual(daemon.stop(), 0)
        finally:
            daemon.close()


def api_call(daemon, method, path, params=None, body=None, headers=None, timeout=30):
    """(status, body text): the answer whatever its status."""
    query = urllib.parse.urlencode(params or {})
    url = daemon.url(path) + ("?" + query if method == "GET" and query else "")
    data = body if body is not None else (query.encode() if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method, headers=headers or (
        {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (ConnectionError, urllib.error.URLError) as e:
        # The server answers an oversized body before reading it, then closes: a client still
        # sending may see the reset before it reads the 413.
        return "reset", str(e)


class HostileQueriesInTheDaemon(unittest.TestCase):
    """Queries an attacker or a broken dashboard sends (issue 9's hostile-query tests): each
    gets a Prometheus-style error, and meanwhile the prober keeps its schedule and /metrics
    answers."""

    def test_hostile_queries_get_errors_and_probing_stays_on_time(self):
        sim_port = free_port()
        daemon = Daemon(config(sim_port, interval="200ms"), {"scenario.yaml": SCENARIO}).start()
        try:
            wait_until(lambda: sum(series(daemon.metrics(), "modelpulse_probes_total",
                                          target="fast").values()) >= 5, what="probes")
            now = time.time()
            nested = "(" * 8000 + "1" + ")" * 8000  # 48 KB form-encoded, under the 64 KiB limit
            cases = [
                # (what, method, path, params, body, status, text in the answer)
                ("deep nesting", "POST", "/api/v1/query", {"query": nested}, None, 400,
                 '"errorType":"bad_data"'),
                ("nested regex", "POST", "/api/v1/query",
                 {"query": 'probe_success{target=~"' + DEEP_REGEX[24000:-24000] + '"}'}, None,
                 400, '"errorType":"bad_data"'),
                ("11,002 points", "GET", "/api/v1/query_range",
                 {"query": "probe_success", "start": 0, "end": 11001, "step": 1}, None, 400,
                 "exceeded maximum resolution of 11,000 points"),
                ("1 MB body", "POST", "/api/v1/query", None, b"query=" + b"1+" * 500000, 413,
                 ""),
                ("regex bomb", "GET", "/api/v1/query",
                 {"query": 'count(probe_success{target=~"(a+)+$"})'}, None, 200,
                 '"status":"success"'),
                ("label_replace bomb", "GET", "/api/v1/query_range",
                 {"query": 'label_replace(probe_success, "x", "$1", "target", "(a+)+$")',
                  "start": now - 600, "end": now, "step": 1}, None, 200, '"status":"success"'),
            ]
            results = {}
            sent = [0]

            def barrage():
                # Six seconds at least, so the schedule of 30 probes is watched under it.
                deadline = time.monotonic() + 6
                while time.monotonic() < deadline:
                    for what, method, path, params, body, _, _ in cases:
                        results[what] = api_call(daemon, method, path, params, body)
                        sent[0] += 1

            workers = [threading.Thread(target=barrage) for _ in range(6)]
            began = time.time()
            for worker in workers:
                worker.start()
            slowest_scrape = 0.0
            while any(worker.is_alive() for worker in workers):
                start = time.monotonic()
                self.assertEqual(http_get(daemon.url("/metrics"), timeout=5)[0], 200)
                slowest_scrape = max(slowest_scrape, time.monotonic() - start)
                time.sleep(0.2)
            for worker in workers:
                worker.join(timeout=120)
            ended = time.time()
            for what, _, _, _, _, status, text in cases:
                with self.subTest(case=what):
                    if status == 413 and results[what][0] == "reset":
                        continue
                    self.assertEqual(results[what][0], status, results[what][1][:300])
                    self.assertIn(text, results[what][1])
            self.assertLess(slowest_scrape, 1.0)
            self.assertIsNone(daemon.proc.poll(), "daemon died")
            self.assertEqual(daemon.stop(), 0)
            # Every probe of the fast target during the barrage started within its interval
            # (200 ms, jittered by 10 %) plus one second of the one before.
            db = sqlite3.connect(daemon.db)
            starts = [row[0] / 1000 for row in db.execute(
                "SELECT start_ms FROM probes_named WHERE target = 'fast' AND start_ms BETWEEN ? "
                "AND ? ORDER BY start_ms", (int(began * 1000), int(ended * 1000)))]
            db.close()
            self.assertGreater(len(starts), 3, "no probes during the barrage")
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            print(f"hostile queries: {sent[0]} in {ended - began:.1f} s from 6 clients; "
                  f"slowest /metrics {slowest_scrape:.3f} s; {len(starts)} probes of the fast "
                  f"target, largest gap {max(gaps):.3f} s")
            self.assertLess(max(gaps), 0.2 * 1.1 + 1.0, f"largest gap {max(gaps):.3f} s")
        finally:
            daemon.close()


if __name__ == "__main__":
    unittest.main()
