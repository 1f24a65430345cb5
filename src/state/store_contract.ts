/**
 * The behaviour every StateStore must have, as one suite each implementation runs
 * (`runStoreContract("memory", ...)`), so the stores cannot drift apart.
 */

import assert from "node:assert/strict";
import type { CooldownRecord, DisablementRecord, StoredKeyRecord } from "./records.ts";
import { MAX_KEYS_PER_ADD, type StateStore, type UsageRow } from "./store.ts";

export interface StoreFactory {
  /** A fresh, empty store; `now` is the clock the tests' records are relative to. */
  open(now: number): Promise<StateStore>;
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

function storedKey(id: string, over: Partial<StoredKeyRecord> = {}): StoredKeyRecord {
  return {
    id,
    // Stands in for sealed bytes: the store keeps them as they are.
    sealed: new Uint8Array([1, 2, 3, id.length, 0, 255]),
    label: `label ${id}`,
    addedAt: NOW,
    ...over,
  };
}

export function runStoreContract(name: string, factory: StoreFactory): void {
  const test = (title: string, body: (store: StateStore) => Promise<void>) =>
    Deno.test(`${name} store: ${title}`, async () => {
      const store = await factory.open(NOW);
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

  test("pruneUsage() deletes the days before the one given, and only those", async (store) => {
    await store.addUsage([
      usage({ day: "2026-10-20" }),
      usage({ day: "2026-10-20", keyId: "cccccccccccc" }),
      usage({ day: "2026-10-21" }),
      usage({ day: "2026-10-22" }),
    ]);
    assert.equal(await store.pruneUsage("2026-10-22"), 2, "two days' rows went");
    assert.equal((await store.usage("2026-10-20")).length, 0);
    assert.equal((await store.usage("2026-10-21")).length, 0);
    assert.equal((await store.usage("2026-10-22")).length, 1, "the day given is kept");
    assert.equal(await store.pruneUsage("2026-10-22"), 0, "nothing left to prune");
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

  test("added keys are listed back, bytes and fields intact, oldest first", async (store) => {
    const first = storedKey("k1", { project: "alpha", addedAt: NOW + 5 });
    const second = storedKey("k2", { addedAt: NOW + 1 });
    assert.deepEqual(await store.addKeys([first, second]), { added: ["k1", "k2"], existing: [] });
    const listed = await store.listKeys();
    assert.deepEqual(listed.map((r) => r.id), ["k2", "k1"]);
    assert.deepEqual(listed[1], first);
    assert.ok(listed[1].sealed instanceof Uint8Array);
  });

  test("addKeys() leaves a stored key untouched and reports it as existing", async (store) => {
    await store.addKeys([storedKey("k1", { label: "original" })]);
    const result = await store.addKeys([
      storedKey("k1", { label: "replacement" }),
      storedKey("k2"),
      storedKey("k2", { label: "repeated in one call" }),
    ]);
    assert.deepEqual(result, { added: ["k2"], existing: ["k1"] });
    const listed = await store.listKeys();
    assert.deepEqual(listed.map((r) => [r.id, r.label]), [["k1", "original"], ["k2", "label k2"]]);
  });

  test("addKeys() with too many keys writes none of them", async (store) => {
    const many = Array.from({ length: MAX_KEYS_PER_ADD + 1 }, (_, i) => storedKey(`k${i}`));
    await assert.rejects(store.addKeys(many), RangeError);
    assert.deepEqual(await store.listKeys(), []);
  });

  test("concurrent adds of one key: exactly one adds it", async (store) => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.addKeys([storedKey("k1", { addedAt: NOW + i })])),
    );
    assert.equal(results.filter((r) => r.added.length === 1).length, 1);
    assert.equal((await store.listKeys()).length, 1);
  });

  test("removeKey() removes the key and its key disablement, nothing else", async (store) => {
    await store.addKeys([storedKey("k1"), storedKey("k2")]);
    await store.putDisablement(disablement({ scope: "key", id: "k1" }));
    await store.putDisablement(disablement({ scope: "key", id: "k2" }));
    await store.putDisablement(disablement({ scope: "project", id: "k1" }));
    assert.equal(await store.removeKey("k1"), true);
    assert.equal(await store.removeKey("k1"), false);
    assert.deepEqual((await store.listKeys()).map((r) => r.id), ["k2"]);
    const left = (await store.load(NOW)).disablements.map((d) => `${d.scope}/${d.id}`).sort();
    assert.deepEqual(left, ["key/k2", "project/k1"]);
  });
}
