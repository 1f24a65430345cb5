/**
 * The Deno KV state store: shared by every process on one local SQLite file and by every
 * isolate of a Deno Deploy app. It is given an opened `Deno.Kv` (entries open it), so tests run
 * it on a temp file and nothing here depends on where the database lives.
 *
 * Layout, all under "rotator":
 *   cooldown/<project>/<model>             CooldownRecord, expires a minute after `until`
 *   disabled/<scope>/<id>                  DisablementRecord
 *   keys/<id>                              StoredKeyRecord (the key value sealed)
 *   usage/<day>/<keyId>/<model>/<field>    KvU64, added with sum()
 *   version                                KvU64, +1 in every atomic write of shared state
 *
 * Deadlines are compared with the stored `until`, never left to `expireIn`: expiry is lazy and
 * an expired entry stays readable for up to about a minute (checked on deno 2.9.6).
 *
 * Change notification: `kv.watch()` only sees writes made in the same process, so a poller
 * reads the version key every `pollMs` (150 ms by default) and tells subscribers when it moved.
 * On Deno Deploy `watch` reaches every isolate (docs.deno.com/deploy/kv); there the entry turns
 * it on and keeps a slower poll as a safety net.
 */

import {
  type CooldownRecord,
  type DisablementRecord,
  type DisableScope,
  keyRecordPath,
  laterCooldown,
  type StoredKeyRecord,
} from "./records.ts";
import type { PoolState } from "../pool.ts";
import { ChangeFeed } from "./kv_change_feed.ts";
import {
  type AddKeysResult,
  emptyCounts,
  MAX_KEYS_PER_ADD,
  type StateStore,
  USAGE_FIELDS,
  type UsageCounts,
  type UsageRow,
} from "./store.ts";

const ROOT = "rotator";
const VERSION: Deno.KvKey = [ROOT, "version"];
const COOLDOWN = [ROOT, "cooldown"] as const;
const DISABLED = [ROOT, "disabled"] as const;
const USAGE = [ROOT, "usage"] as const;
const KEYS = keyRecordPath("").slice(0, -1);

/** A cooldown entry outlives its deadline by this much before KV may drop it. */
const EXPIRY_GRACE_MS = 60_000;
/** Versionstamp conflicts to sit out before a write gives up (each round, one writer wins). */
const CONFLICT_RETRIES = 100;
/** "database is locked" errors to sit out (SQLite's writer lock held by another process). */
const LOCK_RETRIES = 30;
/** Mutations per atomic usage write (Deno KV allows 1000 per atomic operation). */
const USAGE_MUTATIONS_PER_COMMIT = 500;
/** getMany reads at most 10 keys (Deno KV limit). */
const GET_MANY_LIMIT = 10;

export interface KvStoreOptions {
  /** How often to poll the version key for other writers; 0 turns polling off. */
  readonly pollMs?: number;
  /** Also listen with kv.watch() (reaches other isolates on Deno Deploy, not other processes). */
  readonly watch?: boolean;
  /** The clock used to compute expiries. */
  readonly now?: () => number;
}

export const DEFAULT_POLL_MS = 150;

export class KvStore implements StateStore {
  readonly kind = "kv" as const;
  readonly #kv: Deno.Kv;
  readonly #pollMs: number;
  readonly #watch: boolean;
  readonly #now: () => number;
  readonly #listeners = new Set<() => void>();
  #feed: ChangeFeed | undefined;
  #stopping: Promise<void> = Promise.resolve();
  #closed = false;

  /** Takes ownership of `kv`: close() closes it. */
  constructor(kv: Deno.Kv, options: KvStoreOptions = {}) {
    this.#kv = kv;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.#watch = options.watch ?? false;
    this.#now = options.now ?? Date.now;
  }

  async load(now: number): Promise<PoolState> {
    const cooldowns: CooldownRecord[] = [];
    for await (const entry of this.#kv.list<CooldownRecord>({ prefix: COOLDOWN })) {
      if (entry.value.until > now) cooldowns.push(entry.value);
    }
    const disablements: DisablementRecord[] = [];
    for await (const entry of this.#kv.list<DisablementRecord>({ prefix: DISABLED })) {
      disablements.push(entry.value);
    }
    return { cooldowns, disablements };
  }

