/**
 * The pool's key list: keys from API_KEYS merged with keys added at run time, which live sealed
 * in the state store and so are shared by every instance and survive restarts. A refresh reads
 * the stored list, opens records it has not opened yet, and gives the merged list to the pool
 * and every key value to the log's redactor. A key in both places counts once, as an env key.
 */

import { fingerprint, type PoolKey } from "./keys.ts";
import type { KeySpec } from "./key_list.ts";
import { describeError, type Logger, type Redactor } from "./log.ts";
import type { KeyPool } from "./pool.ts";
import type { KeyVault } from "./state/key_vault.ts";
import { keyRecordPath, type StoredKeyRecord } from "./state/records.ts";
import type { StateStore } from "./state/store.ts";

/** A stored key this instance cannot use, and why. */
export interface UnusableKey {
  readonly id: string;
  readonly project: string;
  readonly label?: string;
  readonly addedAt: number;
  /** `NO_SECRET`: KEY_ENCRYPTION_SECRET is unset here; `DOES_NOT_OPEN`: another secret. */
  readonly reason: "NO_SECRET" | "DOES_NOT_OPEN";
}

export interface KeyRegistryOptions {
  readonly envKeys: readonly PoolKey[];
  readonly store: StateStore;
  /** Opens and seals stored keys; without it stored keys cannot be used or added. */
  readonly vault?: KeyVault;
  readonly pool: KeyPool;
  readonly redactor: Redactor;
  /** Other secrets the redactor must keep blanking (access and admin tokens...). */
  readonly otherSecrets: readonly string[];
  readonly log: Logger;
  readonly now: () => number;
}

export interface AddedKeys {
  readonly added: PoolKey[];
  /** Ids already in the pool or the store (left as they are). */
  readonly existing: string[];
}

/** Thrown by add() when no KEY_ENCRYPTION_SECRET is set. */
export class NoSecretError extends Error {
  override name = "NoSecretError";
}

export class KeyRegistry {
  readonly #options: KeyRegistryOptions;
  readonly #envIds: Set<string>;
  /** Stored keys opened so far, by id (opening costs a decryption). */
  readonly #opened = new Map<string, PoolKey>();
  readonly #warned = new Set<string>();
  /** Every key value seen: a removed key is still a secret, so it stays redacted. */
  readonly #secrets = new Set<string>();
  #unusable: UnusableKey[] = [];
  #refreshing: Promise<void> = Promise.resolve();

  constructor(options: KeyRegistryOptions) {
    this.#options = options;
    this.#envIds = new Set(options.envKeys.map((k) => k.id));
    options.pool.setKeys(options.envKeys);
    this.#teachRedactor(options.envKeys);
  }

  /** Whether keys can be added here (a KEY_ENCRYPTION_SECRET is set). */
  get canAdd(): boolean {
    return this.#options.vault !== undefined;
  }

  /** Stored keys this instance cannot open; they are not in the pool. */
  get unusable(): readonly UnusableKey[] {
    return this.#unusable;
  }

  /** Whether `id` is a key from API_KEYS (those are managed in the environment). */
  isEnvKey(id: string): boolean {
    return this.#envIds.has(id);
  }

  /** Re-reads the stored keys; refreshes run one at a time, in order. */
  refresh(): Promise<void> {
    const next = this.#refreshing.then(() => this.#refresh());
    this.#refreshing = next.catch(() => {});
    return next;
  }

