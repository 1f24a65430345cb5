/**
 * Reads an upstream answer (status and error body) and says what it means for the key that was
 * used: nothing, a quota window, a dead key or project, a passing server problem, or the
 * client's own mistake. Pure: the body has already been read; time is not involved.
 *
 * Rules follow Gemini's real behaviour (../shared/gemini-api-facts.md §3, the 21 fixtures):
 * https://ai.google.dev/gemini-api/docs/rate-limits and
 * https://ai.google.dev/gemini-api/docs/troubleshooting (api-errors).
 */

import { parseDuration, retryDelayFromMessage } from "./duration.ts";

/** Which quota window a 429 names. */
export type QuotaWindow = "minute" | "day" | "unknown";

export type Outcome =
  /** 2xx/3xx: the key worked. */
  | { readonly kind: "ok" }
  /** A per-(project, model) quota is spent for the window named. */
  | {
    readonly kind: "quota";
    readonly window: QuotaWindow;
    /** RetryInfo.retryDelay, or the "Please retry in" of the message. */
    readonly retryDelayMs?: number;
    readonly quotaId?: string;
    /** The limit Google states (`quotaValue`), when it does. */
    readonly limit?: number;
    /** `requests` or `tokens`, from the quota id. */
    readonly unit?: "requests" | "tokens";
    /** The model the violation names (may differ in spelling from the path's). */
    readonly model?: string;
  }
  /** `limit: 0`: this project has no allowance for the model at all. */
  | { readonly kind: "no_allowance"; readonly model?: string }
  /** Spending cap or prepaid credits: the whole project is out, whatever the model. */
  | { readonly kind: "project_exhausted"; readonly reason: "SPEND_CAP" | "PREPAY_DEPLETED" }
  /** The key (or its whole project) is rejected: invalid, expired, leaked, blocked, disabled API. */
  | { readonly kind: "key_rejected"; readonly scope: "key" | "project"; readonly reason: string }
  /** A server-side problem that is no key's fault; retrying may help. */
  | { readonly kind: "transient"; readonly reason: "OVERLOADED" | "INTERNAL" | "BAD_GATEWAY" }
  /** Not the key and not the client: e.g. the proxy's location. Passed through, operator told. */
  | { readonly kind: "not_key"; readonly reason: string }
  /** The request itself is wrong (or names something missing): passed through, no key blamed. */
  | { readonly kind: "client_error" };

/** What classification needs from the upstream answer. */
export interface UpstreamAnswer {
  readonly status: number;
  /** The body text, read up to a bound; may be empty, HTML, JSON, array-wrapped or SSE-framed. */
  readonly body: string;
}

/** The parts of a google.rpc.Status we look at. */
export interface GoogleError {
  readonly code?: number;
  readonly message: string;
  readonly status?: string;
  readonly details: readonly Record<string, unknown>[];
}

const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure";
const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";

/** ErrorInfo reasons that mean this key cannot be used (its configuration or its standing). */
const KEY_REASONS = new Set([
  "API_KEY_INVALID",
  "API_KEY_EXPIRED",
  "ACCESS_TOKEN_TYPE_UNSUPPORTED",
  "CONSUMER_SUSPENDED",
  "API_KEY_SERVICE_BLOCKED",
  "API_KEY_HTTP_REFERRER_BLOCKED",
  "API_KEY_IP_ADDRESS_BLOCKED",
  "API_KEY_ANDROID_APP_BLOCKED",
  "API_KEY_IOS_APP_BLOCKED",
]);

/** ErrorInfo reasons that mean the key's whole project cannot be used. */
const PROJECT_REASONS = new Set(["SERVICE_DISABLED", "BILLING_DISABLED"]);

/** Classifies one upstream answer. Total: any input gives an Outcome, nothing throws. */
export function classify(answer: UpstreamAnswer): Outcome {
  const { status } = answer;
  if (status < 400) return { kind: "ok" };
  const error = parseGoogleError(answer.body);
  const message = error?.message ?? "";
  const reason = errorInfoReason(error);

  if (status === 429) return classifyQuota(error);
  if (status === 402) return { kind: "project_exhausted", reason: "PREPAY_DEPLETED" };

  if (status === 400) {
    if (
      reason === "API_KEY_INVALID" || /API key (not valid|expired|not found)/i.test(message)
    ) return { kind: "key_rejected", scope: "key", reason: "API_KEY_INVALID" };
    if (error?.status === "FAILED_PRECONDITION") {
      return { kind: "not_key", reason: /location/i.test(message) ? "LOCATION" : "PRECONDITION" };
    }
    return { kind: "client_error" };
  }
  if (status === 401) {
    return { kind: "key_rejected", scope: "key", reason: reason ?? "UNAUTHENTICATED" };
  }
  if (status === 403) {
    if (reason && PROJECT_REASONS.has(reason)) {
      return { kind: "key_rejected", scope: "project", reason };
    }
    if (reason && KEY_REASONS.has(reason)) return { kind: "key_rejected", scope: "key", reason };
    if (/reported as leaked/i.test(message)) {
      return { kind: "key_rejected", scope: "key", reason: "LEAKED" };
    }
    if (/has been suspended/i.test(message)) {
      return { kind: "key_rejected", scope: "key", reason: "CONSUMER_SUSPENDED" };
    }
    if (/project has been denied access/i.test(message)) {
      return { kind: "key_rejected", scope: "project", reason: "PROJECT_DENIED" };
    }
    // e.g. "You do not have permission to access the File": the resource, not the key.
    return { kind: "client_error" };
  }
  if (status === 503) return { kind: "transient", reason: "OVERLOADED" };
  if (status === 500) return { kind: "transient", reason: "INTERNAL" };
  if (status === 502) return { kind: "transient", reason: "BAD_GATEWAY" };
  // 504 DEADLINE_EXCEEDED and 499 CANCELLED: repeating a request that ran out of time only
  // doubles the wait (api-errors docs: raise the client timeout).
  return { kind: "client_error" };
}

