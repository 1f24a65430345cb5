/**
 * Which key created a project-scoped resource (a file, cached content, batch, upload session),
 * kept where every instance can read it and a restart does not lose it, until the resource
 * expires. The memory implementation serves one process; state/kv_affinity_store.ts shares it.
 */

export interface AffinityRecord {
  /** Resource name, e.g. `files/abc123`, or `upload:<upload_id>` for an upload session. */
  readonly name: string;
  /** Fingerprint of the key that created it. */
  readonly keyId: string;
  /** That key's project: any key of the project can reach the resource. */
  readonly project: string;
  /** Epoch ms after which the record is ignored (the resource is gone at Google too). */
  readonly expiresAt: number;
}

export interface AffinityStore {
  get(name: string, now: number): Promise<AffinityRecord | undefined>;
  put(record: AffinityRecord): Promise<void>;
  delete(name: string): Promise<void>;
}

export class MemoryAffinityStore implements AffinityStore {
  readonly #records = new Map<string, AffinityRecord>();

  get(name: string, now: number): Promise<AffinityRecord | undefined> {
    const record = this.#records.get(name);
    if (record && record.expiresAt <= now) this.#records.delete(name);
    return Promise.resolve(record && record.expiresAt > now ? record : undefined);
  }

  put(record: AffinityRecord): Promise<void> {
    this.#records.set(record.name, record);
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    this.#records.delete(name);
    return Promise.resolve();
  }
}
