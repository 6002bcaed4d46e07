"""Prometheus's habits, checked on the real binary: version output, flags on either side of the
subcommand, exit code 2 for usage errors, log levels and formats, check config, query, process_*
metrics and the targets API."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from harness import BINARY, SOURCE_ROOT, Daemon, free_port, http_get, parse_metrics, series, wait_until

VERSION_LINES = [
    r"modelpulse, version \d+\.\d+\.\d+ \(branch: \S+, revision: (?:[0-9a-f]{40}|unknown)\)",
    r"  build user:       \S+@\S+",
    r"  build date:       \d{8}-\d\d:\d\d:\d\d",
    r"  compiler:         GNU \d+\.\d+\.\d+",
    r"  platform:         linux/\w+",
]


def run(*args, timeout=30, env=None):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


class Version(unittest.TestCase):
    def check_version_text(self, text):
        lines = text.splitlines()
        self.assertEqual(len(lines), len(VERSION_LINES), text)
        for line, pattern in zip(lines, VERSION_LINES):
            self.assertRegex(line, "^(" + pattern + ")$")

    def test_version_flag_and_subcommand_print_prometheus_style_info(self):
        flag = run("--version")
        self.assertEqual(flag.returncode, 0, flag.stderr)
        self.check_version_text(flag.stdout)
        sub = run("version")
        self.assertEqual(sub.returncode, 0, sub.stderr)
        self.assertEqual(sub.stdout, flag.stdout)


class UsageErrors(unittest.TestCase):
    def test_every_usage_error_exits_2(self):
        cases = [
            ((), "A subcommand is required"),
            (("run", "--no-such-flag"), "--no-such-flag"),
            (("--log.level=warning", "version"), "--log.level"),
            (("version", "--log.level=trace"), "--log.level"),
            (("version", "--log.format=text"), "--log.format"),
            (("check",), "A subcommand is required"),
            (("check", "config"), "file is required"),
            (("probe", "x", "--count=0"), "--count"),
            (("query",), "expr is required"),
            (("query", "up", "--time=1e300"), "invalid --time \"1e300\": out of range"),
            (("query", "up", "--time=-1e300"), "out of range"),
            (("no-such-command",), "A subcommand is required"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                result = run(*args)
                self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
                self.assertIn(message, result.stderr)

    def test_help_exits_0(self):
        result = run("--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("--log.format", result.stdout)


CONFIG = """
targets:
  - name: t
    provider: openai
    model: gpt-4o-mini
    auth: {api_key_env: MODELPULSE_IT_UNSET_KEY}
rule_files: [rules.yml]
"""

GOOD_RULES = """groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
"""

# The expression on line 5 does not parse.
BAD_RULES = """groups:
  - name: g
    rules:
      - alert: Down
        expr: up ==
