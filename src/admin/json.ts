/**
 * JSON in and out of the admin API: bodies read up to 1 MiB and parsed, with errors that say
 * what is wrong (never echoing the body, which may hold keys); answers that are never cached.
 */

import { readBody } from "../body.ts";
import { errorResponse } from "../errors.ts";

/** Largest admin request body. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

export type JsonBody =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly response: Response };

/** The parsed JSON body; an empty body is `undefined` (for routes whose body is optional). */
export async function readJson(request: Request): Promise<JsonBody> {
  const body = await readBody(request, MAX_ADMIN_BODY_BYTES);
  if (!body.ok) {
    return {
      ok: false,
      response: body.reason === "aborted"
        ? errorResponse(499, "CANCELLED", "The client closed the request.")
        : invalidArgument(
          `The request body is larger than ${MAX_ADMIN_BODY_BYTES} bytes (1 MiB), the admin ` +
            "API's limit: send fewer keys per request.",
          "BODY_TOO_LARGE",
        ),
    };
  }
  const text = (await body.body.text()).trim();
  if (text === "") return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    // The parser's message quotes the input, which may be a key: give the position only.
    const at = /position (\d+)/.exec(String((error as Error).message))?.[1];
    return {
      ok: false,
      response: invalidArgument(
        `The request body is not valid JSON${at ? ` (error at byte ${at})` : ""}.`,
        "MALFORMED_JSON",
      ),
    };
  }
}

/** A 400 INVALID_ARGUMENT naming the problem. */
export function invalidArgument(message: string, reason = "INVALID_ARGUMENT"): Response {
  return errorResponse(400, "INVALID_ARGUMENT", message, { reason });
}

/** A JSON answer of the admin API. */
export function jsonResponse(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", "cache-control": "no-store" },
  });
}

/**
 * The object a route expects: `undefined` becomes `{}` when `optional`; anything but a plain
 * object, or a field outside `allowed`, is an error message.
 */
export function expectObject(
  value: unknown,
  allowed: readonly string[],
  optional: boolean,
): Record<string, unknown> | string {
  if (value === undefined && optional) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return `The request body must be a JSON object${
      allowed.length ? ` with ${allowed.map((f) => `"${f}"`).join(", ")}` : ""
    }.`;
  }
  for (const field of Object.keys(value)) {
    if (!allowed.includes(field)) {
      return `Unknown field "${field.slice(0, 40)}"${
        allowed.length ? `: use ${allowed.map((f) => `"${f}"`).join(", ")}` : ": send {}"
      }.`;
    }
  }
  return value as Record<string, unknown>;
}

/** An optional string field of at most `max` characters, or an error message. */
export function optionalString(
  body: Record<string, unknown>,
  field: string,
  max: number,
): string | undefined | { error: string } {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") return { error: `"${field}" must be a string.` };
  const trimmed = value.trim();
  if (trimmed === "") return { error: `"${field}" is empty: leave it out instead.` };
  if (trimmed.length > max) return { error: `"${field}" is longer than ${max} characters.` };
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    return { error: `"${field}" contains control characters.` };
  }
  return trimmed;
}
