/**
 * One dimension of one (project, model) bucket for pacing (./quota.ts): its rule, the sends
 * inside its window, and what Google announced about its resets. Counts in a sliding window until
 * a 429 has named a reset and the window's length is known; then in Google's fixed windows,
 * anchored at the latest the reset can be. Pure: time is passed in.
 */

import { nextPacificMidnight } from "./cooldown.ts";
import type { QuotaRule } from "./quota.ts";

/** The longest a per-minute window can be: the hold while its real length is being learned. */
const MINUTE_MS = 60_000;
/**
 * How far an announced reset may sit off the anchored grid beyond its margins (a window's length
 * is learned to the nearest 100 ms).
 */
const GRID_SLACK_MS = 50;
/** Longer than any Pacific day (23 to 25 hours): a midnight after `now - DAY_SPAN_MS` starts today. */
const DAY_SPAN_MS = 26 * 3_600_000;

export interface Send {
  at: number;
  amount: number;
}

/**
 * A reset Google announced: RetryInfo's delay, counted from somewhere between the send and the
 * answer, and only as precise as the delay (whole seconds, or finer).
 */
interface Announcement {
  /** The earliest and latest the reset can be. */
  readonly earliest: number;
  readonly latest: number;
  /** How long the refused request took there and back: no send takes longer to arrive. */
  readonly roundTrip: number;
}

/** One dimension of one bucket: its rule, what was sent in the window, what Google said. */
export class Dimension {
  rule: QuotaRule;
  /** Sends still inside the window, oldest first, from `#head` on (a queue without shifting). */
  readonly #sends: Send[] = [];
  #head = 0;
  /** Sum of the amounts of the sends inside the window. */
  used = 0;
  /** The last reset Google announced for this dimension (to learn a window's length). */
  lastReset?: number;
  /** When and how precisely Google announced it. */
  announced?: Announcement;
  /** Google said the bucket is spent until then. */
  fullUntil = 0;
  /**
   * A window boundary Google announced (the latest it can be), once the window's length is
   * known: Google's windows are then fixed, [anchor + k·window, anchor + (k+1)·window), and each
   * is filled to the limit instead of sliding. Undefined: the sliding window.
   */
  anchor?: number;
  /** A send this long before a boundary may still count in the window after it, at Google. */
  guard = 0;
  /** False once a reset Google announced fell off the anchored grid: its windows slide. */
  fixed = true;

  constructor(rule: QuotaRule) {
    this.rule = rule;
  }

  /** When `amount` more fits, or undefined when it fits now. */
  blockedUntil(now: number, amount: number): number | undefined {
    if (now < this.fullUntil) return this.fullUntil;
    const { window, limit } = this.rule;
    if (amount > limit) return undefined; // larger than the whole limit: let Google judge it
    this.expire(now);
    if (window === undefined) {
      // The window's length is unknown until a second reset is announced: after the limit, let
      // exactly one more request through to hear it (a probe), and hold the rest meanwhile. A
      // per-minute window ends within a minute of its start: that bound is never early.
      if (this.lastReset === undefined || this.used <= limit) return undefined;
      return this.lastReset + MINUTE_MS;
    }
    if (this.used + amount <= limit) return undefined;
    if (window === "day") return nextPacificMidnight(now);
    if (this.anchor !== undefined) {
      // Room returns when the next fixed window starts, holding what was sent in its guard.
      const next = this.#windowStart(now, window) + window;
      let carried = 0;
      for (let i = this.#sends.length - 1; i >= this.#head; i--) {
        if (this.#sends[i].at < next - this.guard) break;
        carried += this.#sends[i].amount;
      }
      return carried + amount <= limit ? next : next + window;
    }
    // Room returns when enough of the oldest sends leave the window.
    let excess = this.used + amount - limit;
    for (let i = this.#head; i < this.#sends.length; i++) {
      excess -= this.#sends[i].amount;
      if (excess <= 0) return this.#sends[i].at + window;
    }
    return now + window;
  }

  record(now: number, amount: number): Send {
    this.expire(now);
    const send = { at: now, amount };
    this.#sends.push(send);
    this.used += amount;
    return send;
  }

  /** Changes a recorded send's amount (the token count once the answer gives it). */
  adjust(send: Send, amount: number): void {
    if (this.#sends.indexOf(send, this.#head) !== -1) this.used += amount - send.amount;
    send.amount = amount;
  }

  /**
   * Google announced a reset: anchor the fixed windows there once the window's length is known.
   * A reset off the grid an earlier one set means these windows are not fixed (or the length is
   * wrong): the dimension slides from then on. Returns whether the anchoring changed.
   */
  announce(announcement: Announcement): boolean {
    this.announced = announcement;
    return this.anchorAtAnnounced();
  }

  /** Anchors at the last announced reset, if the window's length is known; see announce(). */
  anchorAtAnnounced(): boolean {
    const { window } = this.rule;
    const announced = this.announced;
    if (!announced || typeof window !== "number" || !this.fixed) return false;
    const spread = announced.latest - announced.earliest;
    if (this.anchor !== undefined) {
      const offset = (((announced.latest - this.anchor) % window) + window) % window;
      // Both boundaries are known within their spread: farther apart, they are not one grid.
      if (Math.min(offset, window - offset) > this.guard + spread + GRID_SLACK_MS) {
        this.fixed = false;
        this.anchor = undefined;
        return true;
      }
    }
    const changed = this.anchor === undefined;
    this.anchor = announced.latest;
    // A send arriving after Google's boundary counts in the next window: Google's boundary may
    // be `spread` before the anchor, and a send takes up to a round trip to arrive.
    this.guard = spread + announced.roundTrip;
    return changed;
  }

  /** The start of the fixed window `now` falls in. */
  #windowStart(now: number, window: number): number {
    const anchor = this.anchor!;
    return anchor + Math.floor((now - anchor) / window) * window;
  }

  /** Drops sends that left the window. */
  expire(now: number): void {
    const { window } = this.rule;
    const start = window === undefined
      // Until the window's length is known, the last reset Google announced starts the count.
      ? (this.lastReset !== undefined ? this.lastReset - 1 : Infinity)
      : window === "day"
      ? nextPacificMidnight(now - DAY_SPAN_MS)
      : this.anchor !== undefined
      ? this.#windowStart(now, window) - this.guard - 1
      : now - window;
    while (this.#head < this.#sends.length && this.#sends[this.#head].at <= start) {
      this.used -= this.#sends[this.#head++].amount;
    }
    if (this.#head > 64 && this.#head * 2 > this.#sends.length) {
      this.#sends.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
