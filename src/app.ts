/**
 * The rotator as one web-standard fetch handler: `createApp(deps)` wires the parts and routes a
 * Request to the proxy or to the rotator's own endpoints. Knows nothing of the runtime: entries
 * pass in the environment's config, an opened store, fetch and a clock.
 *
 * Own routes live outside every Gemini path (`/healthz`, `/metrics`, `/admin/`), so
 * they can never shadow an API call.
 */

import { createAdminDispatcher, isAdminPath } from "./admin/dispatch.ts";
import { keysApi } from "./admin/keys_api.ts";
import { limitsApi } from "./admin/limits_api.ts";
import { LastErrors } from "./admin/last_errors.ts";
import { TokenSet } from "./auth.ts";
import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config.ts";
import { Deadlines } from "./deadlines.ts";
import { Cors } from "./cors.ts";
import { errorResponse } from "./errors.ts";
import type { ProxyObserver } from "./events.ts";
import { type AppMeta, healthResponse } from "./health.ts";
import { KeyRegistry } from "./key_registry.ts";
import { type PoolKey, toPoolKeys } from "./keys.ts";
import { createLogger, describeError, type Logger, Redactor } from "./log.ts";
import { KeyPool } from "./pool.ts";
import { providerFallback, type ProviderPool } from "./provider_fallback.ts";
import type { ConfiguredProvider } from "./providers/config.ts";
import { CapacityQueue } from "./capacity.ts";
import { QuotaLedger } from "./quota.ts";
import { ResourceAffinity } from "./affinity.ts";
import { isLivePath, serveLive, type WebSocketAdapters } from "./live.ts";
import { type ProxyContext, proxyRequest } from "./proxy.ts";
import { Observability } from "./observability.ts";
import { type AffinityStore, MemoryAffinityStore } from "./state/affinity_store.ts";
import { localQuotaCounter, type QuotaCounter } from "./state/quota_counter.ts";
import { matchGeminiRoute } from "./route.ts";
import { KeyVault } from "./state/key_vault.ts";
import { MemoryStore } from "./state/memory.ts";
import type { StateStore } from "./state/store.ts";
import { StateSync } from "./state/sync.ts";
import { UsageRecorder } from "./usage.ts";

export interface AppDeps {
  readonly config: Config;
  /** Keys from the environment, already fingerprinted. */
  readonly keys: readonly PoolKey[];
  readonly store?: StateStore;
  /** Where resource ownership is kept (files, caches, upload sessions); memory by default. */
  readonly affinityStore?: AffinityStore;
  /** Fallback providers (OPENROUTER_API_KEYS, PROVIDERS_FILE), tried in order. */
  readonly providers?: readonly ConfiguredProvider[];
  /** Shares pacing between instances (Deno KV); one process needs none. */
  readonly quotaCounter?: QuotaCounter;
  readonly fetch?: typeof fetch;
  /** WebSocket plumbing of the runtime, for the Live API; without it Live answers 501. */
  readonly webSockets?: WebSocketAdapters;
  /**
   * True when every response goes straight to Deno.serve, which is done with a body chunk once
   * it reads the next: relayed streams then free their chunks at once (relay.ts `releaseChunks`).
   * Leave it off where a response body may be read in JS (tests calling `fetch` directly).
   */
  readonly releaseStreamChunks?: boolean;
  readonly clock?: Clock;
  /** Where log lines go; defaults to console.log. */
  readonly writeLog?: (line: string) => void;
  readonly meta?: Partial<AppMeta>;
  readonly observers?: readonly ProxyObserver[];
  /** How often usage counters are written to the store (0: after every request). */
  readonly usageFlushMs?: number;
}

export interface App {
  /** The handler: give it to Deno.serve, or call it in tests. */
  fetch(request: Request): Promise<Response>;
  readonly pool: KeyPool;
  /** Known per-window limits, declared and learned (pacing). */
  readonly ledger: QuotaLedger;
  readonly sync: StateSync;
  readonly usage: UsageRecorder;
  readonly log: Logger;
  readonly redactor: Redactor;
  /** The key list: env keys plus keys added at run time. */
  readonly keys: KeyRegistry;
  readonly meta: AppMeta;
  /** Metrics, alerts, and the status page's history and error log. */
  readonly observability: Observability;
  /** Flushes counters and waits for state writes (shutdown, tests). */
  close(): Promise<void>;
}

