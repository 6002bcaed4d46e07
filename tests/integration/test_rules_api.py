"""GET /api/v1/rules (issue 8) in Prometheus's shape: the same rule file loaded by the daemon and
by Debian's Prometheus 2.42 (started on loopback with a temporary storage path) answers with the
same keys and JSON types at every level, for the whole list and for each `type` filter. Values
differ (timings, times) and are not compared, except what the rule file fixes."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import Daemon, free_port, http_get, requires_peer, wait_until

# An alert firing at once, one pending for an hour, one never active, and recording rules with
# and without labels: every optional field of Prometheus's answer appears in one of them.
RULES = """
groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels: {severity: warning}
        annotations: {summary: "always {{ $value }}"}
      - alert: LongPending
        expr: vector(2)
        for: 1h
      - alert: NeverActive
        expr: vector(1) == 0
  - name: records
    interval: 1s
    limit: 10
    rules:
      - record: job:one
        expr: vector(1)
      - record: job:two
        expr: vector(2)
        labels: {team: ops}
"""


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def shape(value):
    """The keys and JSON types of a document, values aside; lists by the union of their items'
    shapes, so that two alerts or two rules of one kind count once."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        merged = {}
        for item in value:
            s = shape(item)
            merged[json.dumps(s, sort_keys=True)] = s
        return ["list", sorted(merged, key=str)]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def rule_shapes(answer):
    """{(group, rule name): shape of the rule} and {group: shape of the group without rules}."""
    rules, groups = {}, {}
    for g in answer["data"]["groups"]:
        groups[g["name"]] = shape({k: v for k, v in g.items() if k != "rules"})
        for r in g["rules"]:
            rules[(g["name"], r["name"])] = shape(r)
    return rules, groups


@requires_peer(shutil.which("prometheus"), "Debian's prometheus")
class RulesApiShape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="modelpulse-prom-")
        rules_path = os.path.join(cls.workdir, "rules.yaml")
        with open(rules_path, "w") as f:
            f.write(RULES)
        with open(os.path.join(cls.workdir, "prometheus.yml"), "w") as f:
            f.write("global: {evaluation_interval: 1s}\nrule_files: [rules.yaml]\n")
        cls.prom_port = free_port()
        cls.prom_log = open(os.path.join(cls.workdir, "prometheus.log"), "wb")
        cls.prom = subprocess.Popen(
            ["prometheus", f"--config.file={cls.workdir}/prometheus.yml",
             f"--storage.tsdb.path={cls.workdir}/data",
             f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
            stdout=cls.prom_log, stderr=subprocess.STDOUT)
        cls.daemon = Daemon("global: {evaluation_interval: 1s}\nrule_files: [rules.yaml]\n",
                            {"rules.yaml": RULES})
        cls.daemon.start()
        cls.prom_url = f"http://127.0.0.1:{cls.prom_port}"

        def evaluated(url):
            status, body = get(url + "/api/v1/rules")
            return status == 200 and all(
                r["health"] == "ok" for g in body["data"]["groups"] for r in g["rules"])
        wait_until(lambda: http_get(cls.prom_url + "/-/ready")[0] == 200, timeout=30,
                   what="prometheus ready")
        wait_until(lambda: evaluated(cls.prom_url), timeout=30, what="prometheus evaluated")
        wait_until(lambda: evaluated(cls.daemon.url("")), timeout=30, what="daemon evaluated")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()
        cls.prom.send_signal(signal.SIGTERM)
        try:
            cls.prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.prom.kill()
            cls.prom.wait()
        cls.prom_log.close()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def both(self, query=""):
        ours = get(self.daemon.url("/api/v1/rules" + query))
        theirs = get(self.prom_url + "/api/v1/rules" + query)
        return ours, theirs

    def test_same_keys_and_types_as_prometheus(self):
        for query in ("", "?type=alert", "?type=record", "?type=ALERT"):
            with self.subTest(query=query):
                (status, ours), (prom_status, theirs) = self.both(query)
                self.assertEqual(status, prom_status)
                self.assertEqual(sorted(ours), sorted(theirs))
                self.assertEqual(sorted(ours["data"]), sorted(theirs["data"]))
                our_rules, our_groups = rule_shapes(ours)
                their_rules, their_groups = rule_shapes(theirs)
                self.assertEqual(our_groups, their_groups)
                self.assertEqual(sorted(our_rules), sorted(their_rules))
                for name, s in their_rules.items():
                    self.assertEqual(our_rules[name], s, name)

    def test_values_the_rule_file_fixes(self):
        (_, ours), (_, theirs) = self.both()
        for answer in (ours, theirs):
            groups = {g["name"]: g for g in answer["data"]["groups"]}
            self.assertEqual(list(groups), ["alerts", "records"])
            self.assertEqual(groups["records"]["limit"], 10)
            self.assertEqual(groups["alerts"]["interval"], 1)
            self.assertTrue(groups["alerts"]["file"].endswith("rules.yaml"))
            rules = {r["name"]: r for r in groups["alerts"]["rules"]}
            self.assertEqual(rules["AlwaysFiring"]["state"], "firing")
            self.assertEqual(rules["AlwaysFiring"]["type"], "alerting")
            self.assertEqual(rules["AlwaysFiring"]["query"], "vector(1)")
            self.assertEqual(rules["AlwaysFiring"]["alerts"][0]["annotations"],
                             {"summary": "always 1"})
            self.assertEqual(rules["AlwaysFiring"]["alerts"][0]["value"], "1e+00")
            self.assertEqual(rules["LongPending"]["state"], "pending")
            self.assertEqual(rules["LongPending"]["duration"], 3600)
            self.assertEqual(rules["NeverActive"]["state"], "inactive")
            self.assertEqual(rules["NeverActive"]["alerts"], [])
            records = {r["name"]: r for r in groups["records"]["rules"]}
            self.assertEqual(records["job:two"]["labels"], {"team": "ops"})
            self.assertNotIn("labels", records["job:one"])
            self.assertEqual(records["job:one"]["type"], "recording")

    def test_type_filter(self):
        (_, ours), _ = self.both("?type=record")
        kinds = {r["type"] for g in ours["data"]["groups"] for r in g["rules"]}
        self.assertEqual(kinds, {"recording"})
        # A group without a matching rule stays, with no rules, as in Prometheus 2.42.
        self.assertEqual([g["rules"] for g in ours["data"]["groups"]
                          if g["name"] == "alerts"], [[]])
        (status, body), (prom_status, prom_body) = self.both("?type=bogus")
        self.assertEqual((status, body["status"], body["errorType"]),
                         (prom_status, prom_body["status"], prom_body["errorType"]))


if __name__ == "__main__":
    unittest.main()
