/**
 * The Live API (a WebSocket, `BidiGenerateContent`) through the pool: the client's upgrade is
 * checked like any request, the client's first message (`setup`, which names the model) picks
 * a key usable for that model, the upstream socket opens with the key in the x-goog-api-key
 * header (never the URL), and frames are relayed both ways as they come. A key refused at the
 * handshake is rotated to the next; a close or error on either side closes the other. When it
 * ends, the session is reported like a request (the log line, metrics, usage, alerts).
 *
 * Endpoint and key placement: https://ai.google.dev/api/live; ../shared/gemini-api-facts.md §1.4
 * (js-genai sends `?key=`, py-genai the x-goog-api-key header).
 */

import { clientCredential, type TokenSet } from "./auth.ts";
import type { Clock } from "./clock.ts";
import { effectOf } from "./cooldown.ts";
import { accessTokenRefused, errorResponse } from "./errors.ts";
import { noKeysAnswer } from "./exhausted.ts";
import type { PoolKey } from "./keys.ts";
import { describeError, type Logger } from "./log.ts";
import type { KeyPool } from "./pool.ts";
import { stripModelsPrefix } from "./route.ts";
import type { StateSync } from "./state/sync.ts";
import type { Config } from "./config.ts";
import type { AttemptResult, ProxyObserver } from "./events.ts";
import { Trace } from "./trace.ts";
import type { UsageRecorder } from "./usage.ts";

/** The runtime's WebSocket plumbing (Deno.upgradeWebSocket and a client that sends headers). */
export interface WebSocketAdapters {
  upgrade(request: Request): { socket: WebSocket; response: Response };
  connect(url: string, headers: Record<string, string>): WebSocket;
}

export interface LiveContext {
  readonly config: Config;
  readonly tokens: TokenSet;
  readonly pool: KeyPool;
  readonly sync: StateSync;
  readonly clock: Clock;
  readonly log: Logger;
  /** A session is reported like a request: metrics, usage, alerts, the request log line. */
  readonly observers: readonly ProxyObserver[];
  readonly usage: UsageRecorder;
  readonly webSockets?: WebSocketAdapters;
}

/** BidiGenerateContent (and its Constrained form for ephemeral tokens), BidiGenerateMusic. */
const LIVE_PATH =
  /^\/ws\/google\.ai\.generativelanguage\.v1(?:alpha|beta)?\.GenerativeService\.Bidi(?:GenerateContent(?:Constrained)?|GenerateMusic)$/;
/** How long the client may take to send its setup message. */
const SETUP_TIMEOUT_MS = 15_000;
/** Client messages kept while the upstream socket opens (setup plus early audio). */
const MAX_QUEUED = 64;

/**
 * Whether a path is a Live API endpoint. @google/genai builds its WebSocket URL from a base URL
 * that ends in "/", so its path starts with "//ws/": leading slashes are folded.
 */
export function isLivePath(pathname: string): boolean {
  return pathname.includes("/ws/") && LIVE_PATH.test(livePath(pathname));
}

function livePath(pathname: string): string {
  return pathname.replace(/^\/+/, "/");
}

