/**
 * When a key or bucket may be used again, from an Outcome: the cooldown math, with time passed in.
 *
 * Per-minute quotas: wait RetryInfo's delay (60 s when absent).
 * Per-day quotas: reset at midnight Pacific time ("Requests per day (RPD) quotas reset at
 * midnight Pacific time", https://ai.google.dev/gemini-api/docs/rate-limits), whatever the
 * short free-tier retryDelay says.
 */

import type { Outcome } from "./classify.ts";
import type { Config } from "./config.ts";
import { ALL_MODELS, type CooldownRecord, type DisablementRecord } from "./state/records.ts";

/** What one upstream answer changes in the shared state. */
export type Effect =
  | { readonly type: "none" }
  | { readonly type: "cooldown"; readonly record: CooldownRecord }
  | { readonly type: "disable"; readonly record: DisablementRecord };

export type CooldownSettings = Pick<
  Config,
  | "minuteCooldownMs"
  | "unknownQuotaCooldownMs"
  | "noAllowanceCooldownMs"
  | "spendCapCooldownMs"
  | "disabledRecheckMs"
>;

export interface EffectContext {
  readonly keyId: string;
  readonly project: string;
  /** The model the request drew quota from ("" if none). */
  readonly model: string;
  readonly status: number;
  readonly now: number;
  readonly settings: CooldownSettings;
}

/** The state change an outcome calls for. */
export function effectOf(outcome: Outcome, ctx: EffectContext): Effect {
  const { now, settings, project, model, keyId } = ctx;
  const cooldown = (
    until: number,
    window: CooldownRecord["window"],
    reason: string,
    scope = model,
  ): Effect => ({
    type: "cooldown",
    record: { project, model: scope, until, window, reason, setAt: now, keyId },
  });

  switch (outcome.kind) {
    case "quota": {
      if (outcome.window === "day") {
        return cooldown(nextPacificMidnight(now), "day", outcome.quotaId ?? "PER_DAY");
      }
      if (outcome.window === "minute") {
        const delay = outcome.retryDelayMs ?? settings.minuteCooldownMs;
        return cooldown(now + Math.max(delay, 100), "minute", outcome.quotaId ?? "PER_MINUTE");
      }
      const delay = Math.max(outcome.retryDelayMs ?? 0, settings.unknownQuotaCooldownMs);
      return cooldown(now + delay, "unknown", "RESOURCE_EXHAUSTED");
    }
    case "no_allowance":
      return cooldown(now + settings.noAllowanceCooldownMs, "no_allowance", "LIMIT_ZERO");
    case "project_exhausted":
      if (outcome.reason === "SPEND_CAP") {
        return cooldown(now + settings.spendCapCooldownMs, "project", "SPEND_CAP", ALL_MODELS);
      }
      return disable("project", project, "PREPAY_DEPLETED", ctx);
    case "key_rejected":
      return disable(outcome.scope, outcome.scope === "key" ? keyId : project, outcome.reason, ctx);
    default:
      return { type: "none" };
  }
}

function disable(
  scope: "key" | "project",
  id: string,
  reason: string,
  ctx: EffectContext,
): Effect {
  const recheck = ctx.settings.disabledRecheckMs;
  return {
    type: "disable",
    record: {
      scope,
      id,
      reason,
      status: ctx.status,
      since: ctx.now,
      recheckAt: recheck > 0 ? ctx.now + recheck : null,
    },
  };
}

const PACIFIC = new Intl.DateTimeFormat("en-US", {
  timeZone: "America/Los_Angeles",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "numeric",
  second: "numeric",
  hourCycle: "h23",
});

/** Offset of Pacific time from UTC at `at`, in ms (e.g. -7 h in summer). */
function pacificOffset(at: number): number {
  const parts: Record<string, number> = {};
  for (const part of PACIFIC.formatToParts(new Date(at))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(
    parts.year,
    parts.month - 1,
    parts.day,
    parts.hour,
    parts.minute,
    parts.second,
  );
  return wall - Math.floor(at / 1000) * 1000;
}

/** The next 00:00 in America/Los_Angeles after `now`, as epoch ms (DST-aware). */
export function nextPacificMidnight(now: number): number {
  const offset = pacificOffset(now);
  const wall = new Date(now + offset);
  const nextWallMidnight = Date.UTC(
    wall.getUTCFullYear(),
    wall.getUTCMonth(),
    wall.getUTCDate() + 1,
  );
  // Midnight may fall under a different offset than now (the DST switch is at 02:00, so the
  // offset at the target is the one just before it); correct once with the target's offset.
  let candidate = nextWallMidnight - offset;
  const targetOffset = pacificOffset(candidate);
  if (targetOffset !== offset) candidate = nextWallMidnight - targetOffset;
  return candidate;
}

/** The last day worked out, with its bounds: time-zone formatting is too slow per request. */
let dayCache = { start: 0, end: 0, day: "" };

/** The Pacific calendar day of `at` (`YYYY-MM-DD`): the day that per-day quotas count. */
export function pacificDay(at: number): string {
  if (at >= dayCache.start && at < dayCache.end) return dayCache.day;
  const day = new Date(at + pacificOffset(at)).toISOString().slice(0, 10);
  const end = nextPacificMidnight(at);
  // The day began at the midnight before `end` (23 to 25 hours earlier across DST changes).
  const start = nextPacificMidnight(end - 26 * 3_600_000);
  dayCache = { start: start <= at ? start : at, end, day };
  return day;
}
