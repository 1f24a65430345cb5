/**
 * Turns what the proxy reports into the few things an operator must be told: a key (or a whole
 * project) was disabled, a model has no usable key left, and it has one again. Each is raised
 * once per episode however many requests hit it, then batched: the first alert waits
 * `debounceMs` for company, and two messages are at least `minIntervalMs` apart (what arrives
 * meanwhile is merged into the next one). A storm of 429s thus sends one message, not hundreds.
 *
 * The proxy's events say "an attempt was rejected" and "this request got ALL_KEYS_COOLING"; the
 * why (reason, recovery time) is read from the pool, which holds the disablement or cooldown the
 * proxy recorded right after reporting the attempt (hence the microtask in `attempt`).
 *
 * Sending is someone else's job (`send`, fire and forget): nothing here can slow a request.
 */

import type { Clock } from "../clock.ts";
import type { AttemptEvent, ExhaustedEvent, ProxyObserver, RequestEvent } from "../events.ts";
import { describeError, type Logger } from "../log.ts";
import type { KeyPool } from "../pool.ts";
import type { CooldownWindow, DisableScope } from "../state/records.ts";

export interface KeyDisabledAlert {
  readonly kind: "key_disabled";
  readonly at: number;
  readonly scope: DisableScope;
  /** Key fingerprint, or project name for a project-wide disablement. */
  readonly id: string;
  /** The operator's label of the key, if it has one. */
  readonly label?: string;
  /** Fingerprints of the keys taken out (one for a key, all of a project's for a project). */
  readonly keyIds: readonly string[];
  readonly reason: string;
  /** Upstream HTTP status that caused it. */
  readonly status: number;
  /** When the key is tried again by itself; null: only an operator can bring it back. */
  readonly recheckAt: number | null;
}

export type ExhaustedReason = "ALL_KEYS_COOLING" | "ALL_KEYS_DISABLED" | "NO_KEYS";

export interface ModelExhaustedAlert {
  readonly kind: "model_exhausted";
  readonly at: number;
  readonly model: string;
  readonly reason: ExhaustedReason;
  /** Keys in the pool. */
  readonly keys: number;
  /** When the first key is due back; null when none will recover without an operator. */
  readonly recoversAt: number | null;
  /** The quota window that ran out, when the pool knows it. */
  readonly window?: CooldownWindow;
  /** Times the model ran dry in the period this alert covers (merged alerts). */
  readonly episodes: number;
}

export interface ModelRecoveredAlert {
  readonly kind: "model_recovered";
  readonly at: number;
  readonly model: string;
  /** When the model first ran dry in the period this alert covers. */
  readonly downSince: number;
  /** Times it ran dry in that period (0 when that was reported in an earlier message). */
  readonly episodes: number;
}

export type Alert = KeyDisabledAlert | ModelExhaustedAlert | ModelRecoveredAlert;

export interface AlertWatcherOptions {
  readonly pool: KeyPool;
  readonly clock: Clock;
  readonly log: Logger;
  readonly debounceMs: number;
  readonly minIntervalMs: number;
  /** Takes one batch to deliver; must return at once (queue it). */
  readonly send: (alerts: readonly Alert[], dropped: number) => void;
  /** Models tracked at once; more are ignored (model names come from clients). */
  readonly maxModels?: number;
  /** Alerts held for one message; more are counted as dropped. */
  readonly maxPending?: number;
}

interface ModelState {
  since: number;
  recoversAt: number | null;
}

const EXHAUSTED_REASONS = new Set<string>(["ALL_KEYS_COOLING", "ALL_KEYS_DISABLED", "NO_KEYS"]);

