/**
 * End to end through the real server: what an operator sees of the pool at /healthz, /metrics,
 * the status page's data API and the alert webhook.
 */

import assert from "node:assert/strict";
import { FakeClock, generate, startRotator, testKey, TOKEN } from "./harness.ts";
import { parsePrometheusText } from "./prom_text.ts";
import { startWebhookReceiver } from "./webhook_receiver.ts";

const A = testKey("alpha");
const B = testKey("bravo");
const METRICS_TOKEN = "metrics-token-0123456789";
const ADMIN_TOKEN = "admin-token-0123456789";

async function drain(response: Response): Promise<Response> {
  await response.body?.cancel();
  return response;
}

Deno.test("/healthz answers without a token and names no key", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({ keys: [A, B], clock });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    await drain(await generate(rotator));
    const response = await fetch(`${rotator.url}/healthz`);
    assert.equal(response.status, 200);
    const text = await response.text();
    const health = JSON.parse(text);
    assert.equal(health.version, "test");
    assert.equal(health.entry, "test/harness.ts");
    assert.equal(health.platform, "test");
    assert.equal(health.store, "memory");
    assert.deepEqual(health.keys, { total: 2, usable: 2, ready: 1, cooling: 1, disabled: 0 });
    assert.equal(health.nextRecoveryAt, new Date(clock.now() + 33_000).toISOString());
    assert.equal(health.uptimeSeconds, 0);
    for (const key of rotator.keys) assert.ok(!text.includes(key.id), "no fingerprint");
  } finally {
    await rotator.close();
  }
});

Deno.test("/metrics is off without a token, refuses a wrong one, and its counters move with traffic", async () => {
  const off = await startRotator({ keys: [A] });
  try {
    assert.equal((await drain(await fetch(`${off.url}/metrics`))).status, 404);
  } finally {
    await off.close();
  }

  const rotator = await startRotator({
    keys: [A, B],
    env: { METRICS_TOKEN, ADMIN_TOKEN },
  });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  const scrape = async (token = METRICS_TOKEN) => {
    const response = await fetch(`${rotator.url}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    return parsePrometheusText(await response.text());
  };
  try {
    const refused = await fetch(`${rotator.url}/metrics`, {
      headers: { authorization: "Bearer wrong-token-123456" },
    });
    assert.equal((await drain(refused)).status, 401);

    const before = await scrape();
    assert.equal(before.value("gemini_rotator_keys", { state: "ready" }), 2);

    // A is rate-limited, B answers: one client request, two attempts, one retry.
    assert.equal((await drain(await generate(rotator))).status, 200);
    for (let i = 0; i < 2; i++) await drain(await generate(rotator));

    const after = await scrape(ADMIN_TOKEN);
    const [a, b] = rotator.keys;
    const ok = { route: "native", model: "gemini-2.5-flash", status: "200" };
    assert.equal(after.value("gemini_rotator_requests_total", ok), 3);
    assert.equal(
      after.value("gemini_rotator_upstream_attempts_total", {
        model: "gemini-2.5-flash",
        result: "quota",
      }),
      1,
    );
    assert.equal(after.value("gemini_rotator_retries_total", { model: "gemini-2.5-flash" }), 1);
    assert.equal(after.value("gemini_rotator_key_requests_total", { key: a.id }), 1);
    assert.equal(after.value("gemini_rotator_key_requests_total", { key: b.id }), 3);
    assert.equal(after.value("gemini_rotator_key_rate_limited_total", { key: a.id }), 1);
    assert.equal(after.value("gemini_rotator_upstream_latency_seconds_count"), 4);
    assert.equal(after.value("gemini_rotator_keys", { state: "cooling" }), 1);
    const wait = after.value("gemini_rotator_next_key_recovery_seconds")!;
    assert.ok(wait > 30 && wait <= 33, `next recovery in ${wait} s`);

    await drain(await generate(rotator));
    const later = await scrape();
    assert.equal(later.value("gemini_rotator_requests_total", ok), 4, "counters only grow");

    // A streamed answer's first bytes are timed (as is every complete answer's).
    const ttfb = later.value("gemini_rotator_time_to_first_byte_seconds_count")!;
    const streamed = await fetch(
      `${rotator.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
      { method: "POST", headers: { "x-goog-api-key": TOKEN }, body: "{}" },
    );
    assert.match(await streamed.text(), /^data: /);
    const last = await scrape();
    assert.equal(last.value("gemini_rotator_time_to_first_byte_seconds_count"), ttfb + 1);
    assert.equal(
      last.value("gemini_rotator_requests_total", ok),
      5,
      "the stream is a request too",
    );
  } finally {
    await rotator.close();
  }
});

Deno.test("a disabled key reaches the alert webhook with its reason and without its value", async () => {
  const receiver = startWebhookReceiver();
  const rotator = await startRotator({
    keys: [A, B],
    env: {
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_FORMAT: "json",
      ALERT_DEBOUNCE_MS: "0",
      ALERT_MIN_INTERVAL_MS: "0",
    },
  });
  rotator.mock.script(A, { type: "error", fixture: "leaked" });
  try {
    assert.equal((await drain(await generate(rotator))).status, 200, "B answered");
    const message = await receiver.message(1);
    const [alert] = message.json.alerts as Record<string, unknown>[];
    assert.equal(alert.kind, "key_disabled");
    assert.equal(alert.id, rotator.keys[0].id);
    assert.equal(alert.reason, "LEAKED");
    assert.equal(alert.status, 403);
    assert.match(String(message.json.text), /was disabled: LEAKED \(HTTP 403\)/);
    for (const key of [A, B]) assert.ok(!message.body.includes(key), "no key value");
  } finally {
    await rotator.close();
    await receiver.close();
  }
});

Deno.test("a storm of 429s sends one 'no usable key' message, and one more when the model recovers", async () => {
  const receiver = startWebhookReceiver();
  const rotator = await startRotator({
    keys: [A, B],
    env: {
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_FORMAT: "slack",
      ALERT_DEBOUNCE_MS: "0",
      ALERT_MIN_INTERVAL_MS: "0",
      // Only cooldowns here: a learned limit would keep holding the keys after they clear.
      PACING: "off",
    },
  });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  rotator.mock.script(B, { type: "error", fixture: "rpm" });
  try {
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => generate(rotator).then(drain)),
    );
    assert.ok(answers.every((r) => r.status === 429));
    const first = await receiver.message(1);
    assert.match(
      String(first.json.text),
      /No usable key for model `gemini-2.5-flash`: all 2 keys are cooling \(per-minute quota spent\)\. The first key is due back at .* \(in 3[0-3] s\)\./,
    );

    rotator.mock.setDefault({ type: "ok" });
    rotator.mock.script(A, { type: "ok" });
    await rotator.app.sync.clearCooldowns({});
    assert.equal((await drain(await generate(rotator))).status, 200);
    const second = await receiver.message(2);
    assert.match(String(second.json.text), /Model `gemini-2.5-flash` has a usable key again/);
    assert.equal(receiver.attempts, 2, "two messages for forty failed requests");
  } finally {
    await rotator.close();
    await receiver.close();
  }
});

