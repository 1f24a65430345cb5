/**
 * Resource affinity on Deno KV: one entry per resource under ["affinity", collection, name], with
 * `expireIn` so old entries go away by themselves. expireIn is lazy (entries can outlive it by a
 * minute), so the deadline is also kept in the value and checked on read.
 */

import { type AffinityRecord, type AffinityStore, collectionOf } from "./affinity_store.ts";

const keyOf = (name: string): Deno.KvKey => ["affinity", collectionOf(name), name];

export class KvAffinityStore implements AffinityStore {
  readonly #kv: Deno.Kv;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  async get(name: string, now: number): Promise<AffinityRecord | undefined> {
    const entry = await this.#kv.get<AffinityRecord>(keyOf(name));
    const record = entry.value;
    return record && record.expiresAt > now ? record : undefined;
  }

  async put(record: AffinityRecord): Promise<void> {
    const ttl = Math.max(1000, record.expiresAt - Date.now());
    await this.#kv.set(keyOf(record.name), record, { expireIn: ttl });
  }

  async delete(name: string): Promise<void> {
    await this.#kv.delete(keyOf(name));
  }

  async projectsOwning(collection: string, now: number): Promise<Set<string>> {
    const projects = new Set<string>();
    for await (const entry of this.#kv.list<AffinityRecord>({ prefix: ["affinity", collection] })) {
      if (entry.value.expiresAt > now) projects.add(entry.value.project);
    }
    return projects;
  }
}
