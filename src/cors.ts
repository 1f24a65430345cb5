/**
 * CORS, so browser apps can call the rotator directly: the allowed origins come from
 * CORS_ORIGINS ("*" by default; the access token, not the origin, is what protects the pool).
 * https://fetch.spec.whatwg.org/#http-cors-protocol
 */

const EXPOSED = [
  "retry-after",
  "x-rotator-key",
  "x-rotator-attempts",
  "x-rotator-model",
  "x-rotator-provider",
  "x-goog-upload-url",
  "x-goog-upload-status",
  "x-goog-upload-chunk-granularity",
  "x-goog-upload-size-received",
].join(", ");

export class Cors {
  readonly #any: boolean;
  readonly #origins: Set<string>;

  constructor(origins: readonly string[]) {
    this.#any = origins.includes("*");
    this.#origins = new Set(origins);
  }

  /** The Access-Control-Allow-Origin value for a request's Origin, if it is allowed. */
  allowedOrigin(origin: string | null): string | undefined {
    if (this.#any) return "*";
    return origin !== null && this.#origins.has(origin) ? origin : undefined;
  }

  /** Adds CORS fields to a response for a request from `origin`. */
  decorate(headers: Headers, origin: string | null): void {
    if (origin === null) return;
    const allowed = this.allowedOrigin(origin);
    if (!this.#any) headers.append("vary", "Origin");
    if (allowed === undefined) return;
    headers.set("access-control-allow-origin", allowed);
    headers.set("access-control-expose-headers", EXPOSED);
  }

  /** The answer to a preflight (OPTIONS with Access-Control-Request-Method). */
  preflight(request: Request): Response {
    const headers = new Headers();
    const origin = request.headers.get("origin");
    this.decorate(headers, origin);
    if (headers.has("access-control-allow-origin")) {
      headers.set("access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      const asked = request.headers.get("access-control-request-headers");
      headers.set(
        "access-control-allow-headers",
        asked ?? "authorization, content-type, x-goog-api-key, x-access-token",
      );
      headers.set("access-control-max-age", "86400");
    }
    return new Response(null, { status: 204, headers });
  }
}
