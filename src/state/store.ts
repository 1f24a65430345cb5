/**
 * Where key state is kept and shared between instances. The proxy never waits on it to choose
 * a key (the pool is its local view); it writes through on every change and reloads when told
 * that another instance changed something.
 *
 * Contract (state/store_contract.ts runs it against every implementation):
 * - a cooldown is never shortened by a write that races with another (the later deadline wins);
 * - a disablement stays until removed, whoever else writes;
 * - usage deltas are summed, never lost to a concurrent writer;
 * - keys added at run time are stored sealed, all of one add or none, and never twice.
 */

import type { PoolState } from "../pool.ts";
import type {
  CooldownRecord,
  DisablementRecord,
  DisableScope,
  StoredKeyRecord,
} from "./records.ts";

/** Counts for one key, model and Pacific day. */
export interface UsageCounts {
  requests: number;
  successes: number;
  rateLimited: number;
  errors: number;
  promptTokens: number;
  outputTokens: number;
}

export interface UsageRow extends UsageCounts {
  /** Pacific calendar day, `YYYY-MM-DD` (per-day quotas reset at Pacific midnight). */
  readonly day: string;
  readonly keyId: string;
  readonly model: string;
}

export const USAGE_FIELDS = [
  "requests",
  "successes",
  "rateLimited",
  "errors",
  "promptTokens",
  "outputTokens",
] as const satisfies readonly (keyof UsageCounts)[];

export type StoreKind = "memory" | "kv";

/** Most keys one addKeys() call takes (a Deno KV atomic operation allows 100 checks). */
export const MAX_KEYS_PER_ADD = 100;

/** What addKeys() did: ids stored now, and ids that were already stored (left untouched). */
export interface AddKeysResult {
  readonly added: string[];
  readonly existing: string[];
}

export interface StateStore {
  readonly kind: StoreKind;
  /** Everything shared: cooldowns still running and disablements. */
  load(now: number): Promise<PoolState>;
  /** Stores a cooldown, keeping whichever deadline is later if the bucket already has one. */
  putCooldown(record: CooldownRecord): Promise<void>;
  putDisablement(record: DisablementRecord): Promise<void>;
  removeDisablement(scope: DisableScope, id: string): Promise<boolean>;
  /** Removes cooldowns matching the filter; returns how many. */
  clearCooldowns(filter: { project?: string; model?: string }): Promise<number>;
  /** Adds usage deltas (summed atomically). */
  addUsage(rows: readonly UsageRow[]): Promise<void>;
  /** Usage rows of one day, optionally of one key. */
  usage(day: string, keyId?: string): Promise<UsageRow[]>;
  /** Deletes the usage rows of days before `day` (YYYY-MM-DD); returns how many days' rows went. */
  pruneUsage(beforeDay: string): Promise<number>;
  /** Keys added at run time (sealed), oldest first. */
  listKeys(): Promise<StoredKeyRecord[]>;
  /**
   * Stores the records whose id is not stored yet, all in one atomic write (all or none);
   * at most MAX_KEYS_PER_ADD records. A repeated id counts once (the first record).
   */
  addKeys(records: readonly StoredKeyRecord[]): Promise<AddKeysResult>;
  /** Removes a stored key and its key-scope disablement; false when it was not stored. */
  removeKey(id: string): Promise<boolean>;
  /**
   * Calls `listener` when state (cooldowns, disablements, keys) may have changed elsewhere;
   * returns the unsubscribe. Usage counters do not notify.
   */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

export function emptyCounts(): UsageCounts {
  return { requests: 0, successes: 0, rateLimited: 0, errors: 0, promptTokens: 0, outputTokens: 0 };
}
