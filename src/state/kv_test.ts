import { KvStore } from "./kv.ts";
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
