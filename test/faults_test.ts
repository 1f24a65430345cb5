/**
 * Upstream faults, end to end: what a client sees when the Gemini API cannot be reached, cuts a
 * body short, answers too slowly, or answers with bodies that are not Google's error shape.
 * (Mid-stream resets, stalls and disconnects are in streaming_test.ts.)
 */

import assert from "node:assert/strict";
import { FakeClock, generate, startRotator, testKey } from "./harness.ts";

const A = testKey("alpha");
const B = testKey("bravo");

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("connection refused: 502 UNAVAILABLE in Google's shape, no key blamed, no key in the log", async () => {
  const rotator = await startRotator({
    keys: [A, B],
    env: { GEMINI_API_BASE_URL: `http://127.0.0.1:${closedPort()}` },
  });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 502);
    const body = await response.json();
    assert.equal(body.error.status, "UNAVAILABLE");
    assert.equal(body.error.details[0].reason, "UPSTREAM_UNREACHABLE");
    const summary = rotator.app.pool.summary(Date.now());
    assert.equal(summary.disabled, 0);
    assert.equal(summary.cooling, 0);
    assert.ok(rotator.logs.some((line) => line.includes("upstream request failed")));
    for (const line of rotator.logs) assert.ok(!line.includes(A) && !line.includes(B));
  } finally {
    await rotator.close();
  }
});

Deno.test({
  name: "connection refused is retried TRANSIENT_RETRIES times, not MAX_ATTEMPTS - 1 times",
  // An unreachable upstream is not a key's fault: TRANSIENT_RETRIES bounds the retries, not
  // MAX_ATTEMPTS (which would mean 0.5+1+2+4 s of backoff before the client hears 502).
  async fn() {
    const rotator = await startRotator({
      keys: [A, B],
      env: { GEMINI_API_BASE_URL: `http://127.0.0.1:${closedPort()}`, TRANSIENT_RETRIES: "2" },
    });
    try {
      const response = await generate(rotator);
      assert.equal(response.status, 502);
      await response.body?.cancel();
      const failures = rotator.logs.filter((line) => line.includes("upstream request failed"));
      assert.equal(failures.length, 3, "one try and two retries, then an answer");
    } finally {
      await rotator.close();
    }
  },
});

Deno.test("an upstream reset mid-body of a plain JSON answer fails the transfer, never a short body that looks whole", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.setDefault({ type: "reset", chunks: 1 });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await assert.rejects(response.arrayBuffer());
    assert.equal(rotator.mock.requests.length, 1, "not sent again once bytes went out");
  } finally {
    await rotator.close();
  }
});

