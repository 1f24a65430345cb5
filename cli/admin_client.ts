/**
 * The keys CLI's side of the admin API: one authenticated JSON call per operation, with the
 * rotator's own error message (Google's error shape) turned into an exit code and a line of
 * text. The admin token is sent in a header, never in the URL.
 */

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, checkFailed: 4 } as const;

/** Wrong arguments: exit 2 with the message. */
export class UsageError extends Error {}
/** The rotator said no, or could not be reached: exit with `code`. */
export class Refused extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

/** The admin API over fetch; errors become Refused with the rotator's own message. */
export class AdminClient {
  readonly #base: string;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(url: string, token: string | undefined, fetchFn: typeof fetch) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new UsageError(`--url/ROTATOR_URL is not a URL: ${JSON.stringify(url.slice(0, 100))}`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new UsageError("--url/ROTATOR_URL must start with http:// or https://");
    }
    this.#base = base.href.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = fetchFn;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    if (!this.#token) {
      throw new UsageError("no admin token: set ADMIN_TOKEN (or pass --token)");
    }
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw new Refused(
        `cannot reach the rotator at ${this.#base}: ${(error as Error).message}`,
        EXIT.unreachable,
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = (json as { error?: { message?: string; status?: string } })?.error;
      const message = error?.message ??
        `${this.#base}${path} answered HTTP ${response.status} without an error message` +
          " (is this a rotator?)";
      const hint = response.status === 401 ? " Check ADMIN_TOKEN." : "";
      throw new Refused(
        `${message}${hint} (HTTP ${response.status}${error?.status ? ` ${error.status}` : ""})`,
        EXIT.refused,
      );
    }
    if (json === undefined) {
      throw new Refused(
        `${this.#base}${path} did not answer JSON (is this a rotator?)`,
        EXIT.refused,
      );
    }
    return json;
  }
}
