/**
 * The admin surface under `/admin/`: off unless ADMIN_TOKEN is set (then every `/admin/` path
 * answers 404), and every path that carries data behind that token, compared in constant time.
 * The status page shell (`/admin/`) and its assets (`/admin/assets/...`) carry no data and load
 * without it; the page asks for the token. Modules are tried in order: each answers its own
 * paths and returns undefined for the rest.
 */

import { adminCredential, TokenSet } from "../auth.ts";
import { errorResponse } from "../errors.ts";

/** One group of admin routes; undefined means "not mine". */
export type AdminModule = (request: Request, url: URL) => Promise<Response | undefined>;

export interface AdminOptions {
  /** ADMIN_TOKEN; undefined disables the admin surface entirely. */
  readonly token: string | undefined;
  readonly modules: readonly AdminModule[];
}

/** True for paths the admin dispatcher owns: `/admin` and everything under `/admin/`. */
export function isAdminPath(pathname: string): boolean {
  return pathname === "/admin" || pathname.startsWith("/admin/");
}

/** Paths served without the token: the status page shell and its static assets. */
function isPublicShell(pathname: string): boolean {
  return pathname === "/admin" || pathname === "/admin/" || pathname.startsWith("/admin/assets/");
}

export function createAdminDispatcher(
  options: AdminOptions,
): (request: Request, url: URL) => Promise<Response> {
  const tokens = new TokenSet(options.token === undefined ? [] : [options.token]);
  return async (request, url) => {
    if (options.token === undefined) {
      await request.body?.cancel().catch(() => {});
      return errorResponse(
        404,
        "NOT_FOUND",
        "The admin API is disabled: set ADMIN_TOKEN to enable it.",
        { reason: "ADMIN_DISABLED" },
      );
    }
    if (!isPublicShell(url.pathname) && !tokens.matches(adminCredential(request.headers))) {
      await request.body?.cancel().catch(() => {});
      return errorResponse(
        401,
        "UNAUTHENTICATED",
        "Missing or wrong admin token. Send ADMIN_TOKEN as `Authorization: Bearer <token>` or " +
          "`X-Admin-Token: <token>`.",
        { reason: "ADMIN_TOKEN_INVALID", headers: { "www-authenticate": "Bearer" } },
      );
    }
    for (const module of options.modules) {
      const response = await module(request, url);
      if (response) return response;
    }
    await request.body?.cancel().catch(() => {});
    return errorResponse(
      404,
      "NOT_FOUND",
      `${url.pathname.slice(0, 200)} is not an admin API path. Key management lives under ` +
        "/admin/api/keys, /admin/api/cooldowns/clear and /admin/api/usage; pacing's limits at " +
        "/admin/api/limits.",
      { reason: "UNKNOWN_PATH" },
    );
  };
}
