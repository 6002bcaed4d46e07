"""The Prometheus HTTP query API over the stored history: promtool and a Grafana-like client
against a running daemon, compared with `modelpulse query` over the same database."""
import json
import re
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import BINARY, Daemon, free_port, wait_until
import test_daemon

EXPRESSIONS = [
    "probe_success",
    "count_over_time(probe_throttled[1m])",
    'sum by (cloud) (probe_success{target=~"fast|throttled"})',
]


def api(daemon, path, params=None, post=False, timeout=30.0):
    """(status, parsed JSON) of a GET or form-encoded POST, as Grafana sends them."""
    body = urllib.parse.urlencode(params or {}, doseq=True)
    url = daemon.url(path)
    if post:
        req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    else:
        req = urllib.request.Request(url + ("?" + body if body else ""))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def parse_instant(text):
    """{labels text: value} from `modelpulse query` / `promtool query instant` output."""
    out = {}
    for line in text.splitlines():
        head, _, rest = line.partition(" => ")
        out[head] = float(rest.split(" @[")[0])
    return out


def parse_range(text):
    """{labels text: {t: value}} from `promtool query range` output."""
    out, current = {}, None
    for line in text.splitlines():
        if line.endswith(" =>"):
            current = out.setdefault(line[:-3], {})
        elif line.strip():
            value, _, at = line.partition(" @[")
            current[round(float(at.rstrip("]")), 3)] = float(value)
    return out


def run(*args):
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"{args} exited {done.returncode}: {done.stderr}")
    return done.stdout


