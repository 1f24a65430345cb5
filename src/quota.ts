/**
 * Pacing: what each (project, model) bucket may still take before Google refuses it, so the
 * rotator stops sending a bucket its known limit instead of learning it from a 429 each window.
 *
 * Limits are declared by the operator (QUOTA_LIMITS) or learned from Google's own 429s: the
 * QuotaFailure's `quotaValue` is the limit, and RetryInfo says when the window resets
 * (https://ai.google.dev/gemini-api/docs/rate-limits; ../shared/gemini-api-facts.md §4). A
 * per-day window ends at midnight Pacific; a shorter window's length is declared, or learned as
 * the distance between two resets Google announced.
 *
 * Counting uses a sliding window: at most `limit` sends (or tokens) in any span of the window's
 * length. That never exceeds a fixed window of Google's, whatever its phase. Once a 429 has named
 * a reset and the window's length is known, Google's fixed windows are anchored there and each is
 * filled to the limit (with a guard for sends near a boundary), so a bucket is used again as soon
 * as Google's window resets. Sends are counted when they leave (in flight), so concurrent requests
 * cannot overshoot. Pure: time is passed in.
 */

import type { Outcome } from "./classify.ts";
import { nextPacificMidnight } from "./cooldown.ts";
import type { QuotaReservation } from "./state/quota_counter.ts";
import { Dimension, type Send } from "./quota_dimension.ts";
import { Probation, PROBATION_RECHECK_MS } from "./quota_probation.ts";

export type QuotaUnit = "requests" | "tokens";
/** A window in ms, or the Pacific calendar day. */
export type QuotaWindow = number | "day";

/** A limit on one dimension of a bucket. */
export interface QuotaRule {
  readonly model: string;
  /** The project it applies to; undefined for every project. */
  readonly project?: string;
  readonly unit: QuotaUnit;
  readonly limit: number;
  /** Undefined while a learned minute window's length is still unknown. */
  readonly window?: QuotaWindow;
  readonly source: "declared" | "learned";
  readonly quotaId?: string;
  readonly learnedAt?: number;
}

/** Learned limits are trusted this long without a new 429; then the rotator relearns. */
export const LEARNED_RULE_TTL_MS = 24 * 3_600_000;

const NONE: Dimension[] = [];

/**
 * Which quota of a bucket a learned rule is: its unit and the quota Google named (its id, or the
 * window's kind). Also what names the rule where instances share it.
 */
function quotaKindOf(unit: QuotaUnit, kind: "minute" | "day", quotaId?: string): string {
  return `${unit}:${quotaId ?? kind}`;
}

/** The same for a rule as stored. */
export function ruleKindOf(rule: QuotaRule): string {
  return quotaKindOf(rule.unit, rule.window === "day" ? "day" : "minute", rule.quotaId);
}
const NONE_RULES: QuotaRule[] = [];

/** Which learned window lengths are one: a quota (its id, or the model) and its unit and kind. */
function windowKeyOf(quota: string, unit: QuotaUnit, kind: "minute" | "day"): string {
  return `${quota}:${unit}:${kind}`;
}

/** One limit of one bucket as this instance applies it (the admin API's view). */
export interface LimitInForce {
  readonly project: string;
  readonly rule: QuotaRule;
  /** Sent in the current window by this instance: requests, or input tokens. */
  readonly used: number;
  /**
   * How sends are counted: in Google's fixed windows (anchored at a reset a 429 announced), in a
   * sliding window (the phase unknown), per Pacific day, or not yet (a learned limit whose window
   * length is still being learned).
   */
  readonly counting: "fixed" | "sliding" | "pacific-day" | "window-unknown";
  /** When one more request (or token) fits; absent: it fits now. */
  readonly roomAt?: number;
  /** Google said the bucket is spent until then. */
  readonly fullUntil?: number;
  /** The declared limit that a limit Google stated replaced. */
  readonly replaced?: QuotaRule;
}

/** A send counted against a bucket, to correct its token count once the answer says it. */
export interface Ticket {
  readonly sends: readonly { dimension: Dimension; send: Send }[];
}

export class QuotaLedger {
  readonly #declared: readonly QuotaRule[];
  /** project -> model -> unit:window-kind -> dimension */
  readonly #buckets = new Map<string, Map<string, Map<string, Dimension>>>();
  /**
   * Window lengths learned per quota (its id, or model and kind): the length of a quota's window
   * is the same for every project, so one project's two resets teach all of them. Limits are not
   * shared: projects on different tiers have different ones.
   */
  readonly #windows = new Map<string, number>();
  /**
   * The learned quotas (kind keys) each model has met in any project: a bucket that has not met
   * one of them yet is likely to, so it is not paced as if its room were known.
   */
  readonly #kindsMet = new Map<string, Set<string>>();
  /**
   * Bumped when a hold may end sooner than announced (a window's length learned, a stale rule
   * dropped), so the pool looks at held buckets again instead of waiting out the old time.
   */
  version = 0;
  /** One request at a time for buckets a model's quota is about to bind; off: undefined. */
  readonly #probation: Probation | undefined;

