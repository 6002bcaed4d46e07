"""Recorded series are real series: a recording rule's outputs (and ALERTS) are stored in SQLite,
served by /api/v1 (query, query_range, series, labels) and `modelpulse query`, and still there
after a restart."""
import time
import unittest

from harness import BINARY, Daemon, free_port, wait_until
import test_api
import test_daemon

RULES = """
groups:
  - name: clouds
    interval: 1s
    rules:
      - record: model_cloud:probe_success:avg_15m
        expr: avg by (model, cloud) (avg_over_time(probe_success[15m]))
      - alert: Throttled
        expr: probe_throttled == 1
        labels: {severity: warning}
"""
NAME = "model_cloud:probe_success:avg_15m"


class RecordedSeries(unittest.TestCase):
    def test_recorded_outputs_are_stored_queried_and_survive_a_restart(self):
        sim_port = free_port()
        text = test_daemon.config(sim_port).replace("simulator:",
                                                    "rule_files: [rules.yaml]\nsimulator:")
        daemon = Daemon(text, {"scenario.yaml": test_daemon.SCENARIO, "rules.yaml": RULES})
        try:
            daemon.start()
            first = time.time()

            def by_cloud():
                status, body = test_api.api(daemon, "/api/v1/query", {"query": NAME})
                self.assertEqual(status, 200, body)
                return {r["metric"]["cloud"]: float(r["value"][1])
                        for r in body["data"]["result"]}
            values = wait_until(lambda: len(by_cloud()) == 2 and by_cloud(), timeout=20,
                                what="both recorded series")
            self.assertEqual(values, {"simfast": 1.0, "simslow": 0.0})
            # ALERTS is stored as Prometheus stores it (and kept off /metrics).
            status, body = test_api.api(daemon, "/api/v1/query", {"query": "ALERTS"})
            self.assertEqual(status, 200, body)
            self.assertEqual({r["metric"]["alertname"] for r in body["data"]["result"]},
                             {"Throttled"})
            status, body = test_api.api(daemon, "/api/v1/series",
                                        {"match[]": NAME, "start": first - 60,
                                         "end": time.time()})
            self.assertEqual(status, 200, body)
            self.assertEqual(sorted(s["cloud"] for s in body["data"]), ["simfast", "simslow"])
            status, body = test_api.api(daemon, "/api/v1/label/__name__/values")
            self.assertEqual(status, 200, body)
            self.assertIn(NAME, body["data"])
            self.assertIn("ALERTS", body["data"])
            status, body = test_api.api(daemon, "/api/v1/labels")
            self.assertEqual(status, 200, body)
            self.assertIn("alertstate", body["data"])  # a label of the stored ALERTS only
            # Three more evaluations at least, so the range query below has three steps with a
            # sample whatever the steps' alignment (2 s gave 2 steps once under load).
            time.sleep(3)
            self.assertEqual(daemon.stop(), 0)
            stopped = time.time()

            # Nothing runs now: `modelpulse query` reads the stored outputs (it printed nothing
            # while they lived in memory only).
            out = test_api.run(BINARY, "query", NAME, f"--time={stopped - 1}",
                               f"--storage.path={daemon.db}")
            self.assertEqual(test_api.parse_instant(out), {
                f'{NAME}{{cloud="simfast", model="gpt-4o-mini"}}': 1.0,
                f'{NAME}{{cloud="simslow", model="gpt-4o-mini"}}': 0.0})
            counted = test_api.parse_instant(test_api.run(
                BINARY, "query", f"count_over_time({NAME}[1h])", f"--time={stopped}",
                f"--storage.path={daemon.db}"))
            self.assertEqual(len(counted), 2)
            before_restart = min(counted.values())
            self.assertGreaterEqual(before_restart, 3)

            # After a restart the engine's memory is empty; the API and later evaluations read
            # the outputs from before it.
            daemon.log.close()
            daemon.start()
            status, body = test_api.api(daemon, "/api/v1/query_range", {
                "query": NAME, "start": first, "end": stopped, "step": 1}, post=True)
            self.assertEqual(status, 200, body)
            self.assertEqual(len(body["data"]["result"]), 2)
            for series in body["data"]["result"]:
                self.assertGreaterEqual(len(series["values"]), 3)
            wait_until(lambda: min(float(r["value"][1]) for r in test_api.api(
                daemon, "/api/v1/query", {"query": f"count_over_time({NAME}[1h])"})[1]
                ["data"]["result"]) > before_restart, timeout=10,
                what="outputs after the restart added to those before")
            self.assertEqual(daemon.stop(), 0)
        finally:
            daemon.close()


if __name__ == "__main__":
    unittest.main()