  /**
   * Seals and stores the keys not known yet (all in one atomic write), then refreshes. Throws
   * NoSecretError without a KEY_ENCRYPTION_SECRET. `specs` are validated by the caller.
   */
  async add(specs: readonly KeySpec[]): Promise<AddedKeys> {
    const vault = this.#options.vault;
    if (!vault) throw new NoSecretError("KEY_ENCRYPTION_SECRET is not set");
    const known = new Set([
      ...this.#options.pool.keys.map((k) => k.id),
      ...this.#unusable.map((k) => k.id),
    ]);
    const existing: string[] = [];
    const records: StoredKeyRecord[] = [];
    const now = this.#options.now();
    for (const spec of specs) {
      const id = await fingerprint(spec.value);
      if (known.has(id)) {
        if (!existing.includes(id)) existing.push(id);
        continue;
      }
      known.add(id);
      records.push({
        id,
        sealed: await vault.seal(spec.value, keyRecordPath(id)),
        ...(spec.project ? { project: spec.project } : {}),
        ...(spec.label ? { label: spec.label } : {}),
        addedAt: now,
      });
    }
    const stored = records.length > 0
      ? await this.#options.store.addKeys(records)
      : { added: [], existing: [] };
    await this.refresh();
    const added = stored.added
      .map((id) => this.#options.pool.key(id))
      .filter((key): key is PoolKey => key !== undefined);
    return { added, existing: [...existing, ...stored.existing] };
  }

  /** Removes a stored key everywhere (after the next refresh of each instance). */
  async remove(id: string): Promise<boolean> {
    const removed = await this.#options.store.removeKey(id);
    await this.refresh();
    return removed;
  }

  async #refresh(): Promise<void> {
    const { store, vault, pool, envKeys, log } = this.#options;
    let stored: StoredKeyRecord[];
    try {
      stored = await store.listKeys();
    } catch (error) {
      log.warn("stored keys could not be read; keeping the current list", {
        error: describeError(error),
      });
      return;
    }
    const keys: PoolKey[] = [...envKeys];
    const unusable: UnusableKey[] = [];
    const storedIds = new Set<string>();
    for (const record of stored) {
      storedIds.add(record.id);
      if (this.#envIds.has(record.id)) continue;
      let key = this.#opened.get(record.id);
      if (!key) {
        const opened = vault ? await this.#open(vault, record) : undefined;
        if (!opened) {
          unusable.push({
            id: record.id,
            project: record.project ?? `key:${record.id}`,
            ...(record.label ? { label: record.label } : {}),
            addedAt: record.addedAt,
            reason: vault ? "DOES_NOT_OPEN" : "NO_SECRET",
          });
          continue;
        }
        this.#opened.set(record.id, key = opened);
      }
      keys.push(key);
    }
    for (const id of this.#opened.keys()) if (!storedIds.has(id)) this.#opened.delete(id);
    this.#unusable = unusable;
    if (unusable.length > 0 && !this.#warned.has(unusable.map((k) => k.id).join())) {
      this.#warned.add(unusable.map((k) => k.id).join());
      log.warn("stored keys cannot be used on this instance", {
        keys: unusable.map((k) => k.id),
        reason: vault
          ? "they do not open with this KEY_ENCRYPTION_SECRET (it differs from the one they " +
            "were added with)"
          : "KEY_ENCRYPTION_SECRET is not set",
      });
    }
    if (!sameKeys(pool.keys, keys)) {
      // The redactor first: a key must be blanked before it can appear anywhere.
      this.#teachRedactor(keys);
      pool.setKeys(keys);
    }
  }

  /** Opens one record; undefined when it does not open or is not the key its id names. */
  async #open(vault: KeyVault, record: StoredKeyRecord): Promise<PoolKey | undefined> {
    try {
      const value = await vault.open(record.sealed, keyRecordPath(record.id));
      if (await fingerprint(value) !== record.id) return undefined;
      return Object.freeze({
        id: record.id,
        value,
        project: record.project ?? `key:${record.id}`,
        ...(record.label ? { label: record.label } : {}),
        source: "kv" as const,
      });
    } catch {
      return undefined;
    }
  }

  #teachRedactor(keys: readonly PoolKey[]): void {
    const before = this.#secrets.size;
    for (const key of keys) this.#secrets.add(key.value);
    if (this.#secrets.size === before && before > 0) return;
    this.#options.redactor.setSecrets([...this.#secrets, ...this.#options.otherSecrets]);
  }
}

function sameKeys(a: readonly PoolKey[], b: readonly PoolKey[]): boolean {
  return a.length === b.length && a.every((key, i) => key === b[i]);
}
