/**
 * End to end through the real server and the mock upstream, with plain HTTP: what a user sees
 * when keys work, run out, die, or the upstream misbehaves.
 */

import assert from "node:assert/strict";
import { fingerprint } from "../src/keys.ts";
import { FakeClock, generate, startRotator, testKey, TOKEN } from "./harness.ts";

const A = testKey("alpha");
const B = testKey("bravo");
const C = testKey("charlie");

Deno.test("requests spread evenly over the keys in round-robin order", async () => {
  const rotator = await startRotator({ keys: [A, B, C] });
  try {
    for (let i = 0; i < 9; i++) {
      const response = await generate(rotator);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    const used = rotator.mock.requests.map((r) => r.key);
    assert.deepEqual(used, [A, B, C, A, B, C, A, B, C]);
  } finally {
    await rotator.close();
  }
});

Deno.test("a rate-limited key is skipped and the same body succeeds on another key", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const body = { contents: [{ parts: [{ text: "the exact body" }] }] };
    const response = await generate(rotator, "gemini-2.5-flash", { body });
    assert.equal(response.status, 200);
    // What answered, in the rotator's own fields (a fingerprint, never the key).
    assert.deepEqual(
      ["x-rotator-key", "x-rotator-attempts", "x-rotator-model", "x-rotator-provider", "via"]
        .map((name) => response.headers.get(name)),
      [await fingerprint(B), "2", "gemini-2.5-flash", "gemini", "1.1 gemini-key-rotator"],
    );
    const json = await response.json();
    assert.equal(json.candidates[0].content.parts[0].text, "Hello from the mock");
    const [first, second] = rotator.mock.requests;
    assert.equal(first.key, A);
    assert.equal(second.key, B);
    assert.equal(second.body, first.body);
    assert.deepEqual(JSON.parse(second.body), body);
    // The cooled key is not tried again for that model while its cooldown runs.
    for (let i = 0; i < 3; i++) await (await generate(rotator)).body?.cancel();
    assert.equal(rotator.mock.requestsFor(A).length, 1);
  } finally {
    await rotator.close();
  }
});

Deno.test("a per-minute cooldown is scoped to the model: other models still use the key", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" }, { type: "ok" });
  try {
    const limited = await generate(rotator, "gemini-2.5-flash");
    assert.equal(limited.status, 429);
    await limited.body?.cancel();
    const other = await generate(rotator, "gemini-2.5-pro");
    assert.equal(other.status, 200);
    await other.body?.cancel();
  } finally {
    await rotator.close();
  }
});

