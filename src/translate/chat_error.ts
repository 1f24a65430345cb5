/**
 * A fallback provider's error in Google's shape, `{"error":{code,message,status}}`, so a native
 * Gemini client parses it like any Gemini error: an error answer before the first byte, or the
 * final event of a stream that failed mid-answer.
 *
 * OpenAI-style error bodies: `{"error":{"code","message","metadata"?}}`, where OpenRouter's
 * `code` is the HTTP status and sometimes a string such as "server_error"
 * (https://openrouter.ai/docs/api/reference/errors-and-debugging). Status names follow
 * google.rpc.Code (https://cloud.google.com/apis/design/errors#handling_errors).
 */

import { errorBody, type GoogleErrorBody, type GoogleStatus } from "../errors.ts";

/** ErrorInfo reason on translated provider errors. */
export const PROVIDER_ERROR_REASON = "FALLBACK_PROVIDER_ERROR";

const STATUS_BY_CODE: Record<number, GoogleStatus> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  // Gemini itself answers 402 (prepaid credits depleted) with RESOURCE_EXHAUSTED.
  402: "RESOURCE_EXHAUSTED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  408: "DEADLINE_EXCEEDED",
  429: "RESOURCE_EXHAUSTED",
  499: "CANCELLED",
  500: "INTERNAL",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** Key-shaped words (OpenAI `sk-…`, OpenRouter `sk-or-v1-…`, masked `sk-…****abcd`). */
const KEY_SHAPES = /\bsk-[A-Za-z0-9_*.-]{8,}/g;
const MAX_MESSAGE = 1000;

/** The google.rpc status name for an HTTP status. */
export function googleStatusFor(code: number): GoogleStatus {
  return STATUS_BY_CODE[code] ?? (code >= 500 ? "INTERNAL" : "INVALID_ARGUMENT");
}

/** The message and status code in a provider's `error` object, whatever its spelling. */
export function providerError(
  error: unknown,
  fallbackCode: number,
): { code: number; message: string } {
  const e = (error !== null && typeof error === "object" ? error : {}) as Record<string, unknown>;
  const numeric = typeof e.code === "number" ? e.code : Number(e.code);
  const code = Number.isInteger(numeric) && numeric >= 400 && numeric <= 599
    ? numeric
    : fallbackCode;
  const message = typeof e.message === "string" && e.message !== ""
    ? e.message
    : typeof e.code === "string"
    ? e.code
    : "no message";
  return { code, message };
}

/** The error object of an OpenAI-style body (plain or array-wrapped), if it has one. */
export function errorObjectOf(bodyText: string): unknown {
  try {
    let parsed = JSON.parse(bodyText);
    if (Array.isArray(parsed)) parsed = parsed[0];
    if (parsed !== null && typeof parsed === "object" && "error" in parsed) return parsed.error;
  } catch { /* not JSON: HTML or plain text */ }
  return undefined;
}

/**
 * Google's error body for a provider's error answer (status and body text as received),
 * naming the provider. Key-shaped words are blanked: some providers quote part of the key.
 */
export function providerErrorBody(
  status: number,
  bodyText: string,
  provider: string,
): GoogleErrorBody {
  const error = errorObjectOf(bodyText);
  const { message } = error !== undefined
    ? providerError(error, status)
    : { message: bodyText.trim() === "" ? `HTTP ${status}` : bodyText.trim() };
  return googleError(status, `The fallback provider ${provider} answered: ${message}`);
}

/** Google's error body for `code` and `message`, the message cleaned of key-shaped words. */
export function googleError(code: number, message: string): GoogleErrorBody {
  let clean = message.replace(KEY_SHAPES, "[REDACTED]");
  if (clean.length > MAX_MESSAGE) clean = `${clean.slice(0, MAX_MESSAGE)}…`;
  return errorBody(code, googleStatusFor(code), clean, { reason: PROVIDER_ERROR_REASON });
}
