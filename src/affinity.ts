/**
 * Resource affinity: a request that names a file, cached content, batch or upload session must
 * go out with a key of the project that created it, whatever rotation would pick. Records live
 * in the AffinityStore (shared, survives restarts) with a small local cache in front, so only a
 * request naming a resource this instance has not seen pays a store read.
 */

import type { Logger } from "./log.ts";
import { describeError } from "./log.ts";
import { type AffinityRecord, type AffinityStore, collectionOf } from "./state/affinity_store.ts";

/** Who owns the resources a request names. */
export type Ownership =
  | { readonly kind: "none" }
  | { readonly kind: "owned"; readonly record: AffinityRecord }
  /** Names with no record: created elsewhere, or before the rotator kept records. */
  | { readonly kind: "unknown"; readonly names: readonly string[] }
  /** The names belong to different projects: no single key can serve the request. */
  | { readonly kind: "conflict"; readonly records: readonly AffinityRecord[] };

const HOUR = 3_600_000;
/** Files live 48 h at Google; other resources as long as their answer says, else a week. */
const DEFAULT_TTL: Record<string, number> = { files: 48 * HOUR, upload: 7 * 24 * HOUR };
const FALLBACK_TTL = 7 * 24 * HOUR;
const CACHE_LIMIT = 10_000;

export class ResourceAffinity {
  readonly #store: AffinityStore;
  readonly #log: Logger;
  readonly #cache = new Map<string, AffinityRecord>();

  constructor(store: AffinityStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** The owner of every name, when they agree. */
  async ownerOf(names: readonly string[], now: number): Promise<Ownership> {
    if (names.length === 0) return { kind: "none" };
    const records: AffinityRecord[] = [];
    const unknown: string[] = [];
    for (const name of names) {
      const record = await this.#get(name, now);
      if (record) records.push(record);
      else unknown.push(name);
    }
    if (records.length === 0) return { kind: "unknown", names: unknown };
    const projects = new Set(records.map((r) => r.project));
    if (projects.size > 1) return { kind: "conflict", records };
    return { kind: "owned", record: records[0] };
  }

  /** Records that `names` belong to the key; `expiresAt` from the answer when it gave one. */
  remember(
    names: readonly string[],
    owner: { readonly id: string; readonly project: string },
    now: number,
    expiresAt?: number,
  ): void {
    for (const name of names) {
      const collection = collectionOf(name);
      const record: AffinityRecord = {
        name,
        keyId: owner.id,
        project: owner.project,
        expiresAt: expiresAt ?? now + (DEFAULT_TTL[collection] ?? FALLBACK_TTL),
      };
      const known = this.#cache.get(name);
      if (known && known.project === record.project && known.expiresAt >= record.expiresAt) {
        continue;
      }
      this.#cacheSet(record);
      this.#store.put(record).catch((error) =>
        this.#log.warn("resource affinity write failed", { name, error: describeError(error) })
      );
    }
  }

  /** Projects holding live resources of a collection, for listings. */
  async projectsOwning(collection: string, now: number): Promise<Set<string>> {
    try {
      return await this.#store.projectsOwning(collection, now);
    } catch (error) {
      this.#log.warn("resource affinity scan failed", { error: describeError(error) });
      return new Set();
    }
  }

  /** Forgets a deleted resource. */
  forget(name: string): void {
    this.#cache.delete(name);
    this.#store.delete(name).catch(() => {});
  }

  async #get(name: string, now: number): Promise<AffinityRecord | undefined> {
    const cached = this.#cache.get(name);
    if (cached && cached.expiresAt > now) return cached;
    try {
      const record = await this.#store.get(name, now);
      if (record) this.#cacheSet(record);
      return record;
    } catch (error) {
      this.#log.warn("resource affinity read failed", { name, error: describeError(error) });
      return undefined;
    }
  }

  #cacheSet(record: AffinityRecord): void {
    this.#cache.delete(record.name);
    this.#cache.set(record.name, record);
    if (this.#cache.size > CACHE_LIMIT) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
  }
}

/** The expiry a created resource's answer states (`expirationTime` of files, `expireTime` of caches). */
export function expiryInAnswer(text: string): number | undefined {
  const match = /"(?:expirationTime|expireTime)"\s*:\s*"([^"]+)"/.exec(text);
  if (!match) return undefined;
  const at = Date.parse(match[1]);
  return Number.isFinite(at) ? at : undefined;
}