export class AlertWatcher implements ProxyObserver {
  readonly #o: AlertWatcherOptions;
  readonly #maxModels: number;
  readonly #maxPending: number;
  /** Models with no usable key, as last seen. */
  readonly #exhausted = new Map<string, ModelState>();
  /** Disablements already reported: `scope:id` -> its `since`. */
  readonly #reported = new Map<string, number>();
  #pending: Alert[] = [];
  #dropped = 0;
  #firstPendingAt = 0;
  #lastSentAt = -Infinity;
  #timer: { at: number; abort: AbortController } | undefined;
  #closed = false;

  constructor(options: AlertWatcherOptions) {
    this.#o = options;
    this.#maxModels = options.maxModels ?? 50;
    this.#maxPending = options.maxPending ?? 100;
  }

  attempt(event: AttemptEvent): void {
    if (event.result === "key_rejected" || event.result === "project_exhausted") {
      // The proxy records the disablement right after reporting the attempt, in the same
      // synchronous run: a microtask later the pool holds it, with its reason.
      queueMicrotask(() => this.#safely(() => this.#keyRejected(event)));
    } else if (
      event.result === "ok" && this.#exhausted.has(event.model) && this.#o.pool.key(event.keyId)
    ) {
      // A Gemini key answered (a fallback provider's answer is not the pool recovering).
      this.#recovered(event.model, this.#o.clock.now());
    }
  }

  /** The pool ran dry for a model, even if a substitute model or provider then answered. */
  exhausted(event: ExhaustedEvent): void {
    this.#safely(() => this.#modelExhausted(event.model, event.reason));
  }

  request(event: RequestEvent): void {
    if (event.answeredBy === "rotator" && event.reason && EXHAUSTED_REASONS.has(event.reason)) {
      this.#safely(() => this.#modelExhausted(event.model, event.reason as ExhaustedReason));
    }
  }

  /** Stops the timer; pending alerts are dropped (shutdown, tests). */
  close(): void {
    this.#closed = true;
    this.#timer?.abort.abort();
    this.#timer = undefined;
  }

  /** Models currently out of keys (for tests and the status page). */
  exhaustedModels(): string[] {
    return [...this.#exhausted.keys()];
  }

  #keyRejected(event: AttemptEvent): void {
    const pool = this.#o.pool;
    const record = pool.disablement("key", event.keyId) ??
      pool.disablement("project", event.project);
    // A spending cap cools the project instead (and shows up as the model running dry).
    if (!record && event.result !== "key_rejected") return;
    const now = this.#o.clock.now();
    const scope = record?.scope ?? "key";
    const id = record?.id ?? event.keyId;
    const since = record?.since ?? now;
    const reportedKey = `${scope}:${id}`;
    if (this.#reported.get(reportedKey) === since) return;
    this.#reported.set(reportedKey, since);
    const keyIds = scope === "key"
      ? [id]
      : pool.keys.filter((key) => key.project === id).map((key) => key.id);
    const label = scope === "key" ? pool.key(id)?.label : undefined;
    this.#raise({
      kind: "key_disabled",
      at: now,
      scope,
      id,
      ...(label ? { label } : {}),
      keyIds,
      reason: record?.reason ?? "KEY_REJECTED",
      status: record?.status ?? event.status,
      recheckAt: record ? record.recheckAt : null,
    });
  }

