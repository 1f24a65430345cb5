/**
 * Any provider that speaks OpenAI's chat-completions protocol with a Bearer key (Groq,
 * Together, DeepSeek, Mistral, a local vLLM or Ollama...), described by the operator in
 * PROVIDERS_FILE: a name, a base URL, a model-name map and optional extra headers.
 *
 * Errors are read as OpenAI documents them
 * (https://platform.openai.com/docs/guides/error-codes): 401 invalid key, 403 unsupported
 * region, 429 rate limit or `insufficient_quota` (out of credits), 500/503 server trouble.
 */

import type { Outcome } from "../classify.ts";
import { errorObjectOf } from "../translate/chat_error.ts";
import { lookupModel, type ModelMap, type Provider } from "./provider.ts";
import { rateLimitResetMs, retryAfterMs } from "./retry_after.ts";

export interface OpenAiCompatibleOptions {
  readonly name: string;
  readonly baseUrl: string;
  readonly models: ModelMap;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Waits longer than this are a long window (a daily or monthly limit), not a minute one. */
export const SHORT_WINDOW_MS = 15 * 60 * 1000;

export function openAiCompatible(options: OpenAiCompatibleOptions): Provider {
  const models = { ...options.models };
  return Object.freeze({
    name: options.name,
    baseUrl: options.baseUrl,
    extraHeaders: Object.freeze({ ...options.headers }),
    authHeaders: (key: string) => ({ authorization: `Bearer ${key}` }),
    mapModel: (model: string) => lookupModel(models, model),
    classify: classifyOpenAiError,
  });
}

/** An OpenAI-style error object's fields, read defensively. */
export interface ErrorFields {
  readonly code?: number;
  /** `error.code` or `error.type` when they are words, e.g. `insufficient_quota`. */
  readonly kind: string;
  readonly message: string;
  readonly metadata: Record<string, unknown>;
}

export function errorFields(bodyText: string): ErrorFields | undefined {
  const error = errorObjectOf(bodyText);
  if (error === null || typeof error !== "object") return undefined;
  const e = error as Record<string, unknown>;
  const numeric = typeof e.code === "number" ? e.code : Number(e.code);
  return {
    ...(Number.isInteger(numeric) ? { code: numeric } : {}),
    kind: [e.code, e.type].filter((v) => typeof v === "string").join(" "),
    message: typeof e.message === "string" ? e.message : "",
    metadata: e.metadata !== null && typeof e.metadata === "object"
      ? e.metadata as Record<string, unknown>
      : {},
  };
}

/** A 200 whose body is an error object (OpenRouter: "a 200 can still be a failure"). */
export function errorInSuccess(status: number, bodyText: string): number | undefined {
  if (status >= 300 || !bodyText.includes('"error"')) return undefined;
  const code = errorFields(bodyText)?.code;
  return code !== undefined && code >= 400 && code <= 599 ? code : undefined;
}

/** A quota outcome from a wait: short windows are "minute", long ones "day", none "unknown". */
export function quotaAfter(delayMs: number | undefined, quotaId?: string): Outcome {
  const window = delayMs === undefined ? "unknown" : delayMs <= SHORT_WINDOW_MS ? "minute" : "day";
  return {
    kind: "quota",
    window,
    ...(delayMs !== undefined ? { retryDelayMs: delayMs } : {}),
    ...(quotaId ? { quotaId } : {}),
  };
}

/** The outcome of server trouble: 504 is the request's (as for Gemini), other 5xx pass. */
export function serverOutcome(status: number): Outcome {
  if (status === 504) return { kind: "client_error" };
  if (status === 503) return { kind: "transient", reason: "OVERLOADED" };
  if (status === 500) return { kind: "transient", reason: "INTERNAL" };
  return { kind: "transient", reason: "BAD_GATEWAY" };
}

/** Classifies an OpenAI-style answer. */
export function classifyOpenAiError(
  status: number,
  headers: Headers,
  bodyText: string,
  now: number,
): Outcome {
  const inner = errorInSuccess(status, bodyText);
  if (inner !== undefined) return classifyOpenAiError(inner, headers, bodyText, now);
  if (status < 300) return { kind: "ok" };
  // A redirect would take the request (and its key) elsewhere: the base URL is wrong.
  if (status < 400) return { kind: "not_key", reason: "REDIRECTED" };
  const error = errorFields(bodyText);
  const text = `${error?.kind ?? ""} ${error?.message ?? ""}`;
  switch (status) {
    case 401:
      return { kind: "key_rejected", scope: "key", reason: "UNAUTHENTICATED" };
    case 402:
      return { kind: "project_exhausted", reason: "PREPAY_DEPLETED" };
    case 403:
      if (/country|region|territory|location/i.test(text)) {
        return { kind: "not_key", reason: "LOCATION" };
      }
      return { kind: "key_rejected", scope: "key", reason: "PERMISSION_DENIED" };
    case 404:
      // The mapped model name is the operator's: tell them, blame no key.
      return { kind: "not_key", reason: "MODEL_NOT_FOUND" };
    case 429:
      if (/insufficient_quota/i.test(text)) {
        return { kind: "project_exhausted", reason: "PREPAY_DEPLETED" };
      }
      return quotaAfter(retryAfterMs(headers, now) ?? rateLimitResetMs(headers, now));
  }
  if (status >= 500) return serverOutcome(status);
  return { kind: "client_error" };
}
