"""Conformance of the simulator: the official npm SDKs (`openai`, `@anthropic-ai/sdk`, pinned in
npm/package.json) talk to `modelpulse simulate` and must complete streaming and non-streaming
calls, and surface its throttling as their own RateLimitError. This is what shows the simulator,
and so every test built on it, speaks the real openai, azure and anthropic protocols."""
import json
import os
import shutil
import subprocess
import unittest

from harness import Simulator, http_get, requires_peer

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, "npm", "node_modules")
SDK_DIR = os.path.join(HERE, "sdk")
NEEDED = [os.path.join(NODE_MODULES, "openai", "package.json"),
          os.path.join(NODE_MODULES, "@anthropic-ai", "sdk", "package.json")]

# Every endpoint answers "OK lorem ipsum dolor" (4 tokens); the *-throttled ones always 429, the
# way each provider does it. Keys are checked, so the SDKs' own auth headers are exercised.
SCENARIO = """
seed: 7
hang_cap: 5s
endpoints:
  - name: oai
    protocol: openai
    api_key: sk-sim-openai
    model: gpt-4o-mini-2024-07-18
    first_token_ms: 30
    inter_token_ms: 3
    output_tokens: 4
  - name: oai-throttled
    protocol: openai
    first_token_ms: 10
    phases:
      - errors: [{kind: rate_limit, probability: 1}]
  - name: az
    protocol: azure
    api_key: az-sim-key
    model: gpt-4o-mini-2024-07-18
    first_token_ms: 30
    inter_token_ms: 3
    output_tokens: 4
    ratelimit: {requests: 1000, tokens: 1000000, window: 60s}
  - name: az-throttled
    protocol: azure
    first_token_ms: 10
    phases:
      - errors: [{kind: rate_limit, probability: 1}]
  - name: claude
    protocol: anthropic
    api_key: sk-ant-sim
    model: claude-sonnet-4-5-20250929
    first_token_ms: 30
    inter_token_ms: 3
    output_tokens: 4
    ratelimit: {requests: 1000, tokens: 1000000, window: 60s}
    options: {retry_after_on_200: 33}
  - name: claude-throttled
    protocol: anthropic
    first_token_ms: 10
    phases:
      - errors: [{kind: rate_limit, probability: 1}]
  - name: claude-overloaded
    protocol: anthropic
    first_token_ms: 10
    phases:
      - errors: [{kind: overloaded_503, probability: 1}]
  - name: claude-midstream
    protocol: anthropic
    first_token_ms: 10
    inter_token_ms: 2
    output_tokens: 4
    phases:
      - errors: [{kind: overloaded_midstream, probability: 1}]
"""

TEXT = "OK lorem ipsum dolor"


@requires_peer(all(os.path.exists(p) for p in NEEDED),
               "npm SDKs in tests/integration/npm/node_modules (npm ci there)")