Deno.test("keys of one project share a cooldown; the next pick comes from another project", async () => {
  const rotator = await startRotator({ keys: [`p1:${A}`, `p1:${B}`, `p2:${C}`] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.deepEqual(rotator.mock.requests.map((r) => r.key), [A, C]);
    for (let i = 0; i < 3; i++) await (await generate(rotator)).body?.cancel();
    assert.equal(rotator.mock.requestsFor(B).length, 0, "B shares A's spent bucket");
  } finally {
    await rotator.close();
  }
});

Deno.test("when every key is cooling: 429 in Google's shape with Retry-After, nothing sent upstream", async () => {
  const clock = new FakeClock();
  const rotator = await startRotator({ keys: [A, B], clock });
  rotator.mock.script(A, { type: "error", fixture: "rpm" }); // retryDelay 33s
  rotator.mock.script(B, { type: "error", fixture: "rpm_pro" }); // retryDelay 56s
  try {
    const first = await generate(rotator);
    assert.equal(first.status, 429);
    assert.equal(first.headers.get("retry-after"), "33");
    const body = await first.json();
    assert.equal(body.error.code, 429);
    assert.equal(body.error.status, "RESOURCE_EXHAUSTED");
    assert.match(body.error.message, /first key recovers in 33 s/);
    assert.ok(
      body.error.details.some((d: Record<string, string>) => d.retryDelay === "33s"),
      "RetryInfo detail for clients that read it (Gemini CLI)",
    );
    const sent = rotator.mock.requests.length;

    clock.advance(20_500);
    const second = await generate(rotator);
    assert.equal(second.status, 429);
    assert.equal(second.headers.get("retry-after"), "13", "whole seconds, rounded up");
    const details = (await second.json()).error.details;
    assert.ok(
      details.some((d: Record<string, string>) => d.retryDelay === "12.500s"),
      `RetryInfo to the millisecond, as Google writes it: ${JSON.stringify(details)}`,
    );
    assert.equal(rotator.mock.requests.length, sent, "nothing sent while every key cools");

    clock.advance(12_500);
    rotator.mock.script(A, { type: "ok" });
    const third = await generate(rotator);
    assert.equal(third.status, 200, "a client that waits for Retry-After succeeds");
    await third.body?.cancel();
  } finally {
    await rotator.close();
  }
});

Deno.test("a per-day 429 cools the bucket until midnight Pacific, not for the short retryDelay", async () => {
  // 2026-11-25 18:00 UTC is 10:00 PST; the next Pacific midnight is 2026-11-26 08:00 UTC.
  const clock = new FakeClock(Date.UTC(2026, 10, 25, 18, 0, 0));
  const rotator = await startRotator({ keys: [A], clock });
  rotator.mock.script(A, { type: "error", fixture: "rpd" }); // retryDelay 38s, PerDay
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), String(14 * 3600));
    await response.body?.cancel();
    clock.advance(60_000);
    const later = await generate(rotator);
    assert.equal(later.status, 429, "still cooling a minute later");
    await later.body?.cancel();
    assert.equal(rotator.mock.requests.length, 1);
  } finally {
    await rotator.close();
  }
});

Deno.test("an invalid key is disabled and never tried again; the request succeeds on the next", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "invalid" });
  try {
    for (let i = 0; i < 4; i++) {
      const response = await generate(rotator);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    assert.equal(rotator.mock.requestsFor(A).length, 1);
    assert.equal(rotator.mock.requestsFor(B).length, 4);
    const disabled = rotator.app.pool.disablement("key", rotator.keys[0].id);
    assert.equal(disabled?.reason, "API_KEY_INVALID");
  } finally {
    await rotator.close();
  }
});

Deno.test("when every key is disabled: a 503 that says so, not a key's raw error", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "leaked" });
  rotator.mock.script(B, { type: "error", fixture: "invalid" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 503);
    const body = await response.json();
    assert.equal(body.error.status, "UNAVAILABLE");
    assert.match(body.error.message, /all 2 keys in the pool are disabled/);
    assert.doesNotMatch(JSON.stringify(body), /reported as leaked|API key not valid/);
  } finally {
    await rotator.close();
  }
});

Deno.test("a client error is passed through once and burns no key", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.setDefault({ type: "error", fixture: "not_found" });
  try {
    const response = await generate(rotator, "custom-gemini-2.0-flash");
    assert.equal(response.status, 404);
    const body = await response.json();
    assert.equal(body.error.status, "NOT_FOUND");
    assert.equal(rotator.mock.requests.length, 1, "not retried on other keys");
    rotator.mock.setDefault({ type: "ok" });
    const next = await generate(rotator, "custom-gemini-2.0-flash");
    assert.equal(next.status, 200, "no key was cooled or disabled");
    await next.body?.cancel();
  } finally {
    await rotator.close();
  }
});

Deno.test("a location precondition is passed through and blames no key", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "location" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error.status, "FAILED_PRECONDITION");
    assert.equal(rotator.mock.requests.length, 1);
    assert.equal(rotator.app.pool.summary(Date.now()).disabled, 0);
    assert.ok(rotator.logs.some((l) => l.includes('"reason":"LOCATION"')));
  } finally {
    await rotator.close();
  }
});

