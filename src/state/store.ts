/**
 * Where key state is kept and shared between instances. The proxy never waits on it to choose
 * a key (the pool is its local view); it writes through on every change and reloads when told
 * that another instance changed something.
 *
 * Contract (state/store_contract.ts runs it against every implementation):
 * - a cooldown is never shortened by a write that races with another (the later deadline wins);
 * - a disablement stays until removed, whoever else writes;
 * - usage deltas are summed, never lost to a concurrent writer.
 */

import type { PoolState } from "../pool.ts";
import type { CooldownRecord, DisablementRecord, DisableScope } from "./records.ts";

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
  /** Calls `listener` when state may have changed elsewhere; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  close(): Promise<void>;
}

export function emptyCounts(): UsageCounts {
  return { requests: 0, successes: 0, rateLimited: 0, errors: 0, promptTokens: 0, outputTokens: 0 };
}
