/**
 * The behaviour every StateStore must have, as one suite each implementation runs
 * (`runStoreContract("memory", ...)`), so the stores cannot drift apart.
 */

import assert from "node:assert/strict";
import type { CooldownRecord, DisablementRecord } from "./records.ts";
import type { StateStore, UsageRow } from "./store.ts";

export interface StoreFactory {
  /** A fresh, empty store. */
  open(): Promise<StateStore>;
  /** Called after each test with the store it opened. */
  dispose?(store: StateStore): Promise<void>;
}

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

function cooldown(over: Partial<CooldownRecord> = {}): CooldownRecord {
  return {
    project: "alpha",
    model: "gemini-2.5-flash",
    until: NOW + 60_000,
    window: "minute",
    reason: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    setAt: NOW,
    keyId: "aaaaaaaaaaaa",
    ...over,
  };
}

function disablement(over: Partial<DisablementRecord> = {}): DisablementRecord {
  return {
    scope: "key",
    id: "bbbbbbbbbbbb",
    reason: "API_KEY_INVALID",
    status: 400,
    since: NOW,
    recheckAt: null,
    ...over,
  };
}

function usage(over: Partial<UsageRow> = {}): UsageRow {
  return {
    day: "2026-11-25",
    keyId: "aaaaaaaaaaaa",
    model: "gemini-2.5-flash",
    requests: 1,
    successes: 1,
    rateLimited: 0,
    errors: 0,
    promptTokens: 10,
    outputTokens: 5,
    ...over,
  };
}

export function runStoreContract(name: string, factory: StoreFactory): void {
  const test = (title: string, body: (store: StateStore) => Promise<void>) =>
    Deno.test(`${name} store: ${title}`, async () => {
      const store = await factory.open();
      try {
        await body(store);
      } finally {
        await store.close();
        await factory.dispose?.(store);
      }
    });

  test("a stored cooldown is loaded back", async (store) => {
    await store.putCooldown(cooldown());
    const state = await store.load(NOW);
    assert.deepEqual(state.cooldowns, [cooldown()]);
  });

  test("a shorter cooldown never replaces a longer one", async (store) => {
    await store.putCooldown(cooldown({ until: NOW + 3_600_000, window: "day" }));
    await store.putCooldown(cooldown({ until: NOW + 30_000 }));
    const [only] = (await store.load(NOW)).cooldowns;
    assert.equal(only.until, NOW + 3_600_000);
    assert.equal(only.window, "day");
  });

  test("concurrent cooldown writes keep the latest deadline", async (store) => {
    const untils = Array.from({ length: 20 }, (_, i) => NOW + 1000 * ((i * 7) % 20 + 1));
    await Promise.all(untils.map((until) => store.putCooldown(cooldown({ until }))));
    const [only] = (await store.load(NOW)).cooldowns;
    assert.equal(only.until, Math.max(...untils));
  });

  test("expired cooldowns are not loaded", async (store) => {
    await store.putCooldown(cooldown({ until: NOW - 1 }));
    await store.putCooldown(cooldown({ model: "gemini-2.5-pro", until: NOW + 1 }));
    const state = await store.load(NOW);
    assert.deepEqual(state.cooldowns.map((c) => c.model), ["gemini-2.5-pro"]);
  });

  test("clearCooldowns() removes only what the filter names", async (store) => {
    await store.putCooldown(cooldown({ project: "alpha", model: "m1" }));
    await store.putCooldown(cooldown({ project: "alpha", model: "m2" }));
    await store.putCooldown(cooldown({ project: "beta", model: "m1" }));
    assert.equal(await store.clearCooldowns({ project: "alpha", model: "m1" }), 1);
    assert.equal(await store.clearCooldowns({ model: "m2" }), 1);
    const state = await store.load(NOW);
    assert.deepEqual(state.cooldowns.map((c) => `${c.project}/${c.model}`), ["beta/m1"]);
    assert.equal(await store.clearCooldowns({}), 1);
    assert.deepEqual((await store.load(NOW)).cooldowns, []);
  });

  test("a disablement stays until removed", async (store) => {
    await store.putDisablement(disablement());
    await store.putCooldown(cooldown({ keyId: "bbbbbbbbbbbb" }));
    assert.deepEqual((await store.load(NOW)).disablements, [disablement()]);
    assert.equal(await store.removeDisablement("key", "bbbbbbbbbbbb"), true);
    assert.equal(await store.removeDisablement("key", "bbbbbbbbbbbb"), false);
    assert.deepEqual((await store.load(NOW)).disablements, []);
  });

  test("key and project disablements with the same id are separate", async (store) => {
    await store.putDisablement(disablement({ scope: "key", id: "same" }));
    await store.putDisablement(
      disablement({ scope: "project", id: "same", reason: "SERVICE_DISABLED" }),
    );
    assert.equal((await store.load(NOW)).disablements.length, 2);
    await store.removeDisablement("project", "same");
    const [left] = (await store.load(NOW)).disablements;
    assert.equal(left.scope, "key");
  });

  test("concurrent usage deltas are summed, none lost", async (store) => {
    await Promise.all(Array.from({ length: 25 }, () => store.addUsage([usage()])));
    await store.addUsage([
      usage({ rateLimited: 3, successes: 0, requests: 3 }),
      usage({
        model: "gemini-2.5-pro",
      }),
    ]);
    const rows = await store.usage("2026-11-25");
    const flash = rows.find((r) => r.model === "gemini-2.5-flash")!;
    assert.equal(flash.requests, 28);
    assert.equal(flash.successes, 25);
    assert.equal(flash.rateLimited, 3);
    assert.equal(flash.promptTokens, 260);
    assert.equal(rows.length, 2);
  });

  test("usage() filters by day and key", async (store) => {
    await store.addUsage([
      usage(),
      usage({ day: "2026-11-24" }),
      usage({ keyId: "cccccccccccc" }),
    ]);
    assert.equal((await store.usage("2026-11-25")).length, 2);
    assert.equal((await store.usage("2026-11-25", "cccccccccccc")).length, 1);
    assert.equal((await store.usage("2026-11-23")).length, 0);
  });
}
