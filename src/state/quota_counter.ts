/**
 * Where instances agree on how much of a bucket's window has been sent, so that several
 * instances pacing to one limit do not each send the whole limit. The local ledger (quota.ts)
 * decides first, for free; a shared counter is then asked to reserve the send for real.
 *
 * The memory counter is for one process (the local ledger is already exact there). The KV
 * counter (kv_quota_counter.ts) keeps each bucket's sliding window of send times in one entry
 * and reserves with an atomic check-and-set, so no instance over-sends.
 */

import type { QuotaRule, QuotaWindow } from "../quota.ts";

/** A learned rule as shared between instances. */
export interface SharedRule {
  readonly project: string;
  readonly model: string;
  readonly rule: QuotaRule;
}

export interface QuotaReservation {
  /** The bucket dimension, e.g. `project\0model\0requests:minute`. */
  readonly bucket: string;
  readonly limit: number;
  readonly window: QuotaWindow;
  readonly amount: number;
}

export type ReserveResult =
  | { readonly ok: true }
  /** The shared window is full: room returns at `until`. */
  | { readonly ok: false; readonly until: number };

export interface QuotaCounter {
  /** Whether reservations are shared with other instances (else reserve is not called). */
  readonly shared: boolean;
  /** Reserves every dimension of one send, all or none. */
  reserve(reservations: readonly QuotaReservation[], now: number): Promise<ReserveResult>;
  /** Tells other instances a limit this one learned. */
  saveRule(shared: SharedRule): Promise<void>;
  /** The limits instances have learned. */
  loadRules(): Promise<SharedRule[]>;
}

/** One process: the local ledger is exact, nothing to share. */
export const localQuotaCounter: QuotaCounter = {
  shared: false,
  reserve: () => Promise.resolve({ ok: true }),
  saveRule: () => Promise.resolve(),
  loadRules: () => Promise.resolve([]),
};