/** Answers a Live API upgrade request. */
export function serveLive(request: Request, url: URL, ctx: LiveContext): Response {
  const path = livePath(url.pathname);
  const trace = new Trace(request, url, {
    kind: "live",
    version: /\.(v1(?:alpha|beta)?)\./.exec(path)?.[1] ?? "",
    resource: path.slice(path.lastIndexOf(".") + 1),
    model: "",
    method: path.slice(path.lastIndexOf(".") + 1),
    stream: "none",
    upstreamPath: path,
  }, ctx);
  if (!ctx.webSockets) {
    return trace.own(
      errorResponse(
        501,
        "FAILED_PRECONDITION",
        "This platform cannot proxy WebSockets; run the rotator on Deno or Deno Deploy for the " +
          "Live API.",
        { reason: "WEBSOCKETS_UNSUPPORTED" },
      ),
      "WEBSOCKETS_UNSUPPORTED",
    );
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return trace.own(
      errorResponse(400, "INVALID_ARGUMENT", "The Live API needs a WebSocket upgrade.", {
        reason: "NOT_A_WEBSOCKET",
      }),
      "NOT_A_WEBSOCKET",
    );
  }
  if (
    ctx.tokens.size > 0 && !ctx.tokens.matches(clientCredential(request.headers, url.searchParams))
  ) {
    return trace.own(accessTokenRefused(), "ACCESS_TOKEN_INVALID");
  }
  if (ctx.pool.size === 0) {
    const { response, reason } = noKeysAnswer();
    return trace.own(response, reason);
  }
  const { socket: client, response } = ctx.webSockets.upgrade(request);
  client.binaryType = "arraybuffer";
  const query = new URLSearchParams(url.searchParams);
  query.delete("key");
  const target = `${ctx.config.upstreamOrigin.replace(/^http/, "ws")}${path}${
    query.size ? `?${query}` : ""
  }`;
  new LiveSession(client, target, trace, ctx).start();
  return response;
}

/** One relayed Live session. */
class LiveSession {
  readonly #queue: (string | ArrayBuffer)[] = [];
  #upstream: WebSocket | undefined;
  #closed = false;
  readonly #tried = new Set<string>();
  #model = "";
  #setupTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why the rotator closed the session itself, for the report (undefined: it did not). */
  #ownReason: string | undefined;
  #opened = false;

  constructor(
    readonly client: WebSocket,
    readonly target: string,
    readonly trace: Trace,
    readonly ctx: LiveContext,
  ) {}

  start(): void {
    this.#setupTimer = setTimeout(
      () => this.#closeClient(1008, "no setup message received", "NO_SETUP_MESSAGE"),
      SETUP_TIMEOUT_MS,
    );
    this.client.onmessage = (event) => {
      if (this.#upstream?.readyState === WebSocket.OPEN) {
        this.#upstream.send(event.data);
        return;
      }
      if (this.#queue.length >= MAX_QUEUED) {
        return this.#closeClient(
          1008,
          "too many messages before setup completed",
          "TOO_MANY_EARLY_MESSAGES",
        );
      }
      this.#queue.push(event.data);
      if (this.#queue.length === 1) {
        clearTimeout(this.#setupTimer);
        this.#model = modelOfSetup(event.data);
        this.trace.model = this.#model;
        this.#connect();
      }
    };
    this.client.onclose = (event) => {
      clearTimeout(this.#setupTimer);
      this.#closed = true;
      this.#report();
      const upstream = this.#upstream;
      if (upstream && upstream.readyState <= WebSocket.OPEN) {
        // A socket we opened as a client may only close with 1000 or 3000-4999.
        const code = event.code === 1000 || (event.code >= 3000 && event.code <= 4999)
          ? event.code
          : 1000;
        upstream.close(code, event.reason.slice(0, 120));
      }
    };
    this.client.onerror = () => {};
  }