Deno.test("the status page's history and errors need the admin token and report the traffic", async () => {
  const rotator = await startRotator({ keys: [A, B], env: { ADMIN_TOKEN } });
  rotator.mock.script(A, { type: "error", fixture: "leaked" });
  const admin = (path: string, token?: string) =>
    fetch(`${rotator.url}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  try {
    for (let i = 0; i < 3; i++) await drain(await generate(rotator));
    await drain(await generate(rotator, "gemini-2.5-flash", { token: "wrong-token-123456" }));

    assert.equal((await drain(await admin("/admin/api/history"))).status, 401);
    assert.equal((await drain(await admin("/admin/api/errors"))).status, 401);

    const history = await (await admin("/admin/api/history?hours=1", ADMIN_TOKEN)).json();
    assert.equal(history.bucketSeconds, 60);
    assert.equal(history.points.length, 60);
    const sum = (field: string) =>
      history.points.reduce((n: number, p: Record<string, number>) => n + p[field], 0);
    assert.equal(sum("requests"), 4);
    assert.equal(sum("errors"), 1, "the request with the wrong token");
    assert.equal(
      (await drain(await admin("/admin/api/history?hours=48", ADMIN_TOKEN))).status,
      400,
    );

    const { errors } = await (await admin("/admin/api/errors?limit=10", ADMIN_TOKEN)).json();
    assert.equal(errors.length, 2);
    assert.equal(errors[0].reason, "ACCESS_TOKEN_INVALID");
    assert.equal(errors[0].keyId, null);
    assert.deepEqual(
      { keyId: errors[1].keyId, status: errors[1].status, reason: errors[1].reason },
      { keyId: rotator.keys[0].id, status: 403, reason: "LEAKED" },
    );
    const text = JSON.stringify(errors);
    for (const key of [A, B]) assert.ok(!text.includes(key));
  } finally {
    await rotator.close();
  }
});

Deno.test("/admin/ serves the status page shell and its assets without a token, under a strict CSP", async () => {
  const off = await startRotator({ keys: [A] });
  try {
    assert.equal((await drain(await fetch(`${off.url}/admin/`))).status, 404, "admin off");
  } finally {
    await off.close();
  }
  const rotator = await startRotator({ keys: [A], env: { ADMIN_TOKEN } });
  try {
    const redirect = await drain(await fetch(`${rotator.url}/admin`, { redirect: "manual" }));
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get("location"), "/admin/");

    const page = await fetch(`${rotator.url}/admin/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(page.headers.get("content-security-policy")!, /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /<form id="login-form"/);
    assert.ok(!html.includes(A) && !html.includes(rotator.keys[0].id), "no data in the shell");

    for (
      const [path, type] of [
        ["/admin/assets/status.js", "text/javascript"],
        ["/admin/assets/status.css", "text/css"],
        ["/admin/assets/vendor/uPlot.iife.min.js", "text/javascript"],
        ["/admin/assets/vendor/uPlot.min.css", "text/css"],
      ]
    ) {
      const asset = await fetch(`${rotator.url}${path}`);
      assert.equal(asset.status, 200, path);
      assert.match(asset.headers.get("content-type")!, new RegExp(`^${type}`));
      const etag = asset.headers.get("etag")!;
      await asset.body?.cancel();
      const again = await fetch(`${rotator.url}${path}`, { headers: { "if-none-match": etag } });
      assert.equal((await drain(again)).status, 304, `${path} revalidates`);
    }
    assert.equal((await drain(await fetch(`${rotator.url}/admin/assets/nope.js`))).status, 404);
  } finally {
    await rotator.close();
  }
});
