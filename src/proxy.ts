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
import { type AttemptsResult, type Plan, RESOURCE_ANSWER_LIMIT, runAttempts } from "./attempts.ts";
import { readLimitedText } from "./read_limited.ts";
import { clientCredential, type TokenSet } from "./auth.ts";
import { readBody } from "./body.ts";
import type { Deadlines } from "./deadlines.ts";
import type { CapacityQueue, Place } from "./capacity.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { accessTokenRefused, errorResponse } from "./errors.ts";
import type { ProxyObserver } from "./events.ts";
import { exhaustedAnswer, noKeysAnswer, type Pin, pinnedAnswer } from "./exhausted.ts";
import { listAcrossProjects, listedCollection } from "./listing.ts";
import { describeError, type Logger } from "./log.ts";
import { fallbackChain } from "./model_fallback.ts";
import { declinedNote, type FallbackResult } from "./provider_fallback.ts";
import type { KeyPool, Recovery } from "./pool.ts";
import type { QuotaLedger } from "./quota.ts";
import { resourcesInAnswer, resourcesInRequest } from "./resources.ts";
import { type GeminiRoute, openAiBodyFields, type StreamMode } from "./route.ts";
import type { QuotaCounter } from "./state/quota_counter.ts";
import type { StateSync } from "./state/sync.ts";
import { Trace } from "./trace.ts";
import { isUploadChunk, unknownUploadAnswer, uploadKeyGoneAnswer } from "./upload.ts";
import { clientHeaders, upstreamHeaders, upstreamUrl } from "./upstream.ts";
import type { UsageRecorder } from "./usage.ts";

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
  /** Requests waiting for a key to recover. */
  readonly capacity: CapacityQueue;
  /** The upstream timeout of every call in flight, on one timer. */
  readonly deadlines: Deadlines;
  /** Another provider's answer when every Gemini key is spent, if any is configured. */
  readonly providerFallback?: (plan: Plan, trace: Trace) => Promise<FallbackResult>;
  /** Relayed streams free each chunk once the next is asked for (relay.ts `releaseChunks`). */
  readonly releaseStreamChunks?: boolean;
}

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
    return trace.own(accessTokenRefused(), "ACCESS_TOKEN_INVALID");
  }
  if (ctx.pool.size === 0) {
    await request.body?.cancel().catch(() => {});
    const { response, reason } = noKeysAnswer();
    return trace.own(response, reason);
  }
  if (chunk) return await forwardUploadChunk(request, url, upload, trace, ctx);

  const read = await readBody(request, ctx.config.maxBodyBytes);
  if (!read.ok) {
    if (read.reason === "aborted") return trace.clientClosed();
    return trace.own(
      errorResponse(
        413,
        "INVALID_ARGUMENT",
        `The request body is larger than the rotator's limit of ${read.limit} bytes ` +
          `(MAX_BODY_BYTES). Upload large media through the Files API instead.`,
        { reason: "BODY_TOO_LARGE" },
      ),
      "BODY_TOO_LARGE",
    );
  }
  const body = read.body;

  const waitBound = clientWaitBound(request.headers, ctx.config);
  if (typeof waitBound === "string") {
    return trace.own(
      errorResponse(400, "INVALID_ARGUMENT", waitBound, { reason: "BAD_ROTATOR_HEADER" }),
      "BAD_ROTATOR_HEADER",
    );
  }
  const fallbackAllowed =
    request.headers.get("x-rotator-fallback")?.trim().toLowerCase() !== "none";

  let stream: StreamMode = route.stream;
  if (route.kind === "openai") {
    const fields = openAiBodyFields(body.inspectable);
    if (fields.model) trace.model = fields.model;
    stream = fields.stream ? "sse" : "none";
  }
  const names = resourcesInRequest(route.resource, body.inspectable);
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
  const payload = request.method === "GET" || request.method === "HEAD" ? undefined : body.payload;
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

  const plan: Plan = {
    request,
    url,
    route,
    stream,
    target,
    payload,
    pinned,
    discovering,
    names,
    body,
    tokenEstimate: Math.ceil(body.size / 4),
  };
  const primary = trace.model;
  const waitDeadline = ctx.clock.now() + waitBound;

  // 1. Another key.
  let result = await runAttempts(plan, trace, ctx);
  if (result.response) return result.response;
  // 2. Wait, within the bound, for the first key that recovers.
  result = await waitForCapacity(plan, result.exhausted, waitDeadline, trace, ctx);
  if (result.response) return result.response;
  const recovery = result.exhausted;
  if (!pinned) {
    // The pool is spent for this model whatever answers next (alerts say so, once per episode).
    const cause = recovery?.cause;
    const event = {
      model: primary,
      reason: cause && "until" in cause
        ? "ALL_KEYS_COOLING" as const
        : "ALL_KEYS_DISABLED" as const,
    };
    for (const observer of ctx.observers) observer.exhausted?.(event);
  }
  // 3. A substitute model the operator allowed (never for a resource-bound request).
  if (!pinned && fallbackAllowed) {
    for (const alternative of fallbackChain(ctx.config.modelFallbacks, primary)) {
      const substitute = await withModel(plan, primary, alternative);
      if (!substitute) break;
      trace.model = alternative;
      trace.requestedModel = primary;
      const answer = await runAttempts(substitute, trace, ctx);
      if (answer.response) return answer.response;
    }
    trace.model = primary;
    trace.requestedModel = undefined;
  }
  // 4. Another provider.
  let note = "";
  if (ctx.providerFallback && fallbackAllowed) {
    const answer = await ctx.providerFallback(plan, trace);
    if (answer.response) return answer.response;
    note = declinedNote(answer.declined);
  }
  // 5. The 429 (or 503 when nothing will recover by itself).
  const now = ctx.clock.now();
  const { response, reason } = pinned
    ? pinnedAnswer(pinned, primary, recovery, now)
    : exhaustedAnswer(primary, ctx.pool.size, recovery, now, note);
  return trace.own(response, reason);
}

