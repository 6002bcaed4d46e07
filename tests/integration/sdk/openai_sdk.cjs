// The official `openai` npm SDK (pinned in ../npm/package.json) against the simulator's openai
// and azure protocols: a non-streaming and a streaming call each, and throttling surfaced as the
// SDK's own RateLimitError. Prints one JSON object of observations; the Python test asserts.
// Usage: node openai_sdk.cjs BASE_URL   (e.g. http://127.0.0.1:9465)
'use strict';
const path = require('path');
const { createRequire } = require('module');

const requireNpm = createRequire(path.join(__dirname, '..', 'npm', 'package.json'));
const openai = requireNpm('openai');
const { OpenAI, AzureOpenAI, RateLimitError, AuthenticationError } = openai;

const base = process.argv[2];
const messages = [{ role: 'user', content: 'Reply with the single word OK.' }];

async function complete(client, model) {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 16 });
  return { text: r.choices[0].message.content, usage: r.usage, model: r.model };
}

async function stream(client, model) {
  const s = await client.chat.completions.create({
    model, messages, max_tokens: 16, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let emptyChoiceChunks = 0;
  let usage = null;
  let finish = null;
  for await (const chunk of s) {
    chunks += 1;
    if (chunk.choices.length === 0 && !chunk.usage) emptyChoiceChunks += 1;
    const choice = chunk.choices[0];
    if (choice?.delta?.content) text += choice.delta.content;
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, chunks, emptyChoiceChunks, usage, finish };
}

async function failure(fn) {
  try {
    await fn();
    return { thrown: false };
  } catch (e) {
    return {
      thrown: true,
      name: e?.constructor?.name,
      rateLimit: e instanceof RateLimitError,
      authentication: e instanceof AuthenticationError,
      status: e?.status,
      code: e?.code ?? null,
      retryAfter: e?.headers?.get?.('retry-after') ?? null,
      retryAfterMs: e?.headers?.get?.('retry-after-ms') ?? null,
      message: String(e?.message ?? e),
    };
  }
}

async function main() {
  const out = {};
  const plain = new OpenAI({ baseURL: `${base}/oai/v1`, apiKey: 'sk-sim-openai', maxRetries: 0 });
  out.openai = {
    complete: await complete(plain, 'gpt-4o-mini'),
    stream: await stream(plain, 'gpt-4o-mini'),
    throttled: await failure(() => complete(
      new OpenAI({ baseURL: `${base}/oai-throttled/v1`, apiKey: 'sk-sim-openai', maxRetries: 0 }),
      'gpt-4o-mini')),
  };

  // The AzureOpenAI client: deployment route with api-version and the `api-key` header.
  const azure = new AzureOpenAI({
    endpoint: `${base}/az`, apiKey: 'az-sim-key', apiVersion: '2024-10-21',
    deployment: 'gpt-4o-mini', maxRetries: 0,
  });
  const azureThrottled = new AzureOpenAI({
    endpoint: `${base}/az-throttled`, apiKey: 'az-sim-key', apiVersion: '2024-10-21',
    deployment: 'gpt-4o-mini', maxRetries: 0,
  });
  const azureWrongKey = new AzureOpenAI({
    endpoint: `${base}/az`, apiKey: 'wrong', apiVersion: '2024-10-21',
    deployment: 'gpt-4o-mini', maxRetries: 0,
  });
  // The v1 route with the plain client: Bearer auth, the deployment named by `model`.
  const azureV1 = new OpenAI({ baseURL: `${base}/az/openai/v1`, apiKey: 'az-sim-key', maxRetries: 0 });
  out.azure = {
    complete: await complete(azure, 'gpt-4o-mini'),
    stream: await stream(azure, 'gpt-4o-mini'),
    v1Complete: await complete(azureV1, 'gpt-4o-mini'),
    v1Stream: await stream(azureV1, 'gpt-4o-mini'),
    throttled: await failure(() => complete(azureThrottled, 'gpt-4o-mini')),
    wrongKey: await failure(() => complete(azureWrongKey, 'gpt-4o-mini')),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`unexpected failure: ${e?.stack ?? e}\n`);
  process.exit(1);
});
