/**
 * Listings of project-scoped resources (`GET files`, `GET cachedContents`) when the rotator has
 * made them in several projects: each project lists only its own, so the rotator asks one key
 * of each project that owns some and merges the first pages. A listing that names a page token
 * is not merged (tokens belong to one project); it goes to one project like any request.
 */

import type { ProxyContext } from "./proxy.ts";
import { errorResponse } from "./errors.ts";
import type { Trace } from "./trace.ts";
import { clientHeaders, upstreamHeaders } from "./upstream.ts";
import { describeError } from "./log.ts";

/** Collections whose listing is merged across projects. */
const MERGED = new Set(["files", "cachedContents"]);

/** The collection a request lists (first page only), or undefined. */
export function listedCollection(
  method: string,
  resource: string,
  search: URLSearchParams,
): string | undefined {
  if (method !== "GET" || search.has("pageToken")) return undefined;
  return MERGED.has(resource) ? resource : undefined;
}

/** Lists `collection` with one key of each project and merges the answers. */
export async function listAcrossProjects(
  collection: string,
  projects: readonly string[],
  target: string,
  request: Request,
  trace: Trace,
  ctx: ProxyContext,
): Promise<Response> {
  const merged: unknown[] = [];
  let answered = 0;
  let firstFailure: Response | undefined;
  let headers: Headers | undefined;
  for (const project of projects) {
    const { key } = ctx.pool.pickInProject("", project, ctx.clock.now());
    if (!key) continue;
    trace.attempts++;
    trace.keyIds.push(key.id);
    let upstream: Response;
    try {
      upstream = await ctx.fetch(target, {
        headers: upstreamHeaders(request.headers, key, "native"),
        redirect: "manual",
        signal: request.signal,
      });
    } catch (error) {
      trace.attempt(key, 0, "network_error");
      ctx.log.warn("listing request failed", { key: key.id, error: describeError(error) });
      continue;
    }
    const text = await upstream.text();
    if (!upstream.ok) {
      trace.attempt(key, upstream.status, "client_error");
      firstFailure ??= new Response(text.replaceAll(key.value, "[REDACTED]"), {
        status: upstream.status,
        headers: clientHeaders(upstream.headers, key),
      });
      continue;
    }
    trace.attempt(key, upstream.status, "ok");
    try {
      const items = JSON.parse(text)[collection];
      if (Array.isArray(items)) merged.push(...items);
      answered++;
      headers ??= clientHeaders(upstream.headers, key);
    } catch {
      ctx.log.warn("listing answer was not JSON", { key: key.id });
    }
  }
  if (answered === 0) {
    if (firstFailure) {
      trace.done(firstFailure.status, "upstream");
      return firstFailure;
    }
    return trace.own(
      errorResponse(503, "UNAVAILABLE", `No key could list ${collection} right now.`, {
        reason: "LISTING_UNAVAILABLE",
      }),
      "LISTING_UNAVAILABLE",
    );
  }
  const out = headers ?? new Headers();
  out.delete("content-length");
  out.set("content-type", "application/json; charset=UTF-8");
  out.set("x-rotator-projects", String(answered));
  trace.done(200, "upstream");
  return new Response(JSON.stringify({ [collection]: merged }, null, 2), { headers: out });
}
