import assert from "node:assert/strict";
import { startWebhookReceiver } from "../../test/webhook_receiver.ts";
import type { Clock } from "../clock.ts";
import type { AlertFormat } from "../config.ts";
import { createLogger, Redactor } from "../log.ts";
import { type DeliveryResult, WebhookDeliverer } from "./deliver.ts";
import type { Alert } from "./watch.ts";

const KEY_VALUE = "AIzaSyDELIVER-TEST-KEY-xxxxxxxxxxxxxxxxx";
const FINGERPRINT = "a1b2c3d4e5f6";
const NOW = Date.UTC(2026, 10, 25, 18, 0, 0);

/** Sleeps return at once and are recorded: backoff is asserted, not waited for. */
class RecordingClock implements Clock {
  delays: number[] = [];
  time = NOW;
  now = () => this.time;
  sleep = (ms: number, signal?: AbortSignal) => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.delays.push(ms);
    this.time += ms;
    return Promise.resolve();
  };
}

const DISABLED: Alert = {
  kind: "key_disabled",
  at: NOW,
  scope: "key",
  id: FINGERPRINT,
  // An operator who pasted the key into its label must still not see it leave in an alert.
  label: `laptop ${KEY_VALUE}`,
  keyIds: [FINGERPRINT],
  reason: "LEAKED",
  status: 403,
  recheckAt: null,
};

const EXHAUSTED: Alert = {
  kind: "model_exhausted",
  at: NOW,
  model: "gemini-2.5-flash",
  reason: "ALL_KEYS_COOLING",
  keys: 3,
  recoversAt: NOW + 42_000,
  window: "minute",
  episodes: 1,
};

function setup(url: string, format: AlertFormat = "json", fetchFn: typeof fetch = fetch) {
  const clock = new RecordingClock();
  const logs: string[] = [];
  const results: DeliveryResult[] = [];
  const redactor = new Redactor([KEY_VALUE]);
  const deliverer = new WebhookDeliverer({
    url,
    format,
    source: { version: "1.0.0", platform: "test", build: "abc" },
    fetch: fetchFn,
    clock,
    log: createLogger({ level: "debug", redactor: new Redactor(), write: (l) => logs.push(l) }),
    redact: (text) => redactor.redact(text),
    onResult: (result) => results.push(result),
  });
  return { clock, logs, results, deliverer };
}

Deno.test("WebhookDeliverer posts Slack text naming fingerprints and reasons, never a key", async () => {
  const receiver = startWebhookReceiver();
  const { deliverer, results } = setup(receiver.url, "slack");
  try {
    deliverer.enqueue([DISABLED, EXHAUSTED]);
    const message = await receiver.message(1);
    assert.equal(message.path, receiver.secretPath);
    assert.equal(message.contentType, "application/json");
    const text = String(message.json.text);
    assert.match(text, /Key `a1b2c3d4e5f6`.*was disabled: LEAKED \(HTTP 403\)/);
    assert.match(text, /No usable key for model `gemini-2.5-flash`: all 3 keys are cooling/);
    assert.match(text, /due back at 2026-11-25T18:00:42Z \(in 42 s\)/);
    assert.ok(!message.body.includes(KEY_VALUE), "the key value never leaves");
    await deliverer.idle();
    assert.deepEqual(results, ["sent"]);
  } finally {
    await deliverer.close();
    await receiver.close();
  }
});

Deno.test("WebhookDeliverer writes Discord content without mentions, and structured JSON", async () => {
  const receiver = startWebhookReceiver();
  const discord = setup(receiver.url, "discord");
  const json = setup(receiver.url, "json");
  try {
    discord.deliverer.enqueue([EXHAUSTED]);
    const first = await receiver.message(1);
    assert.match(String(first.json.content), /No usable key for model/);
    assert.deepEqual(first.json.allowed_mentions, { parse: [] });

    json.deliverer.enqueue([DISABLED]);
    const second = await receiver.message(2);
    assert.equal(second.json.source, "gemini-key-rotator");
    const [alert] = second.json.alerts as Record<string, unknown>[];
    assert.equal(alert.kind, "key_disabled");
    assert.equal(alert.id, FINGERPRINT);
    assert.equal(alert.reason, "LEAKED");
    assert.equal(alert.at, "2026-11-25T18:00:00.000Z");
    assert.ok(!second.body.includes(KEY_VALUE));
  } finally {
    await discord.deliverer.close();
    await json.deliverer.close();
    await receiver.close();
  }
});

