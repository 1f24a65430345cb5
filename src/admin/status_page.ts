/**
 * Serves the status page: `/admin/` (the HTML shell) and `/admin/assets/...` (its script, style
 * and the vendored uPlot chart library). These carry no data, so they answer without the admin
 * token; the page logs in and reads the admin API with it. Everything comes from the repo
 * (embedded strings): no CDN, nothing fetched from elsewhere, and a strict Content-Security-Policy
 * that allows this origin only.
 */

import { methodNotAllowed } from "./answer.ts";
import type { AdminModule } from "./dispatch.ts";
import { EMBEDDED_ASSETS } from "./embedded_assets.ts";
import { errorResponse } from "../errors.ts";

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
};

/**
 * Only this origin's scripts, styles and API: the page needs nothing else, and an injected
 * script could not send the token anywhere. uPlot styles elements through the CSSOM, which
 * `style-src 'self'` allows. https://www.w3.org/TR/CSP3/
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const ASSET_PREFIX = "/admin/assets/";

/** The shell and assets; undefined for every other path (the data API needs the token). */
export const statusPageRoute: AdminModule = (request, url) => {
  const path = url.pathname;
  if (path === "/admin") {
    return Promise.resolve(
      new Response(null, { status: 308, headers: { location: "/admin/" } }),
    );
  }
  let name: string;
  if (path === "/admin/") name = "status.html";
  else if (path.startsWith(ASSET_PREFIX)) name = path.slice(ASSET_PREFIX.length);
  else return Promise.resolve(undefined);

  if (request.method !== "GET" && request.method !== "HEAD") {
    return methodNotAllowed(request, "GET", path);
  }
  const text = Object.hasOwn(EMBEDDED_ASSETS, name) ? EMBEDDED_ASSETS[name] : undefined;
  if (text === undefined) {
    return Promise.resolve(
      errorResponse(404, "NOT_FOUND", `No status page asset ${name.slice(0, 100)}.`, {
        reason: "UNKNOWN_PATH",
      }),
    );
  }
  const etag = `"${hash(text)}"`;
  const headers = new Headers({
    "content-type": CONTENT_TYPES[name.split(".").pop() ?? ""] ?? "text/plain; charset=utf-8",
    // Revalidate every time: a deploy changes the files under the same names.
    "cache-control": "no-cache",
    etag,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  if (name.endsWith(".html")) {
    headers.set("content-security-policy", STATUS_PAGE_CSP);
    headers.set("x-frame-options", "DENY");
  }
  if (notModified(request.headers.get("if-none-match"), etag)) {
    return Promise.resolve(new Response(null, { status: 304, headers }));
  }
  return Promise.resolve(new Response(request.method === "HEAD" ? null : text, { headers }));
};

/**
 * If-None-Match uses the weak comparison (RFC 9110 §13.1.2): Deno.serve weakens our ETag to
 * `W/"..."` when it compresses a response, and the browser sends that form back.
 */
function notModified(header: string | null, etag: string): boolean {
  if (header === null) return false;
  return header.split(",").some((tag) => {
    const value = tag.trim();
    return value === "*" || value.replace(/^W\//, "") === etag;
  });
}

const hashes = new Map<string, string>();

/** FNV-1a over the UTF-16 units, memoised: an ETag, not a security measure. */
function hash(text: string): string {
  let known = hashes.get(text);
  if (known === undefined) {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    known = `${h.toString(16)}-${text.length.toString(16)}`;
    hashes.set(text, known);
  }
  return known;
}
