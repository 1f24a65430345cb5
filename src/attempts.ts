/**
 * The attempts of one request for one model: pick a key (from the owning project when a resource
 * pins the request), forward, classify the answer, and retry on another key, until an answer
 * is worth giving the client or no key can serve the model. What to do then (wait, substitute a
 * model, another provider, a 429) is proxy.ts's decision.
 */

import { expiryInAnswer } from "./affinity.ts";
import { classify } from "./classify.ts";
import { effectOf } from "./cooldown.ts";
import { errorResponse } from "./errors.ts";
import type { AttemptResult } from "./events.ts";
import type { Pin } from "./exhausted.ts";
import type { RequestBody } from "./body.ts";
import type { PoolKey } from "./keys.ts";
import { describeError } from "./log.ts";
import type { Recovery } from "./pool.ts";
import type { ProxyContext } from "./proxy.ts";
import type { Ticket } from "./quota.ts";
import { relayBody, type RelayResult } from "./relay.ts";
import { mayNameResources, resourcesInAnswer } from "./resources.ts";
import type { GeminiRoute, StreamMode } from "./route.ts";
import type { Trace } from "./trace.ts";
import { rewriteUploadUrl } from "./upload.ts";
import { clientHeaders, headerSafe, upstreamHeaders, writeClientHeaders } from "./upstream.ts";
import { tokensFromTail } from "./usage.ts";
import { readLimitedText, readUpTo } from "./read_limited.ts";

/** Error bodies are small; more than this is not an error body worth reading whole. */
const ERROR_BODY_LIMIT = 64 * 1024;
/** Resource-management answers read whole to learn the names they create. */
export const RESOURCE_ANSWER_LIMIT = 1024 * 1024;
/** A non-streamed answer up to this size (as sent, maybe compressed) is read whole. */
const SMALL_ANSWER_BYTES = 256 * 1024;
/** Usage metadata sits in the last bytes of an answer. */
const TAIL_BYTES = 4096;

/** What one request sends, for one model. */
export interface Plan {
  readonly request: Request;
  readonly url: URL;
  readonly route: GeminiRoute;
  readonly stream: StreamMode;
  /** The upstream URL (the model substituted in it, for a model fallback). */
  readonly target: string;
  /** What each attempt sends (bytes, or one Blob for a large body). */
  readonly payload: Uint8Array<ArrayBuffer> | Blob | undefined;
  /** The request body, to read again when a fallback rewrites it. */
  readonly body: RequestBody;
  /** The project a named resource belongs to, when one does. */
  readonly pinned: Pin | undefined;
  /** The request names resources no record knows: find the owner by trying projects. */
  readonly discovering: boolean;
  readonly names: readonly string[];
  /** About four bytes of JSON per input token: an estimate for token-per-minute pacing. */
  readonly tokenEstimate: number;
  /** Called once a key is chosen and the send counted (a waiting request hands its turn on). */
  readonly onChosen?: (key: PoolKey) => void;
}

/** An answer for the client, or: no key can serve the model (and when one will). */
export type AttemptsResult =
  | { readonly response: Response; readonly exhausted?: undefined }
  | { readonly exhausted: Recovery | undefined; readonly response?: undefined };