/**
 * Waits in line while the first key to recover does so within the bound; per-day exhaustion,
 * `limit: 0` and disabled keys never wait. Returns the answer, or still-exhausted.
 */
async function waitForCapacity(
  plan: Plan,
  recovery: Recovery | undefined,
  deadline: number,
  trace: Trace,
  ctx: ProxyContext,
): Promise<AttemptsResult> {
  let current = recovery;
  let place: Place | undefined;
  try {
    while (waitable(current, deadline)) {
      // A request that handed its turn on and must wait again joins the line anew.
      if (!place || place.left) {
        place = ctx.capacity.join(
          plan.pinned ? `${plan.pinned.project}\u0000${trace.model}` : trace.model,
        );
        if (!place) break; // the line is full: the 429 comes at once
        const event = { model: trace.model, waiting: ctx.capacity.size, until: current.at };
        for (const observer of ctx.observers) observer.waiting?.(event);
      }
      if (!(await place.until(current.at, plan.request.signal))) {
        return { response: trace.clientClosed() };
      }
      const held = place;
      const result = await runAttempts(
        {
          ...plan,
          onChosen: (key) => {
            // Hand the turn on at once if the pool can serve another request now: another key,
            // or this one when its bucket's limit is known and has room for more (this send is
            // counted), so a bucket that regains room for k takes k waiters at once. A key
            // whose limit is unknown takes one waiter at a time until it has answered, so it is
            // not handed every waiter.
            const now = ctx.clock.now();
            const other = ctx.pool.pick(trace.model, now, { avoidKeys: new Set([key.id]) });
            if (other && (other.id !== key.id || ctx.ledger.paces(key.project, trace.model))) {
              held.leave();
            }
          },
        },
        trace,
        ctx,
      );
      if (result.response) return result;
      current = result.exhausted;
    }
    return { exhausted: current };
  } finally {
    place?.leave();
  }
}

/** Whether the first recovery is worth waiting for: a short window ending within the bound. */
function waitable(recovery: Recovery | undefined, deadline: number): recovery is Recovery {
  const cause = recovery?.cause;
  if (!recovery || !cause || !("until" in cause)) return false;
  if (cause.window === "day" || cause.window === "no_allowance" || cause.window === "project") {
    return false;
  }
  return recovery.at <= deadline;
}

/** The same request for another model, or undefined when it cannot be rewritten. */
async function withModel(plan: Plan, from: string, to: string): Promise<Plan | undefined> {
  if (plan.route.kind === "native") {
    const marker = `/models/${encodeURIComponent(from)}:`;
    if (!plan.target.includes(marker)) return undefined;
    return { ...plan, target: plan.target.replace(marker, `/models/${encodeURIComponent(to)}:`) };
  }
  if (plan.route.kind === "openai" && plan.payload) {
    try {
      const body = JSON.parse(await plan.body.text());
      body.model = body.model?.startsWith?.("models/") ? `models/${to}` : to;
      return { ...plan, payload: new TextEncoder().encode(JSON.stringify(body)) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * How long this request may wait for a key to recover, in ms: MAX_WAIT_SECONDS, or the reset
 * grace when that is shorter (RESET_GRACE_MS: the rotator knows when a bucket's window resets
 * only to within a round trip, so a bucket it counts as full for a few more milliseconds may
 * already have room at Google, and a 429 would cost the client a whole second of Retry-After).
 * A client's x-rotator-max-wait lowers it, and is taken as meant: 0 is a 429 at once.
 */
function clientWaitBound(headers: Headers, config: Config): number | string {
  const bound = Math.max(config.maxWaitMs, config.resetGraceMs);
  const raw = headers.get("x-rotator-max-wait");
  if (raw === null) return bound;
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) {
    return "x-rotator-max-wait must be a number of seconds, such as 3 or 0.5";
  }
  return Math.min(bound, Math.round(Number(raw) * 1000));
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
  // A chunk of declared length up to MAX_BODY_BYTES (the SDKs send 8 MiB chunks) is read into
  // one Blob so it goes upstream with its Content-Length, as Google's upload protocol expects;
  // Deno's fetch would send a stream chunked. Larger chunks stream through unbuffered.
  const length = Number(request.headers.get("content-length") ?? NaN);
  let chunkBody: Blob | ReadableStream<Uint8Array> | null = request.body;
  if (request.body && length <= ctx.config.maxBodyBytes) {
    try {
      chunkBody = await request.blob();
    } catch {
      return trace.clientClosed();
    }
  }
  const sent = performance.now();
  let upstream: Response;
  try {
    upstream = await ctx.fetch(
      upstreamUrl(ctx.config.upstreamOrigin, url.pathname, url.search),
      {
        method: request.method,
        headers,
        body: chunkBody,
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
