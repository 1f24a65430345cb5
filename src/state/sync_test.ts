import assert from "node:assert/strict";
import { silentLogger } from "../log.ts";
import { KeyPool } from "../pool.ts";
import { MemoryStore } from "./memory.ts";
import type { CooldownRecord, DisablementRecord } from "./records.ts";
import { StateSync } from "./sync.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

/** A store whose writes wait until released, as a busy KV file can make them. */
class SlowStore extends MemoryStore {
  #gate = Promise.withResolvers<void>();

  release(): void {
    this.#gate.resolve();
  }

  override async putCooldown(record: CooldownRecord): Promise<void> {
    await this.#gate.promise;
    await super.putCooldown(record);
  }

  override async putDisablement(record: DisablementRecord): Promise<void> {
    await this.#gate.promise;
    await super.putDisablement(record);
  }
}

function setup() {
  const pool = new KeyPool([{ id: "k1", value: "v1", project: "p1", source: "env" }]);
  const store = new SlowStore();
  const sync = new StateSync(pool, store, { now: () => NOW, log: silentLogger });
  return { pool, store, sync };
}

Deno.test("StateSync.clearCooldowns() also clears a cooldown whose write is still under way", async () => {
  const { pool, store, sync } = setup();
  sync.record({
    type: "cooldown",
    record: {
      project: "p1",
      model: "m",
      until: NOW + 60_000,
      window: "minute",
      reason: "PER_MINUTE",
      setAt: NOW,
    },
  });
  const clearing = sync.clearCooldowns({});
  store.release();
  assert.equal(await clearing, 1);
  assert.deepEqual(pool.cooldownsOf("p1", NOW), []);
  assert.deepEqual((await store.load(NOW)).cooldowns, []);
});

Deno.test("StateSync.enable() also removes a disablement whose write is still under way", async () => {
  const { pool, store, sync } = setup();
  sync.record({
    type: "disable",
    record: {
      scope: "key",
      id: "k1",
      reason: "API_KEY_INVALID",
      status: 400,
      since: NOW,
      recheckAt: null,
    },
  });
  const enabling = sync.enable("key", "k1");
  store.release();
  assert.equal(await enabling, true);
  assert.equal(pool.disablement("key", "k1"), undefined);
  assert.deepEqual((await store.load(NOW)).disablements, []);
});

Deno.test("StateSync.reload() asked for at any moment of a running reload loads again after it", async () => {
  // A reload asked for while one runs must not be answered by a load that already happened;
  // the window is a few microtasks wide, so try every point of it.
  for (let depth = 0; depth < 30; depth++) {
    let loads = 0;
    const store = new (class extends MemoryStore {
      override load(now: number) {
        loads++;
        return super.load(now);
      }
    })();
    const sync = new StateSync(new KeyPool([]), store, { now: () => NOW, log: silentLogger });
    const first = sync.reload();
    let tick: Promise<void> = Promise.resolve();
    for (let i = 0; i < depth; i++) tick = tick.then(() => {});
    const asked = await tick.then(() => ({ loadsBefore: loads, done: sync.reload() }));
    await asked.done;
    await first;
    assert.ok(loads > asked.loadsBefore, `asked after ${depth} ticks`);
  }
});

Deno.test("StateSync keeps a cooldown learned while a reload reads the store", async () => {
  const pool = new KeyPool([{ id: "k1", value: "v1", project: "p1", source: "env" }]);
  const gate = Promise.withResolvers<void>();
  const written = Promise.withResolvers<void>();
  const store = new (class extends MemoryStore {
    override async load(now: number) {
      const state = await super.load(now);
      await gate.promise;
      return state;
    }
    override async putCooldown(record: CooldownRecord) {
      await super.putCooldown(record);
      written.resolve();
    }
  })();
  const sync = new StateSync(pool, store, { now: () => NOW, log: silentLogger });
  const reloading = sync.reload();
  // Learned and fully written after the read above, before the reload applies what it read.
  sync.record({
    type: "cooldown",
    record: {
      project: "p1",
      model: "m",
      until: NOW + 60_000,
      window: "minute",
      reason: "PER_MINUTE",
      setAt: NOW,
    },
  });
  await written.promise;
  gate.resolve();
  await reloading;
  assert.equal(pool.cooldownsOf("p1", NOW).length, 1);
});
