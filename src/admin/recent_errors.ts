/**
 * The last failures with their reasons, for the status page (`GET /admin/api/errors?limit=50`):
 * upstream attempts that did not succeed (which key, which model, what Google said) and answers
 * the rotator gave itself (no key left, bad token...). A fixed-size ring in this instance's
 * memory; it starts empty after a restart.
 */

import { methodNotAllowed } from "./answer.ts";
import type { AdminModule } from "./dispatch.ts";
import { invalidArgument, jsonResponse } from "./json.ts";
import type { AttemptEvent, AttemptResult, ProxyObserver, RequestEvent } from "../events.ts";
import type { KeyPool } from "../pool.ts";
import { ALL_MODELS } from "../state/records.ts";

export interface ErrorEntry {
  readonly at: number;
  /** Fingerprint of the key used, null for answers of the rotator's own. */
  readonly keyId: string | null;
  readonly model: string;
  /** Status of the upstream answer (0: none arrived) or of the rotator's answer. */
  readonly status: number;
  /** Outcome class of an upstream attempt, or "rotator". */
  readonly result: AttemptResult | "rotator";
  /** The most specific reason known: Google's ErrorInfo reason, the quota id, ours. */
  reason: string;
}

const CAPACITY = 200;
const MAX_MODEL_LENGTH = 100;

export class RecentErrors implements ProxyObserver {
  readonly #pool: KeyPool;
  readonly #now: () => number;
  readonly #ring: (ErrorEntry | undefined)[] = new Array(CAPACITY);
  #next = 0;

  constructor(pool: KeyPool, now: () => number) {
    this.#pool = pool;
    this.#now = now;
  }

  attempt(event: AttemptEvent): void {
    if (event.result === "ok") return;
    const entry: ErrorEntry = {
      at: this.#now(),
      keyId: event.keyId,
      model: event.model.slice(0, MAX_MODEL_LENGTH),
      status: event.status,
      result: event.result,
      reason: event.result.toUpperCase(),
    };
    this.#push(entry);
    // The proxy records what the answer meant (a cooldown with its quota id, a disablement
    // with Google's reason) right after this event, in the same synchronous run.
    queueMicrotask(() => {
      const reason = this.#specificReason(event);
      if (reason) entry.reason = reason;
    });
  }

  request(event: RequestEvent): void {
    if (event.answeredBy !== "rotator" || event.status < 400) return;
    this.#push({
      at: this.#now(),
      keyId: null,
      model: event.model.slice(0, MAX_MODEL_LENGTH),
      status: event.status,
      result: "rotator",
      reason: event.reason ?? "ROTATOR",
    });
  }

  /** Newest first, at most `limit`. */
  latest(limit: number): ErrorEntry[] {
    const out: ErrorEntry[] = [];
    for (let i = 1; i <= CAPACITY && out.length < limit; i++) {
      const entry = this.#ring[(this.#next - i + CAPACITY) % CAPACITY];
      if (!entry) break;
      out.push(entry);
    }
    return out;
  }

  #push(entry: ErrorEntry): void {
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % CAPACITY;
  }

  #specificReason(event: AttemptEvent): string | undefined {
    const pool = this.#pool;
    switch (event.result) {
      case "key_rejected":
        return (pool.disablement("key", event.keyId) ??
          pool.disablement("project", event.project))?.reason;
      case "quota":
      case "no_allowance":
      case "project_exhausted": {
        const disabled = pool.disablement("project", event.project);
        if (event.result === "project_exhausted" && disabled) return disabled.reason;
        const running = pool.cooldownsOf(event.project, this.#now());
        const cooldown = running.find((c) => c.model === event.model) ??
          running.find((c) => c.model === ALL_MODELS);
        return cooldown ? `${cooldown.window.toUpperCase()}: ${cooldown.reason}` : undefined;
      }
      default:
        return undefined;
    }
  }
}

/** `GET /admin/api/errors?limit=N` (1 to 200, default 50). */
export function errorsRoute(errors: RecentErrors): AdminModule {
  return (request, url) => {
    if (url.pathname !== "/admin/api/errors") return Promise.resolve(undefined);
    if (request.method !== "GET") return methodNotAllowed(request, "GET", url.pathname);
    const raw = url.searchParams.get("limit") ?? "50";
    const limit = Number(raw);
    if (!/^\d+$/.test(raw) || limit < 1 || limit > CAPACITY) {
      return Promise.resolve(
        invalidArgument(
          `limit is ${JSON.stringify(raw.slice(0, 20))}: give a whole number from 1 to ${CAPACITY}`,
        ),
      );
    }
    return Promise.resolve(jsonResponse({
      errors: errors.latest(limit).map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    }));
  };
}
