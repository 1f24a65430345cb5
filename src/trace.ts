/**
 * Bookkeeping for one proxied request: the keys it tried and how each attempt went, reported to
 * the usage counters and observers as it happens, and once at the end as the request log line.
 */

import { errorResponse } from "./errors.ts";
import type { AttemptResult, ProxyObserver, RequestEvent } from "./events.ts";
import type { PoolKey } from "./keys.ts";
import { describeError, type Logger } from "./log.ts";
import type { GeminiRoute } from "./route.ts";
import type { UsageRecorder } from "./usage.ts";

export interface TraceContext {
  readonly config: { readonly logRequests: boolean };
  readonly usage: UsageRecorder;
  readonly log: Logger;
  readonly observers: readonly ProxyObserver[];
}

export class Trace {
  readonly keyIds: string[] = [];
  attempts = 0;
  upstreamMs?: number;
  model: string;
  /** The model the client asked for, while a substitute is being tried in `model`. */
  requestedModel?: string;
  #reported = false;
  readonly #t0 = performance.now();

  constructor(
    readonly request: Request,
    readonly url: URL,
    readonly route: GeminiRoute,
    readonly ctx: TraceContext,
  ) {
    this.model = route.model;
  }

  /** Counts one upstream attempt and tells the observers. */
  attempt(key: PoolKey, status: number, result: AttemptResult): void {
    this.ctx.usage.count(key.id, this.model, {
      requests: 1,
      successes: result === "ok" ? 1 : 0,
      rateLimited: status === 429 || result === "quota" ? 1 : 0,
      errors: result !== "ok" && result !== "quota" ? 1 : 0,
    });
    const event = {
      keyId: key.id,
      project: key.project,
      model: this.model,
      route: this.route.kind,
      status,
      result,
      latencyMs: Math.round((this.upstreamMs ?? 0) * 10) / 10,
    };
    for (const observer of this.ctx.observers) {
      try {
        observer.attempt?.(event);
      } catch (error) {
        this.ctx.log.error("observer failed", { error: describeError(error) });
      }
    }
  }

  /** An answer the rotator wrote itself; reported now. */
  own(response: Response, reason: string): Response {
    this.done(response.status, "rotator", { reason });
    return response;
  }

  /** The client went away before an answer: nobody reads this one, but it is logged. */
  clientClosed(): Response {
    return this.own(
      errorResponse(499, "CANCELLED", "The client closed the request."),
      "CLIENT_CLOSED",
    );
  }

  /** Reports the finished request once: observers, then the log line. */
  done(
    status: number,
    answeredBy: RequestEvent["answeredBy"],
    extra: Partial<RequestEvent> = {},
  ): void {
    if (this.#reported) return;
    this.#reported = true;
    const event: RequestEvent = {
      method: this.request.method,
      path: this.url.pathname,
      route: this.route.kind,
      model: this.model,
      status,
      attempts: this.attempts,
      keyIds: this.keyIds,
      answeredBy,
      durationMs: Math.round((performance.now() - this.#t0) * 10) / 10,
      end: "answered",
      ...(this.upstreamMs !== undefined
        ? { upstreamMs: Math.round(this.upstreamMs * 10) / 10 }
        : {}),
      ...(this.requestedModel !== undefined && this.requestedModel !== this.model
        ? { requestedModel: this.requestedModel }
        : {}),
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
