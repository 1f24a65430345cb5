/**
 * Two rotator instances pacing to the same limits through one Deno KV database: together they
 * never send a bucket more than its limit, because each send is reserved in KV first.
 */

import assert from "node:assert/strict";
import { KvQuotaCounter } from "../src/state/kv_quota_counter.ts";
import { startMockUpstream } from "./mock_upstream.ts";
import { FakeClock, generate, startRotator, testKey } from "./harness.ts";

const KEYS = ["shared-a", "shared-b"].map(testKey);
const WINDOW = 10_000;
const LIMIT = 4;

Deno.test("two instances on one KV database send no bucket more than its limit", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/state.kv`);
  const clock = new FakeClock(Math.ceil(Date.UTC(2026, 10, 25, 18) / WINDOW) * WINDOW + 777);
  const mock = startMockUpstream({ now: clock.now });
  mock.setDefault({ type: "limited", limit: LIMIT, windowMs: WINDOW });
  const env = {
    LOG_REQUESTS: "false",
    QUOTA_LIMITS: `gemini-2.5-flash=${LIMIT}/${WINDOW / 1000}s`,
  };
  const one = await startRotator({
    keys: KEYS,
    clock,
    mock,
    env,
    quotaCounter: new KvQuotaCounter(kv),
  });
  const two = await startRotator({
    keys: KEYS,
    clock,
    mock,
    env,
    quotaCounter: new KvQuotaCounter(kv),
  });
  try {
    let successes = 0;
    for (let step = 0; step < 40; step++) {
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => generate(i % 2 ? one : two)),
      );
      for (const answer of answers) {
        await answer.body?.cancel();
        if (answer.status === 200) successes++;
      }
      clock.advance(WINDOW / 4);
    }
    assert.equal(mock.refused.length, 0, "no upstream 429: the instances shared the count");
    // 40 steps of a quarter window: 10 windows x 2 projects x LIMIT.
    assert.ok(successes >= 0.95 * 10 * KEYS.length * LIMIT, `${successes}`);
  } finally {
    await one.close();
    await two.close();
    await mock.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a limit one instance learns is used by another instance from its start", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/state.kv`);
  const clock = new FakeClock(Math.ceil(Date.UTC(2026, 10, 25, 18) / WINDOW) * WINDOW + 55);
  const mock = startMockUpstream({ now: clock.now });
  mock.setDefault({ type: "limited", limit: LIMIT, windowMs: WINDOW });
  const env = { LOG_REQUESTS: "false" };
  const one = await startRotator({
    keys: [KEYS[0]],
    clock,
    mock,
    env,
    quotaCounter: new KvQuotaCounter(kv),
  });
  try {
    // Two windows of traffic on instance one: it learns the limit and the window's length.
    for (let step = 0; step < 8; step++) {
      for (let i = 0; i < 6; i++) await (await generate(one)).body?.cancel();
      clock.advance(WINDOW / 4);
    }
    const learned = one.app.ledger.rules(clock.now()).find((r) => r.rule.source === "learned");
    assert.equal(learned?.rule.limit, LIMIT);
    assert.equal(learned?.rule.window, WINDOW);
    const refusedBefore = mock.refused.length;
    const two = await startRotator({
      keys: [KEYS[0]],
      clock,
      mock,
      env,
      quotaCounter: new KvQuotaCounter(kv),
    });
    try {
      const rule = two.app.ledger.rules(clock.now()).find((r) => r.rule.source === "learned");
      assert.equal(rule?.rule.limit, LIMIT, "the new instance starts with the learned limit");
      for (let step = 0; step < 8; step++) {
        for (let i = 0; i < 3; i++) {
          await (await generate(one)).body?.cancel();
          await (await generate(two)).body?.cancel();
        }
        clock.advance(WINDOW / 4);
      }
      assert.equal(mock.refused.length, refusedBefore, "no 429 once both know the limit");
    } finally {
      await two.close();
    }
  } finally {
    await one.close();
    await mock.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
