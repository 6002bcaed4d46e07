"""Conformance of the simulator's bedrock, vertex and gemini protocols: the official SDKs from npm
(@aws-sdk/client-bedrock-runtime, @google/genai; pinned in npm/package.json) complete streaming and
non-streaming calls against `modelpulse simulate`, and surface its throttling as their own errors.
botocore (Debian's python3-botocore, for /usr/bin/python3) signs requests and decodes the
event stream as an oracle independent of both the simulator and the AWS JavaScript SDK."""
import json
import os
import shutil
import subprocess
import unittest

from harness import SOURCE_ROOT, Simulator, requires_peer

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, "npm", "node_modules")
SDK_DIR = os.path.join(HERE, "sdk")
KEY_JSON = os.path.join(SOURCE_ROOT, "config", "scenarios", "keys", "demo-service-account.json")
KEY_PEM = os.path.join(SOURCE_ROOT, "config", "scenarios", "keys", "demo-service-account.pub.pem")
SYSTEM_PYTHON = "/usr/bin/python3"

SCENARIO = """
seed: 1
hang_cap: 5s
endpoints:
  - name: bedrock-ok
    protocol: bedrock
    api_key: bedrock-api-key-test
    first_token_ms: 20
    inter_token_ms: 2
    output_tokens: 6
    options:
      access_key_id: AKIDEXAMPLE
      secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
      expired_session_token: expired-session
  - name: bedrock-throttled
    protocol: bedrock
    options: {access_key_id: AKIDEXAMPLE, secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY}
    phases: [{errors: [{kind: rate_limit, probability: 1}]}]
  - name: bedrock-midstream
    protocol: bedrock
    first_token_ms: 10
    output_tokens: 6
    phases: [{errors: [{kind: exception_midstream, probability: 1}]}]
  - name: bedrock-malformed
    protocol: bedrock
    first_token_ms: 10
    output_tokens: 6
    phases: [{errors: [{kind: malformed_json, probability: 1}]}]
  - name: gemini-ok
    protocol: gemini
    api_key: AIza-sdk-test-key
    first_token_ms: 20
    inter_token_ms: 2
    output_tokens: 6
  - name: gemini-throttled
    protocol: gemini
    phases: [{errors: [{kind: rate_limit, probability: 1}]}]
  - name: vertex-ok
    protocol: vertex
    first_token_ms: 20
    inter_token_ms: 2
    output_tokens: 6
    options:
      service_account_public_key: %(pem)s
      service_account_email: modelpulse-demo@modelpulse-demo.iam.gserviceaccount.com
  - name: vertex-throttled
    protocol: vertex
    options: {access_token: ya29.fixed-test-token}
    phases: [{errors: [{kind: rate_limit, probability: 1}]}]
"""

# Run by Debian's python3 (which has python3-botocore): signs with botocore's SigV4Auth, sends
# with urllib, decodes with botocore's EventStreamBuffer (which checks both CRCs).
BOTOCORE_ORACLE = r"""
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ChecksumMismatch
base = sys.argv[1]
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
body = json.dumps({"messages": [{"role": "user", "content": [{"text": "Say OK"}]}],
                   "inferenceConfig": {"maxTokens": 16}}).encode()
def send(endpoint, op, payload=body, tamper=False):
    url = base + "/" + endpoint + "/model/us.amazon.nova-micro-v1%3A0/" + op
    req = AWSRequest(method="POST", url=url, data=payload, headers={"content-type": "application/json"})
    SigV4Auth(creds, "bedrock", "us-east-1").add_auth(req)
    p = req.prepare()
    data = payload.replace(b"Say OK", b"Say NO") if tamper else payload  # same length
    r = urllib.request.Request(p.url, data=data, headers=dict(p.headers), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
def decode(raw):
    buf = EventStreamBuffer()
    buf.add_data(raw)
    out = []
    try:
        for m in buf:
            out.append({"headers": m.headers, "payload": json.loads(m.payload)})
    except ChecksumMismatch as e:
        out.append({"checksum_mismatch": str(e)})
    return out
result = {}
status, headers, raw = send("bedrock-ok", "converse-stream")
result["stream"] = {"status": status, "content_type": headers.get("Content-Type"), "events": decode(raw)}
status, headers, raw = send("bedrock-midstream", "converse-stream")
result["midstream"] = {"status": status, "events": decode(raw)}
status, headers, raw = send("bedrock-malformed", "converse-stream")
result["malformed"] = {"status": status, "events": decode(raw)}
status, headers, raw = send("bedrock-ok", "converse", tamper=True)
result["tampered"] = {"status": status, "type": headers.get("x-amzn-ErrorType"), "body": json.loads(raw)}
print(json.dumps(result))
"""


