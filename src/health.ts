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
  /** Where `build` came from (the variable's name), so a reader knows what kind of id it is. */
  readonly buildSource?: string;
  /** The entry module serving, e.g. `entries/deno.ts`. */
  readonly entry: string;
  /** Where it runs: `deno`, `deno-deploy`, `supabase`, `netlify`, `test`. */
  readonly platform: string;
  readonly startedAt: number;
}

/**
 * Variables that identify the running code, most specific first: `BUILD_ID` is whatever the
 * operator's build stamps (a git commit, say); Deno Deploy sets `DENO_DEPLOY_BUILD_ID` (the
 * revision, one per git commit for a GitHub-linked app) and `DENO_DEPLOYMENT_ID` (revision plus
 * configuration), https://docs.deno.com/deploy/reference/env_vars_and_contexts/.
 */
export const BUILD_ID_VARIABLES = ["BUILD_ID", "DENO_DEPLOY_BUILD_ID", "DENO_DEPLOYMENT_ID"];

/** The build id of an environment and the variable it came from, if any is set. */
export function buildFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Pick<AppMeta, "build" | "buildSource"> {
  for (const name of BUILD_ID_VARIABLES) {
    const value = env[name]?.trim();
    // An id, not free text: printable, bounded, so /healthz cannot be made to echo anything.
    if (value && /^[\x21-\x7e]{1,100}$/.test(value)) return { build: value, buildSource: name };
  }
  return {};
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
    build: meta.build ?? null,
    buildSource: meta.build ? meta.buildSource ?? null : null,
    entry: meta.entry,
    platform: meta.platform,
    uptimeSeconds: Math.floor((now - meta.startedAt) / 1000),
    store,
    keys: {
      total: summary.total,
      /** Not disabled (a cooling key still serves the models it is not cooling for). */
      usable: summary.usable,
      /** Usable with no cooldown running at all. */
      ready: summary.usable - summary.cooling,
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
