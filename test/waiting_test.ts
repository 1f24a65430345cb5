/**
 * Waiting for capacity and model fallback: a request whose keys all cool for a short while waits
 * (up to MAX_WAIT_SECONDS, lowered by x-rotator-max-wait) instead of getting a 429; waiting
 * requests go in arrival order; a client that leaves sends nothing; a substitute model answers
 * when the operator allowed one. Time is a ManualClock: nothing here sleeps for real.
 */

import assert from "node:assert/strict";
import type { WaitEvent } from "../src/events.ts";
import { generate, ManualClock, type Rotator, startRotator, testKey, TOKEN } from "./harness.ts";
import { rpmBody } from "./mock_upstream.ts";

const A = testKey("wait-a");
const B = testKey("wait-b");
const M = "gemini-2.5-flash";

/** Google's per-minute 429 with a chosen RetryInfo delay. */
function rpm(seconds: number) {
  return { type: "raw" as const, status: 429, body: rpmBody(seconds) };
}

/** Resolves when the next request starts waiting. */
function nextWait(observers: { waiting?: (e: WaitEvent) => void }[]): Promise<WaitEvent> {
  return new Promise((resolve) => observers[0].waiting = resolve);
}

/** The next request gets the 429 (Retry-After: 1) without waiting: nothing sleeps. */
async function refusedAtOnce(rotator: Rotator, clock: ManualClock, headers = {}) {
  const refused = await generate(rotator, M, { headers });
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get("retry-after"), "1");
  await refused.body?.cancel();
  assert.equal(clock.sleepers, 0, "nothing waits");
}

/** The fetch to the upstream, watched: how many requests were out at once, at most. */
function watchedFetch(): { fetch: typeof fetch; most: () => number; reset: () => void } {
  let inFlight = 0;
  let most = 0;
  return {
    fetch: async (input, init) => {
      most = Math.max(most, ++inFlight);
      try {
        return await fetch(input, init);
      } finally {
        inFlight--;
      }
    },
    most: () => most,
    /** Starts counting anew (from what is out now). */
    reset: () => {
      most = inFlight;
    },
  };
}

async function withRotator(
  keys: string[],
  env: Record<string, string>,
  body: (
    rotator: Rotator,
    clock: ManualClock,
    observers: { waiting?: (e: WaitEvent) => void }[],
  ) => Promise<void>,
  upstreamFetch?: typeof fetch,
) {
  const clock = new ManualClock();
  const observers: { waiting?: (e: WaitEvent) => void }[] = [{}];
  const rotator = await startRotator({
    keys,
    clock,
    observers,
    env: { PACING: "off", ...env },
    ...(upstreamFetch ? { fetch: upstreamFetch } : {}),
  });
  try {
    await body(rotator, clock, observers);
  } finally {
    await rotator.close();
  }
}

Deno.test("a request waits for the first key to recover and then succeeds", async () => {
  await withRotator([A], {}, async (rotator, clock, observers) => {
    rotator.mock.script(A, rpm(3), { type: "ok" });
    const waiting = nextWait(observers);
    const pending = generate(rotator);
    const event = await waiting;
    assert.equal(event.until - clock.now(), 3000);
    assert.equal(rotator.mock.requests.length, 1, "nothing sent while waiting");
    clock.advance(3000);
    const response = await pending;
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.equal(rotator.mock.requests.length, 2);
  });
});

Deno.test("a recovery beyond the bound answers 429 at once; x-rotator-max-wait lowers the bound", async () => {
  await withRotator([A], { MAX_WAIT_SECONDS: "5" }, async (rotator, clock) => {
    rotator.mock.script(A, rpm(8));
    const far = await generate(rotator);
    assert.equal(far.status, 429);
    assert.equal(far.headers.get("retry-after"), "8");
    await far.body?.cancel();
    clock.advance(8000);
    rotator.mock.script(A, rpm(3));
    const lowered = await generate(rotator, M, { headers: { "x-rotator-max-wait": "1" } });
    assert.equal(lowered.status, 429, "3 s is beyond the client's 1 s");
    await lowered.body?.cancel();
    assert.equal(clock.sleepers, 0);
    const bad = await generate(rotator, M, { headers: { "x-rotator-max-wait": "soon" } });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /x-rotator-max-wait must be a number/);
  });
});

