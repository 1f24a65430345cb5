/**
 * The local view of the key pool: which keys exist, which buckets are cooling and which keys or
 * projects are disabled, and the round-robin choice of a usable key for a model. No I/O: the
 * state store feeds it, the proxy asks it. Synchronous, so concurrent requests cannot race.
 *
 * Choosing is O(1) amortised however many keys cool: each model has a ring of keys believed
 * usable and a heap of cooling keys ordered by recovery time; a key found cooling moves to the
 * heap once and comes back when its time is reached. Time is resolved when read, never by timers.
 */

import { MinHeap } from "./min_heap.ts";
import type { QuotaLedger } from "./quota.ts";
import type { PoolKey } from "./keys.ts";
import type { Effect } from "./cooldown.ts";
import {
  ALL_MODELS,
  type CooldownRecord,
  type DisablementRecord,
  type DisableScope,
  laterCooldown,
} from "./state/records.ts";

/** Why a key cannot be used now, and until when. */
export interface Unavailability {
  /** Epoch ms when the key is usable again; Infinity when only an operator can help. */
  readonly at: number;
  readonly cause: CooldownRecord | DisablementRecord;
}

/** When capacity returns: `at`, and the cooldown or disablement that lasts until then. */
export interface Recovery {
  readonly at: number;
  readonly cause?: CooldownRecord | DisablementRecord;
}

/** Soft preferences: an avoided key or project is chosen only when nothing else is usable. */
export interface PickOptions {
  /** Keys this request already tried. */
  readonly avoidKeys?: ReadonlySet<string>;
  /** Projects that just failed this request (their bucket is likely spent or unwell). */
  readonly avoidProjects?: ReadonlySet<string>;
}

/** Key counts for health checks; a cooling key may still serve other models. */
export interface PoolSummary {
  readonly total: number;
  /** Not disabled: can serve at least the models it is not cooling for. */
  readonly usable: number;
  /** Usable keys with a cooldown running for some model. */
  readonly cooling: number;
  readonly disabled: number;
  readonly nextRecoveryAt?: number;
}

/** All shared state, as loaded from a store. */
export interface PoolState {
  readonly cooldowns: readonly CooldownRecord[];
  readonly disablements: readonly DisablementRecord[];
}

interface Waiting {
  at: number;
  index: number;
}

/** Per-model round-robin over the keys believed usable, plus the cooling ones by recovery. */
class ModelRing {
  generation = -1;
  ledgerVersion = -1;
  ready: number[] = [];
  cursor = 0;
  readonly waiting = new MinHeap<Waiting>((w) => w.at);
  /** Keys out until an operator acts. */
  parked: number[] = [];
}