function classifyQuota(error: GoogleError | undefined): Outcome {
  const message = error?.message ?? "";
  if (/spending cap/i.test(message)) return { kind: "project_exhausted", reason: "SPEND_CAP" };
  if (/prepay|credits are depleted/i.test(message)) {
    return { kind: "project_exhausted", reason: "PREPAY_DEPLETED" };
  }
  const violations = quotaViolations(error);
  const model = violations.map((v) => v.model).find((m) => m !== undefined);
  if (/\blimit: 0\b/.test(message) || violations.some((v) => v.limit === 0)) {
    return { kind: "no_allowance", ...(model ? { model } : {}) };
  }
  const retryDelayMs = retryDelayOf(error);
  // The longest window named wins: a per-day violation outlasts any per-minute one.
  const daily = violations.find((v) => v.window === "day");
  const chosen = daily ?? violations.find((v) => v.window === "minute") ?? violations[0];
  return {
    kind: "quota",
    window: chosen?.window ?? "unknown",
    ...(retryDelayMs !== undefined ? { retryDelayMs } : {}),
    ...(chosen?.quotaId ? { quotaId: chosen.quotaId } : {}),
    ...(chosen?.limit !== undefined ? { limit: chosen.limit } : {}),
    ...(chosen?.unit ? { unit: chosen.unit } : {}),
    ...(model ? { model } : {}),
  };
}

interface Violation {
  quotaId?: string;
  window: QuotaWindow;
  limit?: number;
  unit?: "requests" | "tokens";
  model?: string;
}

/** The QuotaFailure violations of an error, with the window each names. */
export function quotaViolations(error: GoogleError | undefined): Violation[] {
  const out: Violation[] = [];
  for (const detail of error?.details ?? []) {
    if (detail["@type"] !== QUOTA_FAILURE || !Array.isArray(detail.violations)) continue;
    for (const raw of detail.violations) {
      if (raw === null || typeof raw !== "object") continue;
      const v = raw as Record<string, unknown>;
      const quotaId = typeof v.quotaId === "string" ? v.quotaId : undefined;
      const metric = typeof v.quotaMetric === "string" ? v.quotaMetric : "";
      const dims = v.quotaDimensions as Record<string, unknown> | undefined;
      const limit = typeof v.quotaValue === "string" && /^\d+$/.test(v.quotaValue)
        ? Number(v.quotaValue)
        : undefined;
      out.push({
        ...(quotaId ? { quotaId } : {}),
        window: windowOf(quotaId ?? metric),
        ...(limit !== undefined ? { limit } : {}),
        unit: /token/i.test(`${quotaId} ${metric}`) ? "tokens" : "requests",
        ...(typeof dims?.model === "string" ? { model: dims.model } : {}),
      });
    }
  }
  return out;
}

/** `...PerDay...`, `...per_day` -> day; `...PerMinute...`, RPM, TPM -> minute. */
function windowOf(id: string): QuotaWindow {
  if (/PerDay|per_day|Daily|RPD|TPD/i.test(id)) return "day";
  if (/PerMinute|per_minute|RPM|TPM/i.test(id)) return "minute";
  return "unknown";
}

function retryDelayOf(error: GoogleError | undefined): number | undefined {
  for (const detail of error?.details ?? []) {
    if (detail["@type"] === RETRY_INFO) {
      const ms = parseDuration(detail.retryDelay);
      if (ms !== undefined) return ms;
    }
  }
  return retryDelayFromMessage(error?.message ?? "");
}

function errorInfoReason(error: GoogleError | undefined): string | undefined {
  for (const detail of error?.details ?? []) {
    if (detail["@type"] === ERROR_INFO && typeof detail.reason === "string") return detail.reason;
  }
  return undefined;
}

/**
 * The google.rpc.Status in a body: a plain `{"error":…}`, the array-wrapped form of streaming
 * and OpenAI-compatible endpoints, or an SSE `data:` line. Undefined for HTML and other text.
 */
export function parseGoogleError(body: string): GoogleError | undefined {
  let text = body.trim();
  if (text.startsWith("data:")) text = text.slice(5).split(/\r?\n/, 1)[0].trim();
  if (!text.startsWith("{") && !text.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (Array.isArray(parsed)) parsed = parsed[0];
  if (parsed === null || typeof parsed !== "object") return undefined;
  const error = (parsed as { error?: unknown }).error;
  if (error === null || typeof error !== "object") return undefined;
  const e = error as Record<string, unknown>;
  return {
    ...(typeof e.code === "number" ? { code: e.code } : {}),
    message: typeof e.message === "string" ? e.message : "",
    ...(typeof e.status === "string" ? { status: e.status } : {}),
    details: Array.isArray(e.details)
      ? e.details.filter((d): d is Record<string, unknown> => d !== null && typeof d === "object")
      : [],
  };
}