@requires_peer(shutil.which("node"), "node")
class SdkConformance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Simulator(SCENARIO, timeout=20)
        cls.base = cls.sim.base

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def run_script(self, name):
        run = subprocess.run(["node", os.path.join(SDK_DIR, name), self.base],
                             capture_output=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr.decode(errors="replace"))
        lines = run.stdout.decode().strip().splitlines()
        self.assertTrue(lines, run.stderr.decode(errors="replace"))
        return json.loads(lines[-1])

    def journal(self):
        return json.loads(http_get(self.base + "/_simulator/journal")[1])

    def test_openai_sdk_against_openai_and_azure(self):
        out = self.run_script("openai_sdk.cjs")

        openai = out["openai"]
        self.assertEqual(openai["complete"]["text"], TEXT)
        self.assertEqual(openai["complete"]["usage"]["completion_tokens"], 4)
        self.assertEqual(openai["stream"]["text"], TEXT)
        self.assertEqual(openai["stream"]["finish"], "stop")
        self.assertEqual(openai["stream"]["usage"]["completion_tokens"], 4)
        throttled = openai["throttled"]
        self.assertTrue(throttled["thrown"])
        self.assertTrue(throttled["rateLimit"], throttled)
        self.assertEqual(throttled["name"], "RateLimitError")
        self.assertEqual(throttled["status"], 429)
        self.assertEqual(throttled["code"], "rate_limit_exceeded")

        azure = out["azure"]
        for call in ("complete", "v1Complete"):
            self.assertEqual(azure[call]["text"], TEXT, call)
            self.assertEqual(azure[call]["model"], "gpt-4o-mini-2024-07-18")
        for call in ("stream", "v1Stream"):
            self.assertEqual(azure[call]["text"], TEXT, call)
            self.assertEqual(azure[call]["finish"], "stop")
            self.assertEqual(azure[call]["usage"]["completion_tokens"], 4)
            # The content-filter chunk (choices: []) reached the SDK and did not break it.
            self.assertEqual(azure[call]["emptyChoiceChunks"], 1, azure[call])
        throttled = azure["throttled"]
        self.assertTrue(throttled["rateLimit"], throttled)
        self.assertEqual(throttled["name"], "RateLimitError")
        self.assertEqual(throttled["status"], 429)
        self.assertEqual(throttled["code"], "429")  # Azure's legacy body: a string code
        self.assertEqual(throttled["retryAfter"], "1")
        self.assertEqual(throttled["retryAfterMs"], "1000")
        self.assertIn("Please retry after 1 second", throttled["message"])
        wrong = azure["wrongKey"]
        self.assertTrue(wrong["authentication"], wrong)
        self.assertEqual(wrong["status"], 401)
        self.assertNotIn("wrong", wrong["message"].replace("wrong API endpoint", ""))

        served = [e for e in self.journal() if e["endpoint"] == "az" and e["behaviour"] == "ok"]
        self.assertEqual(len(served), 4)

    def test_anthropic_sdk_against_anthropic(self):
        out = self.run_script("anthropic_sdk.cjs")

        complete = out["complete"]
        self.assertEqual(complete["text"], TEXT)
        self.assertEqual(complete["stopReason"], "end_turn")
        self.assertEqual(complete["usage"]["output_tokens"], 4)
        self.assertRegex(complete["id"], r"^msg_01")

        stream = out["stream"]
        self.assertEqual(stream["text"], TEXT)
        # The SDK swallows `ping`; everything else arrives in order.
        self.assertEqual(stream["events"],
                         ["message_start", "content_block_start"] + ["content_block_delta"] * 4 +
                         ["content_block_stop", "message_delta", "message_stop"])
        self.assertGreater(stream["inputTokens"], 0)
        self.assertEqual(stream["outputTokens"], 4)
        self.assertEqual(stream["stopReason"], "end_turn")

        helper = out["helperStream"]
        self.assertEqual(helper["text"], TEXT)
        self.assertEqual(helper["usage"]["output_tokens"], 4)

        throttled = out["throttled"]
        self.assertTrue(throttled["rateLimit"], throttled)
        self.assertEqual(throttled["name"], "RateLimitError")
        self.assertEqual(throttled["status"], 429)
        self.assertEqual(throttled["retryAfter"], "1")
        self.assertRegex(throttled["requestId"] or "", r"^req_011C")

        overloaded = out["overloaded"]
        self.assertTrue(overloaded["overloaded"], overloaded)
        self.assertEqual(overloaded["status"], 529)

        midstream = out["midstream"]
        self.assertTrue(midstream["apiError"], midstream)
        self.assertIsNone(midstream["status"])  # raised from the stream, not from a status
        self.assertIn("overloaded_error", json.dumps(midstream))

        wrong = out["wrongKey"]
        self.assertTrue(wrong["authentication"], wrong)
        self.assertEqual(wrong["status"], 401)
        self.assertIn("invalid x-api-key", wrong["message"])


if __name__ == "__main__":
    unittest.main()
