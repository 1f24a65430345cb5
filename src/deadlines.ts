/**
 * Deadlines for upstream calls that cost next to nothing per call. A timer and `AbortSignal.any`
 * for every send cost about as much as the rotator's own logic; here one timer serves every call
 * in flight, and a call is linked to its client's signal with one listener.
 *
 * Calls are filed in buckets of `GRANULARITY_MS` by when they expire, so a deadline fires at most
 * that much late. The timer runs only while some call is in flight: under load it is armed once
 * for many calls, and an idle process (or a test) is never kept alive by it.
 */

/** How late a deadline may fire, and so how coarse the buckets are. */
export const GRANULARITY_MS = 20;

/** One call's deadline: its signal aborts when the time is up or the client's signal aborts. */
export class Deadline {
  readonly #controller = new AbortController();
  readonly #client: AbortSignal | undefined;
  readonly #owner: Deadlines;
  #bucket: Set<Deadline> | undefined;
  #timedOut = false;

  constructor(owner: Deadlines, client: AbortSignal | undefined, bucket: Set<Deadline>) {
    this.#owner = owner;
    this.#bucket = bucket;
    bucket.add(this);
    if (client) {
      if (client.aborted) this.#controller.abort(client.reason);
      else {
        this.#client = client;
        client.addEventListener("abort", this);
      }
    }
  }

  /** The signal to pass to `fetch`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True when this deadline (not the client) ended the call. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** The client's signal aborted: so does the call (an EventListener object: no closure). */
  handleEvent(): void {
    this.#controller.abort(this.#client?.reason);
  }

  /** The time is up. */
  expire(): void {
    this.#bucket = undefined;
    this.#owner.ended();
    this.#timedOut = true;
    this.#controller.abort(new DOMException("upstream timeout", "TimeoutError"));
  }

  /** The call has its answer (or failed): the deadline no longer applies. */
  release(): void {
    if (this.#bucket) {
      this.#bucket.delete(this);
      this.#bucket = undefined;
      this.#owner.ended();
    }
    this.#client?.removeEventListener("abort", this);
  }
}

/** Every deadline of one timeout length; `start` one per upstream call and release it after. */
export class Deadlines {
  /** Buckets by expiry, in insertion order, which is expiry order (one timeout for all). */
  readonly #buckets = new Map<number, Set<Deadline>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = 0;

  constructor(readonly timeoutMs: number, readonly now: () => number = () => performance.now()) {}

  /** A deadline `timeoutMs` from now, linked to the client's signal. */
  start(client?: AbortSignal): Deadline {
    const slot = Math.ceil((this.now() + this.timeoutMs) / GRANULARITY_MS);
    let bucket = this.#buckets.get(slot);
    if (!bucket) {
      bucket = new Set();
      this.#buckets.set(slot, bucket);
    }
    const deadline = new Deadline(this, client, bucket);
    this.#pending++;
    this.#timer ??= setTimeout(this.#tick, this.timeoutMs + GRANULARITY_MS);
    return deadline;
  }

  /** Whether the timer is armed (only while calls are in flight). */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Calls in flight. */
  get pending(): number {
    return this.#pending;
  }

  /** A call ended (released or expired): with none left, the timer stops. */
  ended(): void {
    if (--this.#pending > 0) return;
    this.close();
    this.#buckets.clear();
  }

  /** Stops the timer (shutdown); calls still in flight are no longer timed. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Expires every bucket whose time has come, then sleeps until the next one with calls. */
  readonly #tick = () => {
    this.#timer = undefined;
    const now = this.now();
    for (const [slot, bucket] of this.#buckets) {
      if (bucket.size > 0 && slot * GRANULARITY_MS > now) {
        this.#timer = setTimeout(this.#tick, slot * GRANULARITY_MS - now);
        return;
      }
      this.#buckets.delete(slot);
      for (const deadline of bucket) deadline.expire();
    }
  };
}
