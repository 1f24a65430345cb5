/**
 * The request that goes to Google and the headers that come back to the client. The only code
 * that writes a pool key anywhere: into one auth header of a request whose URL is built on the
 * configured upstream origin and checked to still be on it.
 *
 * Intermediary rules: RFC 9110 §7.6.1 (Connection, hop-by-hop fields), §7.6.3 (Via).
 */

import type { PoolKey } from "./keys.ts";
import type { RouteKind } from "./route.ts";

/** Hop-by-hop fields (RFC 9110 §7.6.1) plus the ones a proxy must not forward as is. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Client request fields that never reach Google: credentials, cookies, and what fetch sets. */
const REQUEST_DROP = new Set([
  ...HOP_BY_HOP,
  "host",
  "content-length",
  "accept-encoding",
  "authorization",
  "x-goog-api-key",
  "x-access-token",
  "cookie",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
]);

/** Upstream response fields that do not describe what the client receives. */
const RESPONSE_DROP = new Set([
  ...HOP_BY_HOP,
  // Deno's fetch decodes gzip/br but keeps these; the client gets the decoded bytes.
  "content-encoding",
  "content-length",
  // Google's cookies and alternative services concern Google's host, not this proxy.
  "set-cookie",
  "alt-svc",
]);

const VIA = "1.1 gemini-key-rotator";

/**
 * Text from a client (a model name decoded from the path) as a header value: control and
 * non-ASCII characters, which `Headers` refuses with an exception, are percent-encoded.
 */
export function headerSafe(text: string): string {
  return /^[\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text);
}

/** Thrown when a URL would leave the configured upstream; never expected in practice. */
export class UpstreamOriginError extends Error {}

/**
 * The upstream URL for a client path and raw query: the configured origin, the same path, and
 * the query without any `key` parameter (the client's credential, never forwarded).
 */
export function upstreamUrl(origin: string, pathname: string, rawSearch: string): string {
  const query = withoutKeyParam(rawSearch);
  const url = `${origin}${pathname}${query}`;
  // `origin` is a parsed URL's origin (scheme://host[:port]) and the authority of a URL ends at
  // the first "/" after it, so a path that starts with "/" cannot change the host. Checked on
  // every call, so this is a guarantee rather than an assumption.
  if (!pathname.startsWith("/") || !url.startsWith(`${origin}/`)) {
    throw new UpstreamOriginError("refusing to build an upstream URL off the configured origin");
  }
  return url;
}

/** The raw query minus `key=` parameters, other parameters byte for byte as the client sent. */
export function withoutKeyParam(rawSearch: string): string {
  if (rawSearch === "" || rawSearch === "?") return "";
  const kept = rawSearch.slice(1).split("&").filter((part) => {
    if (part === "") return false;
    const name = part.split("=", 1)[0];
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replaceAll("+", " "));
    } catch { /* keep the raw name */ }
    return decoded !== "key";
  });
  return kept.length ? `?${kept.join("&")}` : "";
}

const NONE: ReadonlySet<string> = new Set();

/** Names listed in a Connection header, which are hop-by-hop for this message only. */
function connectionTokens(headers: Headers): ReadonlySet<string> {
  const value = headers.get("connection");
  if (!value) return NONE;
  return new Set(value.split(",").map((token) => token.trim().toLowerCase()).filter(Boolean));
}

/**
 * Header fields for the upstream request: the client's end-to-end fields minus credentials,
 * plus the pool key in the one header its surface expects. A plain record (without a
 * prototype, so any field name is just a name), which `fetch` takes faster than `Headers`;
 * `forEach` is used because iterating `Headers` with for-of costs about ten times as much.
 */
export function upstreamHeaders(
  client: Headers,
  key: PoolKey,
  kind: RouteKind,
): Record<string, string> {
  const listed = connectionTokens(client);
  const fields: Record<string, string> = Object.create(null);
  client.forEach((value, name) => {
    if (REQUEST_DROP.has(name) || listed.has(name) || name.startsWith("x-rotator-")) return;
    fields[name] = value;
  });
  fields.via = fields.via ? `${fields.via}, ${VIA}` : VIA;
  // Native endpoints reject a Bearer API key (401); the OpenAI-compatible ones require it.
  if (kind === "openai") fields.authorization = `Bearer ${key.value}`;
  else fields["x-goog-api-key"] = key.value;
  return fields;
}

/**
 * Headers for the client from the upstream response: end-to-end fields that still describe the
 * body being sent, nothing that contains the key.
 */
export function clientHeaders(upstream: Headers, key: PoolKey): Headers {
  const headers = new Headers();
  writeClientHeaders(upstream, key, headers);
  return headers;
}

/** Writes the fields `clientHeaders` describes into `into` (an answer's own, empty Headers). */
export function writeClientHeaders(upstream: Headers, key: PoolKey, into: Headers): void {
  const listed = connectionTokens(upstream);
  let via = VIA;
  upstream.forEach((value, name) => {
    if (RESPONSE_DROP.has(name) || listed.has(name) || value.includes(key.value)) return;
    // The rotator's own fields are its to write (an upstream rotator's are replaced).
    if (name.startsWith("x-rotator-")) return;
    if (name === "via") via = `${value}, ${VIA}`;
    else into.append(name, value);
  });
  // A length is only true when the body was not decoded on the way (Deno keeps the encoded one).
  const length = upstream.get("content-length");
  if (length !== null && !upstream.has("content-encoding")) into.set("content-length", length);
  into.set("via", via);
}
