import assert from "node:assert/strict";
import { type AffinityStore, MemoryAffinityStore } from "./affinity_store.ts";
import { KvAffinityStore } from "./kv_affinity_store.ts";

const NOW = Date.now();
const record = { name: "files/abc", keyId: "k1", project: "p1", expiresAt: NOW + 60_000 };

function contract(name: string, open: () => Promise<{ store: AffinityStore; close(): void }>) {
  Deno.test(`${name} affinity store: put, get, expire, delete`, async () => {
    const { store, close } = await open();
    try {
      assert.equal(await store.get("files/abc", NOW), undefined);
      await store.put(record);
      assert.deepEqual(await store.get("files/abc", NOW), record);
      assert.equal(await store.get("files/abc", NOW + 60_000), undefined, "expired");
      await store.put({ ...record, name: "files/other", project: "p2" });
      await store.put({ ...record, name: "cachedContents/c", project: "p3" });
      assert.deepEqual([...await store.projectsOwning("files", NOW)].sort(), ["p1", "p2"]);
      await store.delete("files/other");
      assert.equal(await store.get("files/other", NOW), undefined);
      assert.deepEqual([...await store.projectsOwning("files", NOW)], ["p1"]);
    } finally {
      close();
    }
  });
}

contract("memory", () => Promise.resolve({ store: new MemoryAffinityStore(), close() {} }));
contract("kv", async () => {
  const kv = await Deno.openKv(":memory:");
  return { store: new KvAffinityStore(kv), close: () => kv.close() };
});