  #connect(): void {
    if (this.#closed) return;
    const now = this.ctx.clock.now();
    const key = this.ctx.pool.pick(this.#model, now, { avoidKeys: this.#tried });
    if (!key || this.#tried.has(key.id)) {
      const recovery = this.ctx.pool.nextRecovery(this.#model, now);
      const seconds = recovery && recovery.at !== Infinity
        ? Math.ceil((recovery.at - now) / 1000)
        : undefined;
      const reason = seconds !== undefined ? "ALL_KEYS_COOLING" : "ALL_KEYS_DISABLED";
      for (const observer of this.ctx.observers) {
        observer.exhausted?.({ model: this.#model, reason });
      }
      // 1013 "try again later" is the WebSocket close code for an overloaded service.
      return this.#closeClient(
        1013,
        seconds !== undefined
          ? `RESOURCE_EXHAUSTED: every key is rate-limited; retry in ${seconds} s`
          : "UNAVAILABLE: no usable API key",
        reason,
      );
    }
    this.#tried.add(key.id);
    this.trace.attempts++;
    this.trace.keyIds.push(key.id);
    const sent = performance.now();
    let upstream: WebSocket;
    try {
      upstream = this.ctx.webSockets!.connect(this.target, { "x-goog-api-key": key.value });
    } catch (error) {
      this.ctx.log.warn("live upstream connect failed", {
        key: key.id,
        error: describeError(error),
      });
      this.trace.attempt(key, 0, "network_error");
      return this.#closeClient(1011, "upstream connection failed", "UPSTREAM_UNREACHABLE");
    }
    upstream.binaryType = "arraybuffer";
    this.#upstream = upstream;
    let opened = false;
    upstream.onopen = () => {
      opened = true;
      this.#opened = true;
      this.trace.upstreamMs = performance.now() - sent;
      this.trace.attempt(key, 101, "ok");
      this.ctx.log.info("live session", { key: key.id, model: this.#model });
      for (const message of this.#queue.splice(0)) upstream.send(message);
    };
    upstream.onmessage = (event) => {
      if (this.client.readyState === WebSocket.OPEN) this.client.send(event.data);
    };
    upstream.onerror = (event) => {
      if (opened) return;
      this.#refused(key, (event as ErrorEvent).message ?? "");
    };
    upstream.onclose = (event) => {
      if (!opened) return; // handled by onerror (refused at the handshake)
      this.#closeClient(sendableCode(event.code), event.reason.slice(0, 120));
    };
  }

  /** The handshake failed: learn from a 429, then try the next key. */
  #refused(key: PoolKey, message: string): void {
    const status = Number(/status code:?\s*(\d{3})/i.exec(message)?.[1] ?? 0);
    this.ctx.log.warn("live upstream refused the key at connect", { key: key.id, status });
    this.trace.attempt(key, status, refusalResult(status));
    if (status === 429) {
      this.ctx.sync.record(effectOf({ kind: "quota", window: "unknown" }, {
        keyId: key.id,
        project: key.project,
        model: this.#model,
        status,
        now: this.ctx.clock.now(),
        settings: this.ctx.config,
      }));
    }
    this.#upstream = undefined;
    this.#connect();
  }

  /** Closes the client's socket; `own`: the rotator's machine reason, when it ends the session. */
  #closeClient(code: number, reason: string, own?: string): void {
    clearTimeout(this.#setupTimer);
    if (own !== undefined && !this.#opened) this.#ownReason ??= own;
    if (this.client.readyState <= WebSocket.OPEN) this.client.close(code, reason.slice(0, 120));
  }

  /** The session is over: reported once, as a request whose answer was the upgrade (101). */
  #report(): void {
    if (this.#ownReason !== undefined) {
      this.trace.done(101, "rotator", { reason: this.#ownReason });
    } else if (this.#opened) {
      this.trace.done(101, "upstream", { end: "complete" });
    } else {
      this.trace.done(101, "rotator", { reason: "CLIENT_CLOSED", end: "client_cancelled" });
    }
  }
}

/** How a refused Live handshake is counted (the status from the runtime's error message). */
function refusalResult(status: number): AttemptResult {
  if (status === 429) return "quota";
  if (status === 0) return "network_error";
  return status >= 500 ? "transient" : "client_error";
}

/** The model named by a Live `setup` message (`models/x` -> `x`), or "". */
export function modelOfSetup(data: unknown): string {
  try {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer);
    const model = JSON.parse(text)?.setup?.model;
    return typeof model === "string" ? stripModelsPrefix(model) : "";
  } catch {
    return "";
  }
}

/**
 * A close code the server side may send: 1005, 1006 and 1015 only describe a close (no code,
 * abnormal, TLS) and can never be sent, so they become 1011 (unexpected condition).
 */
function sendableCode(code: number): number {
  const sendable = code === 1000 || (code >= 3000 && code <= 4999) ||
    (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006);
  return sendable ? code : 1011;
}
