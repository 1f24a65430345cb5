/**
 * A clock for code that waits (debounce timers, retry backoff): `sleep` resolves only when the
 * test moves time past its deadline with `advance`, so a test controls exactly what is due.
 */

import type { Clock } from "../src/clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

export class ManualClock implements Clock {
  #sleepers: Sleeper[] = [];

  constructor(public time = Date.UTC(2026, 10, 25, 18, 0, 0)) {}

  now = (): number => this.time;

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = { at: this.time + Math.max(0, ms), resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, { once: true });
    });
  };

  /** Sleeps not yet due or aborted. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Moves time forward by `ms`, waking each sleeper whose deadline passes in order and letting
   * what it starts run (a macrotask turn) before the next.
   */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await settle();
    for (;;) {
      const due = this.#sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== due);
      this.time = Math.max(this.time, due.at);
      due.resolve();
      await settle();
    }
    this.time = target;
  }
}

/** Lets pending promise chains run: one macrotask turn drains every queued microtask. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
