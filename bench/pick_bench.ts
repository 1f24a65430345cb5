/**
 * KeyPool.pick costs the same with 3 keys as with 10,000 of which half are cooling: choosing a
 * key is O(1) amortised (a cooling key leaves the ready ring once, on the first pass that finds
 * it, and waits in a heap until it recovers).
 *
 *   deno bench bench/pick_bench.ts
 *
 * Each pool is measured in its steady state: one full pass has already retired the cooling keys.
 * A second group measures the retry path (a pick that avoids the key and project just tried).
 */

import type { PoolKey } from "../src/keys.ts";
import { KeyPool } from "../src/pool.ts";

const MODEL = "gemini-2.5-flash";
const NOW = Date.UTC(2026, 10, 25, 18, 0, 0);
const SIZES = [3, 100, 1_000, 10_000];

/** A pool of `size` keys, every odd one cooling for an hour, warmed up past its first pass. */
function pool(size: number): { pool: KeyPool; keys: PoolKey[] } {
  const keys: PoolKey[] = Array.from({ length: size }, (_, i) => ({
    id: `k${i}`,
    value: `AIzaSyBench${String(i).padStart(28, "0")}`,
    project: `key:k${i}`,
    source: "env",
  }));
  const pool = new KeyPool(keys);
  for (let i = 1; i < size; i += 2) {
    pool.addCooldown({
      project: keys[i].project,
      model: MODEL,
      until: NOW + 3_600_000,
      window: "minute",
      reason: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
      setAt: NOW,
    });
  }
  for (let i = 0; i < size; i++) pool.pick(MODEL, NOW);
  return { pool, keys };
}

for (const size of SIZES) {
  const { pool: p } = pool(size);
  Deno.bench({
    name: `pick, ${size} keys, half cooling`,
    group: "pick",
    baseline: size === 3,
    fn() {
      if (!p.pick(MODEL, NOW)) throw new Error("no key");
    },
  });
}

for (const size of SIZES) {
  const { pool: p, keys } = pool(size);
  const avoidKeys = new Set([keys[0].id]);
  const avoidProjects = new Set([keys[0].project]);
  Deno.bench({
    name: `retry pick (avoiding the key just tried), ${size} keys, half cooling`,
    group: "retry",
    baseline: size === 3,
    fn() {
      if (!p.pick(MODEL, NOW, { avoidKeys, avoidProjects })) throw new Error("no key");
    },
  });
}
