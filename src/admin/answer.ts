/**
 * The shapes of admin answers shared by the observability routes: JSON that is never cached, and
 * errors in Google's shape naming the problem. An admin route is a function that answers the
 * paths it owns and returns undefined for the rest, so the admin dispatcher can just list them.
 */

import { errorResponse } from "../errors.ts";

/** Answers the admin paths it owns; undefined means "not mine". */
export type AdminRoute = (request: Request, url: URL) => Promise<Response | undefined>;

/** A JSON answer that no cache or proxy keeps (it describes the pool now). */
export function adminJson(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", "cache-control": "no-store" },
  });
}

export function badRequest(message: string): Response {
  return errorResponse(400, "INVALID_ARGUMENT", message, { reason: "BAD_ADMIN_REQUEST" });
}

export function methodNotAllowed(allowed: string, path: string): Response {
  return errorResponse(405, "INVALID_ARGUMENT", `Use ${allowed} ${path}.`, {
    headers: { allow: allowed },
  });
}