Deno.test("with waiting off, a key back within RESET_GRACE_MS is waited for; one later is not", async () => {
  await withRotator([A], { MAX_WAIT_SECONDS: "0" }, async (rotator, clock, observers) => {
    // A reset 0.2 s away: the 429 would cost the client a second of Retry-After.
    rotator.mock.script(A, rpm(0.2), { type: "ok" });
    const waiting = nextWait(observers);
    const pending = generate(rotator);
    const first = await Promise.race([waiting, pending.then((r) => r.status)]);
    assert.equal(typeof first, "object", `answered ${first} instead of waiting`);
    assert.equal((first as WaitEvent).until - clock.now(), 200);
    clock.advance(200);
    const response = await pending;
    assert.equal(response.status, 200);
    await response.body?.cancel();

    // One second away is beyond the grace: the 429 comes at once, with the header too.
    rotator.mock.script(A, rpm(1));
    await refusedAtOnce(rotator, clock);

    // A client's own x-rotator-max-wait: 0 is taken as meant: the 429 at once.
    clock.advance(1000);
    rotator.mock.script(A, rpm(0.2));
    await refusedAtOnce(rotator, clock, { "x-rotator-max-wait": "0" });
  });
});

Deno.test("RESET_GRACE_MS=0 with waiting off: a key back in 0.2 s still gets the 429 at once", async () => {
  await withRotator(
    [A],
    { MAX_WAIT_SECONDS: "0", RESET_GRACE_MS: "0" },
    async (rotator, clock) => {
      rotator.mock.script(A, rpm(0.2));
      await refusedAtOnce(rotator, clock);
    },
  );
});

Deno.test("per-day exhaustion never waits", async () => {
  await withRotator([A], {}, async (rotator, clock) => {
    rotator.mock.script(A, { type: "error", fixture: "rpd" });
    const response = await generate(rotator);
    assert.equal(response.status, 429);
    await response.body?.cancel();
    assert.equal(clock.sleepers, 0);
  });
});

Deno.test("a client that leaves while waiting leaves the line and sends nothing", async () => {
  await withRotator([A], {}, async (rotator, clock, observers) => {
    rotator.mock.script(A, rpm(3), { type: "ok" });
    const controller = new AbortController();
    const waiting = nextWait(observers);
    const pending = fetch(`${rotator.url}/v1beta/models/${M}:generateContent`, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN },
      body: "{}",
      signal: controller.signal,
    }).catch((error) => error);
    await waiting;
    controller.abort();
    assert.ok((await pending) instanceof Error);
    // The server notices the disconnect and drops the waiter's timer.
    while (clock.sleepers > 0) await clock.changed();
    clock.advance(5000);
    assert.equal(rotator.mock.requests.length, 1, "only the request that found the key cooling");
  });
});

Deno.test("50 waiting requests are released in arrival order as the key recovers, one at a time", async () => {
  const watched = watchedFetch();
  await withRotator([A], { MAX_WAITING: "60" }, async (rotator, clock, observers) => {
    rotator.mock.script(A, rpm(2), { type: "ok" });
    const first = nextWait(observers);
    const requests = [generate(rotator, M, { body: { contents: [{ parts: [{ text: "0" }] }] } })];
    await first;
    for (let i = 1; i < 50; i++) {
      const joined = nextWait(observers);
      requests.push(
        generate(rotator, M, { body: { contents: [{ parts: [{ text: String(i) }] }] } }),
      );
      await joined;
    }
    assert.equal(rotator.mock.requests.length, 1, "nothing sent before the recovery");
    clock.advance(2000);
    const answers = await Promise.all(requests);
    assert.ok(answers.every((a) => a.status === 200));
    await Promise.all(answers.map((a) => a.body?.cancel()));
    const order = rotator.mock.requests.slice(1).map((r) =>
      Number(JSON.parse(r.body).contents[0].parts[0].text)
    );
    assert.deepEqual(order, Array.from({ length: 50 }, (_, i) => i), "arrival order");
    // A key whose limit is unknown takes one waiter at a time until it has answered, so a
    // recovered key is never handed all fifty at once.
    assert.equal(watched.most(), 1);
  }, watched.fetch);
});

Deno.test("a full line answers 429 at once", async () => {
  await withRotator([A], { MAX_WAITING: "1" }, async (rotator, clock, observers) => {
    rotator.mock.script(A, rpm(3), { type: "ok" });
    const waiting = nextWait(observers);
    const first = generate(rotator);
    await waiting;
    const second = await generate(rotator);
    assert.equal(second.status, 429);
    await second.body?.cancel();
    clock.advance(3000);
    const answer = await first;
    assert.equal(answer.status, 200);
    await answer.body?.cancel();
  });
});

