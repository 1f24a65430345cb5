/**
 * Waiting for capacity: when no key can serve a model now but one recovers within the client's
 * bound, the request waits in line instead of getting a 429. Waiters of one model are served in
 * arrival order, one at a time: the one at the front waits for the recovery, takes a key, and
 * hands the turn on as soon as it has one (or its answer has arrived), so a key that recovers is
 * not hit by every waiter at once. A client that leaves drops out and sends nothing.
 */

import type { Clock } from "./clock.ts";

interface Waiter {
  /** Settles the current wait: true when it is this waiter's turn at its time. */
  wake?: (ok: boolean) => void;
  left: boolean;
}

/** One request's place in line for a model. */
export class Place {
  readonly #line: Line;
  readonly #waiter: Waiter;

  constructor(line: Line, waiter: Waiter) {
    this.#line = line;
    this.#waiter = waiter;
  }

  /**
   * Resolves true once this request is at the front of its line and `at` has come; false if
   * the client went away first (the place is then given up).
   */
  async until(at: number, signal: AbortSignal): Promise<boolean> {
    if (!(await this.#line.front(this.#waiter, signal))) return false;
    const delay = at - this.#line.clock.now();
    if (delay <= 0) return true;
    try {
      await this.#line.clock.sleep(delay, signal);
      return true;
    } catch {
      this.leave();
      return false;
    }
  }

  /** Gives up the place (done, or no longer waiting): the next waiter moves to the front. */
  leave(): void {
    this.#line.remove(this.#waiter);
  }

  /** Whether the place was given up (a new one is needed to wait again). */
  get left(): boolean {
    return this.#waiter.left;
  }
}

/** The waiters of one model, in arrival order. */
class Line {
  readonly waiters: Waiter[] = [];

  constructor(readonly clock: Clock, readonly onEmpty: () => void, readonly onLeave: () => void) {}

  /** Resolves when `waiter` is first in line. */
  front(waiter: Waiter, signal: AbortSignal): Promise<boolean> {
    if (waiter.left) return Promise.resolve(false);
    if (this.waiters[0] === waiter) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = () => {
        this.remove(waiter);
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      waiter.wake = (ok) => {
        signal.removeEventListener("abort", onAbort);
        resolve(ok);
      };
    });
  }

  remove(waiter: Waiter): void {
    if (waiter.left) return;
    waiter.left = true;
    this.onLeave();
    const index = this.waiters.indexOf(waiter);
    if (index === -1) return;
    this.waiters.splice(index, 1);
    if (index === 0) {
      const next = this.waiters[0];
      if (next?.wake) {
        const wake = next.wake;
        next.wake = undefined;
        wake(true);
      }
    }
    if (this.waiters.length === 0) this.onEmpty();
  }
}

export class CapacityQueue {
  readonly #clock: Clock;
  readonly #limit: number;
  readonly #lines = new Map<string, Line>();
  #size = 0;

  constructor(clock: Clock, limit: number) {
    this.#clock = clock;
    this.#limit = limit;
  }

  /** How many requests are waiting, over all models. */
  get size(): number {
    return this.#size;
  }

  /** A place in line for `model`, or undefined when the queue is full. */
  join(model: string): Place | undefined {
    if (this.#size >= this.#limit) return undefined;
    let line = this.#lines.get(model);
    if (!line) {
      const created: Line = new Line(
        this.#clock,
        () => {
          if (this.#lines.get(model) === created) this.#lines.delete(model);
        },
        () => this.#size--,
      );
      line = created;
      this.#lines.set(model, line);
    }
    const waiter: Waiter = { left: false };
    line.waiters.push(waiter);
    this.#size++;
    return new Place(line, waiter);
  }
}