export class KeyPool {
  #keys: PoolKey[] = [];
  #byId = new Map<string, number>();
  #byProject = new Map<string, number[]>();
  readonly #projectCursor = new Map<string, number>();
  readonly #cooldowns = new Map<string, Map<string, CooldownRecord>>();
  readonly #disabled: Record<DisableScope, Map<string, DisablementRecord>> = {
    key: new Map(),
    project: new Map(),
  };
  readonly #rings = new Map<string, ModelRing>();
  /** Bumped whenever a key could become usable earlier than the rings believe. */
  #generation = 0;

  /** Known per-window limits: a bucket that used its limit is out until the window has room. */
  readonly #ledger: QuotaLedger | undefined;

  constructor(keys: readonly PoolKey[] = [], ledger?: QuotaLedger) {
    this.#ledger = ledger;
    this.setKeys(keys);
  }

  get keys(): readonly PoolKey[] {
    return this.#keys;
  }

  get size(): number {
    return this.#keys.length;
  }

  key(id: string): PoolKey | undefined {
    const index = this.#byId.get(id);
    return index === undefined ? undefined : this.#keys[index];
  }

  /** Replaces the key list (keys added or removed at run time); state for old keys is kept. */
  setKeys(keys: readonly PoolKey[]): void {
    this.#keys = [...keys];
    this.#byId = new Map(this.#keys.map((key, index) => [key.id, index]));
    this.#byProject = new Map();
    this.#keys.forEach((key, index) => {
      const list = this.#byProject.get(key.project);
      if (list) list.push(index);
      else this.#byProject.set(key.project, [index]);
    });
    this.#generation++;
  }

  /** Applies what one upstream answer taught us. */
  apply(effect: Effect): void {
    if (effect.type === "cooldown") this.addCooldown(effect.record);
    else if (effect.type === "disable") this.addDisablement(effect.record);
  }

  /** Records a cooldown, keeping the later deadline if one is already known. */
  addCooldown(record: CooldownRecord): void {
    let byModel = this.#cooldowns.get(record.project);
    if (!byModel) this.#cooldowns.set(record.project, byModel = new Map());
    byModel.set(record.model, laterCooldown(byModel.get(record.model), record));
  }

  addDisablement(record: DisablementRecord): void {
    const current = this.#disabled[record.scope].get(record.id);
    this.#disabled[record.scope].set(record.id, record);
    if (current && (current.recheckAt ?? Infinity) > (record.recheckAt ?? Infinity)) {
      this.#generation++;
    }
  }

  /** An operator brings a key or project back. */
  removeDisablement(scope: DisableScope, id: string): boolean {
    const removed = this.#disabled[scope].delete(id);
    if (removed) this.#generation++;
    return removed;
  }

  /** Clears cooldowns matching the filter; returns how many were cleared. */
  clearCooldowns(filter: { project?: string; model?: string } = {}): number {
    let cleared = 0;
    for (const [project, byModel] of this.#cooldowns) {
      if (filter.project !== undefined && filter.project !== project) continue;
      for (const model of [...byModel.keys()]) {
        if (filter.model !== undefined && filter.model !== model) continue;
        byModel.delete(model);
        cleared++;
      }
      if (byModel.size === 0) this.#cooldowns.delete(project);
    }
    if (cleared > 0) this.#generation++;
    return cleared;
  }

  /**
   * Replaces all state with what the store holds (another instance's view merged in).
   * Cooldowns keep the later deadline of the two, so a late refresh never shortens one.
   */
  replaceState(state: PoolState, now: number): void {
    const next = new Map<string, Map<string, CooldownRecord>>();
    for (const record of state.cooldowns) {
      if (record.until <= now) continue;
      let byModel = next.get(record.project);
      if (!byModel) next.set(record.project, byModel = new Map());
      byModel.set(record.model, laterCooldown(byModel.get(record.model), record));
    }
    let relaxed = false;
    for (const [project, byModel] of this.#cooldowns) {
      for (const [model, record] of byModel) {
        if (record.until <= now) continue;
        const incoming = next.get(project)?.get(model);
        if (!incoming || incoming.until < record.until) relaxed = true;
      }
    }
    this.#cooldowns.clear();
    for (const [project, byModel] of next) this.#cooldowns.set(project, byModel);

    for (const scope of ["key", "project"] as const) {
      const incoming = new Map(
        state.disablements.filter((d) => d.scope === scope).map((d) => [d.id, d]),
      );
      for (const [id, record] of this.#disabled[scope]) {
        const replacement = incoming.get(id);
        if (!replacement || (replacement.recheckAt ?? Infinity) < (record.recheckAt ?? Infinity)) {
          relaxed = true;
        }
      }
      this.#disabled[scope].clear();
      for (const [id, record] of incoming) this.#disabled[scope].set(id, record);
    }
    if (relaxed) this.#generation++;
  }

  /** The current state, for persistence and the admin API. */
  state(now: number): PoolState {
    const cooldowns: CooldownRecord[] = [];
    for (const byModel of this.#cooldowns.values()) {
      for (const record of byModel.values()) if (record.until > now) cooldowns.push(record);
    }
    return {
      cooldowns,
      disablements: [...this.#disabled.key.values(), ...this.#disabled.project.values()],
    };
  }

  disablement(scope: DisableScope, id: string): DisablementRecord | undefined {
    return this.#disabled[scope].get(id);
  }

  /** Active cooldowns of a project, by model. */
  cooldownsOf(project: string, now: number): CooldownRecord[] {
    return [...(this.#cooldowns.get(project)?.values() ?? [])].filter((c) => c.until > now);
  }

  /**
   * Counts for health checks: disabled keys, keys whose project has any cooldown running (for
   * some model), and the earliest time a cooldown or re-check ends. O(keys): not for the hot path.
   */
  summary(now: number): PoolSummary {
    let disabled = 0;
    let cooling = 0;
    let nextRecoveryAt: number | undefined;
    const consider = (at: number | null) => {
      if (at !== null && at > now && (nextRecoveryAt === undefined || at < nextRecoveryAt)) {
        nextRecoveryAt = at;
      }
    };
    for (const key of this.#keys) {
      const off = this.#disabled.key.get(key.id) ?? this.#disabled.project.get(key.project);
      if (off && (off.recheckAt === null || off.recheckAt > now)) {
        disabled++;
        consider(off.recheckAt);
        continue;
      }
      const running = this.cooldownsOf(key.project, now);
      if (running.length > 0) cooling++;
      for (const cooldown of running) consider(cooldown.until);
    }
    return {
      total: this.#keys.length,
      disabled,
      cooling,
      usable: this.#keys.length - disabled,
      ...(nextRecoveryAt !== undefined ? { nextRecoveryAt } : {}),
    };
  }

  /** Why `key` cannot serve `model` now, or undefined when it can. */
  unavailability(key: PoolKey, model: string, now: number): Unavailability | undefined {
    let worst: Unavailability | undefined;
    const consider = (at: number, cause: CooldownRecord | DisablementRecord) => {
      if (at > now && (worst === undefined || at > worst.at)) worst = { at, cause };
    };
    const keyOff = this.#disabled.key.get(key.id);
    if (keyOff) consider(keyOff.recheckAt ?? Infinity, keyOff);
    const projectOff = this.#disabled.project.get(key.project);
    if (projectOff) consider(projectOff.recheckAt ?? Infinity, projectOff);
    const byModel = this.#cooldowns.get(key.project);
    if (byModel) {
      const forModel = byModel.get(model);
      if (forModel) consider(forModel.until, forModel);
      const forAll = byModel.get(ALL_MODELS);
      if (forAll) consider(forAll.until, forAll);
    }
    if (worst === undefined && this.#ledger?.active) {
      const until = this.#ledger.blockedUntil(key.project, model, now);
      if (until !== undefined) {
        consider(until, {
          project: key.project,
          model,
          until,
          window: "paced",
          reason: "PACED",
          setAt: now,
        });
      }
    }
    return worst;
  }

  /**
   * The next key for `model` in round-robin order among usable keys, or undefined when none is.
   * Keys of avoided projects are chosen only when no other project has a usable key.
   */
  pick(model: string, now: number, options: PickOptions = {}): PoolKey | undefined {
    const ring = this.#ring(model);
    this.#release(ring, now);
    const { avoidKeys, avoidProjects } = options;
    // Best fallbacks seen: a fresh key of an avoided project beats a key already tried.
    let otherProject: number | undefined;
    let triedKey: number | undefined;
    let skipped = 0;
    let i = ring.cursor;
    while (ring.ready.length > 0 && skipped < ring.ready.length) {
      if (i >= ring.ready.length) i = 0;
      const index = ring.ready[i];
      const key = this.#keys[index];
      const off = this.unavailability(key, model, now);
      if (off) {
        this.#retire(ring, i, index, off.at);
        continue;
      }
      if (avoidKeys?.has(key.id)) triedKey ??= index;
      else if (avoidProjects?.has(key.project)) otherProject ??= index;
      else {
        ring.cursor = i + 1;
        return key;
      }
      skipped++;
      i++;
    }
    const fallback = otherProject ?? triedKey;
    return fallback === undefined ? undefined : this.#keys[fallback];
  }

  /**
   * The next usable key of one project for `model` (a resource pins the request to the project
   * that owns it), or undefined with the earliest recovery among that project's keys.
   */
  pickInProject(
    model: string,
    project: string,
    now: number,
  ): { key: PoolKey } | { key: undefined; recovery: Recovery | undefined } {
    const indices = this.#byProject.get(project) ?? [];
    const start = this.#projectCursor.get(project) ?? 0;
    let recovery: Recovery | undefined;
    for (let step = 0; step < indices.length; step++) {
      const position = (start + step) % indices.length;
      const key = this.#keys[indices[position]];
      const off = this.unavailability(key, model, now);
      if (!off) {
        this.#projectCursor.set(project, position + 1);
        return { key };
      }
      if (recovery === undefined || off.at < recovery.at) recovery = off;
    }
    // `recovery.at` is Infinity when every key of the project is out until an operator acts.
    return { key: undefined, recovery };
  }

  /**
   * When the first key can serve `model` again and why it is out until then (`at <= now` and no
   * cause: one is usable now); undefined when none will recover without an operator.
   */
  nextRecovery(model: string, now: number): Recovery | undefined {
    const ring = this.#ring(model);
    this.#release(ring, now);
    // Keys still in the ready list are usable or have never been checked: check them now.
    for (let i = ring.ready.length - 1; i >= 0; i--) {
      const index = ring.ready[i];
      const off = this.unavailability(this.#keys[index], model, now);
      if (!off) return { at: now };
      this.#retire(ring, i, index, off.at);
    }
    for (;;) {
      const top = ring.waiting.peek();
      if (!top) return undefined;
      const off = this.unavailability(this.#keys[top.index], model, now);
      if (off && off.at === top.at) return off;
      ring.waiting.pop();
      if (!off) {
        ring.ready.push(top.index);
        return { at: now };
      }
      if (off.at === Infinity) ring.parked.push(top.index);
      else ring.waiting.push({ at: off.at, index: top.index });
    }
  }

  #ring(model: string): ModelRing {
    let ring = this.#rings.get(model);
    if (!ring) this.#rings.set(model, ring = new ModelRing());
    const ledgerVersion = this.#ledger?.version ?? 0;
    if (ring.generation !== this.#generation || ring.ledgerVersion !== ledgerVersion) {
      ring.generation = this.#generation;
      ring.ledgerVersion = ledgerVersion;
      ring.ready = this.#keys.map((_, index) => index);
      ring.waiting.clear();
      ring.parked = [];
      if (ring.cursor >= ring.ready.length) ring.cursor = 0;
    }
    return ring;
  }

  /** Moves keys whose recovery time has come back into the ready ring. */
  #release(ring: ModelRing, now: number): void {
    for (let top = ring.waiting.peek(); top && top.at <= now; top = ring.waiting.peek()) {
      ring.waiting.pop();
      ring.ready.push(top.index);
    }
  }

  /** Takes ready[i] out of the ring until `at` (swap-remove keeps this O(1)). */
  #retire(ring: ModelRing, i: number, index: number, at: number): void {
    const last = ring.ready.pop()!;
    if (i < ring.ready.length) ring.ready[i] = last;
    if (at === Infinity) ring.parked.push(index);
    else ring.waiting.push({ at, index });
  }
}