export async function createApp(deps: AppDeps): Promise<App> {
  const { config } = deps;
  const clock = deps.clock ?? systemClock;
  const store = deps.store ?? new MemoryStore();
  const providerPools: ProviderPool[] = [];
  for (const { provider, keys } of deps.providers ?? []) {
    providerPools.push({ provider, pool: new KeyPool(await toPoolKeys(keys, "env")) });
  }
  // Every secret but the Gemini pool's keys, which the key registry adds as they come and go.
  const secrets = [
    ...providerPools.flatMap(({ pool }) => pool.keys.map((k) => k.value)),
    ...config.accessTokens,
    ...(config.adminToken ? [config.adminToken] : []),
    ...(config.keyEncryptionSecret ? [config.keyEncryptionSecret] : []),
  ];
  const redactor = new Redactor([...deps.keys.map((k) => k.value), ...secrets]);
  const log = createLogger({
    level: config.logLevel,
    redactor,
    write: deps.writeLog ?? ((line) => console.log(line)),
    now: clock.now,
  });
  const ledger = new QuotaLedger(config.pacing === "off" ? [] : config.quotaLimits, {
    probation: config.pacing === "learn" && config.maxWaitMs > 0,
  });
  const quotaCounter = deps.quotaCounter ?? localQuotaCounter;
  // Limits other instances learned apply here from the first request, and as they learn more.
  const adoptSharedRules = async () => {
    if (config.pacing !== "learn" || !quotaCounter.shared) return;
    for (const shared of await quotaCounter.loadRules()) {
      ledger.adopt(shared.project, shared.model, shared.rule);
    }
  };
  await adoptSharedRules();
  const pool = new KeyPool(deps.keys, ledger);
  const keys = new KeyRegistry({
    envKeys: deps.keys,
    store,
    ...(config.keyEncryptionSecret
      ? { vault: await KeyVault.fromSecret(config.keyEncryptionSecret) }
      : {}),
    pool,
    redactor,
    otherSecrets: secrets,
    log,
    now: clock.now,
  });
  const sync = new StateSync(pool, store, { now: clock.now, log, keys });
  await sync.start();
  sync.alsoOnReload(adoptSharedRules);
  const usage = new UsageRecorder(store, {
    now: clock.now,
    log,
    // Readers merge what is not yet written, so batching costs no freshness, on any store.
    flushIntervalMs: deps.usageFlushMs ?? (store.kind === "memory" ? 1000 : 2000),
  });
  const meta: AppMeta = {
    version: "0.0.0",
    entry: "unknown",
    platform: "unknown",
    startedAt: clock.now(),
    ...deps.meta,
  };
  const cors = new Cors(config.corsOrigins);
  const observability = new Observability({
    config,
    pool,
    meta,
    storeKind: store.kind,
    clock,
    log,
    fetch: deps.fetch ?? fetch,
    redact: (text) => redactor.redact(text),
  });
  const lastErrors = new LastErrors(clock.now);
  const proxy: ProxyContext = {
    config,
    tokens: new TokenSet(config.accessTokens),
    pool,
    sync,
    usage,
    affinity: new ResourceAffinity(deps.affinityStore ?? new MemoryAffinityStore(), log),
    ledger,
    quotaCounter,
    fetch: deps.fetch ?? fetch,
    clock,
    log,
    observers: [...observability.observers, ...(deps.observers ?? []), lastErrors],
    capacity: new CapacityQueue(clock, config.maxWaiting),
    deadlines: new Deadlines(config.upstreamTimeoutMs),
    ...(deps.releaseStreamChunks ? { releaseStreamChunks: true } : {}),
    ...(providerPools.length > 0
      ? { providerFallback: (plan, trace) => providerFallback(plan, trace, providerPools, proxy) }
      : {}),
  };
  const admin = createAdminDispatcher({
    token: config.adminToken,
    modules: [
      ...observability.publicAdminRoutes,
      keysApi({
        config,
        pool,
        sync,
        registry: keys,
        usage,
        lastErrors,
        redactor,
        fetch: proxy.fetch,
        now: clock.now,
        log,
        ledger,
      }),
      limitsApi({ config, ledger, now: clock.now }),
      ...observability.adminRoutes,
    ],
  });

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
      return cors.preflight(request);
    }
    if (url.pathname === "/healthz") {
      if (request.method !== "GET" && request.method !== "HEAD") {
        return errorResponse(405, "INVALID_ARGUMENT", "Use GET /healthz.", {
          headers: { allow: "GET, HEAD" },
        });
      }
      return healthResponse(meta, pool, store.kind, clock.now());
    }
    if (url.pathname === "/metrics") return observability.metricsResponse(request);
    if (isAdminPath(url.pathname)) return await admin(request, url);
    if (isLivePath(url.pathname)) {
      return serveLive(request, url, { ...proxy, webSockets: deps.webSockets });
    }
    const gemini = matchGeminiRoute(url.pathname, url.searchParams, request.headers);
    if (gemini) return await proxyRequest(request, url, gemini, proxy);
    await request.body?.cancel().catch(() => {});
    return errorResponse(
      404,
      "NOT_FOUND",
      `${url.pathname.slice(0, 200)} is not a Gemini API path. The rotator forwards /v1beta/..., ` +
        `/v1/..., /v1alpha/... and /upload/... to the Gemini API, and serves /healthz, /metrics and /admin/ itself.`,
      { reason: "UNKNOWN_PATH" },
    );
  }

  return {
    async fetch(request: Request): Promise<Response> {
      let response: Response;
      try {
        response = await route(request);
      } catch (error) {
        // The detail goes to the log (redacted there); the client gets a plain 500.
        log.error("unhandled error", {
          error: describeError(error),
          stack: String((error as Error)?.stack).slice(0, 2000),
        });
        response = errorResponse(
          500,
          "INTERNAL",
          "The rotator hit an internal error; see its log.",
        );
      }
      // A 101 upgrade answer belongs to the runtime; its headers cannot be changed.
      if (response.status !== 101) cors.decorate(response.headers, request.headers.get("origin"));
      return response;
    },
    pool,
    ledger,
    sync,
    usage,
    log,
    redactor,
    keys,
    meta,
    observability,
    async close() {
      proxy.deadlines.close();
      await observability.close();
      sync.close();
      await usage.flush();
      await sync.settled();
    },
  };
}