class ApiOverStoredHistory(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sim_port = free_port()
        text = test_daemon.config(sim_port, interval="200ms")
        cls.daemon = Daemon(text, {"scenario.yaml": test_daemon.SCENARIO})
        cls.daemon.start()
        time.sleep(3)
        # Stopping flushes every probe to SQLite; the restarted daemon and `modelpulse query` then
        # read the same rows for any time before the stop.
        cls.daemon.stop()
        cls.daemon.log.close()
        cls.at = int(time.time() * 1000 - 500) / 1000
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.close()

    def modelpulse_query(self, expr, at):
        return parse_instant(run(BINARY, "query", expr, f"--time={at}",
                                 f"--storage.path={self.daemon.db}"))

    def test_promtool_instant_matches_modelpulse_query(self):
        for expr in EXPRESSIONS:
            with self.subTest(expr=expr):
                ours = self.modelpulse_query(expr, self.at)
                self.assertTrue(ours, f"{expr} is empty in `modelpulse query`")
                theirs = parse_instant(run("promtool", "query", "instant", self.daemon.url(""),
                                           expr, f"--time={self.at}"))
                self.assertEqual(ours, theirs)

    def test_promtool_range_matches_modelpulse_query_at_each_step(self):
        start, step = self.at - 2, 1
        for expr in EXPRESSIONS:
            with self.subTest(expr=expr):
                theirs = parse_range(run("promtool", "query", "range", self.daemon.url(""), expr,
                                         f"--start={start}", f"--end={self.at}",
                                         f"--step={step}s"))
                expected = {}
                for i in range(3):
                    t = round(start + i * step, 3)
                    for labels, value in self.modelpulse_query(expr, t).items():
                        # promtool prints a range series without __name__ only when the
                        # evaluator dropped it, exactly as `modelpulse query` does.
                        expected.setdefault(labels, {})[t] = value
                self.assertTrue(expected)
                self.assertEqual(expected, theirs)

    def test_promtool_series_and_labels(self):
        out = run("promtool", "query", "series", self.daemon.url(""),
                  '--match=probe_success{cloud="simfast"}')
        self.assertEqual(out.strip().splitlines(), [
            '{__name__="probe_success", cloud="simfast", model="gpt-4o-mini", '
            'provider="openai_compatible", region="global", target="fast"}'])
        targets = run("promtool", "query", "labels", self.daemon.url(""), "target")
        self.assertEqual(targets.split(), ["fast", "throttled"])

    def test_promtool_sees_the_counter_and_histogram_families(self):
        url = self.daemon.url("")
        names = run("promtool", "query", "labels", url, "__name__").split()
        for name in ("probe_success", "modelpulse_probes_total",
                     "modelpulse_probe_ttft_seconds_bucket", "modelpulse_probe_ttft_seconds_sum",
                     "modelpulse_probe_ttft_seconds_count",
                     "modelpulse_probe_duration_seconds_bucket",
                     "modelpulse_probe_output_tokens_per_second_count"):
            self.assertIn(name, names)
        all_outcomes = run("promtool", "query", "labels", url, "outcome").split()
        self.assertIn("ok", all_outcomes)
        self.assertIn("throttled", all_outcomes)
        outcomes = run("promtool", "query", "labels", url, "outcome",
                       "--match=modelpulse_probes_total{target=\"throttled\"}").split()
        self.assertEqual(outcomes, ["throttled"])

        def pairs(text):
            """(target, outcome) of each series line, in either promtool format."""
            out = set()
            for line in text.splitlines():
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line.partition(" => ")[0]))
                out.add((labels["target"], labels["outcome"]))
            return out

        # What promtool lists over the lookback window is what an instant query returns.
        listed = run("promtool", "query", "series", url, "--match=modelpulse_probes_total",
                     f"--start={self.at - 300}", f"--end={self.at}")
        queried = run("promtool", "query", "instant", url, "modelpulse_probes_total",
                      f"--time={self.at}")
        self.assertEqual(pairs(listed), pairs(queried))
        self.assertIn(("fast", "ok"), pairs(listed))
        self.assertIn(("throttled", "throttled"), pairs(listed))
        buckets = run("promtool", "query", "series", url,
                      '--match=modelpulse_probe_ttft_seconds_bucket{target="fast"}')
        bounds = run("promtool", "query", "labels", url, "le",
                     '--match=modelpulse_probe_ttft_seconds_bucket{target="fast"}').split()
        self.assertGreater(len(bounds), 10)
        self.assertEqual(len(buckets.splitlines()), len(bounds))
        self.assertIn('le="+Inf"', buckets)
        # Metadata by family, typed as /metrics exposes them.
        status, body = api(self.daemon, "/api/v1/metadata")
        self.assertEqual(body["data"]["modelpulse_probes_total"][0]["type"], "counter")
        self.assertEqual(body["data"]["modelpulse_probe_ttft_seconds"][0]["type"], "histogram")

    def test_grafana_requests_get_prometheus_shaped_answers(self):
        status, body = api(self.daemon, "/api/v1/query_range", {
            "query": "probe_success", "start": self.at - 60, "end": self.at, "step": 15},
            post=True)
        self.assertEqual(status, 200, body)
        self.assertEqual(list(body), ["status", "data"])
        self.assertEqual(body["status"], "success")
        self.assertEqual(body["data"]["resultType"], "matrix")
        self.assertEqual(len(body["data"]["result"]), 2)
        for series in body["data"]["result"]:
            self.assertEqual(series["metric"]["__name__"], "probe_success")
            self.assertTrue(series["values"])
            for t, v in series["values"]:
                self.assertIsInstance(t, (int, float))
                self.assertIn(v, ("0", "1"))
        # A dashboard variable: label_values(probe_success, cloud).
        status, body = api(self.daemon, "/api/v1/label/cloud/values", {
            "match[]": "probe_success", "start": self.at - 3600, "end": self.at})
        self.assertEqual((status, body), (200, {"status": "success",
                                                "data": ["simfast", "simslow"]}))
        status, body = api(self.daemon, "/api/v1/series", {
            "match[]": 'probe_throttled{cloud="simslow"}', "start": self.at - 3600,
            "end": self.at}, post=True)
        self.assertEqual(status, 200, body)
        self.assertEqual([s["target"] for s in body["data"]], ["throttled"])
        status, body = api(self.daemon, "/api/v1/query", {"query": "1 + 1", "time": self.at})
        self.assertEqual(body["data"], {"resultType": "scalar", "result": [self.at, "2"]})
        status, body = api(self.daemon, "/api/v1/labels", {"limit": 2})
        self.assertEqual((status, body["data"]), (200, ["__name__", "cloud"]))
        status, body = api(self.daemon, "/api/v1/status/buildinfo")
        self.assertEqual(status, 200)
        self.assertIn("version", body["data"])
        status, body = api(self.daemon, "/api/v1/metadata")
        self.assertEqual(body["data"]["probe_success"][0]["type"], "gauge")
        self.assertTrue(body["data"]["probe_success"][0]["help"])

    def assert_error(self, answer, status, error_type, message):
        self.assertEqual(answer[0], status, answer)
        self.assertEqual(list(answer[1]), ["status", "errorType", "error"])
        self.assertEqual(answer[1]["status"], "error")
        self.assertEqual(answer[1]["errorType"], error_type)
        self.assertIn(message, answer[1]["error"])

    def test_bounds_and_bad_requests_get_prometheus_errors(self):
        # Prometheus refuses (end - start) / step > 11,000: 11,002 points here, 11,001 pass.
        too_many = api(self.daemon, "/api/v1/query_range", {
            "query": "probe_success", "start": 0, "end": 11001, "step": 1})
        self.assert_error(too_many, 400, "bad_data",
                          "exceeded maximum resolution of 11,000 points per timeseries. Try "
                          "decreasing the query resolution (?step=XX)")
        status, body = api(self.daemon, "/api/v1/query_range", {
            "query": "vector(1)", "start": 0, "end": 11000, "step": 1})
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["data"]["result"][0]["values"]), 11001)
        self.assert_error(api(self.daemon, "/api/v1/query", {"query": "sum(probe_success"}),
                          400, "bad_data", "")
        self.assert_error(api(self.daemon, "/api/v1/query", {"query": "up", "time": "yesterday"}),
                          400, "bad_data", 'invalid parameter "time"')
        self.assert_error(api(self.daemon, "/api/v1/query_range", {
            "query": "up", "start": "2026-13-01T00:00:00Z", "end": 10, "step": 1}),
            400, "bad_data", 'invalid parameter "start"')
        self.assert_error(api(self.daemon, "/api/v1/query_range", {
            "query": "up", "start": 10, "end": 20, "step": "0"}), 400, "bad_data",
            "zero or negative query resolution step")
        self.assert_error(api(self.daemon, "/api/v1/query_range", {
            "query": "probe_success[5m]", "start": 10, "end": 20, "step": 1}), 400, "bad_data",
            'invalid expression type "range vector" for range query')
        self.assert_error(api(self.daemon, "/api/v1/series", {}), 400, "bad_data",
                          "no match[] parameter provided")
        # A query past its `timeout` stops at its next read and says so (11,001 evaluations over
        # SQLite take far more than 5 ms), within a bounded time. (Not a lone pushed-down call:
        # its range query is built from a few storage calls, too quick to time out here.)
        began = time.monotonic()
        self.assert_error(api(self.daemon, "/api/v1/query_range", {
            "query": "count_over_time(probe_success[1d]) * 1", "start": self.at - 11000,
            "end": self.at, "step": 1, "timeout": "5ms"}), 503, "timeout", "query timed out")
        self.assertLess(time.monotonic() - began, 10)
        self.assert_error(api(self.daemon, "/api/v1/query", {"query": "1", "timeout": "soon"}),
                          400, "bad_data", 'invalid parameter "timeout"')
        # RFC 3339 and float seconds name the same instant.
        rfc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(self.at))) + ".250Z"
        a = api(self.daemon, "/api/v1/query", {"query": "probe_success", "time": rfc})
        b = api(self.daemon, "/api/v1/query", {"query": "probe_success",
                                               "time": f"{int(self.at)}.25"})
        self.assertEqual(a, b)
        self.assertEqual(a[1]["data"]["result"][0]["value"][0], int(self.at) + 0.25)


if __name__ == "__main__":
    unittest.main()
