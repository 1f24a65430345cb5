/**
 * Keeps the pool (the local view the hot path reads) and the store (what instances share) in
 * step: a change learned here is applied locally at once and written through; a change announced
 * by the store is loaded and merged, together with the key list (keys added or removed on
 * another instance). The hot path never waits for the store.
 */

import type { Effect } from "../cooldown.ts";
import { describeError, type Logger } from "../log.ts";
import type { KeyPool } from "../pool.ts";
import type { DisablementRecord, DisableScope } from "./records.ts";
import type { StateStore } from "./store.ts";

/** The pool's key list, refreshed with the state (keys added or removed elsewhere). */
export interface KeySource {
  refresh(): Promise<void>;
}

export interface StateSyncOptions {
  readonly now: () => number;
  readonly log: Logger;
  readonly keys?: KeySource;
}

export class StateSync {
  readonly #pool: KeyPool;
  readonly #store: StateStore;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #keys: KeySource | undefined;
  #writes = new Set<Promise<void>>();
  /** Changes learned here whose write has not finished: a reload must not undo them. */
  readonly #unwritten = new Map<string, Effect>();
  /** Effects learned while a reload reads the store, one list per running read. */
  readonly #duringLoad = new Set<Effect[]>();
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  #unsubscribe: (() => void) | undefined;
  /** Also run on every reload (e.g. adopting limits other instances learned). */
  readonly #alsoOnReload: (() => Promise<void>)[] = [];

  constructor(pool: KeyPool, store: StateStore, options: StateSyncOptions) {
    this.#pool = pool;
    this.#store = store;
    this.#now = options.now;
    this.#log = options.log;
    this.#keys = options.keys;
  }

  get store(): StateStore {
    return this.#store;
  }

  /** Loads the shared state and starts listening for other instances' changes. */
  async start(): Promise<void> {
    await this.reload();
    this.#unsubscribe = this.#store.subscribe(() => void this.reload());
  }

  /** Applies an effect locally now and writes it through in the background. */
  record(effect: Effect): void {
    if (effect.type === "none") return;
    this.#track(this.#write(effect), `${effect.type} write`);
  }

  /** An operator disables a key or project: applied here at once, resolved once stored. */
  async disable(record: DisablementRecord): Promise<void> {
    await this.#write({ type: "disable", record });
  }

  /**
   * An operator re-enables a key or project. Waits for writes already under way (one of them
   * may be what is being removed), and resolves after a reload that started after the store
   * write, so the local view cannot still hold what was just removed.
   */
  async enable(scope: DisableScope, id: string): Promise<boolean> {
    await this.#writesStartedSoFar();
    const local = this.#pool.removeDisablement(scope, id);
    const stored = await this.#store.removeDisablement(scope, id);
    await this.reload();
    return local || stored;
  }

  /** An operator clears cooldowns (waiting and reloading as enable() does). */
  async clearCooldowns(filter: { project?: string; model?: string }): Promise<number> {
    await this.#writesStartedSoFar();
    const local = this.#pool.clearCooldowns(filter);
    const stored = await this.#store.clearCooldowns(filter);
    await this.reload();
    return Math.max(local, stored);
  }

  /** Applies an effect locally now; the promise settles when the store has it. */
  #write(effect: Exclude<Effect, { type: "none" }>): Promise<void> {
    this.#pool.apply(effect);
    for (const learned of this.#duringLoad) learned.push(effect);
    const id = effect.type === "cooldown"
      ? `c\u0000${effect.record.project}\u0000${effect.record.model}`
      : `d\u0000${effect.record.scope}\u0000${effect.record.id}`;
    this.#unwritten.set(id, effect);
    const write = effect.type === "cooldown"
      ? this.#store.putCooldown(effect.record)
      : this.#store.putDisablement(effect.record);
    return write.finally(() => {
      if (this.#unwritten.get(id) === effect) this.#unwritten.delete(id);
    });
  }

  /** Runs `task` whenever shared state is reloaded. */
  alsoOnReload(task: () => Promise<void>): void {
    this.#alsoOnReload.push(task);
  }

  /** Reloads from the store; concurrent calls coalesce into at most one more load. */
  reload(): Promise<void> {
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    const run = async () => {
      do {
        this.#reloadAgain = false;
        // What this instance learned that the read may miss: writes not finished when it
        // started, and writes made while it runs (finished or not when it ends).
        const learned = [...this.#unwritten.values()];
        this.#duringLoad.add(learned);
        try {
          const [state] = await Promise.all([
            this.#store.load(this.#now()),
            // The registry logs its own failures and keeps its list when the store fails.
            this.#keys?.refresh().catch(() => {}),
          ]).finally(() => this.#duringLoad.delete(learned));
          const cooldowns = [...state.cooldowns];
          const disablements = [...state.disablements];
          for (const effect of [...learned, ...this.#unwritten.values()]) {
            if (effect.type === "cooldown") cooldowns.push(effect.record);
            else if (effect.type === "disable") disablements.push(effect.record);
          }
          this.#pool.replaceState({ cooldowns, disablements }, this.#now());
          for (const task of this.#alsoOnReload) await task();
        } catch (error) {
          this.#log.warn("state reload failed; keeping the local view", {
            error: describeError(error),
          });
        }
      } while (this.#reloadAgain);
      // Cleared in the same turn as the last check: a reload asked for after that check starts
      // a new load instead of joining one that has already read the store.
      this.#reloading = undefined;
    };
    this.#reloading = run();
    return this.#reloading;
  }

  /** Waits for the writes started before this call (not for ones started later). */
  async #writesStartedSoFar(): Promise<void> {
    await Promise.all([...this.#writes]);
  }

  /** Resolves when every write started so far has finished (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#writes.size > 0) await Promise.all(this.#writes);
    await this.#reloading;
  }

  close(): void {
    this.#unsubscribe?.();
  }

  #track(write: Promise<void>, what: string): void {
    const tracked = write.catch((error) => {
      this.#log.warn(`state ${what} failed; other instances may not see it yet`, {
        error: describeError(error),
      });
    }).finally(() => this.#writes.delete(tracked));
    this.#writes.add(tracked);
  }
}
