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
  /** Projects that own at least one live resource of a collection (e.g. `files`). */
  projectsOwning(collection: string, now: number): Promise<Set<string>>;
}

/** `files` for `files/abc`, `upload` for `upload:<id>`. */
export function collectionOf(name: string): string {
  return name.startsWith("upload:") ? "upload" : name.split("/", 1)[0];
}

/** Files live 48 h; a record that much older than the newest one has surely expired. */
const FILE_LIFETIME_MS = 48 * 3_600_000;

export class MemoryAffinityStore implements AffinityStore {
  readonly #records = new Map<string, AffinityRecord>();

  get(name: string, now: number): Promise<AffinityRecord | undefined> {
    const record = this.#records.get(name);
    return Promise.resolve(record && record.expiresAt > now ? record : undefined);
  }

  put(record: AffinityRecord): Promise<void> {
    this.#records.set(record.name, record);
    // Expired records go when the map has grown, so memory stays bounded by live resources.
    if (this.#records.size % 1024 === 0) {
      for (const [name, old] of this.#records) {
        if (old.expiresAt <= record.expiresAt - FILE_LIFETIME_MS) this.#records.delete(name);
      }
    }
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    this.#records.delete(name);
    return Promise.resolve();
  }

  projectsOwning(collection: string, now: number): Promise<Set<string>> {
    const projects = new Set<string>();
    for (const record of this.#records.values()) {
      if (record.expiresAt > now && collectionOf(record.name) === collection) {
        projects.add(record.project);
      }
    }
    return Promise.resolve(projects);
  }
}
