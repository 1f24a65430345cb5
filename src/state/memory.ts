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
  type StoredKeyRecord,
} from "./records.ts";
import {
  type AddKeysResult,
  emptyCounts,
  MAX_KEYS_PER_ADD,
  type StateStore,
  USAGE_FIELDS,
  type UsageRow,
} from "./store.ts";

export class MemoryStore implements StateStore {
  readonly kind = "memory" as const;
  readonly #cooldowns = new Map<string, CooldownRecord>();
  readonly #disablements = new Map<string, DisablementRecord>();
  readonly #usage = new Map<string, UsageRow>();
  readonly #keys = new Map<string, StoredKeyRecord>();

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

  pruneUsage(beforeDay: string): Promise<number> {
    const days = new Set<string>();
    for (const [id, row] of this.#usage) {
      if (row.day >= beforeDay) continue;
      days.add(row.day);
      this.#usage.delete(id);
    }
    return Promise.resolve(days.size);
  }

  listKeys(): Promise<StoredKeyRecord[]> {
    return Promise.resolve(
      [...this.#keys.values()].map(copyKey).sort((a, b) =>
        a.addedAt - b.addedAt || (a.id < b.id ? -1 : 1)
      ),
    );
  }

  addKeys(records: readonly StoredKeyRecord[]): Promise<AddKeysResult> {
    if (records.length > MAX_KEYS_PER_ADD) {
      return Promise.reject(new RangeError(`at most ${MAX_KEYS_PER_ADD} keys per add`));
    }
    const added: string[] = [];
    const existing: string[] = [];
    for (const record of records) {
      if (added.includes(record.id) || existing.includes(record.id)) continue;
      if (this.#keys.has(record.id)) {
        existing.push(record.id);
        continue;
      }
      this.#keys.set(record.id, copyKey(record));
      added.push(record.id);
    }
    return Promise.resolve({ added, existing });
  }

  removeKey(id: string): Promise<boolean> {
    if (!this.#keys.delete(id)) return Promise.resolve(false);
    this.#disablements.delete(`key\u0000${id}`);
    return Promise.resolve(true);
  }

  subscribe(_listener: () => void): () => void {
    // A single process has no other writer to hear from.
    return () => {};
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Stored records are copied in and out, as a real store would (no shared mutable bytes). */
function copyKey(record: StoredKeyRecord): StoredKeyRecord {
  return { ...record, sealed: record.sealed.slice() };
}
