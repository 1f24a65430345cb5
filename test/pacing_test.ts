/**
 * Pacing end to end: the mock enforces per-project request limits in fixed windows (as Google
 * does, in miniature) on the same fake clock as the rotator; clients keep more traffic coming
 * than the pool can carry. After learning (two 429s per bucket at most), no request reaches a
 * full bucket; with declared limits, none ever does.
 */

import assert from "node:assert/strict";
import { FakeClock, generate, type Rotator, startRotator, testKey } from "./harness.ts";

const KEYS = ["pace-a", "pace-b", "pace-c", "pace-d"].map(testKey);
const WINDOW = 10_000;
const LIMIT = 3;
const STEP = 500;
const WINDOWS = 20;

interface Run {
  successes: number;
  rotator429s: number;
  upstream429s: number;
  refusedAt: number[];
  earlyRetryAfter: number;
}

/** Drives `concurrency` clients for WINDOWS windows of fake time, as fast as answers allow. */
async function drive(rotator: Rotator, clock: FakeClock, concurrency: number): Promise<Run> {
  const start = clock.now();
  const run: Run = {
    successes: 0,
    rotator429s: 0,
    upstream429s: 0,
    refusedAt: [],
    earlyRetryAfter: 0,
  };
  let promisedAt: number | undefined;
  while (clock.now() - start < WINDOWS * WINDOW) {
    for (;;) {
      const answers = await Promise.all(
        Array.from({ length: concurrency }, () => generate(rotator)),
      );
      let refused = false;
      for (const answer of answers) {
        const text = await answer.text();
        if (answer.status === 200) {
          run.successes++;
        } else {
          assert.equal(answer.status, 429, text);
          run.rotator429s++;
          refused = true;
          const at = clock.now() + Number(answer.headers.get("retry-after")) * 1000;
          promisedAt = Math.min(promisedAt ?? Infinity, at);
        }
      }
      if (refused) break;
      // Retry-After is never early: a client that waited for it found room.
      promisedAt = undefined;
    }
    clock.advance(STEP);
    if (promisedAt !== undefined && clock.now() >= promisedAt) {
      const probe = await generate(rotator);
      await probe.body?.cancel();
      if (probe.status === 200) run.successes++;
      else run.earlyRetryAfter++;
      promisedAt = undefined;
    }
  }
  run.upstream429s = rotator.mock.refused.length;
  run.refusedAt = rotator.mock.refused.map((r) => r.at - start);
  return run;
}

/** The pool's combined quota over the run. */
const capacity = KEYS.length * LIMIT * WINDOWS;

Deno.test("pacing learns each bucket's limit and then sends no request to a full bucket", async () => {
  const clock = new FakeClock(Math.ceil(Date.UTC(2026, 10, 25, 18) / WINDOW) * WINDOW + 1234);
  const rotator = await startRotator({ keys: KEYS, clock, env: { LOG_REQUESTS: "false" } });
  rotator.mock.setDefault({ type: "limited", limit: LIMIT, windowMs: WINDOW });
  try {
    const run = await drive(rotator, clock, 8);
    // Learning: the first window's 429s (limits unknown; concurrent requests were already in
    // flight) and one probe per quota in the second to hear the window's length.
    assert.ok(
      run.refusedAt.every((t) => t < 2 * WINDOW),
      `after the first two windows no request reached a full bucket: ${run.refusedAt}`,
    );
    assert.ok(run.successes >= 0.95 * capacity, `${run.successes} of ${capacity}`);
    assert.ok(run.upstream429s / run.successes <= 0.05);
    assert.equal(run.earlyRetryAfter, 0, "Retry-After was never early");
  } finally {
    await rotator.close();
  }
});

Deno.test("with declared limits the pool reaches its quota with zero upstream 429s", async () => {
  const clock = new FakeClock(Math.ceil(Date.UTC(2026, 10, 25, 18) / WINDOW) * WINDOW + 4321);
  const rotator = await startRotator({
    keys: KEYS,
    clock,
    env: { LOG_REQUESTS: "false", QUOTA_LIMITS: `gemini-2.5-flash=${LIMIT}/${WINDOW / 1000}s` },
  });
  rotator.mock.setDefault({ type: "limited", limit: LIMIT, windowMs: WINDOW });
  try {
    const run = await drive(rotator, clock, 8);
    assert.equal(run.upstream429s, 0);
    assert.ok(run.successes >= 0.98 * capacity, `${run.successes} of ${capacity}`);
    assert.equal(run.earlyRetryAfter, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("without pacing (PACING=off) every window costs a 429 per bucket", async () => {
  const clock = new FakeClock(Math.ceil(Date.UTC(2026, 10, 25, 18) / WINDOW) * WINDOW + 99);
  const rotator = await startRotator({
    keys: KEYS,
    clock,
    env: { LOG_REQUESTS: "false", PACING: "off" },
  });
  rotator.mock.setDefault({ type: "limited", limit: LIMIT, windowMs: WINDOW });
  try {
    const run = await drive(rotator, clock, 8);
    // The baseline pacing is measured against: at least one wasted 429 per bucket per window.
    assert.ok(run.upstream429s >= KEYS.length * (WINDOWS - 1), `${run.upstream429s}`);
  } finally {
    await rotator.close();
  }
});
