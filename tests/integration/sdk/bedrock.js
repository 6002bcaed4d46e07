// @aws-sdk/client-bedrock-runtime (pinned in ../npm/package.json) against the simulator: Converse,
// ConverseStream, throttling and auth failures as the SDK's own exception classes. Prints one
// JSON object of what the SDK saw; tests/integration/test_sdk_bedrock_google.py asserts on it.
// Usage: node bedrock.js BASE_URL   (BASE_URL = http://127.0.0.1:PORT; endpoints by name below)
'use strict';
const path = require('path');
const { createRequire } = require('module');
const npm = createRequire(path.join(__dirname, '..', 'npm', 'package.json'));
const {
  BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, ThrottlingException,
} = npm('@aws-sdk/client-bedrock-runtime');
const { NodeHttpHandler } = npm('@smithy/node-http-handler');

const base = process.argv[2];
const MODEL = 'us.amazon.nova-micro-v1:0';  // the colon goes out as %3A, signed as %253A
const KEYS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

function client(endpoint, credentials = KEYS) {
  const options = {
    region: 'us-east-1', endpoint: `${base}/${endpoint}`, maxAttempts: 1,
    requestHandler: new NodeHttpHandler(),
  };
  if (credentials) options.credentials = credentials;
  return new BedrockRuntimeClient(options);
}

const input = {
  modelId: MODEL,
  messages: [{ role: 'user', content: [{ text: 'Reply with the single word OK.' }] }],
  inferenceConfig: { maxTokens: 16 },
};

function failure(e) {
  return {
    name: e.name, status: e.$metadata && e.$metadata.httpStatusCode,
    throttling: e instanceof ThrottlingException, fault: e.$fault, message: e.message,
  };
}

async function converse(endpoint, credentials) {
  try {
    const out = await client(endpoint, credentials).send(new ConverseCommand(input));
    return {
      text: out.output.message.content.map((b) => b.text).join(''), stopReason: out.stopReason,
      usage: out.usage, latencyMs: out.metrics && out.metrics.latencyMs,
      requestId: out.$metadata.requestId,
    };
  } catch (e) {
    return { error: failure(e) };
  }
}

async function converseStream(endpoint, credentials) {
  const events = [];
  let text = '';
  try {
    const out = await client(endpoint, credentials).send(new ConverseStreamCommand(input));
    for await (const event of out.stream) {
      const kind = Object.keys(event).find((k) => event[k] !== undefined);
      events.push(kind);
      if (kind === 'contentBlockDelta' && event.contentBlockDelta.delta.text) {
        text += event.contentBlockDelta.delta.text;
      }
      if (kind === 'metadata') events.usage = event.metadata.usage;
    }
    return { text, events, usage: events.usage };
  } catch (e) {
    return { text, events, error: failure(e) };
  }
}

(async () => {
  const mode = process.argv[3] || 'sigv4';
  const result = {};
  if (mode === 'bearer') {
    // AWS_BEARER_TOKEN_BEDROCK in the environment: the SDK sends Authorization: Bearer.
    result.converse = await converse('bedrock-ok', null);
    result.stream = await converseStream('bedrock-ok', null);
  } else {
    result.converse = await converse('bedrock-ok');
    result.stream = await converseStream('bedrock-ok');
    result.throttled = await converse('bedrock-throttled');
    result.throttledStream = await converseStream('bedrock-throttled');
    result.midstream = await converseStream('bedrock-midstream');
    result.wrongSecret = await converse('bedrock-ok', { ...KEYS, secretAccessKey: 'not-the-secret' });
    result.unknownKey = await converse('bedrock-ok', { ...KEYS, accessKeyId: 'AKIDUNKNOWN' });
    result.expiredSession = await converse('bedrock-ok', { ...KEYS, sessionToken: 'expired-session' });
    result.crcMismatch = await converseStream('bedrock-malformed');
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
