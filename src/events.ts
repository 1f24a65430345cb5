/**
 * What the proxy reports about its work, for whoever watches (request log, metrics, alerts):
 * observers are plain objects passed in, so the proxy knows nothing of what they do.
 */

import type { Outcome } from "./classify.ts";
import type { RelayEnd } from "./relay.ts";
import type { RouteKind } from "./route.ts";

/** How one upstream attempt went. */
export type AttemptResult = Outcome["kind"] | "network_error" | "timeout";

export interface AttemptEvent {
  readonly keyId: string;
  readonly project: string;
  readonly model: string;
  readonly route: RouteKind;
  /** Upstream HTTP status, 0 when none arrived. */
  readonly status: number;
  readonly result: AttemptResult;
  /** Time to the upstream's response headers. */
  readonly latencyMs: number;
}

/** One client request, reported once when its answer has been fully sent (or abandoned). */
export interface RequestEvent {
  readonly method: string;
  readonly path: string;
  readonly route: RouteKind;
  readonly model: string;
  /** The status the client received. */
  readonly status: number;
  readonly attempts: number;
  readonly keyIds: readonly string[];
  /** Who answered: an upstream key (`upstream`) or the rotator itself (`rotator`). */
  readonly answeredBy: "upstream" | "rotator";
  /** Machine reason for answers of our own (e.g. `ALL_KEYS_COOLING`). */
  readonly reason?: string;
  readonly upstreamMs?: number;
  readonly firstByteMs?: number;
  readonly durationMs: number;
  readonly end: RelayEnd | "answered";
  /** The fallback provider that answered, when not Gemini. */
  readonly provider?: string;
  /** The model the client asked for, when a substitute (MODEL_FALLBACKS) answered as `model`. */
  readonly requestedModel?: string;
}

/**
 * Every Gemini key is spent for a model (after any wait), whatever answers next: a substitute
 * model, another provider, or the rotator's own 429/503.
 */
export interface ExhaustedEvent {
  readonly model: string;
  /** ALL_KEYS_COOLING: some key recovers by itself; ALL_KEYS_DISABLED: none will. */
  readonly reason: "ALL_KEYS_COOLING" | "ALL_KEYS_DISABLED";
}

/** A request started waiting for a key to recover (the line's length after it joined). */
export interface WaitEvent {
  readonly model: string;
  readonly waiting: number;
  /** When the first key is expected back. */
  readonly until: number;
}

export interface ProxyObserver {
  attempt?(event: AttemptEvent): void;
  request?(event: RequestEvent): void;
  waiting?(event: WaitEvent): void;
  exhausted?(event: ExhaustedEvent): void;
}
