import assert from "node:assert/strict";
import { loadConfig } from "../src/config.ts";
import { openStore } from "./deno_store.ts";

const config = loadConfig({});

Deno.test("openStore() keeps the memory store for STATE=memory and KV_PATH=:memory:", async () => {
  for (const env of [{ STATE: "memory" }, { KV_PATH: ":memory:" }, { STATE: "MEMORY " }]) {
    const { store, affinityStore } = await openStore(env, config);
    assert.equal(store.kind, "memory", JSON.stringify(env));
    assert.equal(affinityStore, undefined, "the app's own memory affinity store is used");
    await store.close();
  }
});

Deno.test("openStore() opens Deno KV at KV_PATH, creating its directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rotator-store-" });
  try {
    const path = `${dir}/not/yet/rotator.kv`;
    const { store } = await openStore({ KV_PATH: path }, config);
    assert.equal(store.kind, "kv");
    await store.close();
    assert.ok((await Deno.stat(path)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore() names the variable when STATE, KV_PATH or KV_POLL_MS is wrong", async () => {
  const named = (message: RegExp) => ({ name: "ConfigError", message });
  await assert.rejects(openStore({ STATE: "redis" }, config), named(/STATE is "redis"/));
  await assert.rejects(
    openStore({ KV_POLL_MS: "5", KV_PATH: ":memory:x" }, config),
    named(/KV_POLL_MS/),
  );
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(
      openStore({ KV_PATH: `${file}/inside-a-file.kv` }, config),
      named(/KV_PATH .* cannot be created/),
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("openStore() shares one KV file for state, resource affinity and pacing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rotator-store-" });
  try {
    const env = { KV_PATH: `${dir}/rotator.kv` };
    const one = await openStore(env, config);
    const two = await openStore(env, config);
    const record = {
      name: "files/abc",
      keyId: "k1",
      project: "p1",
      expiresAt: Date.now() + 60_000,
    };
    await one.affinityStore!.put(record);
    assert.deepEqual(await two.affinityStore!.get("files/abc", Date.now()), record);
    assert.equal(two.quotaCounter!.shared, true);
    await one.store.close();
    await two.store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