/** Runs the attempts of `plan` for the model in `trace.model`. */
export async function runAttempts(
  plan: Plan,
  trace: Trace,
  ctx: ProxyContext,
): Promise<AttemptsResult> {
  const {
    request,
    url,
    route,
    stream,
    target,
    payload,
    pinned,
    discovering,
    names,
    tokenEstimate,
  } = plan;
  const started = ctx.clock.now();
  let ticket: Ticket | undefined;
  let lastKey: PoolKey | undefined;
  const avoidProjects = new Set<string>();
  const tried = new Set<string>();
  let transientRetries = 0;
  let last: { outcome?: AttemptResult; passThrough?: () => Response } = {};

  for (let attempt = 1; attempt <= ctx.config.maxAttempts; attempt++) {
    if (attempt > 1 && ctx.clock.now() - started >= ctx.config.retryBudgetMs) break;
    const now = ctx.clock.now();
    const choice = choose(now);
    if (!choice.key) {
      if (last.outcome === "client_error" && last.passThrough) {
        return { response: last.passThrough() };
      }
      return { exhausted: choice.recovery };
    }
    const key = choice.key;
    if (ctx.quotaCounter.shared && ctx.ledger.active) {
      const reservations = ctx.ledger.reservations(key.project, trace.model, tokenEstimate);
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
      return { response: last.passThrough!() };
    }
    trace.attempts++;
    trace.keyIds.push(key.id);
    tried.add(key.id);

    // Counted when it leaves, so concurrent requests see it (an estimate of its input tokens
    // until the answer's usageMetadata says).
    ticket = ctx.ledger.active
      ? ctx.ledger.record(key.project, trace.model, now, tokenEstimate)
      : undefined;
    plan.onChosen?.(key);
    const sent = performance.now();
    ctx.ledger.sending(key.project, trace.model);
    const answer = await send(key);
    trace.upstreamMs = performance.now() - sent;
    ctx.ledger.answered(
      key.project,
      trace.model,
      "response" in answer && answer.response.status < 400,
      ctx.clock.now(),
    );

    if ("error" in answer) {
      const result: AttemptResult = answer.timedOut ? "timeout" : "network_error";
      report(key, 0, result);
      if (request.signal.aborted) return { response: trace.clientClosed() };
      ctx.log.warn("upstream request failed", { key: key.id, error: describeError(answer.error) });
      last = { outcome: result };
      if (answer.timedOut) break;
      if (
        transientRetries >= ctx.config.transientRetries || !(await backoff(transientRetries++))
      ) break;
      avoidProjects.add(key.project);
      continue;
    }

    const upstream = answer.response;
    if (upstream.status < 400) return { response: await succeed(key, upstream) };

    const text = await readLimitedText(upstream, ERROR_BODY_LIMIT);
    const outcome = classify({ status: upstream.status, body: text });
    report(key, upstream.status, outcome.kind);
    if (outcome.kind === "quota" && ctx.config.pacing === "learn") {
      const rule = ctx.ledger.learn(key.project, trace.model, outcome, ctx.clock.now(), now);
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
      return { response: passThrough() };
    }
    if (outcome.kind === "not_key") {
      ctx.log.warn("upstream refused for a reason no key can fix", {
        reason: outcome.reason,
        status: upstream.status,
        key: key.id,
      });
      return { response: passThrough() };
    }
    if (outcome.kind === "transient") {
      // "500: retry once, then pass through"; 503 overloaded: a few short backoffs.
      const allowed = outcome.reason === "INTERNAL"
        ? Math.min(1, ctx.config.transientRetries)
        : ctx.config.transientRetries;
      if (transientRetries >= allowed || !(await backoff(transientRetries++))) {
        return { response: passThrough() };
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
    return {
      response: trace.own(
        errorResponse(
          timedOut ? 504 : 502,
          timedOut ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
          timedOut
            ? `The Gemini API did not answer within ${ctx.config.upstreamTimeoutMs} ms.`
            : "The Gemini API could not be reached. Retry shortly.",
          { reason },
        ),
        reason,
      ),
    };
  }
  if ((last.outcome === "transient" || last.outcome === "client_error") && last.passThrough) {
    return { response: last.passThrough() };
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
    return {
      response: trace.own(
        errorResponse(
          429,
          "RESOURCE_EXHAUSTED",
          `${trace.attempts} keys in a row were rate-limited or rejected for ` +
            `${trace.model || "this request"}; other keys may still have quota. Retry now.`,
          { reason: "ATTEMPTS_EXHAUSTED", headers: { "retry-after": "1" } },
        ),
        "ATTEMPTS_EXHAUSTED",
      ),
    };
  }
  return { exhausted: recovery };

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
    const deadline = ctx.deadlines.start(request.signal);
    try {
      const response = await ctx.fetch(target, {
        method: request.method,
        headers: upstreamHeaders(request.headers, key, route.kind),
        body: payload,
        redirect: "manual",
        signal: deadline.signal,
      });
      return { response };
    } catch (error) {
      return { error, timedOut: deadline.timedOut && !request.signal.aborted };
    } finally {
      deadline.release();
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

  /** Token counts from the end of an answer, for the usage counters and token pacing. */
  function settleUsage(tail: Uint8Array): void {
    const tokens = tokensFromTail(tail);
    if (!tokens) return;
    ctx.usage.count(lastKey!.id, trace.model, tokens);
    if (ticket) ctx.ledger.settleTokens(ticket, tokens.promptTokens);
  }

  async function succeed(key: PoolKey, upstream: Response): Promise<Response> {
    lastKey = key;
    report(key, upstream.status, "ok");
    const now = ctx.clock.now();
    if (discovering && names.length > 0) ctx.affinity.remember(names, key, now);
    if (request.method === "DELETE") names.forEach((name) => ctx.affinity.forget(name));
    const status = upstream.status;
    const learnsNames = stream === "none" && mayNameResources(request.method, route.resource);
    const declared = Number(upstream.headers.get("content-length") ?? NaN);
    const hasBody = request.method !== "HEAD" && status !== 204 && status !== 304;

    // The client's headers are written straight into the answer's own Headers: building a
    // separate Headers object first would make the Response constructor copy it again.
    const answer = (body: BodyInit | null): Response => {
      const response = new Response(body, { status });
      const headers = response.headers;
      writeClientHeaders(upstream.headers, key, headers);
      if (stream !== "none") headers.delete("content-length");
      // Not among the upstream's fields (writeClientHeaders leaves x-rotator-* out): appended.
      headers.append("x-rotator-key", key.id);
      headers.append("x-rotator-provider", "gemini");
      if (trace.model) headers.append("x-rotator-model", headerSafe(trace.model));
      headers.append("x-rotator-attempts", String(trace.attempts));
      if (route.kind === "upload") {
        const id = rewriteUploadUrl(headers, ctx.config.publicBaseUrl ?? url.origin);
        if (id) ctx.affinity.remember([`upload:${id}`], key, now);
      }
      return response;
    };
    const whole = (bytes: Uint8Array<ArrayBuffer>): Response => {
      if (learnsNames) {
        const text = new TextDecoder().decode(bytes);
        const created = resourcesInAnswer(text);
        const expiry = created.length === 1 ? expiryInAnswer(text) : undefined;
        ctx.affinity.remember(created, key, now, expiry);
      }
      settleUsage(bytes.subarray(Math.max(0, bytes.byteLength - TAIL_BYTES)));
      trace.done(status, "upstream", {
        end: "complete",
        firstByteMs: Math.round(trace.upstreamMs ?? 0),
      });
      const response = answer(bytes);
      response.headers.set("content-length", String(bytes.byteLength));
      return response;
    };

    if (hasBody && stream === "none" && declared <= SMALL_ANSWER_BYTES) {
      // A small answer that is not a stream is read whole: cheaper than relaying it chunk by
      // chunk, and it lets the rotator learn which resources this key's project now owns.
      return whole(new Uint8Array(await upstream.arrayBuffer()));
    }
    if (!hasBody || upstream.body === null) {
      trace.done(status, "upstream");
      return answer(null);
    }
    let body: ReadableStream<Uint8Array> = upstream.body;
    if (learnsNames) {
      const read = await readUpTo(body, RESOURCE_ANSWER_LIMIT);
      if (read.complete) return whole(read.bytes);
      body = read.stream;
    }
    const relayed = relayBody(body, {
      mode: stream,
      idleTimeoutMs: ctx.config.streamIdleTimeoutMs,
      releaseChunks: ctx.releaseStreamChunks === true,
      onEnd: (result: RelayResult) => {
        settleUsage(result.tail);
        if (result.end !== "complete" && result.end !== "client_cancelled") {
          ctx.log.warn("upstream stream failed mid-answer", { key: key.id, end: result.end });
        }
        trace.done(status, "upstream", {
          end: result.end,
          ...(result.firstChunkMs !== undefined
            ? { firstByteMs: Math.round((trace.upstreamMs ?? 0) + result.firstChunkMs) }
            : {}),
        });
      },
    });
    return answer(relayed);
  }
}
