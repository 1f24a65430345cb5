/**
 * OpenRouter (https://openrouter.ai): one Bearer key reaches Gemini and most other models,
 * which makes it the natural fallback when every Gemini key is spent.
 *
 * - Base URL `https://openrouter.ai/api/v1`; `Authorization: Bearer <key>`; optional
 *   attribution `HTTP-Referer` and `X-Title` (api/reference/authentication; X-Title "is still
 *   supported for backwards compatibility", openrouter.ai/docs/app-attribution).
 * - Gemini's names map to `google/<name>` (openrouter.ai/google/gemini-2.5-pro).
 * - Errors: `{"error":{"code","message","metadata"?}}` with the same HTTP status
 *   (api/reference/errors-and-debugging). The real bodies this reads are in
 *   test/fixtures/openrouter-errors/, each with its source.
 */

import type { Outcome } from "../classify.ts";
import {
  classifyOpenAiError,
  errorFields,
  errorInSuccess,
  quotaAfter,
  serverOutcome,
} from "./openai_compatible.ts";
import { bareModel, lookupModel, type ModelMap, type Provider } from "./provider.ts";
import { nextUtcMidnight, rateLimitResetMs, resetDelayMs, retryAfterMs } from "./retry_after.ts";

export const OPENROUTER = "openrouter";
export const OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1";