Deno.test("503 overloaded is retried after a backoff without cooling any key", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.script(A, { type: "error", fixture: "overloaded" }, { type: "ok" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(rotator.mock.requestsFor(A).length, 2);
    assert.equal(rotator.app.pool.cooldownsOf(rotator.keys[0].project, Date.now()).length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("a persistent 503 is passed through after the bounded retries", async () => {
  const rotator = await startRotator({ keys: [A, B], env: { TRANSIENT_RETRIES: "2" } });
  rotator.mock.setDefault({ type: "error", fixture: "overloaded" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 503);
    assert.match((await response.json()).error.message, /high demand/);
    assert.equal(rotator.mock.requests.length, 3, "one try plus two retries");
  } finally {
    await rotator.close();
  }
});

Deno.test("500 internal is retried once, then passed through", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.setDefault({ type: "error", fixture: "internal" });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 500);
    await response.body?.cancel();
    assert.equal(rotator.mock.requests.length, 2);
  } finally {
    await rotator.close();
  }
});

Deno.test("the access token is required, compared exactly, and never forwarded", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const wrong = await generate(rotator, "gemini-2.5-flash", { token: "wrong-token-123456" });
    assert.equal(wrong.status, 401);
    const body = await wrong.json();
    assert.equal(body.error.status, "UNAUTHENTICATED");
    const prefix = await generate(rotator, "gemini-2.5-flash", { token: TOKEN.slice(0, -1) });
    assert.equal(prefix.status, 401);
    await prefix.body?.cancel();
    assert.equal(rotator.mock.requests.length, 0, "nothing sent upstream");

    const forms: RequestInit[] = [
      { headers: { "x-goog-api-key": TOKEN } },
      { headers: { authorization: `Bearer ${TOKEN}` } },
      { headers: { "x-access-token": TOKEN } },
    ];
    for (const init of forms) {
      const response = await fetch(`${rotator.url}/v1beta/models`, init);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    }
    const query = await fetch(`${rotator.url}/v1beta/models?key=${TOKEN}&pageSize=5`);
    assert.equal(query.status, 200);
    await query.body?.cancel();
    for (const request of rotator.mock.requests) {
      assert.equal(request.key, A);
      assert.equal(request.headers.get("authorization"), null);
      assert.equal(request.headers.get("x-access-token"), null);
      assert.ok(!request.search.includes("key="), "the pool key is never in the URL");
    }
    assert.equal(rotator.mock.requests.at(-1)!.search, "?pageSize=5");
  } finally {
    await rotator.close();
  }
});

Deno.test("cookies and forwarding headers never reach upstream; other headers do", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const response = await fetch(`${rotator.url}/v1beta/models`, {
      headers: {
        "x-goog-api-key": TOKEN,
        cookie: "session=secret",
        "x-forwarded-for": "10.0.0.1",
        "x-goog-user-project": "kept",
        "user-agent": "test-agent/1.0",
        connection: "x-custom-hop",
        "x-custom-hop": "dropped",
      },
    });
    await response.body?.cancel();
    const [request] = rotator.mock.requests;
    assert.equal(request.headers.get("cookie"), null);
    assert.equal(request.headers.get("x-forwarded-for"), null);
    assert.equal(request.headers.get("x-custom-hop"), null);
    assert.equal(request.headers.get("x-goog-user-project"), "kept");
    assert.equal(request.headers.get("user-agent"), "test-agent/1.0");
    assert.match(request.headers.get("via") ?? "", /gemini-key-rotator/);
  } finally {
    await rotator.close();
  }
});

