/**
 * What the scripted mocks share: behaviours per key (used one per request, the last repeating,
 * with a default for unscripted keys) and one-shot waiters for "the next request" and "the next
 * cancellation", so tests wait on events instead of sleeping.
 */

export class BehaviorScript<B> {
  readonly #scripts = new Map<string, B[]>();
  #fallback: B;

  constructor(fallback: B) {
    this.#fallback = fallback;
  }

  /** Behaviours for `key`, used one per request; the last one repeats. */
  script(key: string, ...behaviors: B[]): void {
    this.#scripts.set(key, [...behaviors]);
  }

  /** The behaviour for keys without a script. */
  setDefault(behavior: B): void {
    this.#fallback = behavior;
  }

  /** The behaviour for the next request carrying `key`. */
  next(key: string | undefined): B {
    const queue = key !== undefined ? this.#scripts.get(key) : undefined;
    if (!queue || queue.length === 0) return this.#fallback;
    return queue.length > 1 ? queue.shift()! : queue[0];
  }
}

/** Promises that settle on the next occurrence of an event. */
export class Waiters<T = void> {
  #waiting: ((value: T) => void)[] = [];

  next(): Promise<T> {
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  notify(value: T): void {
    this.#waiting.splice(0).forEach((resolve) => resolve(value));
  }
}