"""


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="modelpulse-cli-")
        self.config = os.path.join(self.dir, "modelpulse.yml")
        self.rules = os.path.join(self.dir, "rules.yml")
        with open(self.config, "w") as f:
            f.write(CONFIG)
        self.env = {k: v for k, v in os.environ.items() if k != "MODELPULSE_IT_UNSET_KEY"}

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_rules(self, text):
        with open(self.rules, "w") as f:
            f.write(text)

    def test_check_config_checks_the_rule_files_it_names(self):
        self.write_rules(GOOD_RULES)
        env = dict(self.env, MODELPULSE_IT_UNSET_KEY="k")
        good = run("check", "config", self.config, env=env)
        self.assertEqual(good.returncode, 0, good.stdout + good.stderr)
        self.assertIn(f"Checking {self.rules}\n  SUCCESS: 1 rules found\n", good.stdout)
        self.write_rules(BAD_RULES)
        bad = run("check", "config", self.config, env=env)
        self.assertEqual(bad.returncode, 1, bad.stdout + bad.stderr)
        self.assertIn(f"SUCCESS: {self.config} is valid\n", bad.stdout)
        self.assertIn(f"Checking {self.rules}\n  FAILED:\n{self.rules}: 5:", bad.stdout)

    def test_syntax_only_needs_no_secret_and_no_rule_file(self):
        # No rules.yml and no key: a full check fails, a syntax-only one passes.
        full = run("check", "config", self.config, env=self.env)
        self.assertEqual(full.returncode, 1, full.stdout + full.stderr)
        self.assertIn("environment variable MODELPULSE_IT_UNSET_KEY is not set", full.stderr)
        syntax = run("check", "config", "--syntax-only", self.config, env=self.env)
        self.assertEqual(syntax.returncode, 0, syntax.stdout + syntax.stderr)
        self.assertTrue(syntax.stdout.startswith(f"SUCCESS: {self.config} is valid\n"),
                        syntax.stdout)
        # Still a syntax check.
        with open(self.config, "w") as f:
            f.write(CONFIG.replace("model: gpt-4o-mini", "model: gpt-4o-mini\n    interval: soon"))
        broken = run("check", "config", "--syntax-only", self.config, env=self.env)
        self.assertEqual(broken.returncode, 1, broken.stdout + broken.stderr)

    def test_shipped_example_passes_syntax_only_without_keys(self):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        for name in ("example.yaml", "clouds.yaml"):
            config = os.path.join(SOURCE_ROOT, "config", name)
            result = run("check", "config", "--syntax-only", config, env=env)
            self.assertEqual(result.returncode, 0, name + ": " + result.stdout + result.stderr)

    def test_syntax_only_reads_no_credential_file(self):
        # An AWS profile whose credentials file is absent and a service-account key that is not
        # there: a full check names both, a syntax-only check passes and says it read neither.
        with open(self.config, "w") as f:
            f.write("""targets:
  - name: bedrock
    provider: bedrock
    model: m
    region: us-east-1
    auth: {aws: {profile: prod, credentials_file: aws/credentials}}
  - name: vertex
    provider: vertex
    model: gemini-2.0-flash
    region: us-central1
    project: my-project
    auth: {google_service_account_file: sa.json}
""")
        full = run("check", "config", self.config, env=self.env)
        self.assertEqual(full.returncode, 1, full.stdout + full.stderr)
        self.assertIn('"auth.aws"', full.stderr)
        self.assertIn('"auth.google_service_account_file"', full.stderr)
        syntax = run("check", "config", "--syntax-only", self.config, env=self.env)
        self.assertEqual(syntax.returncode, 0, syntax.stdout + syntax.stderr)
        self.assertIn("auth aws sigv4, credential chain not read (syntax only)", syntax.stdout)
        self.assertIn("sa.json (not read: syntax only)", syntax.stdout)

    def test_global_flags_go_after_the_subcommand_too(self):
        self.write_rules(GOOD_RULES)
        for args in (("--log.level=debug", "check", "config", "--syntax-only", self.config),
                     ("check", "config", "--syntax-only", self.config, "--log.level=debug"),
                     ("check", "config", "--log.format=json", "--syntax-only", self.config)):
            with self.subTest(args=args):
                result = run(*args, env=self.env)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class ExportRules(unittest.TestCase):
    def test_export_rules_ships_the_portable_rules_and_the_slos_burn_rate_rules(self):
        folder = tempfile.mkdtemp(prefix="modelpulse-cli-")
        try:
            config = os.path.join(folder, "modelpulse.yml")
            with open(config, "w") as f:
                f.write(f"""targets:
  - name: t
    provider: openai
    model: gpt-4o
    auth: {{api_key_env: MODELPULSE_IT_UNSET_KEY}}