  #modelExhausted(model: string, reason: ExhaustedReason): void {
    const now = this.#o.clock.now();
    const recovery = this.#o.pool.nextRecovery(model, now);
    const recoversAt = recovery && recovery.at !== Infinity ? recovery.at : null;
    const known = this.#exhausted.get(model);
    if (known) {
      known.recoversAt = recoversAt;
      this.#schedule();
      return;
    }
    if (this.#exhausted.size >= this.#maxModels) return;
    this.#exhausted.set(model, { since: now, recoversAt });
    const cause = recovery?.cause;
    this.#raise({
      kind: "model_exhausted",
      at: now,
      model,
      reason,
      keys: this.#o.pool.size,
      recoversAt,
      ...(cause && "window" in cause ? { window: cause.window } : {}),
      episodes: 1,
    });
  }

  #recovered(model: string, now: number): void {
    const state = this.#exhausted.get(model);
    if (!state) return;
    this.#exhausted.delete(model);
    this.#raise({ kind: "model_recovered", at: now, model, downSince: state.since, episodes: 0 });
  }

  /** Models whose recovery time has come: ask the pool whether a key is really back. */
  #pollRecoveries(now: number): void {
    for (const [model, state] of this.#exhausted) {
      if (state.recoversAt === null || state.recoversAt > now) continue;
      const recovery = this.#o.pool.nextRecovery(model, now);
      if (recovery && recovery.at <= now) this.#recovered(model, now);
      else state.recoversAt = recovery && recovery.at !== Infinity ? recovery.at : null;
    }
  }

  #raise(alert: Alert): void {
    if (this.#closed) return;
    if (this.#pending.length >= this.#maxPending) {
      this.#dropped++;
      return;
    }
    if (this.#pending.length === 0) this.#firstPendingAt = alert.at;
    this.#pending.push(alert);
    this.#schedule();
  }

  #flushAt(): number | undefined {
    if (this.#pending.length === 0) return undefined;
    return Math.max(
      this.#firstPendingAt + this.#o.debounceMs,
      this.#lastSentAt + this.#o.minIntervalMs,
    );
  }

  #nextWake(): number | undefined {
    let at = this.#flushAt();
    for (const state of this.#exhausted.values()) {
      if (state.recoversAt !== null && (at === undefined || state.recoversAt < at)) {
        at = state.recoversAt;
      }
    }
    return at;
  }

  /** Keeps one timer, set for the earliest of: the batch is due, a model is due back. */
  #schedule(): void {
    if (this.#closed) return;
    const at = this.#nextWake();
    if (at === undefined || (this.#timer && this.#timer.at <= at)) return;
    this.#timer?.abort.abort();
    const abort = new AbortController();
    const timer = { at, abort };
    this.#timer = timer;
    this.#o.clock.sleep(Math.max(0, at - this.#o.clock.now()), abort.signal).then(
      () => {
        if (this.#timer !== timer) return;
        this.#timer = undefined;
        this.#safely(() => this.#tick());
      },
      () => {/* replaced by an earlier wake, or closed */},
    );
  }

  #tick(): void {
    const now = this.#o.clock.now();
    this.#pollRecoveries(now);
    const due = this.#flushAt();
    if (due !== undefined && due <= now) {
      const alerts = mergeAlerts(this.#pending);
      const dropped = this.#dropped;
      this.#pending = [];
      this.#dropped = 0;
      this.#lastSentAt = now;
      this.#o.send(alerts, dropped);
    }
    this.#schedule();
  }

  #safely(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#o.log.error("alert watcher failed", { error: describeError(error) });
    }
  }
}

/**
 * One alert per subject and batch: a model that ran dry and came back (maybe several times)
 * within one batch becomes a single alert saying so; its latest state wins.
 */
export function mergeAlerts(alerts: readonly Alert[]): Alert[] {
  const out: Alert[] = [];
  /** Per model: its index in `out` and when the period the batch covers began. */
  const byModel = new Map<string, { index: number; since: number }>();
  for (const alert of alerts) {
    if (alert.kind === "key_disabled") {
      out.push(alert);
      continue;
    }
    const known = byModel.get(alert.model);
    if (known === undefined) {
      const since = alert.kind === "model_exhausted" ? alert.at : alert.downSince;
      byModel.set(alert.model, { index: out.length, since });
      out.push(alert);
      continue;
    }
    const previous = out[known.index] as ModelExhaustedAlert | ModelRecoveredAlert;
    const episodes = previous.episodes + (alert.kind === "model_exhausted" ? 1 : 0);
    out[known.index] = alert.kind === "model_exhausted"
      ? { ...alert, episodes }
      : { ...alert, downSince: known.since, episodes };
  }
  return out;
}
