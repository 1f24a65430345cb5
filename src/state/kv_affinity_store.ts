/**
 * Resource affinity on Deno KV: one entry per resource under ["affinity", name], with
 * `expireIn` so old entries go away by themselves. expireIn is lazy (entries can outlive it by a
 * minute), so the deadline is also kept in the value and checked on read.
 */

import type { AffinityRecord, AffinityStore } from "./affinity_store.ts";

export class KvAffinityStore implements AffinityStore {
  readonly #kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async get(name: string, now: number): Promise<AffinityRecord | undefined> {
    const entry = await this.#kv.get<AffinityRecord>(["affinity", name]);
    const record = entry.value;
    return record && record.expiresAt > now ? record : undefined;
  }

  async put(record: AffinityRecord): Promise<void> {
    const ttl = Math.max(1000, record.expiresAt - Date.now());
    await this.#kv.set(["affinity", record.name], record, { expireIn: ttl });
  }

  async delete(name: string): Promise<void> {
    await this.#kv.delete(["affinity", name]);
  }
}
