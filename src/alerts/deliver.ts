/**
 * Posts alert messages to the operator's webhook in the background: a small queue drained one
 * message at a time, each tried a bounded number of times with exponential backoff. Requests
 * never wait for it, a full queue drops the oldest message (logged), and failures are logged
 * with the webhook's host only: Slack and Discord webhook URLs are credentials.
 */

import type { Clock } from "../clock.ts";
import type { AlertFormat } from "../config.ts";
import { describeError, type Logger } from "../log.ts";
import { type AlertSource, webhookBody } from "./format.ts";
import type { Alert } from "./watch.ts";

export type DeliveryResult = "sent" | "failed" | "dropped";

export interface WebhookOptions {
  readonly url: string;
  readonly format: AlertFormat;
  readonly source: AlertSource;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  readonly log: Logger;
  /** Blanks secrets out of the body (the log's Redactor): a last guard, messages hold none. */
  readonly redact: (text: string) => string;
  readonly onResult?: (result: DeliveryResult) => void;
  /** Messages waiting at most; default 10. */
  readonly maxQueue?: number;
  /** Tries per message after the first; default 3. */
  readonly retries?: number;
  /** First backoff, doubled each retry; default 2 s. */
  readonly backoffMs?: number;
  /** Longest wait for the webhook's answer; default 10 s. */
  readonly timeoutMs?: number;
}

/** Statuses worth another try: the receiver is busy or failing, not refusing the message. */
function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Longest Retry-After honoured, so a receiver cannot park the queue for long. */
const MAX_RETRY_AFTER_MS = 60_000;

export class WebhookDeliverer {
  readonly #o: WebhookOptions;
  readonly #host: string;
  readonly #queue: string[] = [];
  readonly #shutdown = new AbortController();
  #draining: Promise<void> | undefined;

  constructor(options: WebhookOptions) {
    this.#o = options;
    this.#host = new URL(options.url).host;
  }

  /** Queues one message for `alerts`; returns at once and never throws. */
  enqueue(alerts: readonly Alert[], dropped = 0): void {
    if (this.#shutdown.signal.aborted || alerts.length === 0) return;
    try {
      const body = this.#o.redact(
        webhookBody(this.#o.format, alerts, dropped, this.#o.source, this.#o.clock.now()),
      );
      if (this.#queue.length >= (this.#o.maxQueue ?? 10)) {
        this.#queue.shift();
        this.#o.log.warn("alert queue full: oldest message dropped", { host: this.#host });
        this.#o.onResult?.("dropped");
      }
      this.#queue.push(body);
      this.#draining ??= this.#drain().finally(() => this.#draining = undefined);
    } catch (error) {
      this.#o.log.error("alert could not be queued", { error: describeError(error) });
    }
  }

  /** Resolves once every queued message is sent or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Stops: in-flight posts and backoffs are abandoned, queued messages dropped. */
  async close(): Promise<void> {
    this.#shutdown.abort();
    this.#queue.length = 0;
    await this.#draining?.catch(() => {});
  }

  async #drain(): Promise<void> {
    for (let body = this.#queue.shift(); body !== undefined; body = this.#queue.shift()) {
      const result = await this.#deliver(body);
      if (this.#shutdown.signal.aborted) return;
      this.#o.onResult?.(result);
    }
  }

  async #deliver(body: string): Promise<DeliveryResult> {
    const retries = this.#o.retries ?? 3;
    let backoff = this.#o.backoffMs ?? 2000;
    for (let attempt = 1;; attempt++) {
      const outcome = await this.#post(body);
      if (outcome.ok) return "sent";
      const last = attempt > retries || !outcome.retry;
      this.#o.log[last ? "error" : "warn"](
        last ? "alert not delivered" : "alert delivery failed, retrying",
        { host: this.#host, attempt, ...outcome.detail },
      );
      if (last) return "failed";
      const wait = Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
      try {
        await this.#o.clock.sleep(wait, this.#shutdown.signal);
      } catch {
        return "failed";
      }
      backoff *= 2;
    }
  }

  async #post(body: string): Promise<
    | { ok: true }
    | {
      ok: false;
      retry: boolean;
      retryAfterMs?: number;
      detail: Record<string, unknown>;
    }
  > {
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException("webhook timeout", "TimeoutError")),
      this.#o.timeoutMs ?? 10_000,
    );
    try {
      const response = await this.#o.fetch(this.#o.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        redirect: "manual",
        signal: AbortSignal.any([deadline.signal, this.#shutdown.signal]),
      });
      await response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) return { ok: true };
      const retryAfter = Number(response.headers.get("retry-after"));
      return {
        ok: false,
        retry: retryable(response.status),
        ...(Number.isFinite(retryAfter) && retryAfter > 0
          ? { retryAfterMs: retryAfter * 1000 }
          : {}),
        detail: { status: response.status },
      };
    } catch (error) {
      // Fetch errors quote the URL, whose path is the webhook's secret: keep the origin only.
      const text = describeError(error).replace(/\b(https?:\/\/[^/\s)]+)[^\s)]*/g, "$1/…");
      return { ok: false, retry: true, detail: { error: text } };
    } finally {
      clearTimeout(timer);
    }
  }
}
