/**
 * One proxied request, top to bottom: authenticate, read the body, find who owns the resources
 * it names, pick a key, forward, classify the answer, then retry on another key or answer.
 * Decisions come from pure modules (classify, cooldown, pool, resources); this file performs the
 * effects.
 *
 * Order of resort: another key (another project first after a quota hit); for server trouble a
 * short backoff; when no key is usable, a 429 with Retry-After (exhausted.ts).
 */

import { expiryInAnswer, type Ownership, type ResourceAffinity } from "./affinity.ts";
import { clientCredential, type TokenSet } from "./auth.ts";
import { readBody } from "./body.ts";
import { classify } from "./classify.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { effectOf } from "./cooldown.ts";
import { errorResponse } from "./errors.ts";
import type { AttemptResult, ProxyObserver } from "./events.ts";
import { exhaustedAnswer, noKeysAnswer, type Pin, pinnedAnswer } from "./exhausted.ts";
import type { PoolKey } from "./keys.ts";
import { describeError, type Logger } from "./log.ts";
import type { KeyPool, Recovery } from "./pool.ts";
import type { QuotaLedger, Ticket } from "./quota.ts";
import type { QuotaCounter } from "./state/quota_counter.ts";
import { listAcrossProjects, listedCollection } from "./listing.ts";
import { relayBody, type RelayResult } from "./relay.ts";
import { mayNameResources, resourcesInAnswer, resourcesInRequest } from "./resources.ts";
import { type GeminiRoute, openAiBodyFields, type StreamMode } from "./route.ts";
import type { StateSync } from "./state/sync.ts";
import { Trace } from "./trace.ts";
import {
  isUploadChunk,
  rewriteUploadUrl,
  unknownUploadAnswer,
  uploadKeyGoneAnswer,
} from "./upload.ts";
import { clientHeaders, upstreamHeaders, upstreamUrl } from "./upstream.ts";
import { tokensFromTail, type UsageRecorder } from "./usage.ts";

export interface ProxyContext {
  readonly config: Config;
  readonly tokens: TokenSet;
  readonly pool: KeyPool;
  readonly sync: StateSync;
  readonly usage: UsageRecorder;
  readonly affinity: ResourceAffinity;
  /** Known per-window limits (pacing); sends are counted here as they leave. */
  readonly ledger: QuotaLedger;
  /** Shares pacing counts and learned limits between instances (a no-op for one process). */
  readonly quotaCounter: QuotaCounter;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  readonly log: Logger;
  readonly observers: readonly ProxyObserver[];
}

/** Error bodies are small; more than this is not an error body worth reading whole. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Resource-management answers read whole to learn the names they create. */
const RESOURCE_ANSWER_LIMIT = 1024 * 1024;

