// The official `@anthropic-ai/sdk` npm SDK (pinned in ../npm/package.json) against the
// simulator's anthropic protocol: a non-streaming and a streaming call, throttling surfaced as the
// SDK's own RateLimitError, 529 as OverloadedError and a mid-stream `event: error`.
// Prints one JSON object of observations; the Python test asserts.
// Usage: node anthropic_sdk.cjs BASE_URL
'use strict';
const path = require('path');
const { createRequire } = require('module');

const requireNpm = createRequire(path.join(__dirname, '..', 'npm', 'package.json'));
const sdk = requireNpm('@anthropic-ai/sdk');
const Anthropic = sdk.Anthropic ?? sdk.default;
const { RateLimitError, OverloadedError, AuthenticationError, APIError } = sdk;

const base = process.argv[2];
const request = {
  model: 'claude-sonnet-5-5',
  max_tokens: 16,
  messages: [{ role: 'user', content: 'Reply with the single word OK.' }],
};

function client(mount, apiKey = 'sk-ant-sim') {
  return new Anthropic({ baseURL: `${base}/${mount}`, apiKey, maxRetries: 0 });
}

async function stream(c) {
  const events = [];
  let text = '';
  let inputTokens = null;
  let outputTokens = null;
  let stopReason = null;
  const s = await c.messages.create({ ...request, stream: true });
  for await (const event of s) {
    events.push(event.type);
    if (event.type === 'message_start') inputTokens = event.message.usage.input_tokens;
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
      text += event.delta.text;
    }
    if (event.type === 'message_delta') {
      outputTokens = event.usage.output_tokens;
      stopReason = event.delta.stop_reason;
    }
  }
  return { text, events, inputTokens, outputTokens, stopReason };
}

async function helperStream(c) {
  // The SDK's MessageStream accumulates the events into a final Message.
  const final = await c.messages.stream(request).finalMessage();
  return { text: final.content.map((b) => b.text).join(''), usage: final.usage,
           stopReason: final.stop_reason };
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
      overloaded: e instanceof OverloadedError,
      authentication: e instanceof AuthenticationError,
      apiError: e instanceof APIError,
      status: e?.status ?? null,
      type: e?.type ?? e?.error?.error?.type ?? null,
      requestId: e?.requestID ?? e?.request_id ?? null,
      retryAfter: e?.headers?.get?.('retry-after') ?? null,
      message: String(e?.message ?? e),
    };
  }
}

async function main() {
  const c = client('claude');
  const complete = await c.messages.create(request);
  const out = {
    complete: { text: complete.content.map((b) => b.text).join(''), usage: complete.usage,
                stopReason: complete.stop_reason, id: complete.id },
    stream: await stream(c),
    helperStream: await helperStream(c),
    throttled: await failure(() => client('claude-throttled').messages.create(request)),
    overloaded: await failure(() => client('claude-overloaded').messages.create(request)),
    midstream: await failure(() => stream(client('claude-midstream'))),
    wrongKey: await failure(() => client('claude', 'sk-wrong').messages.create(request)),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`unexpected failure: ${e?.stack ?? e}\n`);
  process.exit(1);
});
