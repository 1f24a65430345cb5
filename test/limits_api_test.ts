/**
 * GET /admin/api/limits end to end: what an operator sees of pacing. The limits declared in
 * QUOTA_LIMITS, and per bucket the limit in force (declared, or the one Google stated in a 429,
 * with the declared one it replaced), how much of the window is used, and when there is room.
 */

import assert from "node:assert/strict";
import {
  admin,
  ADMIN_TOKEN,
  FakeClock,
  generate,
  type Rotator,
  startRotator,
  testKey,
} from "./harness.ts";
import { rpmBody } from "./mock_upstream.ts";

const A = testKey("limits-a");
const FLASH = "gemini-2.5-flash";
const PRO = "gemini-2.5-pro";

/** Google's per-minute 429 stating `limit`, with a RetryInfo delay in seconds. */
function rpm(limit: number, seconds: number) {
  return { type: "raw" as const, status: 429, body: rpmBody(seconds, limit) };
}

type Bucket = Record<string, unknown>;

async function limits(rotator: Rotator, query = "") {
  const answer = await admin(rotator, "GET", `/admin/api/limits${query}`);
  assert.equal(answer.status, 200, answer.text);
  return answer.json as { pacing: string; declared: Bucket[]; buckets: Bucket[] };
}

async function withRotator(
  env: Record<string, string>,
  body: (rotator: Rotator, clock: FakeClock) => Promise<void>,
) {
  const clock = new FakeClock();
  const rotator = await startRotator({
    keys: [`pa:${A}`],
    clock,
    env: { ADMIN_TOKEN, MAX_WAIT_SECONDS: "0", ...env },
  });
  try {
    await body(rotator, clock);
  } finally {
    await rotator.close();
  }
}

Deno.test("limits: declared ones as written, then per bucket with use, and a stated limit replacing a declared one", async () => {
  await withRotator({
    QUOTA_LIMITS: `${FLASH}=10/min,20/day; ${PRO}@other=2/30s`,
  }, async (rotator, clock) => {
    const before = await limits(rotator);
    assert.equal(before.pacing, "learn");
    assert.deepEqual(before.declared, [
      { model: FLASH, project: null, unit: "requests", limit: 10, window: "60s" },
      { model: FLASH, project: null, unit: "requests", limit: 20, window: "day" },
      { model: PRO, project: "other", unit: "requests", limit: 2, window: "30s" },
    ]);
    assert.deepEqual(before.buckets, [], "no bucket has been sent anything yet");

    for (let i = 0; i < 2; i++) await (await generate(rotator, FLASH)).body?.cancel();
    const counted = await limits(rotator);
    assert.deepEqual(
      counted.buckets.map((b) => [b.project, b.model, b.limit, b.window, b.source, b.used]),
      [["pa", FLASH, 10, "60s", "declared", 2], ["pa", FLASH, 20, "day", "declared", 2]],
    );
    assert.deepEqual(counted.buckets.map((b) => b.counting), ["sliding", "pacific-day"]);
    assert.ok(counted.buckets.every((b) => b.roomAt === null && b.fullUntil === null));

    // Google says this project's limit is 5 a minute, spent for 30 s more.
    rotator.mock.script(A, rpm(5, 30));
    const refused = await generate(rotator, FLASH);
    assert.equal(refused.status, 429);
    await refused.body?.cancel();
    const learned = await limits(rotator);
    const minute = learned.buckets.find((b) => b.window === "60s")!;
    const reset = new Date(clock.now() + 30_000).toISOString();
    assert.deepEqual(
      {
        limit: minute.limit,
        source: minute.source,
        replaces: minute.replacesDeclared,
        quotaId: minute.quotaId,
        used: minute.used,
        fullUntil: minute.fullUntil,
        roomAt: minute.roomAt,
      },
      {
        limit: 5,
        source: "learned",
        replaces: { limit: 10, window: "60s" },
        quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        used: 3,
        fullUntil: reset,
        roomAt: reset,
      },
    );
    assert.equal(minute.learnedAt, new Date(clock.now()).toISOString());
    const day = learned.buckets.find((b) => b.window === "day")!;
    assert.deepEqual([day.source, day.limit, day.replacesDeclared], ["declared", 20, null]);

    // Filters: a model, a project (rules for every project apply to it too).
    const pro = await limits(rotator, `?model=${PRO}`);
    assert.deepEqual(pro.declared.map((d) => d.limit), [2]);
    assert.deepEqual(pro.buckets, []);
    const other = await limits(rotator, "?project=other");
    assert.deepEqual(other.declared.map((d) => [d.model, d.limit]), [
      [FLASH, 10],
      [FLASH, 20],
      [PRO, 2],
    ]);
    assert.deepEqual(other.buckets, [], "project pa's buckets are not project other's");
    assert.equal((await limits(rotator, "?project=pa")).buckets.length, 2);
  });
});

Deno.test("limits: a learned limit whose window is still unknown says so, and counts once known", async () => {
  await withRotator({}, async (rotator, clock) => {
    rotator.mock.script(A, rpm(3, 4));
    await (await generate(rotator, FLASH)).body?.cancel();
    const [first] = (await limits(rotator)).buckets;
    assert.deepEqual([first.limit, first.window, first.counting, first.source], [
      3,
      null,
      "window-unknown",
      "learned",
    ]);
    // A second reset, 6 s after the first, tells the window's length.
    clock.advance(6_000);
    rotator.mock.script(A, rpm(3, 4));
    await (await generate(rotator, FLASH)).body?.cancel();
    const [second] = (await limits(rotator)).buckets;
    assert.deepEqual([second.window, second.counting], ["6s", "fixed"]);
  });
});

Deno.test("limits: bad calls get an error naming the problem, and no token gets nothing", async () => {
  await withRotator({}, async (rotator) => {
    const unknown = await admin(rotator, "GET", "/admin/api/limits?colour=red");
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /Unknown query parameter \\"colour\\"/);
    const secret = await admin(rotator, "GET", `/admin/api/limits?${A}=1`);
    assert.equal(secret.status, 400);
    assert.ok(!secret.text.includes(A), "a key pasted as a parameter is not echoed");
    const empty = await admin(rotator, "GET", "/admin/api/limits?model=");
    assert.equal(empty.status, 400);
    assert.match(empty.text, /model= must be a model name/);
    const twice = await admin(rotator, "GET", "/admin/api/limits?model=a&model=b");
    assert.equal(twice.status, 400);
    assert.match(twice.text, /given twice/);
    const post = await admin(rotator, "POST", "/admin/api/limits", {});
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const anonymous = await admin(rotator, "GET", "/admin/api/limits", undefined, { token: null });
    assert.equal(anonymous.status, 401);
  });
});