Deno.test("paths that are not Gemini API paths get 404 and send nothing upstream", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    for (
      const path of [
        "/",
        "/admin",
        "/v2/models",
        "//evil.example/v1beta/models",
        "/v1beta/../healthz/x",
        "/%2e%2e/v1beta",
        "/v1beta",
        "/upload/",
      ]
    ) {
      const response = await fetch(`${rotator.url}${path}`, {
        headers: { "x-goog-api-key": TOKEN },
      });
      assert.notEqual(response.status, 200, path);
      await response.body?.cancel();
    }
    assert.equal(rotator.mock.requests.length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("no path or Host header can send a pool key to another host", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const paths = [
      "/v1beta/models/@evil.example:generateContent",
      "/v1beta/..%2F..%2Fevil.example/models",
      "/v1beta/%2F%2Fevil.example/models",
      "/v1beta/models/x%40evil.example",
      "/v1beta/models?x=http://evil.example/",
    ];
    for (const path of paths) {
      const response = await fetch(`${rotator.url}${path}`, {
        headers: { "x-goog-api-key": TOKEN, host: "evil.example" },
      });
      await response.body?.cancel();
    }
    // Every request that left went to the mock (the configured upstream), none elsewhere.
    assert.equal(rotator.mock.requests.length, paths.length);
    for (const request of rotator.mock.requests) assert.ok(request.path.startsWith("/v1beta/"));
  } finally {
    await rotator.close();
  }
});

Deno.test("a body over MAX_BODY_BYTES gets 413 and is not sent", async () => {
  const rotator = await startRotator({ keys: [A], env: { MAX_BODY_BYTES: "2048" } });
  try {
    const big = { contents: [{ parts: [{ text: "x".repeat(5000) }] }] };
    const response = await generate(rotator, "gemini-2.5-flash", { body: big });
    assert.equal(response.status, 413);
    assert.match((await response.json()).error.message, /MAX_BODY_BYTES/);
    assert.equal(rotator.mock.requests.length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("CORS preflight is answered without a token and responses carry CORS headers", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const preflight = await fetch(`${rotator.url}/v1beta/models/x:generateContent`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "x-goog-api-key, content-type",
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
    assert.match(preflight.headers.get("access-control-allow-headers")!, /x-goog-api-key/);
    await preflight.body?.cancel();
    const response = await generate(rotator, "gemini-2.5-flash", {
      headers: { origin: "https://app.example" },
    });
    assert.equal(response.headers.get("access-control-allow-origin"), "*");
    await response.body?.cancel();
    assert.equal(rotator.mock.requests.length, 1);
  } finally {
    await rotator.close();
  }
});

Deno.test("no keys configured: every proxied request gets a clear 503", async () => {
  const rotator = await startRotator({ keys: [] });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 503);
    assert.match((await response.json()).error.message, /no Gemini API keys configured/);
    const health = await fetch(`${rotator.url}/healthz`);
    assert.equal((await health.json()).status, "no_keys");
  } finally {
    await rotator.close();
  }
});

Deno.test("a compressed upstream answer reaches the client with headers true to its body", async () => {
  const rotator = await startRotator({ keys: [A] });
  const body = JSON.stringify({
    candidates: [{ content: { parts: [{ text: "x".repeat(5000) }] } }],
  });
  rotator.mock.setDefault({ type: "raw", status: 200, body, gzip: true });
  try {
    const response = await generate(rotator);
    assert.equal(response.status, 200);
    // The rotator's fetch decoded the gzip body: it must not claim an encoding or the
    // compressed length for the bytes it sends.
    assert.equal(response.headers.get("content-encoding"), null);
    const length = response.headers.get("content-length");
    const text = await response.text();
    assert.ok(length === null || Number(length) === new TextEncoder().encode(text).byteLength);
    assert.equal(text, body);
  } finally {
    await rotator.close();
  }
});

Deno.test("HEAD and GET carry no body upstream; hop-by-hop answer fields are not passed on", async () => {
  const rotator = await startRotator({ keys: [A] });
  rotator.mock.setDefault({
    type: "raw",
    status: 200,
    body: "{}",
    headers: { "content-type": "application/json", "keep-alive": "timeout=5", "x-kept": "1" },
  });
  try {
    const response = await fetch(`${rotator.url}/v1beta/models`, {
      headers: { "x-goog-api-key": TOKEN },
    });
    assert.equal(response.headers.get("keep-alive"), null);
    assert.equal(response.headers.get("x-kept"), "1");
    await response.body?.cancel();
    assert.equal(rotator.mock.requests[0].body, "");
  } finally {
    await rotator.close();
  }
});

Deno.test("the request log line says what happened, without the query or any key", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const response = await fetch(
      `${rotator.url}/v1beta/models/gemini-2.5-flash:generateContent?alt=json&key=${TOKEN}`,
      { method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const text = rotator.logs.findLast((line) => line.includes('"msg":"request"'))!;
    const line = JSON.parse(text);
    assert.deepEqual(
      [line.method, line.path, line.model, line.status, line.attempts, line.answeredBy],
      [
        "POST",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        "gemini-2.5-flash",
        200,
        2,
        "upstream",
      ],
    );
    assert.deepEqual(line.keys, [await fingerprint(A), await fingerprint(B)]);
    assert.ok(typeof line.upstreamMs === "number" && line.upstreamMs >= 0, text);
    for (const secret of [A, B, TOKEN]) assert.ok(!text.includes(secret), "no key or token");
  } finally {
    await rotator.close();
  }
});

Deno.test("/v1alpha paths are Gemini paths: forwarded as they came, with a pool key", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const response = await fetch(
      `${rotator.url}/v1alpha/models/gemini-2.5-flash:generateContent`,
      {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: "{}",
      },
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [sent] = rotator.mock.requests;
    assert.equal(sent.path, "/v1alpha/models/gemini-2.5-flash:generateContent");
    assert.equal(sent.key, A);
  } finally {
    await rotator.close();
  }
});

