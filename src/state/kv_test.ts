import assert from "node:assert/strict";
import { KvStore } from "./kv.ts";
import type { CooldownRecord } from "./records.ts";
import { runStoreContract } from "./store_contract.ts";

const dirs = new WeakMap<object, string>();

runStoreContract("kv", {
  async open(now) {
    const dir = await Deno.makeTempDir({ prefix: "rotator-kv-" });
    const store = new KvStore(await Deno.openKv(`${dir}/state.kv`), { now: () => now });
    dirs.set(store, dir);
    return store;
  },
  async dispose(store) {
    await Deno.remove(dirs.get(store)!, { recursive: true });
  },
});

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;
const WRITER = new URL("../../test/kv_writer.ts", import.meta.url).pathname;

function cooldown(until: number): CooldownRecord {
  return {
    project: "alpha",
    model: "gemini-2.5-flash",
    until,
    window: "minute",
    reason: "PER_MINUTE",
    setAt: Date.now(),
  };
}

/** Resolves on the listener's next call after `start()`, with how long it took. */
function nextNotice(store: KvStore): { start(): void; heard: Promise<number> } {
  let t0 = 0;
  let armed = false;
  let resolve!: (ms: number) => void;
  const heard = new Promise<number>((r) => resolve = r);
  const off = store.subscribe(() => {
    if (!armed) return;
    off();
    resolve(performance.now() - t0);
  });
  return {
    start() {
      t0 = performance.now();
      armed = true;
    },
    heard,
  };
}

async function withFile(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rotator-kv-" });
  try {
    await body(`${dir}/state.kv`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("KvStore.subscribe() hears a write made through another handle on the same file", async () => {
  await withFile(async (path) => {
    const writer = new KvStore(await Deno.openKv(path), { pollMs: 0 });
    const reader = new KvStore(await Deno.openKv(path), { pollMs: 50 });
    try {
      // The first poll always reports (it has nothing to compare with): let it pass.
      await new Promise<void>((resolve) => {
        const off = reader.subscribe(() => (off(), resolve()));
      });
      const notice = nextNotice(reader);
      notice.start();
      await writer.putCooldown(cooldown(Date.now() + 60_000));
      const ms = await notice.heard;
      // Two 50 ms polls at most; the bound leaves room for a loaded machine.
      assert.ok(ms < 1000, `heard after ${ms} ms`);
      assert.equal((await reader.load(Date.now())).cooldowns.length, 1);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});

Deno.test("KvStore with watch on hears a same-process write without polling", async () => {
  await withFile(async (path) => {
    const writer = new KvStore(await Deno.openKv(path), { pollMs: 0 });
    const reader = new KvStore(await Deno.openKv(path), { pollMs: 0, watch: true });
    try {
      await new Promise<void>((resolve) => {
        const off = reader.subscribe(() => (off(), resolve()));
      });
      const notice = nextNotice(reader);
      notice.start();
      await writer.putDisablement({
        scope: "key",
        id: "aaaaaaaaaaaa",
        reason: "MANUAL",
        status: 0,
        since: Date.now(),
        recheckAt: null,
      });
      await notice.heard;
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});

Deno.test("KvStore: three processes racing cooldown writes on one file keep the latest deadline", async () => {
  await withFile(async (path) => {
    const run = (offset: number) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG, WRITER, path, "150", String(offset)],
        stdout: "piped",
        stderr: "piped",
      }).output();
    // Checked commits from several processes throw "database is locked"; the store retries.
    const outputs = await Promise.all([run(0), run(1), run(2)]);
    const latest = outputs.map((output) => {
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      return JSON.parse(new TextDecoder().decode(output.stdout)).latest as number;
    });
    const store = new KvStore(await Deno.openKv(path), { pollMs: 0 });
    try {
      const [only] = (await store.load(Date.now())).cooldowns;
      assert.equal(only.until, Math.max(...latest));
    } finally {
      await store.close();
    }
  });
});

Deno.test("KvStore.addUsage() sums a batch larger than one atomic operation", async () => {
  await withFile(async (path) => {
    const store = new KvStore(await Deno.openKv(path), { pollMs: 0 });
    try {
      // 300 rows x 6 fields = 1,800 sums; one atomic operation takes at most 1,000 mutations.
      const rows = Array.from({ length: 300 }, (_, i) => ({
        day: "2026-11-25",
        keyId: `key${i % 30}`,
        model: `model${Math.floor(i / 30)}`,
        requests: 2,
        successes: 1,
        rateLimited: 1,
        errors: 1,
        promptTokens: 100,
        outputTokens: 7,
      }));
      await store.addUsage(rows);
      await store.addUsage(rows.slice(0, 1));
      const stored = await store.usage("2026-11-25");
      assert.equal(stored.length, 300);
      assert.equal(stored.reduce((n, r) => n + r.requests, 0), 602);
      assert.equal(stored.reduce((n, r) => n + r.outputTokens, 0), 2107);
    } finally {
      await store.close();
    }
  });
});
