/**
 * The 405 answer of the observability admin routes (the status page and its data API); their
 * JSON and 400 answers are the admin API's own (`jsonResponse`, `invalidArgument`).
 */

import { errorResponse } from "../errors.ts";

/** `Use GET /admin/api/history.`, with the Allow header; the request body is released. */
export async function methodNotAllowed(
  request: Request,
  allowed: string,
  path: string,
): Promise<Response> {
  await request.body?.cancel().catch(() => {});
  return errorResponse(405, "INVALID_ARGUMENT", `Use ${allowed} ${path}.`, {
    headers: { allow: allowed },
    reason: "METHOD_NOT_ALLOWED",
  });
}