Deno.test("WebhookDeliverer retries a failing webhook with doubling backoff, then delivers", async () => {
  const receiver = startWebhookReceiver();
  receiver.script(500, 503);
  const { deliverer, clock, results } = setup(receiver.url);
  try {
    deliverer.enqueue([EXHAUSTED]);
    await deliverer.idle();
    assert.equal(receiver.attempts, 3);
    assert.equal(receiver.messages.length, 1);
    assert.deepEqual(clock.delays, [2000, 4000]);
    assert.deepEqual(results, ["sent"]);
  } finally {
    await deliverer.close();
    await receiver.close();
  }
});

Deno.test("WebhookDeliverer gives up after its bounded retries and logs the host, not the secret path", async () => {
  const receiver = startWebhookReceiver();
  receiver.script(500, 500, 500, 500, 500);
  const { deliverer, logs, results } = setup(receiver.url);
  try {
    deliverer.enqueue([EXHAUSTED]);
    await deliverer.idle();
    assert.equal(receiver.attempts, 4, "the first try and 3 retries");
    assert.deepEqual(results, ["failed"]);
    assert.equal(logs.length, 4);
    assert.match(logs.at(-1)!, /"level":"error","msg":"alert not delivered"/);
    const host = new URL(receiver.url).host;
    for (const line of logs) {
      assert.ok(line.includes(host));
      assert.ok(!line.includes("SECRET") && !line.includes("xox"), line);
    }
  } finally {
    await deliverer.close();
    await receiver.close();
  }
});

Deno.test("WebhookDeliverer does not retry a message the webhook refuses (400)", async () => {
  const receiver = startWebhookReceiver();
  receiver.script(400);
  const { deliverer, results } = setup(receiver.url);
  try {
    deliverer.enqueue([EXHAUSTED]);
    await deliverer.idle();
    assert.equal(receiver.attempts, 1);
    assert.deepEqual(results, ["failed"]);
  } finally {
    await deliverer.close();
    await receiver.close();
  }
});

Deno.test("WebhookDeliverer retries an unreachable webhook; the logged error keeps the URL's path out", async () => {
  const closed = startWebhookReceiver();
  const url = closed.url;
  await closed.close();
  const { deliverer, logs, results, clock } = setup(url);
  try {
    deliverer.enqueue([EXHAUSTED]);
    await deliverer.idle();
    assert.deepEqual(results, ["failed"]);
    assert.equal(clock.delays.length, 3);
    assert.ok(logs.length === 4);
    for (const line of logs) assert.ok(!line.includes("SECRET"), line);
  } finally {
    await deliverer.close();
  }
});

Deno.test("WebhookDeliverer never blocks the caller; a full queue drops the oldest message", async () => {
  const releases: (() => void)[] = [];
  let posts = 0;
  // A webhook that answers only when the test says so.
  const slowFetch = (() => {
    posts++;
    return new Promise<Response>((resolve) => releases.push(() => resolve(new Response("ok"))));
  }) as typeof fetch;
  const { deliverer, results, logs } = setup("https://hooks.example/secret", "json", slowFetch);
  try {
    for (let i = 0; i < 12; i++) deliverer.enqueue([EXHAUSTED]); // returns at once each time
    assert.equal(posts, 1, "one post in flight");
    assert.deepEqual(results, ["dropped"], "11 waiting, queue of 10: the oldest goes");
    assert.match(logs[0], /alert queue full/);
    while (results.filter((r) => r === "sent").length < 11) {
      releases.shift()?.();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await deliverer.idle();
    assert.equal(posts, 11);
  } finally {
    await deliverer.close();
  }
});
