/**
 * `GET /metrics`: what the pool and the proxy are doing, in the Prometheus text format. Counters
 * and histograms are fed by the proxy's events (O(1) each); key-state gauges are read from the
 * pool when scraped. Label sets stay bounded: models beyond the first few fold into "other", and
 * per-key series exist only for keys in the pool (fingerprints, never key values).
 *
 * Naming follows https://prometheus.io/docs/practices/naming/.
 */

import { bearerToken, type TokenSet } from "./auth.ts";
import { errorResponse } from "./errors.ts";
import type { AttemptEvent, ProxyObserver, RequestEvent } from "./events.ts";
import type { AppMeta } from "./health.ts";
import type { KeyPool } from "./pool.ts";
import { CounterVec, Exposition, Histogram, PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";

/** Seconds; covers a fast countTokens (tens of ms) up to a long thinking answer (minutes). */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Distinct model label values kept before the rest are counted as "other". */
export const DEFAULT_MAX_MODELS = 20;
/** Label for requests that name no model (file uploads, model lists) or are not authenticated. */
export const NO_MODEL_LABEL = "none";
export const OTHER_MODEL_LABEL = "other";
const MAX_MODEL_LABEL_LENGTH = 80;

/**
 * Model names come from clients, so the label set is capped: the first `max` distinct models
 * keep their name, later ones share "other". First come, first kept: the models a deployment
 * really uses are seen early and stay stable for the life of the process.
 */
export class ModelLabels {
  readonly #labels = new Map<string, string>();

  constructor(readonly max = DEFAULT_MAX_MODELS) {}

  label(model: string): string {
    if (model === "") return NO_MODEL_LABEL;
    const known = this.#labels.get(model);
    if (known !== undefined) return known;
    if (this.#labels.size >= this.max) return OTHER_MODEL_LABEL;
    const label = model.slice(0, MAX_MODEL_LABEL_LENGTH);
    this.#labels.set(model, label);
    return label;
  }

  /** The models with a label of their own. */
  models(): string[] {
    return [...this.#labels.keys()];
  }
}

export interface MetricsOptions {
  readonly pool: KeyPool;
  readonly meta: AppMeta;
  readonly storeKind: string;
  readonly maxModels?: number;
}

export class RotatorMetrics implements ProxyObserver {
  readonly #pool: KeyPool;
  readonly #meta: AppMeta;
  readonly #storeKind: string;
  readonly models: ModelLabels;

  readonly requests = new CounterVec(
    "gemini_rotator_requests_total",
    "Client requests by Gemini route kind, model and the HTTP status the client received.",
    ["route", "model", "status"],
  );
  readonly attempts = new CounterVec(
    "gemini_rotator_upstream_attempts_total",
    "Upstream attempts by model and outcome class (ok, quota, key_rejected, transient, ...).",
    ["model", "result"],
  );
  readonly fallbacks = new CounterVec(
    "gemini_rotator_fallback_answers_total",
    "Client requests answered by a fallback provider (not Gemini), by provider and status.",
    ["provider", "status"],
  );
  readonly substitutions = new CounterVec(
    "gemini_rotator_model_substitutions_total",
    "Client requests a substitute model answered (MODEL_FALLBACKS), by the model asked for and " +
      "the one that answered.",
    ["requested", "model"],
  );
  readonly retries = new CounterVec(
    "gemini_rotator_retries_total",
    "Upstream attempts beyond the first one of a client request.",
    ["model"],
  );
  readonly keyRequests = new CounterVec(
    "gemini_rotator_key_requests_total",
    "Upstream attempts per pool key (SHA-256 fingerprint).",
    ["key"],
  );
  readonly keyRateLimited = new CounterVec(
    "gemini_rotator_key_rate_limited_total",
    "Upstream 429 answers per pool key (SHA-256 fingerprint).",
    ["key"],
  );
  readonly alerts = new CounterVec(
    "gemini_rotator_alert_deliveries_total",
    "Alert webhook messages by result: sent, failed (after retries) or dropped (queue full).",
    ["result"],
  );
  readonly latency = new Histogram(
    "gemini_rotator_upstream_latency_seconds",
    "Time from sending an upstream attempt to its response headers.",
    LATENCY_BUCKETS,
  );
  readonly firstByte = new Histogram(
    "gemini_rotator_time_to_first_byte_seconds",
    "Time from the first upstream attempt to the first body bytes relayed to the client.",
    LATENCY_BUCKETS,
  );

  constructor(options: MetricsOptions) {
    this.#pool = options.pool;
    this.#meta = options.meta;
    this.#storeKind = options.storeKind;
    this.models = new ModelLabels(options.maxModels);
  }

  attempt(event: AttemptEvent): void {
    this.attempts.inc([this.models.label(event.model), event.result]);
    this.latency.observe(event.latencyMs / 1000);
    // Only keys of the pool get series: the fingerprint set is the configured key set.
    if (this.#pool.key(event.keyId)) {
      this.keyRequests.inc([event.keyId]);
      if (event.status === 429) this.keyRateLimited.inc([event.keyId]);
    }
  }

  request(event: RequestEvent): void {
    // An unauthenticated caller must not be able to claim model labels.
    const model = event.reason === "ACCESS_TOKEN_INVALID"
      ? NO_MODEL_LABEL
      : this.models.label(event.model);
    this.requests.inc([event.route, model, String(event.status)]);
    if (event.provider) this.fallbacks.inc([event.provider, String(event.status)]);
    if (event.requestedModel !== undefined) {
      this.substitutions.inc([this.models.label(event.requestedModel), model]);
    }
    if (event.attempts > 1) this.retries.inc([model], event.attempts - 1);
    if (event.firstByteMs !== undefined) this.firstByte.observe(event.firstByteMs / 1000);
  }

  /** The exposition at `now`. O(keys + series): for scrapes, not the hot path. */
  render(now: number): string {
    const out = new Exposition();
    out.family(
      "gemini_rotator_build_info",
      "gauge",
      "Which code is serving: always 1, the labels say what runs.",
    ).sample("gemini_rotator_build_info", {
      version: this.#meta.version,
      build: this.#meta.build ?? "",
      entry: this.#meta.entry,
      platform: this.#meta.platform,
      store: this.#storeKind,
    }, 1);
    out.family(
      "gemini_rotator_start_time_seconds",
      "gauge",
      "When this instance started, in Unix seconds.",
    ).sample("gemini_rotator_start_time_seconds", {}, this.#meta.startedAt / 1000);

    this.requests.render(out);
    this.attempts.render(out);
    this.retries.render(out);
    this.fallbacks.render(out);
    this.substitutions.render(out);
    this.latency.render(out);
    this.firstByte.render(out);

    const configured = new Set(this.#pool.keys.map((key) => key.id));
    const inPool = (labels: Record<string, string>) => configured.has(labels.key);
    this.keyRequests.prune(inPool);
    this.keyRateLimited.prune(inPool);
    this.keyRequests.render(out);
    this.keyRateLimited.render(out);

    const summary = this.#pool.summary(now);
    out.family(
      "gemini_rotator_keys",
      "gauge",
      "Pool keys by state: ready (no cooldown), cooling (some model is cooling), disabled. " +
        "The states add up to the number of keys.",
    )
      .sample("gemini_rotator_keys", { state: "ready" }, summary.usable - summary.cooling)
      .sample("gemini_rotator_keys", { state: "cooling" }, summary.cooling)
      .sample("gemini_rotator_keys", { state: "disabled" }, summary.disabled);
    out.family(
      "gemini_rotator_next_key_recovery_seconds",
      "gauge",
      "Seconds until the next cooling or disabled key is due back (0 when none is waiting).",
    ).sample(
      "gemini_rotator_next_key_recovery_seconds",
      {},
      summary.nextRecoveryAt !== undefined ? (summary.nextRecoveryAt - now) / 1000 : 0,
    );
    out.family(
      "gemini_rotator_model_capacity_wait_seconds",
      "gauge",
      "Per model seen: seconds until some key can serve it (0: one can now; +Inf: only an " +
        "operator can help).",
    );
    for (const model of this.models.models()) {
      const recovery = this.#pool.nextRecovery(model, now);
      const wait = recovery === undefined ? Infinity : Math.max(0, recovery.at - now) / 1000;
      out.sample(
        "gemini_rotator_model_capacity_wait_seconds",
        { model: this.models.label(model) },
        wait,
      );
    }
    this.alerts.render(out);
    return out.toString();
  }
}

/**
 * Answers `/metrics`: off (404) unless METRICS_TOKEN or ADMIN_TOKEN is set, then only for
 * `Authorization: Bearer <token>` (what Prometheus sends with `authorization: credentials`).
 */
export function metricsResponse(
  request: Request,
  metrics: RotatorMetrics,
  tokens: TokenSet,
  now: number,
): Response {
  if (tokens.size === 0) {
    return errorResponse(
      404,
      "NOT_FOUND",
      "Metrics are off: set METRICS_TOKEN (or ADMIN_TOKEN) to serve /metrics.",
      { reason: "METRICS_DISABLED" },
    );
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(405, "INVALID_ARGUMENT", "Use GET /metrics.", {
      headers: { allow: "GET, HEAD" },
    });
  }
  if (!tokens.matches(bearerToken(request.headers.get("authorization")))) {
    return errorResponse(
      401,
      "UNAUTHENTICATED",
      "Missing or wrong metrics token: send Authorization: Bearer <METRICS_TOKEN or ADMIN_TOKEN>.",
      { reason: "METRICS_TOKEN_INVALID", headers: { "www-authenticate": "Bearer" } },
    );
  }
  return new Response(request.method === "HEAD" ? null : metrics.render(now), {
    headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
  });
}