Deno.test("attempts are bounded in count (MAX_ATTEMPTS) and in time (RETRY_BUDGET_MS)", async () => {
  const keys = [A, B, C, testKey("delta")];
  // Each key in its own project; the first three are rate-limited, the fourth is fine.
  const clock = new FakeClock();
  // Every upstream call takes 600 ms of the fake clock.
  const slow: typeof fetch = async (input, init) => {
    clock.advance(600);
    return await fetch(input, init);
  };
  const limits: Record<string, string>[] = [{ MAX_ATTEMPTS: "2" }, { RETRY_BUDGET_MS: "1000" }];
  for (const env of limits) {
    const rotator = await startRotator({ keys, clock, fetch: slow, env });
    for (const key of keys.slice(0, 3)) rotator.mock.script(key, { type: "error", fixture: "rpm" });
    try {
      const response = await generate(rotator);
      assert.equal(response.status, 429, JSON.stringify(env));
      assert.equal(response.headers.get("retry-after"), "1", "another key may have quota");
      const body = await response.json();
      assert.equal(body.error.details[0].reason, "ATTEMPTS_EXHAUSTED");
      // Two attempts either way: the count, or 1.2 s of the 1 s budget spent after the second.
      assert.deepEqual(rotator.mock.requests.map((r) => r.key), [A, B]);
    } finally {
      await rotator.close();
    }
  }
});

Deno.test("a spending cap cools the whole project for every model; a 402 disables it", async () => {
  const D = testKey("delta");
  for (const [fixture, why] of [["spend_cap", "cooling"], ["prepay", "disabled"]] as const) {
    const rotator = await startRotator({ keys: [`p1:${A}`, `p1:${B}`, `p2:${C}`, `p3:${D}`] });
    rotator.mock.script(A, { type: "error", fixture });
    try {
      const first = await generate(rotator, "gemini-2.5-flash");
      assert.equal(first.status, 200, fixture);
      await first.body?.cancel();
      for (let i = 0; i < 4; i++) {
        const other = await generate(rotator, i % 2 ? "gemini-2.5-pro" : "gemini-2.5-flash");
        assert.equal(other.status, 200);
        await other.body?.cancel();
      }
      assert.equal(rotator.mock.requestsFor(B).length, 0, `project p1 is ${why} for every model`);
      assert.equal(rotator.mock.requestsFor(A).length, 1);
    } finally {
      await rotator.close();
    }
  }
});