Deno.test("an upstream slower than UPSTREAM_TIMEOUT_MS: 504, not retried, and the upstream call is cancelled", async () => {
  const rotator = await startRotator({ keys: [A, B], env: { UPSTREAM_TIMEOUT_MS: "150" } });
  rotator.mock.setDefault({ type: "hang" });
  try {
    const cancelled = rotator.mock.nextCancel();
    const started = performance.now();
    const response = await generate(rotator);
    assert.equal(response.status, 504);
    const body = await response.json();
    assert.equal(body.error.status, "DEADLINE_EXCEEDED");
    assert.match(body.error.message, /did not answer within 150 ms/);
    assert.ok(performance.now() - started < 5000);
    await cancelled;
    assert.equal(rotator.mock.requests.length, 1, "a slow answer is not repeated on another key");
    assert.equal(rotator.app.pool.summary(Date.now()).cooling, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("a 429 whose body is cut-off JSON still cools that key, and the request succeeds on another", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({ keys: [A, B], clock });
  rotator.mock.script(A, {
    type: "raw",
    status: 429,
    body: '{"error": {"code": 429, "message": "You exceeded your current quo',
  });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [cooldown] = rotator.app.pool.cooldownsOf(rotator.keys[0].project, clock.now());
    assert.equal(cooldown.window, "unknown");
    assert.equal(cooldown.until, clock.now() + rotator.config.unknownQuotaCooldownMs);
  } finally {
    await rotator.close();
  }
});

Deno.test("malformed error bodies on other statuses are passed through as they came, blaming no key", async () => {
  const bodies = [
    { status: 400, body: "{not json", type: "application/json" },
    { status: 403, body: "Forbidden", type: "text/plain" },
    { status: 404, body: '{"error": "a string, not an object"}', type: "application/json" },
    { status: 400, body: "[]", type: "application/json" },
    { status: 400, body: "", type: "application/json" },
  ];
  for (const { status, body, type } of bodies) {
    const rotator = await startRotator({ keys: [A, B] });
    rotator.mock.setDefault({ type: "raw", status, body, headers: { "content-type": type } });
    try {
      const response = await generate(rotator);
      assert.equal(response.status, status, body);
      assert.equal(await response.text(), body);
      assert.equal(rotator.mock.requests.length, 1, `${status} ${body}: no other key tried`);
      const summary = rotator.app.pool.summary(Date.now());
      assert.equal(summary.disabled + summary.cooling, 0, `${status} ${body}: no key blamed`);
    } finally {
      await rotator.close();
    }
  }
});

Deno.test("a 429 with no details at all cools the key for UNKNOWN_QUOTA_COOLDOWN_MS and moves on", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({
    keys: [A, B],
    clock,
    env: { UNKNOWN_QUOTA_COOLDOWN_MS: "45000" },
  });
  rotator.mock.script(A, { type: "error", fixture: "no_details" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [cooldown] = rotator.app.pool.cooldownsOf(rotator.keys[0].project, clock.now());
    assert.equal(cooldown.until, clock.now() + 45_000);
    clock.advance(45_000);
    rotator.mock.script(A, { type: "ok" });
    for (let i = 0; i < 2; i++) await (await generate(rotator)).body?.cancel();
    assert.equal(rotator.mock.requestsFor(A).length, 2, "A is used again once its cooldown ends");
  } finally {
    await rotator.close();
  }
});

Deno.test("a load balancer's HTML 502 page is retried, then passed through as it came", async () => {
  const rotator = await startRotator({ keys: [A, B], env: { TRANSIENT_RETRIES: "1" } });
  rotator.mock.setDefault({ type: "html", status: 502 });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 502);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await response.text(), /502 Bad Gateway/);
    assert.equal(rotator.mock.requests.length, 2, "one try and one retry");
    assert.equal(rotator.app.pool.summary(Date.now()).disabled, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("a load balancer's HTML 503 page is transient: the retry succeeds, no key cooled", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.script(A, { type: "html", status: 503 }, { type: "ok" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(rotator.app.pool.summary(Date.now()).cooling, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("a load balancer's HTML 429 page cools the key briefly; when all do, the client gets the rotator's 429", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({ keys: [A, B], clock });
  rotator.mock.setDefault({ type: "html", status: 429 });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), "30", "UNKNOWN_QUOTA_COOLDOWN_MS");
    const body = await response.json();
    assert.equal(body.error.status, "RESOURCE_EXHAUSTED");
    assert.match(body.error.message, /without saying which quota/);
    assert.equal(rotator.mock.requests.length, 2);
    assert.equal(rotator.app.pool.summary(clock.now()).disabled, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("an enormous upstream error body is read only up to a bound and the answer still comes", async () => {
  const rotator = await startRotator({ keys: [A] });
  // 8 MiB of error text from a broken upstream (not JSON): classified from its first 64 KiB.
  rotator.mock.setDefault({ type: "raw", status: 400, body: "x".repeat(8 * 1024 * 1024) });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 400);
    const text = await response.text();
    assert.ok(text.length >= 64 * 1024 && text.length < 8 * 1024 * 1024);
  } finally {
    await rotator.close();
  }
});
