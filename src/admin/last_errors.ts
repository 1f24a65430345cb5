/**
 * The last failed upstream answer of each key, as this instance saw it: an in-memory proxy
 * observer (each instance knows its own attempts; nothing is shared or kept over a restart).
 * A client's own mistake (a 400 for a bad request, a 404 model) is not the key's error.
 */

import type { AttemptEvent, ProxyObserver } from "../events.ts";

export interface LastError {
  /** Upstream HTTP status, 0 when none arrived. */
  readonly status: number;
  /** What the answer meant: `quota`, `key_rejected`, `transient`, `network_error`... */
  readonly reason: string;
  readonly at: number;
}

export class LastErrors implements ProxyObserver {
  readonly #byKey = new Map<string, LastError>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  attempt(event: AttemptEvent): void {
    if (event.result === "ok" || event.result === "client_error") return;
    this.note(event.keyId, event.status, event.result);
  }

  /** Records an error found another way (an operator's check). */
  note(keyId: string, status: number, reason: string): void {
    this.#byKey.set(keyId, { status, reason, at: this.#now() });
  }

  get(keyId: string): LastError | undefined {
    return this.#byKey.get(keyId);
  }
}
