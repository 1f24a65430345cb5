/**
 * Client and admin credentials: where clients put them, and a comparison whose time does not
 * depend on how much of a guess was right.
 */

/** Where the Gemini SDKs, the OpenAI SDK, curl users and other tools put a key. */
export function clientCredential(headers: Headers, search: URLSearchParams): string | undefined {
  const explicit = headers.get("x-access-token") ?? headers.get("x-goog-api-key");
  if (explicit) return explicit.trim();
  const bearer = bearerToken(headers.get("authorization"));
  if (bearer) return bearer;
  const query = search.get("key");
  return query ? query.trim() : undefined;
}

/** The admin token of a request: `X-Admin-Token`, or `Authorization: Bearer`. */
export function adminCredential(headers: Headers): string | undefined {
  const explicit = headers.get("x-admin-token");
  if (explicit) return explicit.trim();
  return bearerToken(headers.get("authorization"));
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | null): string | undefined {
  if (!authorization) return undefined;
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
  return match ? match[1] : undefined;
}

/**
 * Checks `candidate` against every allowed token without stopping early, so response time
 * reveals neither which token nor how many leading characters matched.
 */
export class TokenSet {
  readonly #tokens: readonly string[];

  constructor(tokens: readonly string[]) {
    this.#tokens = [...tokens];
  }

  get size(): number {
    return this.#tokens.length;
  }

  matches(candidate: string | undefined): boolean {
    const given = candidate ?? "";
    let matched = 0;
    for (const token of this.#tokens) matched |= constantTimeEqual(given, token) ? 1 : 0;
    return matched === 1 && candidate !== undefined;
  }
}

/**
 * Equality whose running time depends only on the length of `expected`: every UTF-16 code unit
 * is compared and the length difference is folded into the same accumulator. (Comparing code
 * units, not encoded bytes, spares an encoding of the candidate on every request.)
 */
export function constantTimeEqual(given: string, expected: string): boolean {
  let difference = given.length ^ expected.length;
  const length = Math.max(1, given.length);
  for (let i = 0; i < expected.length; i++) {
    difference |= (given.charCodeAt(i % length) || 0) ^ expected.charCodeAt(i);
  }
  return difference === 0;
}
