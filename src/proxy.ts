/**
 * One proxied request, top to bottom: authenticate, read the body, pick a key, forward, classify
 * the answer, then retry on another key or answer. Decisions come from pure modules (classify,
 * cooldown, pool); this file performs the effects.
 *
 * Order of resort: another key (another project first after a quota hit); for server trouble a
 * short backoff; when no key is usable, a 429 with Retry-After (exhausted.ts).
 */

import { clientCredential, type TokenSet } from "./auth.ts";
import { readBody } from "./body.ts";
import { classify, type Outcome } from "./classify.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { effectOf } from "./cooldown.ts";
import { errorResponse } from "./errors.ts";
import type { AttemptResult, ProxyObserver, RequestEvent } from "./events.ts";
import { exhaustedAnswer, noKeysAnswer } from "./exhausted.ts";
import type { PoolKey } from "./keys.ts";
import { describeError, type Logger } from "./log.ts";
import type { KeyPool } from "./pool.ts";
import { relayBody, type RelayResult } from "./relay.ts";
import { type GeminiRoute, openAiBodyFields, type StreamMode } from "./route.ts";
import type { StateSync } from "./state/sync.ts";
import { clientHeaders, upstreamHeaders, upstreamUrl } from "./upstream.ts";
import { tokensFromTail, type UsageRecorder } from "./usage.ts";

export interface ProxyContext {
  readonly config: Config;
  readonly tokens: TokenSet;
  readonly pool: KeyPool;
  readonly sync: StateSync;
  readonly usage: UsageRecorder;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  readonly log: Logger;
  readonly observers: readonly ProxyObserver[];
}

/** Error bodies are small; more than this is not an error body worth reading whole. */
const ERROR_BODY_LIMIT = 64 * 1024;

/** Per-request bookkeeping for the log line and observers. */
class Trace {
  readonly keyIds: string[] = [];
  attempts = 0;
  upstreamMs?: number;
  model: string;
  readonly #t0 = performance.now();

  constructor(
    readonly request: Request,
    readonly url: URL,
    readonly route: GeminiRoute,
    readonly ctx: ProxyContext,
  ) {
    this.model = route.model;
  }

  elapsed(): number {
    return performance.now() - this.#t0;
  }

  /** Reports the finished request once: log line and observers. */
  done(
    status: number,
    answeredBy: RequestEvent["answeredBy"],
    extra: Partial<RequestEvent> = {},
  ): void {
    const event: RequestEvent = {
      method: this.request.method,
      path: this.url.pathname,
      route: this.route.kind,
      model: this.model,
      status,
      attempts: this.attempts,
      keyIds: this.keyIds,
      answeredBy,
      durationMs: round(this.elapsed()),
      end: "answered",
      ...(this.upstreamMs !== undefined ? { upstreamMs: round(this.upstreamMs) } : {}),
      ...extra,
    };
    for (const observer of this.ctx.observers) {
      try {
        observer.request?.(event);
      } catch (error) {
        this.ctx.log.error("observer failed", { error: describeError(error) });
      }
    }
    if (this.ctx.config.logRequests) {
      const { keyIds, ...fields } = event;
      this.ctx.log.info("request", { ...fields, keys: keyIds });
    }
    this.ctx.usage.maybeFlush();
  }
}