def have_node_modules(*names):
    return all(os.path.isdir(os.path.join(NODE_MODULES, n)) for n in names)


def have_system_botocore():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import botocore.eventstream"],
                          capture_output=True).returncode == 0


class SdkTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Simulator(SCENARIO % {"pem": KEY_PEM})

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def node(self, script, *args, env=None):
        run = subprocess.run(["node", os.path.join(SDK_DIR, script), self.sim.base, *args],
                             capture_output=True, timeout=120,
                             env=dict(os.environ, **(env or {})))
        self.assertEqual(run.returncode, 0, run.stderr.decode())
        return json.loads(run.stdout.decode().strip().splitlines()[-1])


@requires_peer(have_node_modules("@aws-sdk/client-bedrock-runtime", "@smithy/node-http-handler"),
               "AWS SDK in tests/integration/npm/node_modules (npm ci there)")
@requires_peer(shutil.which("node"), "node")
class BedrockSdk(SdkTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.result = None

    def sigv4(self):
        if BedrockSdk.result is None:
            BedrockSdk.result = self.node("bedrock.js")
        return BedrockSdk.result

    def test_converse_signed_with_sigv4(self):
        r = self.sigv4()["converse"]
        self.assertNotIn("error", r)
        self.assertEqual(r["text"], "OK lorem ipsum dolor sit amet")
        self.assertEqual(r["stopReason"], "end_turn")
        self.assertEqual(r["usage"]["outputTokens"], 6)
        self.assertEqual(r["usage"]["totalTokens"], r["usage"]["inputTokens"] + 6)
        self.assertRegex(r["requestId"], r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

    def test_converse_stream_decoded_by_the_sdk(self):
        r = self.sigv4()["stream"]
        self.assertNotIn("error", r)
        self.assertEqual(r["text"], "OK lorem ipsum dolor sit amet")
        self.assertEqual(r["events"], ["messageStart"] + ["contentBlockDelta"] * 6 +
                         ["contentBlockStop", "messageStop", "metadata"])
        self.assertEqual(r["usage"]["outputTokens"], 6)

    def test_throttling_is_the_sdks_throttling_exception(self):
        for key in ("throttled", "throttledStream"):
            e = self.sigv4()[key]["error"]
            self.assertEqual(e["name"], "ThrottlingException", key)
            self.assertTrue(e["throttling"], key)
            self.assertEqual(e["status"], 429, key)

    def test_exception_frame_mid_stream(self):
        r = self.sigv4()["midstream"]
        self.assertEqual(r["text"], "OK lorem ipsum")
        self.assertEqual(r["events"], ["messageStart"] + ["contentBlockDelta"] * 3)
        self.assertEqual(r["error"]["name"], "ThrottlingException")

    def test_auth_failures_are_the_sdks_exceptions(self):
        r = self.sigv4()
        self.assertEqual(r["wrongSecret"]["error"]["name"], "InvalidSignatureException")
        self.assertEqual(r["wrongSecret"]["error"]["status"], 403)
        self.assertEqual(r["unknownKey"]["error"]["name"], "UnrecognizedClientException")
        self.assertEqual(r["expiredSession"]["error"]["name"], "ExpiredTokenException")

    def test_crc_mismatch_fails_the_sdk_stream(self):
        r = self.sigv4()["crcMismatch"]
        self.assertEqual(r["events"], ["messageStart"])
        self.assertIn("checksum", r["error"]["message"])

    def test_bedrock_api_key_as_bearer(self):
        r = self.node("bedrock.js", "bearer", env={"AWS_BEARER_TOKEN_BEDROCK": "bedrock-api-key-test"})
        self.assertEqual(r["converse"].get("text"), "OK lorem ipsum dolor sit amet", r)
        self.assertEqual(r["stream"].get("text"), "OK lorem ipsum dolor sit amet", r)
        wrong = self.node("bedrock.js", "bearer", env={"AWS_BEARER_TOKEN_BEDROCK": "wrong-key"})
        self.assertEqual(wrong["converse"]["error"]["status"], 403, wrong)


@requires_peer(have_node_modules("@google/genai"),
               "@google/genai in tests/integration/npm/node_modules (npm ci there)")
@requires_peer(shutil.which("node"), "node")
class GoogleGenAiSdk(SdkTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.result = None

    def run_sdk(self):
        if GoogleGenAiSdk.result is None:
            GoogleGenAiSdk.result = self.node("genai.js", KEY_JSON)
        return GoogleGenAiSdk.result

    def check_calls(self, calls, vertex):
        g = calls["generate"]
        self.assertNotIn("error", g)
        self.assertEqual(g["text"], "OK lorem ipsum dolor sit amet")
        self.assertEqual(g["finishReason"], "STOP")
        self.assertEqual(g["usage"]["candidatesTokenCount"], 6)
        self.assertEqual("trafficType" in g["usage"], vertex)
        s = calls["stream"]
        self.assertNotIn("error", s)
        self.assertEqual(s["text"], "OK lorem ipsum dolor sit amet")
        self.assertEqual(s["chunks"], 6)
        self.assertEqual(s["finishReason"], "STOP")
        self.assertEqual(s["usage"]["candidatesTokenCount"], 6)

    def test_gemini_api_generate_and_stream(self):
        self.check_calls(self.run_sdk()["gemini"], vertex=False)

    def test_vertex_generate_and_stream_with_a_token_from_the_token_endpoint(self):
        r = self.run_sdk()
        self.assertEqual(r["token"], {"status": 200, "tokenType": "Bearer", "expiresIn": 3599})
        self.check_calls(r["vertex"], vertex=True)

    def test_throttling_is_an_api_error_429(self):
        r = self.run_sdk()
        for key in ("geminiThrottled", "geminiThrottledStream", "vertexThrottled"):
            e = r[key]["error"]
            self.assertTrue(e["apiError"], key)
            self.assertEqual(e["status"], 429, key)
            body = json.loads(e["message"])["error"]
            self.assertEqual(body["status"], "RESOURCE_EXHAUSTED", key)
            types = [d["@type"] for d in body["details"]]
            self.assertIn("type.googleapis.com/google.rpc.RetryInfo", types, key)

    def test_auth_failures(self):
        r = self.run_sdk()
        self.assertEqual(r["geminiBadKey"]["error"]["status"], 400)
        self.assertIn("API_KEY_INVALID", r["geminiBadKey"]["error"]["message"])
        self.assertEqual(r["vertexBadToken"]["error"]["status"], 401)
        self.assertIn("UNAUTHENTICATED", r["vertexBadToken"]["error"]["message"])


@requires_peer(have_system_botocore(), "Debian's python3-botocore for /usr/bin/python3")
class BotocoreOracle(SdkTestCase):
    def test_botocore_signs_and_decodes(self):
        run = subprocess.run([SYSTEM_PYTHON, "-c", BOTOCORE_ORACLE, self.sim.base],
                             capture_output=True, timeout=60)
        self.assertEqual(run.returncode, 0, run.stderr.decode())
        r = json.loads(run.stdout)
        stream = r["stream"]
        self.assertEqual(stream["status"], 200)
        self.assertEqual(stream["content_type"], "application/vnd.amazon.eventstream")
        kinds = [e["headers"][":event-type"] for e in stream["events"]]
        self.assertEqual(kinds, ["messageStart"] + ["contentBlockDelta"] * 6 +
                         ["contentBlockStop", "messageStop", "metadata"])
        for e in stream["events"]:
            self.assertEqual(e["headers"][":message-type"], "event")
            self.assertEqual(e["headers"][":content-type"], "application/json")
        text = "".join(e["payload"]["delta"]["text"] for e in stream["events"]
                       if e["headers"][":event-type"] == "contentBlockDelta")
        self.assertEqual(text, "OK lorem ipsum dolor sit amet")
        self.assertEqual(stream["events"][-1]["payload"]["usage"]["outputTokens"], 6)

        last = r["midstream"]["events"][-1]
        self.assertEqual(last["headers"][":message-type"], "exception")
        self.assertEqual(last["headers"][":exception-type"], "throttlingException")
        self.assertIn("message", last["payload"])

        self.assertIn("checksum_mismatch", r["malformed"]["events"][-1])

        self.assertEqual(r["tampered"]["status"], 403)
        self.assertTrue(r["tampered"]["type"].startswith("InvalidSignatureException:"))
        self.assertIn("signature we calculated does not match", r["tampered"]["body"]["message"])


if __name__ == "__main__":
    unittest.main()
