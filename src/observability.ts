/**
 * Everything that watches the pool, wired once: Prometheus metrics, alert webhooks, and the
 * in-memory history and error log behind the status page. The app passes `observers` to the
 * proxy, answers `/metrics` here, and lists `adminRoutes` in its admin dispatcher.
 */

import type { AdminModule } from "./admin/dispatch.ts";
import { historyRoute, RequestHistory } from "./admin/history.ts";
import { errorsRoute, RecentErrors } from "./admin/recent_errors.ts";
import { statusPageRoute } from "./admin/status_page.ts";
import { WebhookDeliverer } from "./alerts/deliver.ts";
import { AlertWatcher } from "./alerts/watch.ts";
import { TokenSet } from "./auth.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { ProxyObserver } from "./events.ts";
import type { AppMeta } from "./health.ts";
import type { Logger } from "./log.ts";
import { metricsResponse, RotatorMetrics } from "./metrics.ts";
import type { KeyPool } from "./pool.ts";

export interface ObservabilityDeps {
  readonly config: Config;
  readonly pool: KeyPool;
  readonly meta: AppMeta;
  readonly storeKind: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** For webhook posts. */
  readonly fetch: typeof fetch;
  /** Blanks secrets out of text that leaves the process (the log's Redactor). */
  readonly redact: (text: string) => string;
}

export class Observability {
  readonly metrics: RotatorMetrics;
  readonly history: RequestHistory;
  readonly errors: RecentErrors;
  readonly alerts?: { readonly watcher: AlertWatcher; readonly deliverer: WebhookDeliverer };
  /** Give these to the proxy. */
  readonly observers: readonly ProxyObserver[];
  /** Served without the admin token: the status page shell and its static assets. */
  readonly publicAdminRoutes: readonly AdminModule[] = [statusPageRoute];
  /** Behind the admin token: the status page's data. */
  readonly adminRoutes: readonly AdminModule[];
  readonly #metricsTokens: TokenSet;
  readonly #now: () => number;

  constructor(deps: ObservabilityDeps) {
    const { config, pool, clock } = deps;
    this.#now = clock.now;
    this.#metricsTokens = new TokenSet(config.metricsTokens);
    this.metrics = new RotatorMetrics({ pool, meta: deps.meta, storeKind: deps.storeKind });
    this.history = new RequestHistory(clock.now);
    this.errors = new RecentErrors(pool, clock.now);
    const observers: ProxyObserver[] = [this.metrics, this.history, this.errors];
    if (config.alertWebhookUrl !== undefined) {
      const deliverer = new WebhookDeliverer({
        url: config.alertWebhookUrl,
        format: config.alertFormat,
        source: {
          version: deps.meta.version,
          platform: deps.meta.platform,
          ...(deps.meta.build ? { build: deps.meta.build } : {}),
        },
        fetch: deps.fetch,
        clock,
        log: deps.log,
        redact: deps.redact,
        onResult: (result) => this.metrics.alerts.inc([result]),
      });
      const watcher = new AlertWatcher({
        pool,
        clock,
        log: deps.log,
        debounceMs: config.alertDebounceMs,
        minIntervalMs: config.alertMinIntervalMs,
        send: (alerts, dropped) => deliverer.enqueue(alerts, dropped),
      });
      this.alerts = { watcher, deliverer };
      observers.push(watcher);
    }
    this.observers = observers;
    this.adminRoutes = [historyRoute(this.history, clock.now), errorsRoute(this.errors)];
  }

  /** Answers `/metrics` (404 unless METRICS_TOKEN or ADMIN_TOKEN is set). */
  metricsResponse(request: Request): Response {
    return metricsResponse(request, this.metrics, this.#metricsTokens, this.#now());
  }

  /** Stops alert timers and drops undelivered alerts (shutdown). */
  async close(): Promise<void> {
    this.alerts?.watcher.close();
    await this.alerts?.deliverer.close();
  }
}