  async putCooldown(record: CooldownRecord): Promise<void> {
    const key = [...COOLDOWN, record.project, record.model];
    for (let round = 0; round < CONFLICT_RETRIES; round++) {
      const current = await this.#kv.get<CooldownRecord>(key);
      // The later deadline wins; an equal one changes nothing.
      if (current.value && laterCooldown(current.value, record) === current.value) return;
      // A deadline already past changes nothing anywhere.
      if (record.until <= this.#now()) return;
      const expireIn = record.until - this.#now() + EXPIRY_GRACE_MS;
      const result = await this.#commit(() =>
        this.#kv.atomic().check(current).set(key, record, { expireIn }).sum(VERSION, 1n)
      );
      if (result.ok) return;
    }
    throw new Error(`cooldown write lost ${CONFLICT_RETRIES} races in a row`);
  }

  async putDisablement(record: DisablementRecord): Promise<void> {
    const key = [...DISABLED, record.scope, record.id];
    await this.#commit(() => this.#kv.atomic().set(key, record).sum(VERSION, 1n));
  }

  removeDisablement(scope: DisableScope, id: string): Promise<boolean> {
    return this.#deleteIfPresent([...DISABLED, scope, id]);
  }

  async clearCooldowns(filter: { project?: string; model?: string }): Promise<number> {
    const prefix = filter.project === undefined ? [...COOLDOWN] : [...COOLDOWN, filter.project];
    let cleared = 0;
    for await (const entry of this.#kv.list<CooldownRecord>({ prefix })) {
      if (filter.model !== undefined && entry.value.model !== filter.model) continue;
      // Only the entry as listed: a cooldown learned since then is a new fact and stays.
      const result = await this.#commit(() =>
        this.#kv.atomic().check(entry).delete(entry.key).sum(VERSION, 1n)
      );
      if (result.ok) cleared++;
    }
    return cleared;
  }

  async addUsage(rows: readonly UsageRow[]): Promise<void> {
    const sums: [Deno.KvKey, bigint][] = [];
    for (const row of rows) {
      for (const field of USAGE_FIELDS) {
        const n = Math.round(row[field]);
        if (n > 0) sums.push([[...USAGE, row.day, row.keyId, row.model, field], BigInt(n)]);
      }
    }
    for (let i = 0; i < sums.length; i += USAGE_MUTATIONS_PER_COMMIT) {
      const chunk = sums.slice(i, i + USAGE_MUTATIONS_PER_COMMIT);
      await this.#commit(() => {
        const op = this.#kv.atomic();
        for (const [key, n] of chunk) op.sum(key, n);
        return op;
      });
    }
  }

  async pruneUsage(beforeDay: string): Promise<number> {
    // Usage keys start with the day (YYYY-MM-DD sorts as dates do): one range covers every
    // earlier day. Deleted a batch per commit.
    const days = new Set<string>();
    let batch: Deno.KvKey[] = [];
    const commit = async () => {
      const keys = batch;
      batch = [];
      await this.#commit(() => {
        const op = this.#kv.atomic();
        for (const key of keys) op.delete(key);
        return op;
      });
    };
    for await (const entry of this.#kv.list({ start: [...USAGE], end: [...USAGE, beforeDay] })) {
      days.add(String(entry.key[USAGE.length]));
      batch.push(entry.key);
      if (batch.length >= USAGE_MUTATIONS_PER_COMMIT) await commit();
    }
    if (batch.length > 0) await commit();
    return days.size;
  }

  async usage(day: string, keyId?: string): Promise<UsageRow[]> {
    const prefix = keyId === undefined ? [...USAGE, day] : [...USAGE, day, keyId];
    const rows = new Map<string, UsageRow>();
    for await (const entry of this.#kv.list<Deno.KvU64>({ prefix })) {
      const [, , , rowKey, model, field] = entry.key as string[];
      if (!(USAGE_FIELDS as readonly string[]).includes(field)) continue;
      const id = `${rowKey}\u0000${model}`;
      let row = rows.get(id);
      if (!row) rows.set(id, row = { day, keyId: rowKey, model, ...emptyCounts() });
      row[field as keyof UsageCounts] = Number(entry.value.value);
    }
    return [...rows.values()];
  }

  async listKeys(): Promise<StoredKeyRecord[]> {
    const records: StoredKeyRecord[] = [];
    for await (const entry of this.#kv.list<StoredKeyRecord>({ prefix: KEYS })) {
      records.push(entry.value);
    }
    return records.sort((a, b) => a.addedAt - b.addedAt || (a.id < b.id ? -1 : 1));
  }

  async addKeys(records: readonly StoredKeyRecord[]): Promise<AddKeysResult> {
    if (records.length > MAX_KEYS_PER_ADD) {
      throw new RangeError(`at most ${MAX_KEYS_PER_ADD} keys per add`);
    }
    const seen = new Set<string>();
    const unique = records.filter((r) => !seen.has(r.id) && seen.add(r.id));
    for (let round = 0; round < CONFLICT_RETRIES; round++) {
      const existing: string[] = [];
      const fresh: StoredKeyRecord[] = [];
      for (let i = 0; i < unique.length; i += GET_MANY_LIMIT) {
        const batch = unique.slice(i, i + GET_MANY_LIMIT);
        const entries = await this.#kv.getMany(batch.map((r) => keyRecordPath(r.id)));
        entries.forEach((entry, j) => {
          if (entry.value !== null) existing.push(batch[j].id);
          else fresh.push(batch[j]);
        });
      }
      if (fresh.length === 0) return { added: [], existing };
      const result = await this.#commit(() => {
        const op = this.#kv.atomic();
        for (const record of fresh) {
          const key = keyRecordPath(record.id);
          op.check({ key, versionstamp: null }).set(key, record);
        }
        return op.sum(VERSION, 1n);
      });
      if (result.ok) return { added: fresh.map((r) => r.id), existing };
    }
    throw new Error(`key write lost ${CONFLICT_RETRIES} races in a row`);
  }

  async removeKey(id: string): Promise<boolean> {
    for (let round = 0; round < CONFLICT_RETRIES; round++) {
      const entry = await this.#kv.get(keyRecordPath(id));
      if (entry.value === null) return false;
      const result = await this.#commit(() =>
        this.#kv.atomic().check(entry).delete(entry.key).delete([...DISABLED, "key", id]).sum(
          VERSION,
          1n,
        )
      );
      if (result.ok) return true;
    }
    throw new Error(`key removal lost ${CONFLICT_RETRIES} races in a row`);
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#feed && !this.#closed) {
      this.#feed = new ChangeFeed(this.#kv, VERSION, {
        pollMs: this.#pollMs,
        watch: this.#watch,
        onChange: () => this.#notify(),
      });
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopping = this.#stopFeed();
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#stopFeed();
    await this.#stopping;
    this.#kv.close();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the others still hear of the change.
      }
    }
  }

  async #stopFeed(): Promise<void> {
    const feed = this.#feed;
    this.#feed = undefined;
    await feed?.stop();
  }

  /** Deletes `key` if present, checked against the version read; false when absent. */
  async #deleteIfPresent(key: Deno.KvKey): Promise<boolean> {
    for (let round = 0; round < CONFLICT_RETRIES; round++) {
      const entry = await this.#kv.get(key);
      if (entry.value === null) return false;
      const result = await this.#commit(() =>
        this.#kv.atomic().check(entry).delete(key).sum(VERSION, 1n)
      );
      if (result.ok) return true;
    }
    throw new Error(`delete lost ${CONFLICT_RETRIES} races in a row`);
  }

  /**
   * Commits a freshly built atomic operation, sitting out "database is locked": with several
   * processes on one SQLite file, checked commits often throw that TypeError (deno 2.9.6).
   */
  async #commit(
    build: () => Deno.AtomicOperation,
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    for (let attempt = 0;; attempt++) {
      try {
        return await build().commit();
      } catch (error) {
        if (!isLocked(error) || attempt >= LOCK_RETRIES) throw error;
        const wait = Math.min(100, 2 * 2 ** attempt) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}

function isLocked(error: unknown): boolean {
  return error instanceof Error && /database is locked/i.test(error.message);
}
