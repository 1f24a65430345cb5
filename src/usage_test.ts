import assert from "node:assert/strict";
import { silentLogger } from "./log.ts";
import { MemoryStore } from "./state/memory.ts";
import { UsageRecorder } from "./usage.ts";

Deno.test("UsageRecorder.count() files counts under the Pacific day, across midnight both ways", async () => {
  // 2026-11-26 07:59:59 UTC is 23:59:59 PST on the 25th; a second later it is the 26th.
  let now = Date.UTC(2026, 10, 26, 7, 59, 59);
  const store = new MemoryStore();
  const usage = new UsageRecorder(store, { now: () => now, log: silentLogger, flushIntervalMs: 0 });
  usage.count("k", "m", { requests: 1 });
  now += 1000;
  usage.count("k", "m", { requests: 2 });
  now -= 1000; // a clock set back lands on the earlier day again
  usage.count("k", "m", { requests: 4 });
  await usage.flush();
  assert.equal((await store.usage("2026-11-25"))[0].requests, 5);
  assert.equal((await store.usage("2026-11-26"))[0].requests, 2);
});