/** Answers one request for a Gemini API path. */
export async function proxyRequest(
  request: Request,
  url: URL,
  route: GeminiRoute,
  ctx: ProxyContext,
): Promise<Response> {
  const trace = new Trace(request, url, route, ctx);
  const chunk = route.kind === "upload" && isUploadChunk(request.headers, url.searchParams);
  const uploadName = chunk ? `upload:${url.searchParams.get("upload_id")}` : undefined;
  const upload = uploadName ? await ctx.affinity.ownerOf([uploadName], ctx.clock.now()) : undefined;

  const credential = clientCredential(request.headers, url.searchParams);
  // py-genai sends no key with upload chunks: a session this rotator opened is the capability.
  const byUploadSession = credential === undefined && upload?.kind === "owned";
  if (ctx.tokens.size > 0 && !byUploadSession && !ctx.tokens.matches(credential)) {
    await request.body?.cancel().catch(() => {});
    return trace.own(
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
    return trace.own(response, reason);
  }
  if (chunk) return await forwardUploadChunk(request, url, upload, trace, ctx);

  const body = await readBody(request, ctx.config.maxBodyBytes);
  if (!body.ok) {
    if (body.reason === "aborted") return trace.clientClosed();
    return trace.own(
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
  const names = resourcesInRequest(route.resource, body.bytes);
  const ownership: Ownership = await ctx.affinity.ownerOf(names, ctx.clock.now());
  if (ownership.kind === "conflict") {
    return trace.own(
      errorResponse(
        400,
        "INVALID_ARGUMENT",
        `The request names resources of different Google Cloud projects (${
          ownership.records.map((r) => `${r.name}: key ${r.keyId}`).join(", ")
        }); no single key can reach them all. Re-create them with one key.`,
        { reason: "RESOURCES_IN_DIFFERENT_PROJECTS" },
      ),
      "RESOURCES_IN_DIFFERENT_PROJECTS",
    );
  }

  const target = upstreamUrl(ctx.config.upstreamOrigin, route.upstreamPath, url.search);
  const payload = request.method === "GET" || request.method === "HEAD" ? undefined : body.bytes;
  let pinned: Pin | undefined = ownership.kind === "owned"
    ? {
      project: ownership.record.project,
      why: `${ownership.record.name} belongs to project ${ownership.record.project} (created ` +
        `with key ${ownership.record.keyId})`,
    }
    : undefined;
  const listing = listedCollection(request.method, route.resource, url.searchParams);
  if (listing && !pinned) {
    const owners = await ctx.affinity.projectsOwning(listing, ctx.clock.now());
    if (owners.size > 1) {
      return await listAcrossProjects(listing, [...owners], target, request, trace, ctx);
    }
    // The one project holding this collection's resources is the one whose listing matters.
    if (owners.size === 1) {
      const [project] = owners;
      pinned = {
        project,
        why: `the ${listing} made through the rotator are in project ${project}`,
      };
    }
  }
  // Names nobody recorded: the owner is found by trying projects until one can see them.
  const discovering = ownership.kind === "unknown";

  const started = ctx.clock.now();
  /** About four bytes of JSON per input token: an estimate for token-per-minute pacing. */
  const tokenEstimate = Math.ceil(body.bytes.byteLength / 4);
  let ticket: Ticket | undefined;
  const avoidProjects = new Set<string>();
  const tried = new Set<string>();
  let transientRetries = 0;
  let last: { outcome?: AttemptResult; passThrough?: () => Response } = {};

  for (let attempt = 1; attempt <= ctx.config.maxAttempts; attempt++) {
    if (attempt > 1 && ctx.clock.now() - started >= ctx.config.retryBudgetMs) break;
    const now = ctx.clock.now();
    const choice = choose(now);
    if (!choice.key) {
      if (last.outcome === "client_error" && last.passThrough) return last.passThrough();
      const { response, reason } = pinned
        ? pinnedAnswer(pinned, trace.model, choice.recovery, now)
        : exhaustedAnswer(trace.model, ctx.pool.size, choice.recovery, now);
      return trace.own(response, reason);
    }
    const key = choice.key;
    if (ctx.quotaCounter.shared && ctx.ledger.active) {
      const reservations = ctx.ledger.reservations(key.project, trace.model, now, tokenEstimate);
      const reserved = reservations.length === 0
        ? { ok: true as const }
        : await ctx.quotaCounter.reserve(reservations, now);
      if (!reserved.ok) {
        // Other instances used this bucket's window: hold it here too and choose again.
        ctx.ledger.hold(key.project, trace.model, reserved.until);
        attempt--;
        continue;
      }
    }
    if (discovering && last.outcome === "client_error" && avoidProjects.has(key.project)) {
      // Every project was asked and none could see the resource: Google's answer stands.
      return last.passThrough!();
    }
    trace.attempts = attempt;
    trace.keyIds.push(key.id);
    tried.add(key.id);

    // Counted when it leaves, so concurrent requests see it (an estimate of its input tokens
    // until the answer's usageMetadata says).
    ticket = ctx.ledger.active
      ? ctx.ledger.record(key.project, trace.model, now, tokenEstimate)
      : undefined;
    const sent = performance.now();
    const answer = await send(key);
    trace.upstreamMs = performance.now() - sent;

    if ("error" in answer) {
      const result: AttemptResult = answer.timedOut ? "timeout" : "network_error";
      report(key, 0, result);
      if (request.signal.aborted) return trace.clientClosed();
      ctx.log.warn("upstream request failed", { key: key.id, error: describeError(answer.error) });
      last = { outcome: result };
      if (answer.timedOut) break;
      if (!(await backoff(transientRetries++))) break;
      avoidProjects.add(key.project);
      continue;
    }

    const upstream = answer.response;
    if (upstream.status < 400) return await succeed(key, upstream);

    const text = await readLimitedText(upstream, ERROR_BODY_LIMIT);
    const outcome = classify({ status: upstream.status, body: text });
    report(key, upstream.status, outcome.kind);
    if (outcome.kind === "quota" && ctx.config.pacing === "learn") {
      ctx.ledger.learn(key.project, trace.model, outcome, ctx.clock.now());
      const rule = ctx.ledger.learnedRule(key.project, trace.model, outcome);
      if (rule?.window !== undefined && ctx.quotaCounter.shared) {
        ctx.quotaCounter.saveRule({ project: key.project, model: trace.model, rule }).catch(
          (error) => ctx.log.warn("learned limit not shared", { error: describeError(error) }),
        );
      }
    }
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

    if (outcome.kind === "client_error") {
      // A resource another project created looks missing (403/404) to this one: try another.
      if (discovering && (upstream.status === 403 || upstream.status === 404)) {
        avoidProjects.add(key.project);
        continue;
      }
      return passThrough();
    }
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
    const reason = timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE";
    return trace.own(
      errorResponse(
        timedOut ? 504 : 502,
        timedOut ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
        timedOut
          ? `The Gemini API did not answer within ${ctx.config.upstreamTimeoutMs} ms.`
          : "The Gemini API could not be reached. Retry shortly.",
        { reason },
      ),
      reason,
    );
  }
  if ((last.outcome === "transient" || last.outcome === "client_error") && last.passThrough) {
    return last.passThrough();
  }
  const now = ctx.clock.now();
  let recovery: Recovery | undefined;
  if (pinned) {
    const choice = ctx.pool.pickInProject(trace.model, pinned.project, now);
    recovery = choice.key ? { at: now } : choice.recovery;
  } else {
    recovery = ctx.pool.nextRecovery(trace.model, now);
  }
  if (recovery !== undefined && recovery.at <= now) {
    // Keys remain that were not tried: the attempt limit, not the pool, ran out.
    return trace.own(
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
  const { response, reason } = pinned
    ? pinnedAnswer(pinned, trace.model, recovery, now)
    : exhaustedAnswer(trace.model, ctx.pool.size, recovery, now);
  return trace.own(response, reason);

  /** The next key: from the owning project when pinned, else round-robin over the pool. */
  function choose(now: number): { key: PoolKey; recovery?: undefined } | {
    key?: undefined;
    recovery: Recovery | undefined;
  } {
    if (pinned) {
      const choice = ctx.pool.pickInProject(trace.model, pinned.project, now);
      return choice.key ? { key: choice.key } : { recovery: choice.recovery };
    }
    const key = ctx.pool.pick(trace.model, now, { avoidKeys: tried, avoidProjects });
    return key ? { key } : { recovery: ctx.pool.nextRecovery(trace.model, now) };
  }

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
    trace.attempt(key, status, result);
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

  async function succeed(key: PoolKey, upstream: Response): Promise<Response> {
    report(key, upstream.status, "ok");
    const headers = clientHeaders(upstream.headers, key);
    if (stream !== "none") headers.delete("content-length");
    headers.set("x-rotator-key", key.id);
    headers.set("x-rotator-attempts", String(trace.attempts));
    const now = ctx.clock.now();
    if (route.kind === "upload") {
      const id = rewriteUploadUrl(headers, ctx.config.publicBaseUrl ?? url.origin);
      if (id) ctx.affinity.remember([`upload:${id}`], key, now);
    }
    if (discovering && names.length > 0) ctx.affinity.remember(names, key, now);
    if (request.method === "DELETE") names.forEach((name) => ctx.affinity.forget(name));

    if (upstream.body === null) {
      trace.done(upstream.status, "upstream");
      return new Response(null, { status: upstream.status, headers });
    }
    let body: ReadableStream<Uint8Array> = upstream.body;
    if (stream === "none" && mayNameResources(request.method, route.resource)) {
      // Small management answers: read whole to learn which resources this key's project owns.
      const read = await readUpTo(body, RESOURCE_ANSWER_LIMIT);
      if (read.complete) {
        const text = new TextDecoder().decode(read.bytes);
        const created = resourcesInAnswer(text);
        const expiry = created.length === 1 ? expiryInAnswer(text) : undefined;
        ctx.affinity.remember(created, key, now, expiry);
        trace.done(upstream.status, "upstream");
        return new Response(read.bytes, { status: upstream.status, headers });
      }
      body = read.stream;
    }
    const relayed = relayBody(body, {
      mode: stream,
      idleTimeoutMs: ctx.config.streamIdleTimeoutMs,
      onEnd: (result: RelayResult) => {
        const tokens = tokensFromTail(result.tail);
        if (tokens) {
          ctx.usage.count(key.id, trace.model, tokens);
          if (ticket) ctx.ledger.settleTokens(ticket, tokens.promptTokens);
        }
        if (result.end !== "complete" && result.end !== "client_cancelled") {
          ctx.log.warn("upstream stream failed mid-answer", { key: key.id, end: result.end });
        }
        trace.done(upstream.status, "upstream", {
          end: result.end,
          ...(result.firstChunkMs !== undefined
            ? { firstByteMs: Math.round((trace.upstreamMs ?? 0) + result.firstChunkMs) }
            : {}),
        });
      },
    });
    return new Response(relayed, { status: upstream.status, headers });
  }
}

/**
 * A chunk of a resumable upload: streamed to Google with the key that opened the session, no
 * buffering and no retry; the final chunk's answer names the file, which is then pinned too.
 */
async function forwardUploadChunk(
  request: Request,
  url: URL,
  upload: Ownership | undefined,
  trace: Trace,
  ctx: ProxyContext,
): Promise<Response> {
  if (upload?.kind !== "owned") {
    await request.body?.cancel().catch(() => {});
    return trace.own(unknownUploadAnswer(), "UNKNOWN_UPLOAD");
  }
  const now = ctx.clock.now();
  const key = ctx.pool.key(upload.record.keyId);
  const off = key && ctx.pool.unavailability(key, "", now);
  if (!key || (off && !("until" in off.cause))) {
    await request.body?.cancel().catch(() => {});
    return trace.own(
      uploadKeyGoneAnswer(key, key ? "is disabled" : "was removed"),
      "UPLOAD_KEY_UNAVAILABLE",
    );
  }
  trace.attempts = 1;
  trace.keyIds.push(key.id);
  const headers = upstreamHeaders(request.headers, key, "upload");
  const length = request.headers.get("content-length");
  if (length !== null) headers.set("content-length", length);
  const sent = performance.now();
  let upstream: Response;
  try {
    upstream = await ctx.fetch(
      upstreamUrl(ctx.config.upstreamOrigin, url.pathname, url.search),
      {
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        signal: request.signal,
      },
    );
  } catch (error) {
    trace.attempt(key, 0, "network_error");
    if (request.signal.aborted) return trace.clientClosed();
    ctx.log.warn("upload chunk failed", { key: key.id, error: describeError(error) });
    return trace.own(
      errorResponse(
        502,
        "UNAVAILABLE",
        "The upload chunk could not be sent to the Gemini API; resume the upload from the last acknowledged offset.",
        {
          reason: "UPSTREAM_UNREACHABLE",
        },
      ),
      "UPSTREAM_UNREACHABLE",
    );
  }
  trace.upstreamMs = performance.now() - sent;
  trace.attempt(key, upstream.status, upstream.status < 400 ? "ok" : "client_error");
  const text = await readLimitedText(upstream, RESOURCE_ANSWER_LIMIT);
  if (upstream.headers.get("x-goog-upload-status") === "final" && upstream.status < 400) {
    const created = resourcesInAnswer(text);
    ctx.affinity.remember(created, key, ctx.clock.now(), expiryInAnswer(text));
  }
  const responseHeaders = clientHeaders(upstream.headers, key);
  responseHeaders.delete("content-length");
  trace.done(upstream.status, "upstream");
  return new Response(text.replaceAll(key.value, "[REDACTED]"), {
    status: upstream.status,
    headers: responseHeaders,
  });
}

/**
 * Reads a body whole if it is at most `limit` bytes; otherwise gives back a stream that yields
 * what was read followed by the rest, so nothing is lost.
 */
async function readUpTo(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<
  { complete: true; bytes: Uint8Array<ArrayBuffer> } | {
    complete: false;
    stream: ReadableStream<Uint8Array>;
  }
> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limit) {
      return {
        complete: false,
        stream: new ReadableStream<Uint8Array>({
          pull(controller) {
            const next = chunks.shift();
            if (next) return controller.enqueue(next);
            return reader.read().then(({ done, value }) => {
              if (done) controller.close();
              else controller.enqueue(value);
            });
          },
          cancel: (reason) => reader.cancel(reason),
        }),
      };
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { complete: true, bytes };
}

/** Reads at most `limit` bytes of a body as text and releases the rest. */
async function readLimitedText(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      total += value.byteLength;
    }
  } catch {
    // A body cut short still classifies by what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  return text + decoder.decode();
}
