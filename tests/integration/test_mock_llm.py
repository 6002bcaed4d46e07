"""modelpulse against @dwmkerr/mock-llm, an OpenAI-compatible mock server written by others."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BINARY, free_port, http_get, requires_peer, wait_until

MOCK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npm")
MOCK_MAIN = os.path.join(MOCK_DIR, "node_modules", "@dwmkerr", "mock-llm", "dist", "main.js")

# Echo by default (the prompt contains "OK", so the default expect regex matches); a scripted
# 429 with OpenAI's rate-limit body when the prompt asks for it.
MOCK_CONFIG = """
rules:
  - path: "/v1/chat/completions"
    match: "@"
    response:
      status: 200
      content: |
        {"id": "chatcmpl-{{timestamp}}", "object": "chat.completion",
         "model": "{{jmes request body.model}}",
         "choices": [{"index": 0, "message": {"role": "assistant",
                      "content": "{{jmes request body.messages[-1].content}}"},
                      "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
  - path: "/v1/chat/completions"
    match: "contains(body.messages[-1].content, 'throttle-me')"
    response:
      status: 429
      content: |
        {"error": {"message": "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}
"""


@requires_peer(os.path.exists(MOCK_MAIN) and shutil.which("node"),
               "node and @dwmkerr/mock-llm in tests/integration/npm/node_modules "
               "(scripts/install-deps.sh)")
class MockLlm(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="modelpulse-mockllm-")
        self.port = free_port()
        with open(os.path.join(self.dir, "mock-llm.yaml"), "w") as f:
            f.write(MOCK_CONFIG)
        self.log = open(os.path.join(self.dir, "mock.log"), "wb")
        self.mock = subprocess.Popen(
            ["node", MOCK_MAIN, "--config", os.path.join(self.dir, "mock-llm.yaml")],
            env=dict(os.environ, HOST="127.0.0.1", PORT=str(self.port)),
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/health")[0] == 200,
                   timeout=30, what="mock-llm up")
        self.config = os.path.join(self.dir, "modelpulse.yml")
        with open(self.config, "w") as f:
            f.write(f"""
defaults:
  stream: false
  timeouts: {{connect: 2s, first_token: 10s, total: 10s}}
targets:
  - name: echo
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{self.port}/v1
  - name: throttled
    provider: openai_compatible
    model: gpt-4o-mini
    base_url: http://127.0.0.1:{self.port}/v1
    prompt: "throttle-me, then reply OK"
""")

    def tearDown(self):
        self.mock.terminate()
        self.mock.wait(timeout=10)
        self.log.close()

    def probe(self, target):
        run = subprocess.run([BINARY, "probe", target, f"--config.file={self.config}",
                              "--output=json"], capture_output=True, timeout=60)
        lines = run.stdout.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, run.stderr.decode())
        return run.returncode, json.loads(lines[0])

    def test_echo_succeeds(self):
        code, result = self.probe("echo")
        self.assertEqual(result["outcome"], "ok", result)
        self.assertEqual(code, 0)
        self.assertEqual(result["http_status"], 200)
        self.assertEqual(result["output_tokens"], 3)
        self.assertEqual(result["input_tokens"], 9)
        self.assertGreater(result["total_seconds"], 0)

    def test_scripted_429_is_throttled(self):
        code, result = self.probe("throttled")
        self.assertEqual(result["outcome"], "throttled", result)
        self.assertEqual(result["http_status"], 429)
        self.assertEqual(code, 11)
        self.assertIn("Rate limit", result["error"])


if __name__ == "__main__":
    unittest.main()