/** Answers one request for a Gemini API path. */
export async function proxyRequest(
  request: Request,
  url: URL,
  route: GeminiRoute,
  ctx: ProxyContext,
): Promise<Response> {
  const trace = new Trace(request, url, route, ctx);
  const own = (response: Response, reason: string) => {
    trace.done(response.status, "rotator", { reason });
    return response;
  };

  if (
    ctx.tokens.size > 0 && !ctx.tokens.matches(clientCredential(request.headers, url.searchParams))
  ) {
    await request.body?.cancel().catch(() => {});
    return own(
      errorResponse(
        401,
        "UNAUTHENTICATED",
        "Missing or wrong access token. Send the rotator's access token where you would put a " +
          "Gemini API key (x-goog-api-key, ?key=, Authorization: Bearer, or X-Access-Token).",
        { reason: "ACCESS_TOKEN_INVALID" },
      ),
      "ACCESS_TOKEN_INVALID",
    );
  }
  if (ctx.pool.size === 0) {
    await request.body?.cancel().catch(() => {});
    const { response, reason } = noKeysAnswer();
    return own(response, reason);
  }

  const body = await readBody(request, ctx.config.maxBodyBytes);
  if (!body.ok) {
    if (body.reason === "aborted") {
      return own(
        errorResponse(499, "CANCELLED", "The client closed the request."),
        "CLIENT_CLOSED",
      );
    }
    return own(
      errorResponse(
        413,
        "INVALID_ARGUMENT",
        `The request body is larger than the rotator's limit of ${body.limit} bytes ` +
          `(MAX_BODY_BYTES). Upload large media through the Files API instead.`,
        { reason: "BODY_TOO_LARGE" },
      ),
      "BODY_TOO_LARGE",
    );
  }

  let stream: StreamMode = route.stream;
  if (route.kind === "openai") {
    const fields = openAiBodyFields(body.bytes);
    if (fields.model) trace.model = fields.model;
    stream = fields.stream ? "sse" : "none";
  }
  const target = upstreamUrl(ctx.config.upstreamOrigin, url.pathname, url.search);
  const payload = request.method === "GET" || request.method === "HEAD" ? undefined : body.bytes;

  const started = ctx.clock.now();
  const avoidProjects = new Set<string>();
  const tried = new Set<string>();
  let transientRetries = 0;
  let last: { outcome?: AttemptResult; passThrough?: () => Response } = {};

  for (let attempt = 1; attempt <= ctx.config.maxAttempts; attempt++) {
    if (attempt > 1 && ctx.clock.now() - started >= ctx.config.retryBudgetMs) break;
    const now = ctx.clock.now();
    const key = ctx.pool.pick(trace.model, now, { avoidKeys: tried, avoidProjects });
    if (!key) {
      const { response, reason } = exhaustedAnswer(
        trace.model,
        ctx.pool.size,
        ctx.pool.nextRecovery(trace.model, now),
        now,
      );
      return own(response, reason);
    }
    trace.attempts = attempt;
    trace.keyIds.push(key.id);
    tried.add(key.id);

    const sent = performance.now();
    const answer = await send(key);
    trace.upstreamMs = performance.now() - sent;

    if ("error" in answer) {
      const result: AttemptResult = answer.timedOut ? "timeout" : "network_error";
      report(key, 0, result);
      if (request.signal.aborted) {
        return own(
          errorResponse(499, "CANCELLED", "The client closed the request."),
          "CLIENT_CLOSED",
        );
      }
      ctx.log.warn("upstream request failed", { key: key.id, error: describeError(answer.error) });
      last = { outcome: result };
      if (answer.timedOut) break;
      if (!(await backoff(transientRetries++))) break;
      avoidProjects.add(key.project);
      continue;
    }

    const upstream = answer.response;
    if (upstream.status < 400) return succeed(key, upstream);

    const text = await readLimitedText(upstream, ERROR_BODY_LIMIT);
    const outcome = classify({ status: upstream.status, body: text });
    report(key, upstream.status, outcome.kind);
    ctx.sync.record(
      effectOf(outcome, {
        keyId: key.id,
        project: key.project,
        model: trace.model,
        status: upstream.status,
        now: ctx.clock.now(),
        settings: ctx.config,
      }),
    );
    const passThrough = () => {
      const response = new Response(text.replaceAll(key.value, "[REDACTED]"), {
        status: upstream.status,
        headers: clientHeaders(upstream.headers, key),
      });
      trace.done(upstream.status, "upstream");
      return response;
    };
    last = { outcome: outcome.kind, passThrough };

    if (outcome.kind === "client_error") return passThrough();
    if (outcome.kind === "not_key") {
      ctx.log.warn("upstream refused for a reason no key can fix", {
        reason: outcome.reason,
        status: upstream.status,
        key: key.id,
      });
      return passThrough();
    }
    if (outcome.kind === "transient") {
      // "500: retry once, then pass through"; 503 overloaded: a few short backoffs.
      const allowed = outcome.reason === "INTERNAL"
        ? Math.min(1, ctx.config.transientRetries)
        : ctx.config.transientRetries;
      if (transientRetries >= allowed || !(await backoff(transientRetries++))) {
        return passThrough();
      }
      avoidProjects.add(key.project);
      continue;
    }
    // Quota or key trouble: the next pick skips this bucket or key; prefer another project.
    avoidProjects.add(key.project);
  }

  // Attempts or time budget ran out.
  if (last.outcome === "network_error" || last.outcome === "timeout") {
    const timedOut = last.outcome === "timeout";
    return own(
      errorResponse(
        timedOut ? 504 : 502,
        timedOut ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
        timedOut
          ? `The Gemini API did not answer within ${ctx.config.upstreamTimeoutMs} ms.`
          : "The Gemini API could not be reached. Retry shortly.",
        { reason: timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE" },
      ),
      timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE",
    );
  }
  if (last.outcome === "transient" && last.passThrough) return last.passThrough();
  const now = ctx.clock.now();
  const recovery = ctx.pool.nextRecovery(trace.model, now);
  if (recovery && recovery.at <= now) {
    // Keys remain that were not tried: the attempt limit, not the pool, ran out.
    return own(
      errorResponse(
        429,
        "RESOURCE_EXHAUSTED",
        `${trace.attempts} keys in a row were rate-limited or rejected for ` +
          `${trace.model || "this request"}; other keys may still have quota. Retry now.`,
        { reason: "ATTEMPTS_EXHAUSTED", headers: { "retry-after": "1" } },
      ),
      "ATTEMPTS_EXHAUSTED",
    );
  }
  const { response, reason } = exhaustedAnswer(trace.model, ctx.pool.size, recovery, now);
  return own(response, reason);

  /** One upstream call; the timeout covers the wait for response headers only. */
  async function send(
    key: PoolKey,
  ): Promise<{ response: Response } | { error: unknown; timedOut: boolean }> {
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException("upstream timeout", "TimeoutError")),
      ctx.config.upstreamTimeoutMs,
    );
    try {
      const response = await ctx.fetch(target, {
        method: request.method,
        headers: upstreamHeaders(request.headers, key, route.kind),
        body: payload,
        redirect: "manual",
        signal: AbortSignal.any([request.signal, deadline.signal]),
      });
      return { response };
    } catch (error) {
      return { error, timedOut: deadline.signal.aborted && !request.signal.aborted };
    } finally {
      clearTimeout(timer);
    }
  }

  function report(key: PoolKey, status: number, result: AttemptResult) {
    ctx.usage.count(key.id, trace.model, {
      requests: 1,
      ...(result === "ok" ? { successes: 1 } : {}),
      ...(status === 429 || result === "quota" ? { rateLimited: 1 } : {}),
      ...(result !== "ok" && result !== "quota" ? { errors: 1 } : {}),
    });
    const event = {
      keyId: key.id,
      project: key.project,
      model: trace.model,
      route: route.kind,
      status,
      result,
      latencyMs: round(trace.upstreamMs ?? 0),
    };
    for (const observer of ctx.observers) observer.attempt?.(event);
  }

  async function backoff(retry: number): Promise<boolean> {
    const delay = ctx.config.retryBackoffMs * 2 ** retry * (0.75 + Math.random() * 0.5);
    if (ctx.clock.now() - started + delay >= ctx.config.retryBudgetMs) return false;
    try {
      await ctx.clock.sleep(delay, request.signal);
      return true;
    } catch {
      return false;
    }
  }

  function succeed(key: PoolKey, upstream: Response): Response {
    report(key, upstream.status, "ok");
    const headers = clientHeaders(upstream.headers, key);
    if (stream !== "none") headers.delete("content-length");
    headers.set("x-rotator-key", key.id);
    headers.set("x-rotator-attempts", String(trace.attempts));
    if (upstream.body === null) {
      trace.done(upstream.status, "upstream");
      return new Response(null, { status: upstream.status, headers });
    }
    const relayed = relayBody(upstream.body, {
      mode: stream,
      idleTimeoutMs: ctx.config.streamIdleTimeoutMs,
      onEnd: (result: RelayResult) => {
        const tokens = tokensFromTail(result.tail);
        if (tokens) ctx.usage.count(key.id, trace.model, tokens);
        if (result.end !== "complete" && result.end !== "client_cancelled") {
          ctx.log.warn("upstream stream failed mid-answer", { key: key.id, end: result.end });
        }
        trace.done(upstream.status, "upstream", {
          end: result.end,
          ...(result.firstChunkMs !== undefined
            ? { firstByteMs: round((trace.upstreamMs ?? 0) + result.firstChunkMs) }
            : {}),
        });
      },
    });
    return new Response(relayed, { status: upstream.status, headers });
  }
}

/** Reads at most `limit` bytes of a body as text and releases the rest. */
async function readLimitedText(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // A body cut short still classifies by what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  const decoder = new TextDecoder();
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") +
    decoder.decode();
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export type { Outcome };