rule_files: [{SOURCE_ROOT}/config/rules/*.yaml]
slos:
  - name: gpt-4o-availability
    selector: {{model: gpt-4o}}
    kind: availability
    objective: 99.9
    window: 30d
""")
            out = os.path.join(folder, "exported.yml")
            env = {k: v for k, v in os.environ.items() if k != "MODELPULSE_IT_UNSET_KEY"}
            result = subprocess.run([BINARY, "export", "rules", f"--config.file={config}",
                                     f"--output={out}"], capture_output=True, text=True,
                                    timeout=60, env=env)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("exported 28 rules, refused 15", result.stderr)
            with open(out) as f:
                text = f.read()
            self.assertIn("name: slo:gpt-4o-availability", text)
            self.assertIn("modelpulse_probes_total", text)
            self.assertNotIn("probe_success", text)
            check = subprocess.run(["promtool", "check", "rules", out], capture_output=True,
                                   text=True, timeout=60)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            self.assertIn("SUCCESS: 28 rules found", check.stdout)
            strict = subprocess.run([BINARY, "export", "rules", f"--config.file={config}",
                                     "--strict", f"--output={out}"], capture_output=True,
                                    text=True, timeout=60, env=env)
            self.assertEqual(strict.returncode, 1)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


class Query(unittest.TestCase):
    def test_query_refuses_a_database_that_does_not_exist(self):
        folder = tempfile.mkdtemp(prefix="modelpulse-cli-")
        try:
            missing = os.path.join(folder, "mistyped.db")
            result = run("query", "up", f"--storage.path={missing}")
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertEqual(result.stderr,
                             f"error: database {missing} does not exist (--storage.path names "
                             "the daemon's database file)\n")
            self.assertEqual(result.stdout, "")
            self.assertFalse(os.path.exists(missing))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def test_query_and_report_read_a_database_they_may_not_write_and_never_migrate_it(self):
        daemon = Daemon(daemon_config(free_port()), {"scenario.yaml": SCENARIO})
        self.addCleanup(daemon.close)
        daemon.start()
        wait_until(lambda: probe_count(daemon, "fast") >= 3 and probe_count(daemon, "flaky") >= 3,
                   timeout=20, what="3 probes of each target")
        self.assertEqual(daemon.stop(), 0)
        # A folder and file the user nobody may read but not write, as /var/lib/modelpulse is for
        # an operator outside the service's group; the binary copied where nobody may run it.
        folder = tempfile.mkdtemp(prefix="modelpulse-ro-")
        self.addCleanup(shutil.rmtree, folder, True)
        os.chmod(folder, 0o755)
        binary = os.path.join(folder, "modelpulse")
        shutil.copy(BINARY, binary)
        db = os.path.join(folder, "modelpulse.db")
        shutil.copy(daemon.db, db)
        os.chmod(db, 0o644)

        def as_nobody(*args):
            return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   binary, *args], capture_output=True, text=True, timeout=60)

        def fingerprint():
            with open(db, "rb") as f:
                return f.read(), sorted(os.listdir(folder))

        before = fingerprint()
        query = as_nobody("query", "sum by (target) (count_over_time(probe_success[1h]))",
                          f"--storage.path={db}")
        self.assertEqual(query.returncode, 0, query.stderr)
        counts = {m[0]: int(m[1]) for m in
                  re.findall(r'\{target="(\w+)"\} => (\d+) ', query.stdout)}
        self.assertEqual(set(counts), {"fast", "flaky"}, query.stdout)
        self.assertGreaterEqual(min(counts.values()), 3, query.stdout)
        report = as_nobody("report", "--format=json", f"--storage.path={db}")
        self.assertEqual(report.returncode, 0, report.stderr)
        self.assertEqual({row["name"] for row in json.loads(report.stdout)["targets"]},
                         {"fast", "flaky"})
        self.assertEqual(fingerprint(), before, "a read-only command changed the folder")

        # A crashed writer's leftover: rows in <file>-wal and no <file>-shm. Reading the file
        # alone would miss them, so the command refuses and says why.
        crashed = os.path.join(folder, "crashed.db")
        shutil.copy(db, crashed)
        subprocess.run([sys.executable, "-c", (
            "import os, sqlite3\n"
            f"c = sqlite3.connect({crashed!r}, isolation_level=None)\n"
            "c.execute('PRAGMA wal_autocheckpoint=0')\n"
            "c.execute(\"INSERT INTO state VALUES ('t', 'k', x'00', 0)\")\n"
            "os._exit(0)\n")], check=True, timeout=30)
        os.remove(crashed + "-shm")
        self.assertGreater(os.path.getsize(crashed + "-wal"), 0)
        refused = as_nobody("query", "up", f"--storage.path={crashed}")
        self.assertEqual(refused.returncode, 1, refused.stdout + refused.stderr)
        self.assertIn(f"{crashed}-wal holds rows not yet in the file", refused.stderr)

        # A file at an older schema is refused, not migrated (here by root, who could write it).
        old = sqlite3.connect(db)
        old.execute("PRAGMA user_version = 8")
        old.close()
        refused = run("query", "up", f"--storage.path={db}")
        self.assertEqual(refused.returncode, 1, refused.stdout + refused.stderr)
        self.assertIn("has schema version 8, older than this modelpulse reads", refused.stderr)
        self.assertIn("the daemon of this version migrates it at its next start", refused.stderr)
        old = sqlite3.connect(db)
        self.assertEqual(old.execute("PRAGMA user_version").fetchone()[0], 8)
        old.close()


SCENARIO = """
seed: 7
endpoints:
  - name: fast
    protocol: openai
    first_token_ms: 20
    inter_token_ms: 5
    output_tokens: 4
    phases: [{name: healthy}]
  - name: flaky
    protocol: openai
    first_token_ms: 20
    inter_token_ms: 5
    output_tokens: 4
    phases:
      - name: throttling
        duration: 4s
        errors: [{kind: rate_limit, probability: 1.0}]
      - name: healthy
"""


def daemon_config(sim_port):
    # base_url paths are on the built-in simulator, whose address is written once.
    return f"""
defaults:
  interval: 500ms
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: fast
    provider: openai_compatible
    model: m
    base_url: /fast/v1
  - name: flaky
    provider: openai_compatible
    model: m
    base_url: /flaky/v1
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


def probe_count(daemon, target, outcome=None):
    labels = {"target": target}
    if outcome:
        labels["outcome"] = outcome
    return sum(series(daemon.metrics(), "modelpulse_probes_total", **labels).values())


class Logging(unittest.TestCase):
    def start(self, *args):
        daemon = Daemon(daemon_config(free_port()), {"scenario.yaml": SCENARIO}, args=args)
        self.addCleanup(daemon.close)
        return daemon.start()

    def test_info_logs_a_target_once_when_it_fails_and_once_when_it_recovers(self):
        daemon = self.start()
        wait_until(lambda: probe_count(daemon, "flaky", "ok") >= 3, timeout=30,
                   what="flaky to recover")
        self.assertEqual(daemon.stop(), 0)
        lines = daemon.log_text().splitlines()
        for line in lines:
            self.assertRegex(line, r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                                   r"level=(debug|info|warn|error) msg=")
        failing = [l for l in lines if 'msg="target probe failing"' in l]
        recovered = [l for l in lines if 'msg="target recovered"' in l]
        self.assertEqual(len(failing), 1, "\n".join(lines))
        self.assertRegex(failing[0], r"level=warn msg=\"target probe failing\" target=flaky "
                                     r"previous=unknown outcome=throttled status=429 err=")
        self.assertEqual(len(recovered), 1, "\n".join(lines))
        self.assertRegex(recovered[0], r"level=info msg=\"target recovered\" target=flaky "
                                       r"previous=throttled outcome=ok$")
        # No line per probe at the default level.
        self.assertFalse([l for l in lines if "level=debug" in l or 'msg=probe ' in l])

    def test_debug_json_logs_every_probe_with_prometheus_field_names(self):
        daemon = self.start("--log.level=debug", "--log.format=json")
        wait_until(lambda: probe_count(daemon, "fast") >= 3, timeout=20, what="3 probes")
        self.assertEqual(daemon.stop(), 0)
        records = [json.loads(line) for line in daemon.log_text().splitlines()]
        for record in records:
            self.assertEqual(list(record)[:3], ["ts", "level", "msg"])
            self.assertRegex(record["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        probes = [r for r in records if r["msg"] == "probe" and r["target"] == "fast"]
        self.assertGreaterEqual(len(probes), 3)
        self.assertEqual(probes[0]["level"], "debug")
        self.assertEqual(probes[0]["outcome"], "ok")
        self.assertEqual(probes[0]["status"], "200")


class Endpoints(unittest.TestCase):
    def test_process_metrics_build_info_and_the_targets_api(self):
        daemon = Daemon(daemon_config(free_port()), {"scenario.yaml": SCENARIO})
        self.addCleanup(daemon.close)
        daemon.start()
        # While flaky is still throttled: one target up, one down.
        wait_until(lambda: probe_count(daemon, "fast") >= 1 and
                   probe_count(daemon, "flaky", "throttled") >= 1, timeout=10,
                   what="a probe of each")
        body = json.loads(http_get(daemon.url("/api/v1/targets"))[1])
        self.assertEqual(body["status"], "success")
        self.assertEqual(body["data"]["droppedTargets"], [])
        targets = {t["name"]: t for t in body["data"]["activeTargets"]}
        self.assertEqual(set(targets), {"fast", "flaky"})
        self.assertEqual(targets["fast"]["health"], "up")
        self.assertEqual(targets["fast"]["lastError"], "")
        self.assertEqual(targets["fast"]["lastOutcome"], "ok")
        self.assertEqual(targets["flaky"]["health"], "down")
        self.assertEqual(targets["flaky"]["lastOutcome"], "throttled")
        self.assertEqual(targets["flaky"]["lastHttpStatus"], 429)
        self.assertNotEqual(targets["flaky"]["lastError"], "")
        for target in targets.values():
            self.assertRegex(target["lastScrape"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            scraped = time.mktime(time.strptime(target["lastScrape"][:19], "%Y-%m-%dT%H:%M:%S"))
            self.assertLess(abs(scraped - time.mktime(time.gmtime())), 60)
            self.assertGreater(target["lastScrapeDuration"], 0)
            self.assertEqual(target["scrapeInterval"], "500ms")
            self.assertEqual(target["scrapeTimeout"], "10s")

        metrics = parse_metrics(http_get(daemon.url("/metrics"))[1])
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                     "process_start_time_seconds"):
            self.assertIn((name, frozenset()), metrics, name)
        self.assertGreater(metrics[("process_resident_memory_bytes", frozenset())], 1e6)
        self.assertGreater(metrics[("process_open_fds", frozenset())], 3)
        started = metrics[("process_start_time_seconds", frozenset())]
        self.assertLess(abs(started - time.time()), 120)
        version = run("--version").stdout.splitlines()[0]
        info = series(metrics, "modelpulse_build_info")
        self.assertEqual(len(info), 1)
        labels = dict(next(iter(info))[1])
        v, branch, revision = re.match(
            r"modelpulse, version (\S+) \(branch: (\S+), revision: (\S+)\)", version).groups()
        self.assertEqual(labels, {"version": v, "branch": branch, "revision": revision,
                                  "compiler": labels["compiler"]})
        self.assertRegex(labels["compiler"], r"^GNU \d+\.\d+\.\d+$")

    def test_simulate_takes_web_listen_address_and_the_old_spelling(self):
        folder = tempfile.mkdtemp(prefix="modelpulse-cli-")
        self.addCleanup(shutil.rmtree, folder, True)
        scenario = os.path.join(folder, "scenario.yaml")
        with open(scenario, "w") as f:
            f.write(SCENARIO)
        for flag in ("--web.listen-address", "--listen-address"):
            with self.subTest(flag=flag):
                port = free_port()
                proc = subprocess.Popen([BINARY, "simulate", "--scenario", scenario,
                                         f"{flag}=127.0.0.1:{port}"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    wait_until(lambda: proc.poll() is None and http_get(
                        f"http://127.0.0.1:{port}/_simulator/health")[0] == 200,
                        what="simulator up")
                finally:
                    proc.terminate()
                    self.assertEqual(proc.wait(timeout=10), 0)


if __name__ == "__main__":
    unittest.main()
