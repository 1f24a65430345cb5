/**
 * A separate process racing checked cooldown writes on a shared KV file (run by
 * src/state/kv_test.ts): `deno run -A test/kv_writer.ts <file> <writes> <offset>`. Each write
 * has a later deadline than the one before, so every write commits and the processes contend
 * for SQLite's write lock. Prints the latest deadline written, as JSON.
 */

import { KvStore } from "../src/state/kv.ts";

const [path, writes, offset] = Deno.args;
const base = Date.UTC(2030, 0, 1) + Number(offset);
const store = new KvStore(await Deno.openKv(path), { pollMs: 0 });
const untils = Array.from({ length: Number(writes) }, (_, i) => base + i * 10);
// A few writers at a time, as concurrent requests in one instance would be.
for (let i = 0; i < untils.length; i += 4) {
  await Promise.all(
    untils.slice(i, i + 4).map((until) =>
      store.putCooldown({
        project: "shared",
        model: "gemini-2.5-flash",
        until,
        window: "minute",
        reason: "RACE",
        setAt: Date.now(),
      })
    ),
  );
}
await store.close();
console.log(JSON.stringify({ latest: untils.at(-1) }));
