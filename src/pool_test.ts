import assert from "node:assert/strict";
import { KeyPool } from "./pool.ts";
import type { PoolKey } from "./keys.ts";
import type { CooldownRecord } from "./state/records.ts";

const NOW = Date.UTC(2026, 10, 25, 18, 0, 0);
const M = "gemini-2.5-flash";

function keys(n: number, projectOf: (i: number) => string = (i) => `p${i}`): PoolKey[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `k${i}`,
    value: `secret-${i}`,
    project: projectOf(i),
    source: "env" as const,
  }));
}

function cool(project: string, until: number, model = M): CooldownRecord {
  return { project, model, until, window: "minute", reason: "Q", setAt: NOW };
}

function picks(pool: KeyPool, n: number, now = NOW, model = M): (string | undefined)[] {
  return Array.from({ length: n }, () => pool.pick(model, now)?.id);
}

Deno.test("pick() goes round-robin over usable keys", () => {
  const pool = new KeyPool(keys(3));
  assert.deepEqual(picks(pool, 7), ["k0", "k1", "k2", "k0", "k1", "k2", "k0"]);
});

Deno.test("pick() skips a cooling bucket for that model only", () => {
  const pool = new KeyPool(keys(3));
  pool.addCooldown(cool("p1", NOW + 1000));
  assert.deepEqual(picks(pool, 4), ["k0", "k2", "k0", "k2"]);
  assert.deepEqual(picks(pool, 3, NOW, "other-model"), ["k0", "k1", "k2"]);
});

Deno.test("pick() brings a key back when its cooldown ends", () => {
  const pool = new KeyPool(keys(2));
  pool.addCooldown(cool("p0", NOW + 1000));
  assert.deepEqual(picks(pool, 2), ["k1", "k1"]);
  assert.deepEqual(picks(pool, 4, NOW + 1000).sort(), ["k0", "k0", "k1", "k1"]);
});

Deno.test("pick() treats keys of one project as one bucket", () => {
  const pool = new KeyPool(keys(4, (i) => (i < 3 ? "shared" : "solo")));
  pool.addCooldown(cool("shared", NOW + 1000));
  assert.deepEqual(picks(pool, 3), ["k3", "k3", "k3"]);
});

Deno.test("pick() honours a project-wide cooldown for every model", () => {
  const pool = new KeyPool(keys(2));
  pool.addCooldown(cool("p0", NOW + 1000, "*"));
  assert.deepEqual(picks(pool, 2, NOW, "any-model"), ["k1", "k1"]);
});

Deno.test("pick() never returns a disabled key, and returns it after re-check time", () => {
  const pool = new KeyPool(keys(2));
  pool.addDisablement({
    scope: "key",
    id: "k0",
    reason: "API_KEY_INVALID",
    status: 400,
    since: NOW,
    recheckAt: NOW + 5000,
  });
  assert.deepEqual(picks(pool, 3), ["k1", "k1", "k1"]);
  assert.ok(picks(pool, 4, NOW + 5000).includes("k0"));
});

Deno.test("pick() returns undefined when nothing is usable, and nextRecovery() says when", () => {
  const pool = new KeyPool(keys(3));
  pool.addCooldown(cool("p0", NOW + 3000));
  pool.addCooldown(cool("p1", NOW + 1000));
  pool.addDisablement({
    scope: "project",
    id: "p2",
    reason: "SERVICE_DISABLED",
    status: 403,
    since: NOW,
    recheckAt: null,
  });
  assert.equal(pool.pick(M, NOW), undefined);
  const recovery = pool.nextRecovery(M, NOW);
  assert.equal(recovery?.at, NOW + 1000);
  assert.equal(recovery?.cause && "until" in recovery.cause && recovery.cause.project, "p1");
});

Deno.test("nextRecovery() is exact after a cooldown is extended (never early)", () => {
  const pool = new KeyPool(keys(1));
  pool.addCooldown(cool("p0", NOW + 1000));
  assert.equal(pool.pick(M, NOW), undefined);
  pool.addCooldown(cool("p0", NOW + 9000));
  assert.equal(pool.nextRecovery(M, NOW)?.at, NOW + 9000);
  assert.equal(pool.pick(M, NOW + 1000), undefined);
});

Deno.test("nextRecovery() is undefined when every key is disabled for good", () => {
  const pool = new KeyPool(keys(2));
  for (const id of ["k0", "k1"]) {
    pool.addDisablement({
      scope: "key",
      id,
      reason: "LEAKED",
      status: 403,
      since: NOW,
      recheckAt: null,
    });
  }
  assert.equal(pool.pick(M, NOW), undefined);
  assert.equal(pool.nextRecovery(M, NOW), undefined);
  assert.equal(pool.removeDisablement("key", "k1"), true);
  assert.equal(pool.pick(M, NOW)?.id, "k1");
});

Deno.test("pick() prefers keys not yet tried and projects that did not just fail", () => {
  const pool = new KeyPool(keys(3, (i) => (i < 2 ? "a" : "b")));
  const first = pool.pick(M, NOW, { avoidKeys: new Set(["k0"]), avoidProjects: new Set(["a"]) });
  assert.equal(first?.id, "k2");
  const onlyTried = new KeyPool(keys(1));
  assert.equal(onlyTried.pick(M, NOW, { avoidKeys: new Set(["k0"]) })?.id, "k0");
});

Deno.test("clearCooldowns() makes keys usable at once", () => {
  const pool = new KeyPool(keys(2));
  pool.addCooldown(cool("p0", NOW + 60_000));
  assert.deepEqual(picks(pool, 2), ["k1", "k1"]);
  assert.equal(pool.clearCooldowns({ project: "p0" }), 1);
  assert.ok(picks(pool, 2).includes("k0"));
});

Deno.test("replaceState() keeps the later deadline and notices relaxed state", () => {
  const pool = new KeyPool(keys(2));
  pool.addCooldown(cool("p0", NOW + 60_000));
  assert.equal(pool.pick(M, NOW)?.id, "k1");
  pool.replaceState({ cooldowns: [], disablements: [] }, NOW); // another instance cleared it
  assert.ok(picks(pool, 2).includes("k0"));
  pool.replaceState({ cooldowns: [cool("p1", NOW + 5000)], disablements: [] }, NOW);
  assert.deepEqual(picks(pool, 2), ["k0", "k0"]);
});

Deno.test("pick() stays round-robin among 10,000 keys with half cooling", () => {
  const pool = new KeyPool(keys(10_000));
  for (let i = 0; i < 10_000; i += 2) pool.addCooldown(cool(`p${i}`, NOW + 60_000));
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const key = pool.pick(M, NOW)!;
    assert.equal(Number(key.id.slice(1)) % 2, 1, "never a cooling key");
    seen.add(key.id);
  }
  assert.equal(seen.size, 5000, "every usable key once per round");
});

Deno.test("summary() counts disabled and cooling keys and the next recovery", () => {
  const pool = new KeyPool(keys(4));
  pool.addCooldown(cool("p0", NOW + 3000));
  pool.addDisablement({
    scope: "key",
    id: "k1",
    reason: "LEAKED",
    status: 403,
    since: NOW,
    recheckAt: null,
  });
  assert.deepEqual(pool.summary(NOW), {
    total: 4,
    usable: 3,
    cooling: 1,
    disabled: 1,
    nextRecoveryAt: NOW + 3000,
  });
});