Deno.test("a substitute model answers when every key is spent for the one requested", async () => {
  await withRotator([A, B], {
    MODEL_FALLBACKS: "gemini-2.5-pro=gemini-2.5-flash;gemini-2.5-flash=gemini-2.5-flash-lite",
    MAX_WAIT_SECONDS: "0",
  }, async (rotator) => {
    rotator.mock.script(A, { type: "error", fixture: "rpd" }, { type: "ok" });
    rotator.mock.script(B, { type: "error", fixture: "rpd" }, { type: "ok" });
    const response = await generate(rotator, "gemini-2.5-pro");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-rotator-model"), "gemini-2.5-flash");
    await response.body?.cancel();
    const line = JSON.parse(rotator.logs.findLast((l) => l.includes('"msg":"request"'))!);
    assert.deepEqual([line.requestedModel, line.model], ["gemini-2.5-pro", "gemini-2.5-flash"]);
    const paths = rotator.mock.requests.map((r) => r.path);
    assert.deepEqual(paths.slice(-1), ["/v1beta/models/gemini-2.5-flash:generateContent"]);

    const refused = await generate(rotator, "gemini-2.5-pro", {
      headers: { "x-rotator-fallback": "none" },
    });
    assert.equal(refused.status, 429, "the client refused substitution");
    await refused.body?.cancel();
  });
});

Deno.test("a client error is never answered by a substitute model", async () => {
  await withRotator(
    [A],
    { MODEL_FALLBACKS: "gemini-2.5-pro=gemini-2.5-flash" },
    async (rotator) => {
      rotator.mock.setDefault({ type: "error", fixture: "not_found" });
      const response = await generate(rotator, "gemini-2.5-pro");
      assert.equal(response.status, 404);
      await response.body?.cancel();
      assert.equal(rotator.mock.requests.length, 1);
    },
  );
});

Deno.test("substitution works on the OpenAI-compatible surface (the model is in the body)", async () => {
  await withRotator([A], {
    MODEL_FALLBACKS: "gemini-2.5-pro=gemini-2.5-flash",
    MAX_WAIT_SECONDS: "0",
  }, async (rotator) => {
    rotator.mock.script(A, { type: "error", fixture: "rpd_openai" }, { type: "ok" });
    const response = await fetch(`${rotator.url}/v1beta/openai/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gemini-2.5-pro",
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-rotator-model"), "gemini-2.5-flash");
    assert.equal((await response.json()).model, "gemini-2.5-flash");
  });
});

Deno.test("a waiter that handed its turn on and met another 429 waits again, not fails", async () => {
  await withRotator([A, B], {}, async (rotator, clock, observers) => {
    rotator.mock.script(A, rpm(2), rpm(3), { type: "ok" });
    rotator.mock.script(B, rpm(2), rpm(3), { type: "ok" });
    const first = nextWait(observers);
    const pending = generate(rotator);
    await first;
    // Both keys recover; the waiter takes one (handing its turn on, as another key is usable),
    // and both answer 429 again: it must wait for the next recovery.
    const again = nextWait(observers);
    clock.advance(2000);
    await again;
    clock.advance(3000);
    const response = await pending;
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });
});

Deno.test("a bucket that regains room for k takes k waiters at once, in arrival order", async () => {
  const clock = new ManualClock();
  const observers: { waiting?: (e: WaitEvent) => void }[] = [{}];
  const watched = watchedFetch();
  const rotator = await startRotator({
    keys: [A],
    clock,
    observers,
    fetch: watched.fetch,
    env: { PACING: "declared", QUOTA_LIMITS: `${M}=3/5s`, MAX_WAIT_SECONDS: "10" },
  });
  const pending: Promise<Response>[] = [];
  try {
    const numbered = (i: number) =>
      generate(rotator, M, { body: { contents: [{ parts: [{ text: String(i) }] }] } });
    for (let i = 0; i < 3; i++) await (await numbered(i)).body?.cancel();
    // The window is full: five requests wait for it to slide.
    for (let i = 3; i < 8; i++) {
      const joined = nextWait(observers);
      pending.push(numbered(i));
      await joined;
    }
    watched.reset();
    clock.advance(5_000);
    const released = await Promise.all(pending.slice(0, 3));
    assert.ok(released.every((a) => a.status === 200));
    await Promise.all(released.map((a) => a.body?.cancel()));
    assert.equal(watched.most(), 3, "room for three: three waiters sent at once");
    // The fourth, at the front again, sleeps until the next window has room.
    while (clock.sleepers === 0) await clock.changed();
    clock.advance(5_000);
    const rest = await Promise.all(pending.slice(3));
    assert.ok(rest.every((a) => a.status === 200));
    await Promise.all(rest.map((a) => a.body?.cancel()));
    const order = rotator.mock.requests.map((r) =>
      Number(JSON.parse(r.body).contents[0].parts[0].text)
    );
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7], "arrival order");
  } finally {
    // A failed assertion leaves requests waiting: let them finish before closing.
    clock.advance(60_000);
    await Promise.allSettled(pending.map(async (p) => (await p).body?.cancel()));
    await rotator.close();
  }
});
