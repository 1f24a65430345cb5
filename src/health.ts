/**
 * `GET /healthz`: answers without a token, so it says only what is safe to say publicly: which
 * code is running (version, entry module, platform) and how many keys can work, never which.
 */

import type { KeyPool } from "./pool.ts";
import type { StoreKind } from "./state/store.ts";

/** Identity of the running deployment, so "which code is serving?" has one answer. */
export interface AppMeta {
  readonly version: string;
  /** Build or commit id when the platform or build provides one. */
  readonly build?: string;
  /** The entry module serving, e.g. `entries/deno.ts`. */
  readonly entry: string;
  /** Where it runs: `deno`, `deno-deploy`, `supabase`, `netlify`, `test`. */
  readonly platform: string;
  readonly startedAt: number;
}

export function healthResponse(
  meta: AppMeta,
  pool: KeyPool,
  store: StoreKind,
  now: number,
): Response {
  const summary = pool.summary(now);
  const body = {
    status: summary.total === 0 ? "no_keys" : summary.usable === 0 ? "degraded" : "ok",
    version: meta.version,
    ...(meta.build ? { build: meta.build } : {}),
    entry: meta.entry,
    platform: meta.platform,
    uptimeSeconds: Math.floor((now - meta.startedAt) / 1000),
    store,
    keys: {
      total: summary.total,
      usable: summary.usable,
      cooling: summary.cooling,
      disabled: summary.disabled,
    },
    nextRecoveryAt: summary.nextRecoveryAt !== undefined
      ? new Date(summary.nextRecoveryAt).toISOString()
      : null,
  };
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    headers: { "content-type": "application/json; charset=UTF-8", "cache-control": "no-store" },
  });
}
