/**
 * Every answer the rotator writes itself, in Google's error shape
 * `{"error":{"code","message","status","details"}}`, so clients parse it like any Gemini error.
 *
 * Shape: https://ai.google.dev/api/rest (google.rpc.Status); details use the same `@type`s Gemini
 * sends (ErrorInfo, RetryInfo), which lets Gemini CLI honour our RetryInfo like Google's own.
 */

/** Canonical gRPC status names used in `error.status`. */
export type GoogleStatus =
  | "INVALID_ARGUMENT"
  | "FAILED_PRECONDITION"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "NOT_FOUND"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE"
  | "INTERNAL"
  | "DEADLINE_EXCEEDED"
  | "CANCELLED";

/** Domain of the ErrorInfo detail on our own answers, so tools can tell them from Google's. */
export const ERROR_DOMAIN = "gemini-key-rotator";

export interface GoogleErrorBody {
  error: {
    code: number;
    message: string;
    status: GoogleStatus;
    details?: Record<string, unknown>[];
  };
}

export interface ErrorOptions {
  /** Machine-readable reason, sent as a google.rpc.ErrorInfo detail. */
  reason?: string;
  /** Extra details appended after the ErrorInfo. */
  details?: Record<string, unknown>[];
  headers?: HeadersInit;
}

/** The JSON body of one of our errors. */
export function errorBody(
  code: number,
  status: GoogleStatus,
  message: string,
  options: ErrorOptions = {},
): GoogleErrorBody {
  const details: Record<string, unknown>[] = [];
  if (options.reason) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: options.reason,
      domain: ERROR_DOMAIN,
    });
  }
  if (options.details) details.push(...options.details);
  return { error: { code, message, status, ...(details.length ? { details } : {}) } };
}

/** A Response carrying one of our errors, pretty-printed as Google does. */
export function errorResponse(
  code: number,
  status: GoogleStatus,
  message: string,
  options: ErrorOptions = {},
): Response {
  const headers = new Headers(options.headers);
  headers.set("content-type", "application/json; charset=UTF-8");
  return new Response(JSON.stringify(errorBody(code, status, message, options), null, 2) + "\n", {
    status: code,
    headers,
  });
}

/** The answer to a request without the rotator's access token (nothing is sent upstream). */
export function accessTokenRefused(): Response {
  return errorResponse(
    401,
    "UNAUTHENTICATED",
    "Missing or wrong access token. Send the rotator's access token where you would put a " +
      "Gemini API key (x-goog-api-key, ?key=, Authorization: Bearer, or X-Access-Token).",
    { reason: "ACCESS_TOKEN_INVALID" },
  );
}

/**
 * A RetryInfo detail as Google writes it: a protobuf Duration in seconds, with a fraction when
 * there is one (`"0.539477544s"`), here to the millisecond, rounded up so it is never early. A
 * client that reads it (Cline) need not wait out the whole second that Retry-After rounds up to.
 */
export function retryInfo(delayMs: number): Record<string, unknown> {
  const ms = Math.max(0, Math.ceil(delayMs));
  const fraction = ms % 1000;
  return {
    "@type": "type.googleapis.com/google.rpc.RetryInfo",
    retryDelay: `${Math.floor(ms / 1000)}${
      fraction ? `.${String(fraction).padStart(3, "0")}` : ""
    }s`,
  };
}
