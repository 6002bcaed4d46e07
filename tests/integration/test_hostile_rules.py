"""Hostile rule files (issue 12): nothing a rule author writes crashes, stalls or exhausts the
daemon, `check rules` or `query`; promtool gives the same verdicts."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

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


if __name__ == "__main__":
    unittest.main()