  /**
   * `probation`: hold a bucket whose limit is about to bind to one request at a time (see
   * quota_probation.ts). Only worth it where requests can wait for capacity: without waiting, a
   * held request would get the rotator's 429 instead of Google's.
   */
  constructor(declared: readonly QuotaRule[] = [], options: { probation?: boolean } = {}) {
    this.#declared = declared;
    this.#probation = options.probation ? new Probation() : undefined;
  }

  /** A request leaves for (project, model): counted in flight until `answered`. */
  sending(project: string, model: string): void {
    this.#probation?.sending(project, model);
  }

  /** The answer (its status line) of a request `sending` counted has come. */
  answered(project: string, model: string, ok: boolean, now: number): void {
    // A held bucket is free again: the pool looks at it now, not at the recheck time.
    if (this.#probation?.answered(project, model, ok, now)) this.version++;
  }

  /** Whether any limit is known at all (pacing costs nothing when none is). */
  get active(): boolean {
    return this.#declared.length > 0 || this.#buckets.size > 0;
  }

  /**
   * Whether (project, model)'s room is counted, not guessed: it has a declared limit, or it has
   * learned limits and among them every quota this model has met in other projects. (A bucket
   * that has not yet met a quota the others have, such as a longer window, is about to: requests
   * sent to it together would all be refused at once.)
   */
  paces(project: string, model: string): boolean {
    if (this.#declaredFor(project, model).length > 0) return true;
    const byKind = this.#buckets.get(project)?.get(model);
    if (byKind === undefined || byKind.size === 0) return false;
    for (const kindKey of this.#kindsMet.get(model) ?? []) if (!byKind.has(kindKey)) return false;
    return true;
  }

  /** When (project, model) can take a request of `tokens` input tokens; undefined: now. */
  blockedUntil(project: string, model: string, now: number, tokens = 0): number | undefined {
    // Dimensions first: dropping a stale one can change what `paces` says.
    const dimensions = this.#dimensions(project, model, now);
    let until: number | undefined = this.#probation?.holds(project, model) &&
        !this.paces(project, model)
      ? now + PROBATION_RECHECK_MS
      : undefined;
    for (const dimension of dimensions) {
      const amount = dimension.rule.unit === "tokens" ? tokens : 1;
      const at = dimension.blockedUntil(now, amount);
      if (at !== undefined && (until === undefined || at > until)) until = at;
    }
    return until;
  }

  /** Counts a request as sent (before its answer: in flight counts). */
  record(project: string, model: string, now: number, tokens = 0): Ticket {
    const sends = [];
    for (const dimension of this.#dimensions(project, model, now)) {
      const amount = dimension.rule.unit === "tokens" ? tokens : 1;
      sends.push({ dimension, send: dimension.record(now, amount) });
    }
    return { sends };
  }

  /** Replaces a request's estimated token count with what the answer reported. */
  settleTokens(ticket: Ticket, promptTokens: number): void {
    for (const { dimension, send } of ticket.sends) {
      if (dimension.rule.unit === "tokens") dimension.adjust(send, promptTokens);
    }
  }

  /**
   * Learns from a 429: the limit Google states, the window it names, and when it resets. The
   * bucket is full until then; the gap between two announced resets is the window's length, and
   * once that is known the reset anchors the bucket's fixed windows. `sentAt` is when the
   * refused request left (`now`, when it arrived).
   */
  learn(
    project: string,
    model: string,
    outcome: Extract<Outcome, { kind: "quota" }>,
    now: number,
    sentAt = now,
  ): QuotaRule | undefined {
    if (outcome.window === "unknown") return undefined;
    const unit: QuotaUnit = outcome.unit ?? "requests";
    this.#dimensions(project, model, now); // declared dimensions exist before matching them
    const byKind = this.#byKind(project, model);
    const kindKey = `l:${quotaKindOf(unit, outcome.window, outcome.quotaId)}`;
    let dimension = byKind.get(kindKey);
    const reset = outcome.window === "day"
      ? nextPacificMidnight(now)
      : now + (outcome.retryDelayMs ?? 60_000);
    if (!dimension) {
      // The declared limit this quota is: the only one of its unit and kind, or the one whose
      // limit Google states. Otherwise it is a limit of its own, kept beside the declared ones.
      const candidates = [...byKind.entries()].filter(([key, d]) =>
        key.startsWith("d:") && d.rule.unit === unit &&
        (d.rule.window === "day") === (outcome.window === "day")
      ).map(([, d]) => d);
      dimension = candidates.length === 1
        ? candidates[0]
        : candidates.find((d) => d.rule.limit === outcome.limit);
      if (!dimension) {
        dimension = new Dimension({
          model,
          project,
          unit,
          limit: outcome.limit ?? Number.MAX_SAFE_INTEGER,
          window: outcome.window === "day" ? "day" : undefined,
          source: "learned",
          learnedAt: now,
          ...(outcome.quotaId ? { quotaId: outcome.quotaId } : {}),
        });
        byKind.set(kindKey, dimension);
        this.#met(model, kindKey, now);
      }
    }
    const windowKey = windowKeyOf(outcome.quotaId ?? model, unit, outcome.window);
    let window = dimension.rule.window ?? this.#windows.get(windowKey);
    if (outcome.window === "minute" && dimension.lastReset !== undefined) {
      const gap = reset - dimension.lastReset;
      // Two resets bound the window; the smallest gap seen is its length (idle windows skip).
      if (gap > 500 && (window === undefined || window === "day" || gap < window * 0.95)) {
        window = Math.round(gap / 100) * 100;
      }
    }
    if (window !== dimension.rule.window) this.version++;
    if (typeof window === "number" && dimension.rule.source === "learned") {
      this.#windows.set(windowKey, window);
      this.#adoptWindow(windowKey, window);
    }
    if (dimension.rule.source === "learned" || outcome.limit !== undefined) {
      dimension.rule = {
        ...dimension.rule,
        ...(outcome.limit !== undefined ? { limit: outcome.limit } : {}),
        window,
        learnedAt: now,
        ...(dimension.rule.source === "declared" && outcome.limit !== dimension.rule.limit
          ? { source: "learned" as const, ...(outcome.quotaId ? { quotaId: outcome.quotaId } : {}) }
          : {}),
      };
    }
    dimension.lastReset = reset;
    dimension.fullUntil = Math.max(dimension.fullUntil, reset);
    if (outcome.window === "minute" && outcome.retryDelayMs !== undefined) {
      // RetryInfo counts from when Google refused, between the send and the answer; a delay in
      // whole seconds may be rounded either way.
      const precision = outcome.retryDelayMs % 1000 === 0 ? 1000 : 1;
      const announced = {
        earliest: Math.min(sentAt, now) + outcome.retryDelayMs - precision,
        latest: now + outcome.retryDelayMs + precision,
        roundTrip: Math.max(0, now - sentAt),
      };
      if (dimension.announce(announced)) this.version++;
    }
    return dimension.rule.source === "learned" ? dimension.rule : undefined;
  }

  /** Gives a newly learned window length to every learned dimension of the same quota. */
  #adoptWindow(windowKey: string, window: number): void {
    for (const byModel of this.#buckets.values()) {
      for (const [model, byKind] of byModel) {
        for (const dimension of byKind.values()) {
          const { rule } = dimension;
          if (rule.source !== "learned" || rule.window !== undefined) continue;
          if (windowKeyOf(rule.quotaId ?? model, rule.unit, "minute") !== windowKey) continue;
          dimension.rule = { ...rule, window };
          dimension.anchorAtAnnounced();
          this.version++;
        }
      }
    }
  }

  /**
   * The dimensions of (project, model) whose window is known, as shared-counter reservations
   * for one send of `tokens` input tokens.
   */
  reservations(project: string, model: string, tokens = 0): QuotaReservation[] {
    const out: QuotaReservation[] = [];
    const byKind = this.#buckets.get(project)?.get(model);
    if (!byKind) return out;
    for (const [kindKey, dimension] of byKind) {
      const { rule } = dimension;
      if (rule.window === undefined) continue;
      out.push({
        bucket: `${project}\u0000${model}\u0000${kindKey}`,
        limit: rule.limit,
        window: rule.window,
        amount: rule.unit === "tokens" ? tokens : 1,
      });
    }
    return out;
  }

  /** Another instance's reservation was refused: hold (project, model) until `until`. */
  hold(project: string, model: string, until: number): void {
    for (const dimension of this.#buckets.get(project)?.get(model)?.values() ?? []) {
      dimension.fullUntil = Math.max(dimension.fullUntil, until);
    }
  }

  /**
   * An operator cleared cooldowns: lifts the "spent until the reset" holds of the matching
   * buckets, so the next request tries them and Google decides again. Counts and learned limits
   * stay. Returns how many holds were lifted.
   */
  release(filter: { project?: string; model?: string }): number {
    let released = 0;
    for (const [project, byModel] of this.#buckets) {
      if (filter.project !== undefined && filter.project !== project) continue;
      for (const [model, byKind] of byModel) {
        if (filter.model !== undefined && filter.model !== model) continue;
        for (const dimension of byKind.values()) {
          if (dimension.fullUntil === 0) continue;
          dimension.fullUntil = 0;
          released++;
        }
      }
    }
    if (released > 0) this.version++;
    return released;
  }

  /** Adopts limits other instances learned (where this one knows less). */
  adopt(project: string, model: string, rule: QuotaRule): void {
    const kindKey = `l:${ruleKindOf(rule)}`;
    const byKind = this.#byKind(project, model);
    const dimension = byKind.get(kindKey);
    if (!dimension) {
      byKind.set(kindKey, new Dimension(rule));
      this.#met(model, kindKey, rule.learnedAt ?? 0);
      this.version++;
    } else if (dimension.rule.source === "learned" && dimension.rule.window === undefined) {
      dimension.rule = { ...dimension.rule, ...rule };
      this.version++;
    }
  }

  /** Notes that `model` has met the learned quota `kindKey` in a project, for the first time. */
  #met(model: string, kindKey: string, now: number): void {
    let met = this.#kindsMet.get(model);
    if (!met) this.#kindsMet.set(model, met = new Set());
    met.add(kindKey);
    this.#probation?.met(model, now);
  }

  /** Every limit in force, declared and learned, per bucket this instance has sent to. */
  rules(now: number): LimitInForce[] {
    const out: LimitInForce[] = [];
    for (const [project, byModel] of this.#buckets) {
      for (const [model, byKind] of byModel) {
        for (const [kindKey, dimension] of byKind) {
          const { rule } = dimension;
          if (this.#stale(dimension, now)) continue; // dropped at the bucket's next request
          const room = dimension.blockedUntil(now, 1);
          const replaced = kindKey.startsWith("d:") && rule.source === "learned"
            ? this.#declaredFor(project, model).find((d) => `d:${d.unit}:${d.window}` === kindKey)
            : undefined;
          out.push({
            project,
            rule,
            used: dimension.used,
            counting: rule.window === undefined
              ? "window-unknown"
              : rule.window === "day"
              ? "pacific-day"
              : dimension.anchor !== undefined && dimension.fixed
              ? "fixed"
              : "sliding",
            ...(room !== undefined ? { roomAt: room } : {}),
            ...(dimension.fullUntil > now ? { fullUntil: dimension.fullUntil } : {}),
            ...(replaced ? { replaced } : {}),
          });
        }
      }
    }
    return out;
  }

  /** A learned limit not confirmed for a day, and not holding the bucket: relearned, not used. */
  #stale(dimension: Dimension, now: number): boolean {
    const { rule } = dimension;
    return rule.source === "learned" && rule.learnedAt !== undefined &&
      now - rule.learnedAt > LEARNED_RULE_TTL_MS && now >= dimension.fullUntil;
  }

  /** The dimensions that apply, creating declared ones on first use; drops stale learned ones. */
  #dimensions(project: string, model: string, now: number): Dimension[] {
    const declared = this.#declaredFor(project, model);
    let byKind = this.#buckets.get(project)?.get(model);
    if (!byKind) {
      if (declared.length === 0) return NONE;
      byKind = this.#byKind(project, model);
    }
    for (const rule of declared) {
      const kindKey = `d:${rule.unit}:${rule.window}`;
      if (!byKind.has(kindKey)) byKind.set(kindKey, new Dimension(rule));
    }
    for (const [kindKey, dimension] of byKind) {
      if (this.#stale(dimension, now)) {
        byKind.delete(kindKey); // stale (a new day, maybe a new tier): react and relearn
        this.version++;
      }
    }
    return [...byKind.values()];
  }

  #byKind(project: string, model: string): Map<string, Dimension> {
    let byModel = this.#buckets.get(project);
    if (!byModel) this.#buckets.set(project, byModel = new Map());
    let byKind = byModel.get(model);
    if (!byKind) byModel.set(model, byKind = new Map());
    return byKind;
  }

  #declaredFor(project: string, model: string): readonly QuotaRule[] {
    if (this.#declared.length === 0) return NONE_RULES;
    return this.#declared.filter((rule) =>
      rule.model === model && (rule.project === undefined || rule.project === project)
    );
  }
}