export interface OpenRouterOptions {
  readonly baseUrl?: string;
  /** Overrides of the default `google/<model>` names; `"*"` for every other model. */
  readonly models?: ModelMap;
  /** Sent as HTTP-Referer: the site OpenRouter credits in its rankings. */
  readonly referer?: string;
  /** Sent as X-Title: the app name OpenRouter shows. */
  readonly title?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export function openRouter(options: OpenRouterOptions = {}): Provider {
  const models = { ...options.models };
  return Object.freeze({
    name: OPENROUTER,
    baseUrl: options.baseUrl ?? OPENROUTER_BASE_URL,
    extraHeaders: Object.freeze({
      ...options.headers,
      ...(options.referer ? { "http-referer": options.referer } : {}),
      ...(options.title ? { "x-title": options.title } : {}),
    }),
    authHeaders: (key: string) => ({ authorization: `Bearer ${key}` }),
    mapModel: (model: string) => lookupModel(models, model) ?? `google/${bareModel(model)}`,
    classify: classifyOpenRouter,
  });
}

/**
 * What an OpenRouter answer means for the key used:
 *
 * | answer | outcome |
 * |---|---|
 * | 401 ("User not found.", "No auth credentials found") | key_rejected |
 * | 402 insufficient credits | project_exhausted (the key's account is out of money) |
 * | 402 with Retry-After / `openrouter_in_flight_budget` | quota for that long |
 * | 402 "requires more credits, or fewer max_tokens" | quota, unknown window: a smaller request or another account may fit |
 * | 403 "Key limit exceeded (daily limit)" | quota until 00:00 UTC |
 * | 403 "Key limit exceeded (monthly/total limit)" | key_rejected: the key's own spending limit |
 * | 403 moderation or guardrail | client_error |
 * | 404 "No endpoints found..." | not_key: the mapped model is the operator's to fix |
 * | 429 `free-models-per-day` / `openrouter_free_tier_daily` | quota, window day, until X-RateLimit-Reset |
 * | 429 "Provider returned error" (upstream rate limit, `provider_name`/`raw`/`provider_code`) | transient: not this key's limit |
 * | 429 other | quota, for Retry-After / X-RateLimit-Reset |
 * | 500 / 502 / 503 | transient; 504 / 408 client_error (repeating a timed-out request doubles the wait) |
 */
export function classifyOpenRouter(
  status: number,
  headers: Headers,
  bodyText: string,
  now: number,
): Outcome {
  const inner = errorInSuccess(status, bodyText);
  if (inner !== undefined) return classifyOpenRouter(inner, headers, bodyText, now);
  if (status < 400) return classifyOpenAiError(status, headers, bodyText, now);
  const error = errorFields(bodyText);
  const message = error?.message ?? "";
  const metadata = error?.metadata ?? {};
  const limitSource = typeof metadata.limit_source === "string" ? metadata.limit_source : "";
  const wait = retryAfterMs(headers, now) ?? rateLimitResetMs(headers, now) ??
    resetDelayMs(echoedHeader(metadata, "X-RateLimit-Reset"), now);

  switch (status) {
    case 401:
      return { kind: "key_rejected", scope: "key", reason: "UNAUTHENTICATED" };
    case 402:
      // "A 402 without the header is not a wait-and-retry case" (errors-and-debugging).
      if (headers.has("retry-after") || limitSource === "openrouter_in_flight_budget") {
        return quotaAfter(wait, limitSource || undefined);
      }
      if (/fewer max_tokens|can only afford/i.test(message)) {
        return quotaAfter(undefined, "CREDITS_FOR_MAX_TOKENS");
      }
      return { kind: "project_exhausted", reason: "PREPAY_DEPLETED" };
    case 403: {
      const keyLimit = /key limit exceeded(?: \((\w+) limit\))?/i.exec(message);
      if (keyLimit) {
        // Key credit limits reset daily, weekly or monthly at 00:00 UTC (UNVERIFIED for
        // weekly/monthly: those wait for the operator's re-check instead).
        if (keyLimit[1]?.toLowerCase() === "daily") {
          return {
            kind: "quota",
            window: "day",
            retryDelayMs: nextUtcMidnight(now) - now,
            quotaId: "KEY_LIMIT_DAILY",
          };
        }
        return { kind: "key_rejected", scope: "key", reason: "KEY_LIMIT_EXCEEDED" };
      }
      return { kind: "client_error" };
    }
    case 404:
      return { kind: "not_key", reason: "MODEL_NOT_FOUND" };
    case 429:
      return classifyRateLimit(message, metadata, limitSource, headers, wait, now);
  }
  if (status >= 500) return serverOutcome(status);
  return { kind: "client_error" };
}

function classifyRateLimit(
  message: string,
  metadata: Record<string, unknown>,
  limitSource: string,
  headers: Headers,
  wait: number | undefined,
  now: number,
): Outcome {
  const named = /free-models-per-[a-z-]+/i.exec(message)?.[0];
  if (/free-models-per-day/i.test(message) || limitSource === "openrouter_free_tier_daily") {
    const limit = Number(
      headers.get("x-ratelimit-limit") ?? echoedHeader(metadata, "X-RateLimit-Limit"),
    );
    return {
      kind: "quota",
      window: "day",
      // The reset OpenRouter states, else the next UTC midnight (its resets seen so far).
      retryDelayMs: wait ?? nextUtcMidnight(now) - now,
      quotaId: named ?? limitSource,
      ...(Number.isInteger(limit) && limit > 0 ? { limit } : {}),
      unit: "requests",
    };
  }
  // The model's own provider (Google AI Studio behind OpenRouter...) is rate-limited: every
  // OpenRouter key meets the same wall, and none is at fault.
  if (
    message === "Provider returned error" || typeof metadata.provider_name === "string" ||
    metadata.raw !== undefined || typeof metadata.provider_code === "string"
  ) {
    return { kind: "transient", reason: "OVERLOADED" };
  }
  if (/free-models-per-min/i.test(message)) {
    return {
      kind: "quota",
      window: "minute",
      retryDelayMs: wait ?? 60_000,
      ...(named ? { quotaId: named } : {}),
    };
  }
  return quotaAfter(wait, named ?? (limitSource || undefined));
}

/** A rate-limit header OpenRouter echoes inside the body, at `error.metadata.headers`. */
function echoedHeader(metadata: Record<string, unknown>, name: string): unknown {
  const headers = metadata.headers;
  if (headers === null || typeof headers !== "object") return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === wanted) return value;
  }
  return undefined;
}
