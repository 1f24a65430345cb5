/**
 * How long an OpenAI-style provider asks a client to wait, from its response headers and error
 * body: `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3), `retry-after-ms` (honoured
 * by the OpenAI SDKs), `X-RateLimit-Reset` (OpenRouter: an epoch time, in milliseconds in the
 * bodies seen, https://openrouter.ai/docs/api/reference/limits) and OpenAI's
 * `x-ratelimit-reset-requests` / `-tokens` durations (`"1s"`, `"6m0s"`,
 * https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers). Pure: the time
 * is passed in.
 */

import { parseDuration } from "../duration.ts";

const DAY = 24 * 60 * 60 * 1000;

/** The wait a Retry-After or retry-after-ms header asks for, in ms. */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const ms = headers.get("retry-after-ms")?.trim();
  if (ms && /^\d+(\.\d+)?$/.test(ms)) return Math.ceil(Number(ms));
  const value = headers.get("retry-after")?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The wait until a rate-limit reset given as an epoch time (ms or s), a delta in seconds, or a
 * duration such as `6m0s`; undefined for anything else.
 */
export function resetDelayMs(value: unknown, now: number): number | undefined {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : "";
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) {
    const n = Number(trimmed);
    // Epoch milliseconds (13 digits), epoch seconds (10 digits), else seconds from now.
    if (n > 1e12) return Math.max(0, Math.ceil(n - now));
    if (n > 1e9) return Math.max(0, Math.ceil(n * 1000 - now));
    return Math.ceil(n * 1000);
  }
  return parseDuration(trimmed);
}

/** The first reset header present, as a wait in ms. */
export function rateLimitResetMs(headers: Headers, now: number): number | undefined {
  for (
    const name of ["x-ratelimit-reset", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
  ) {
    const delay = resetDelayMs(headers.get(name), now);
    if (delay !== undefined) return delay;
  }
  return undefined;
}

/** The next 00:00 UTC after `now`, as epoch ms. */
export function nextUtcMidnight(now: number): number {
  return Math.floor(now / DAY) * DAY + DAY;
}
