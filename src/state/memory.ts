/**
 * The in-memory state store: one process, nothing survives a restart. The default where no
 * Deno KV exists (Supabase, Netlify) and in tests.
 */

import type { PoolState } from "../pool.ts";
import {
  type CooldownRecord,
  type DisablementRecord,
  type DisableScope,
  laterCooldown,
} from "./records.ts";
import { emptyCounts, type StateStore, USAGE_FIELDS, type UsageRow } from "./store.ts";

export class MemoryStore implements StateStore {
  readonly kind = "memory" as const;
  readonly #cooldowns = new Map<string, CooldownRecord>();
  readonly #disablements = new Map<string, DisablementRecord>();
  readonly #usage = new Map<string, UsageRow>();

  load(now: number): Promise<PoolState> {
    return Promise.resolve({
      cooldowns: [...this.#cooldowns.values()].filter((c) => c.until > now),
      disablements: [...this.#disablements.values()],
    });
  }

  putCooldown(record: CooldownRecord): Promise<void> {
    const id = `${record.project}\u0000${record.model}`;
    this.#cooldowns.set(id, laterCooldown(this.#cooldowns.get(id), record));
    return Promise.resolve();
  }

  putDisablement(record: DisablementRecord): Promise<void> {
    this.#disablements.set(`${record.scope}\u0000${record.id}`, record);
    return Promise.resolve();
  }

  removeDisablement(scope: DisableScope, id: string): Promise<boolean> {
    return Promise.resolve(this.#disablements.delete(`${scope}\u0000${id}`));
  }

  clearCooldowns(filter: { project?: string; model?: string }): Promise<number> {
    let cleared = 0;
    for (const [id, record] of this.#cooldowns) {
      if (filter.project !== undefined && record.project !== filter.project) continue;
      if (filter.model !== undefined && record.model !== filter.model) continue;
      this.#cooldowns.delete(id);
      cleared++;
    }
    return Promise.resolve(cleared);
  }

  addUsage(rows: readonly UsageRow[]): Promise<void> {
    for (const row of rows) {
      const id = `${row.day}\u0000${row.keyId}\u0000${row.model}`;
      let total = this.#usage.get(id);
      if (!total) {
        total = { day: row.day, keyId: row.keyId, model: row.model, ...emptyCounts() };
        this.#usage.set(id, total);
      }
      for (const field of USAGE_FIELDS) total[field] += row[field];
    }
    return Promise.resolve();
  }

  usage(day: string, keyId?: string): Promise<UsageRow[]> {
    return Promise.resolve(
      [...this.#usage.values()]
        .filter((row) => row.day === day && (keyId === undefined || row.keyId === keyId))
        .map((row) => ({ ...row })),
    );
  }

  subscribe(_listener: () => void): () => void {
    // A single process has no other writer to hear from.
    return () => {};
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
