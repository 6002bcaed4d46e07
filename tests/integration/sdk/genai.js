// @google/genai (pinned in ../npm/package.json) against the simulator, in Gemini Developer API
// mode (x-goog-api-key) and in Vertex AI mode (a pre-made OAuth access token in the
// Authorization header, which the SDK then does not replace): generateContent,
// generateContentStream (alt=sse), and throttling as the SDK's own ApiError with status 429.
// Prints one JSON object; tests/integration/test_sdk_bedrock_google.py asserts on it.
// Usage: node genai.js BASE_URL [VERTEX_ACCESS_TOKEN]
'use strict';
const path = require('path');
const { createRequire } = require('module');
const npm = createRequire(path.join(__dirname, '..', 'npm', 'package.json'));
const crypto = require('crypto');
const fs = require('fs');
const { GoogleGenAI, ApiError } = npm('@google/genai');
const { OAuth2Client } = createRequire(npm.resolve('@google/genai'))('google-auth-library');

const base = process.argv[2];
const serviceAccount = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
let vertexToken;
const MODEL = 'gemini-2.0-flash';

function gemini(endpoint, apiKey = 'AIza-sdk-test-key') {
  return new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${base}/${endpoint}` } });
}

function b64url(data) {
  return Buffer.from(data).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// The RFC 7523 exchange a service account makes, against <base>/<endpoint>/token.
async function fetchToken(endpoint, lifetime = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', typ: 'JWT', kid: serviceAccount.private_key_id };
  const claims = {
    iss: serviceAccount.client_email, scope: 'https://www.googleapis.com/auth/cloud-platform',
    aud: 'https://oauth2.googleapis.com/token', iat: now, exp: now + lifetime,
  };
  const signed = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = crypto.createSign('RSA-SHA256').update(signed).sign(serviceAccount.private_key);
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: `${signed}.${b64url(signature)}`,
  });
  const response = await fetch(`${base}/${endpoint}/token`, { method: 'POST', body });
  return { status: response.status, body: await response.json() };
}

function vertex(endpoint, token = vertexToken) {
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: token, expiry_date: Date.now() + 3600 * 1000 });
  return new GoogleGenAI({
    vertexai: true, project: 'modelpulse-test', location: 'us-central1',
    googleAuthOptions: { authClient }, httpOptions: { baseUrl: `${base}/${endpoint}` },
  });
}

const request = {
  model: MODEL, contents: 'Reply with the single word OK.', config: { maxOutputTokens: 16 },
};

function failure(e) {
  return {
    name: e.name, apiError: e instanceof ApiError, status: e.status, message: String(e.message),
  };
}

async function generate(ai) {
  try {
    const r = await ai.models.generateContent(request);
    return {
      text: r.text, finishReason: r.candidates[0].finishReason, usage: r.usageMetadata,
      responseId: r.responseId,
    };
  } catch (e) {
    return { error: failure(e) };
  }
}

async function stream(ai) {
  let text = '';
  let chunks = 0;
  let finishReason;
  let usage;
  try {
    for await (const chunk of await ai.models.generateContentStream(request)) {
      chunks += 1;
      text += chunk.text || '';
      if (chunk.candidates && chunk.candidates[0].finishReason) {
        finishReason = chunk.candidates[0].finishReason;
      }
      usage = chunk.usageMetadata;
    }
    return { text, chunks, finishReason, usage };
  } catch (e) {
    return { text, chunks, error: failure(e) };
  }
}

(async () => {
  const token = await fetchToken('vertex-ok');
  vertexToken = token.body.access_token;
  const result = {
    token: { status: token.status, tokenType: token.body.token_type, expiresIn: token.body.expires_in },
    gemini: { generate: await generate(gemini('gemini-ok')), stream: await stream(gemini('gemini-ok')) },
    geminiThrottled: await generate(gemini('gemini-throttled')),
    geminiThrottledStream: await stream(gemini('gemini-throttled')),
    geminiBadKey: await generate(gemini('gemini-ok', 'AIza-wrong')),
    vertex: { generate: await generate(vertex('vertex-ok')), stream: await stream(vertex('vertex-ok')) },
    vertexThrottled: await generate(vertex('vertex-throttled', 'ya29.fixed-test-token')),
    vertexBadToken: await generate(vertex('vertex-ok', 'ya29.not-issued')),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch((e) => { console.error(e); process.exit(1); });
