/**
 * The rotator's answer when no key can serve a model: a 429 RESOURCE_EXHAUSTED with Retry-After
 * (and a RetryInfo detail, which Gemini CLI honours) when keys are only cooling, a 503 when
 * every key is disabled. Retry-After is never early: it is rounded up to the first recovery.
 */

import { errorResponse, retryInfo } from "./errors.ts";
import type { Recovery } from "./pool.ts";
import type { CooldownRecord } from "./state/records.ts";

/** A request that must go out with a key of one project, and why (for the client's message). */
export interface Pin {
  readonly project: string;
  readonly why: string;
}

/** Why a model has no key, for the client's message and the log. */
export type ExhaustedReason =
  | "ALL_KEYS_COOLING"
  | "ALL_KEYS_DISABLED"
  | "NO_KEYS"
  | "OWNER_COOLING"
  | "OWNER_UNAVAILABLE";

export interface ExhaustedAnswer {
  readonly response: Response;
  readonly reason: ExhaustedReason;
}

const WINDOW_TEXT: Record<CooldownRecord["window"], string> = {
  minute: "their per-minute quota is spent",
  day: "their per-day quota is spent (it resets at midnight Pacific time)",
  unknown: "Gemini answered 429 RESOURCE_EXHAUSTED without saying which quota",
  no_allowance: "their projects have no quota at all for this model (limit: 0)",
  project: "their projects are over their spending cap",
  paced: "they have sent their known per-window limit, so the rotator holds back until the " +
    "window has room again rather than collect a 429",
};

/** The answer for `model` given when its first key recovers (undefined: never, by itself). */
export function exhaustedAnswer(
  model: string,
  keyCount: number,
  recovery: Recovery | undefined,
  now: number,
  note = "",
): ExhaustedAnswer {
  const what = model ? `model ${model}` : "this request";
  const cause = recovery?.cause;
  if (recovery !== undefined && cause === undefined) {
    // A key came free while this request was being answered: the client may retry at once.
    return {
      reason: "ALL_KEYS_COOLING",
      response: errorResponse(
        429,
        "RESOURCE_EXHAUSTED",
        `Every key for ${what} was busy a moment ago; capacity is back now. Retry.`,
        { reason: "ALL_KEYS_COOLING", details: [retryInfo(0)], headers: { "retry-after": "1" } },
      ),
    };
  }
  if (recovery === undefined || cause === undefined || !("until" in cause)) {
    const retryMs = recovery && recovery.at !== Infinity ? recovery.at - now : undefined;
    const message = `No usable API key for ${what}: all ${keyCount} keys in the pool are ` +
      `disabled (invalid, leaked, blocked or over budget). An operator must replace or re-enable ` +
      `them` + (retryMs !== undefined ? `; they are re-checked in ${formatDelay(retryMs)}.` : ".") +
      note;
    return {
      reason: "ALL_KEYS_DISABLED",
      response: errorResponse(503, "UNAVAILABLE", message, {
        reason: "ALL_KEYS_DISABLED",
        ...(retryMs !== undefined
          ? { headers: { "retry-after": retryAfterSeconds(retryMs) } }
          : {}),
      }),
    };
  }
  const retryMs = Math.max(0, recovery.at - now);
  const message = `All ${keyCount} API keys are rate-limited for ${what}: ` +
    `${WINDOW_TEXT[cause.window]}. The first key recovers in ${formatDelay(retryMs)} ` +
    `(at ${new Date(recovery.at).toISOString()}). Retry after that, or add keys from another ` +
    `Google Cloud project.${note}`;
  return {
    reason: "ALL_KEYS_COOLING",
    response: errorResponse(429, "RESOURCE_EXHAUSTED", message, {
      reason: "ALL_KEYS_COOLING",
      details: [retryInfo(retryMs)],
      headers: { "retry-after": retryAfterSeconds(retryMs) },
    }),
  };
}

/**
 * The answer when a request names a resource (a file, cached content...) and no key of the
 * project that owns it can be used: another project's key could not see the resource.
 */
export function pinnedAnswer(
  pin: Pin,
  model: string,
  recovery: Recovery | undefined,
  now: number,
): ExhaustedAnswer {
  const what = pin.why;
  const cause = recovery?.cause;
  if (recovery && cause && "until" in cause && recovery.at !== Infinity) {
    const retryMs = Math.max(0, recovery.at - now);
    return {
      reason: "OWNER_COOLING",
      response: errorResponse(
        429,
        "RESOURCE_EXHAUSTED",
        `${what}, and that project's keys are rate-limited for ${model || "this request"}: ` +
          `${WINDOW_TEXT[cause.window]}. Keys of other projects cannot see it. The first key ` +
          `recovers in ${formatDelay(retryMs)}.`,
        {
          reason: "OWNER_COOLING",
          details: [retryInfo(retryMs)],
          headers: { "retry-after": retryAfterSeconds(retryMs) },
        },
      ),
    };
  }
  const why = recovery === undefined
    ? "no key of that project is in the pool any more"
    : `its keys are disabled (${cause && "reason" in cause ? cause.reason : "unavailable"})`;
  return {
    reason: "OWNER_UNAVAILABLE",
    response: errorResponse(
      503,
      "UNAVAILABLE",
      `${what}, but ${why}. Keys of other projects cannot see it: re-create it, or re-enable ` +
        `that project's keys.`,
      { reason: "OWNER_UNAVAILABLE" },
    ),
  };
}

/** The answer when the pool has no keys at all. */
export function noKeysAnswer(): ExhaustedAnswer {
  return {
    reason: "NO_KEYS",
    response: errorResponse(
      503,
      "UNAVAILABLE",
      "The rotator has no Gemini API keys configured: set API_KEYS (comma-separated) and " +
        "restart, or add keys through the admin API.",
      { reason: "NO_KEYS" },
    ),
  };
}

/** Whole seconds, rounded up so a client that waits this long never arrives early. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

function formatDelay(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes % 60} min`;
}
