"""Known fake secrets go in; none may come out in logs, stored rows, /metrics or CLI output."""
import glob
import os
import subprocess
import unittest

from harness import BINARY, Daemon, free_port, http_get, series, wait_until

GOOD_KEY = "sk-modelpulse-GOODSECRET-5f2b9c1e"
WRONG_KEY = "sk-modelpulse-WRONGSECRET-77aa01"
HEADER_SECRET = "hdr-modelpulse-HEADERSECRET-93c1"
SECRETS = [GOOD_KEY, WRONG_KEY, HEADER_SECRET]

SCENARIO = f"""
seed: 3
endpoints:
  - name: keyed
    protocol: openai
    api_key: {GOOD_KEY}
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 3
    phases: [{{name: steady}}]
  - name: flaky
    protocol: openai
    api_key: {GOOD_KEY}
    first_token_ms: 5
    inter_token_ms: 1
    output_tokens: 3
    phases:
      - name: failing
        errors: [{{kind: server_error_500, probability: 0.5}}, {{kind: truncated_stream, probability: 0.5}}]
"""


def config(sim_port):
    return f"""
defaults:
  interval: 300ms
  timeouts: {{connect: 2s, first_token: 5s, total: 10s}}
targets:
  - name: good
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/keyed/v1
    auth: {{api_key_env: MP_GOOD_KEY}}
    headers: {{x-extra-secret: {{env: MP_HEADER_SECRET}}}}
  - name: wrong-key
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/keyed/v1
    auth: {{api_key_env: MP_WRONG_KEY}}
  - name: failing
    provider: openai_compatible
    model: m
    base_url: http://127.0.0.1:{sim_port}/flaky/v1
    auth: {{api_key_env: MP_GOOD_KEY}}
simulator: {{scenario: scenario.yaml, listen_address: "127.0.0.1:{sim_port}"}}
"""


class NoSecretLeaks(unittest.TestCase):
    def assert_clean(self, where, data):
        for secret in SECRETS:
            self.assertNotIn(secret.encode(), data, f"{secret} leaked into {where}")
            # Also the distinctive middle part, in case a prefix was cut off.
            self.assertNotIn(secret.split("-")[2].encode(), data, f"part of a secret in {where}")

    def test_no_secret_in_logs_rows_metrics_or_probe_output(self):
        env = {"MP_GOOD_KEY": GOOD_KEY, "MP_WRONG_KEY": WRONG_KEY,
               "MP_HEADER_SECRET": HEADER_SECRET}
        daemon = Daemon(config(free_port()), {"scenario.yaml": SCENARIO}, env=env)
        try:
            daemon.start()
            wait_until(lambda: series(daemon.metrics(), "modelpulse_probes_total",
                                      target="wrong-key", outcome="auth")
                       and series(daemon.metrics(), "modelpulse_probes_total",
                                  target="good", outcome="ok")
                       and series(daemon.metrics(), "modelpulse_probes_total",
                                  target="failing"), timeout=20, what="each kind of probe")
            metrics = http_get(daemon.url("/metrics"))[1].encode()
            targets = http_get(daemon.url("/api/v1/targets"))[1].encode()
            probe = subprocess.run([BINARY, "probe", "wrong-key", f"--config.file={daemon.config}",
                                    "--output=json", "--count=2"], capture_output=True,
                                   timeout=60, env=daemon.env)
            probe_text = subprocess.run([BINARY, "probe", "failing",
                                         f"--config.file={daemon.config}", "--count=3"],
                                        capture_output=True, timeout=60, env=daemon.env)
            check = subprocess.run([BINARY, "check", "config", daemon.config],
                                   capture_output=True, timeout=60, env=daemon.env)
            self.assertEqual(daemon.stop(), 0)
            self.assert_clean("/metrics", metrics)
            self.assert_clean("/api/v1/targets", targets)
            self.assert_clean("probe --output=json", probe.stdout + probe.stderr)
            self.assertIn(b'"outcome":"auth"', probe.stdout)
            self.assert_clean("probe text output", probe_text.stdout + probe_text.stderr)
            self.assert_clean("check config", check.stdout + check.stderr)
            self.assert_clean("daemon log", open(daemon.log_path, "rb").read())
            self.assertIn(b"outcome=auth", open(daemon.log_path, "rb").read())
            for path in glob.glob(daemon.db + "*"):
                self.assert_clean(os.path.basename(path), open(path, "rb").read())
        finally:
            daemon.close()


if __name__ == "__main__":
    unittest.main()
