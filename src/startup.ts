/**
 * From an environment record to a running app, the same way on every platform: parse the
 * config, fingerprint the keys, wire the app, and describe it in one start-up line. Entries only
 * supply what differs (where env comes from, which store, how to serve).
 */

import { type App, createApp } from "./app.ts";
import { type Config, loadConfig } from "./config.ts";
import type { AppMeta } from "./health.ts";
import { type PoolKey, toPoolKeys } from "./keys.ts";
import type { StateStore } from "./state/store.ts";
import type { AffinityStore } from "./state/affinity_store.ts";
import type { QuotaCounter } from "./state/quota_counter.ts";
import type { WebSocketAdapters } from "./live.ts";
import { parseProvidersConfig } from "./providers/config.ts";

/**
 * What an entry opens for the app: the state store, and where one database (Deno KV) also
 * holds them, the shared resource affinity and pacing counts.
 */
export interface OpenedState {
  readonly store: StateStore;
  readonly affinityStore?: AffinityStore;
  readonly quotaCounter?: QuotaCounter;
}

export interface StartOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly meta: Omit<AppMeta, "startedAt">;
  /** Opens the state store (and what shares its database) once the config is known. */
  readonly openStore: (config: Config) => Promise<StateStore | OpenedState>;
  /** True where the platform exposes the app publicly whatever HOST says (Deno Deploy). */
  readonly publicPlatform?: boolean;
  readonly writeLog?: (line: string) => void;
  readonly fetch?: typeof fetch;
  /** The runtime's WebSocket plumbing, where it has one (the Live API needs it). */
  readonly webSockets?: WebSocketAdapters;
  /** True when the app's responses go straight to Deno.serve (see AppDeps). */
  readonly releaseStreamChunks?: boolean;
  /** The text of the file PROVIDERS_FILE names, read by the entry. */
  readonly providersFileText?: string;
}

export interface Started {
  readonly app: App;
  readonly config: Config;
  readonly keys: readonly PoolKey[];
  readonly store: StateStore;
}

/** Throws ConfigError (a safe, printable message) when the configuration is wrong. */
export async function startApp(options: StartOptions): Promise<Started> {
  const config = loadConfig(options.env, { publicPlatform: options.publicPlatform });
  const keys = await toPoolKeys(config.keys, "env");
  const providers = parseProvidersConfig(options.env, options.providersFileText);
  const opened = await options.openStore(config);
  const { store, affinityStore, quotaCounter }: OpenedState = "store" in opened
    ? opened
    : { store: opened };
  const app = await createApp({
    config,
    keys,
    store,
    ...(affinityStore ? { affinityStore } : {}),
    ...(quotaCounter ? { quotaCounter } : {}),
    meta: options.meta,
    ...(options.writeLog ? { writeLog: options.writeLog } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.webSockets ? { webSockets: options.webSockets } : {}),
    ...(options.releaseStreamChunks ? { releaseStreamChunks: true } : {}),
    providers,
  });
  return { app, config, keys, store };
}

const MAX_LISTED_FINGERPRINTS = 20;

/** The fields of the one start-up line: what runs, where, with how many keys, how protected. */
export function startupFields(started: Started, address: string): Record<string, unknown> {
  const { config, app } = started;
  // The pool holds the env keys and the keys added at run time (loaded from the store).
  const keys = app.pool.keys;
  const stored = keys.filter((k) => k.source === "kv").length;
  const listed = keys.slice(0, MAX_LISTED_FINGERPRINTS).map((k) => k.id);
  if (keys.length > listed.length) listed.push(`(+${keys.length - listed.length} more)`);
  const auth = config.accessTokens.length > 0
    ? `${config.accessTokens.length} access token(s)`
    : "none: no ACCESS_TOKEN set" +
      (config.allowUnauthenticated
        ? " and ALLOW_UNAUTHENTICATED=true: anyone who reaches this address can use the keys"
        : ", so listening on loopback only");
  return {
    version: app.meta.version,
    entry: app.meta.entry,
    platform: app.meta.platform,
    address,
    upstream: config.upstreamOrigin,
    keys: keys.length,
    ...(stored > 0 ? { storedKeys: stored } : {}),
    ...(app.keys.unusable.length > 0 ? { unusableStoredKeys: app.keys.unusable.length } : {}),
    fingerprints: listed,
    ...(config.droppedKeyEntries > 0 ? { droppedKeyEntries: config.droppedKeyEntries } : {}),
    auth,
    admin: config.adminToken
      ? `enabled at /admin/${
        config.keyEncryptionSecret ? "" : " (adding keys needs KEY_ENCRYPTION_SECRET)"
      }`
      : "disabled: no ADMIN_TOKEN set",
    store: started.store.kind,
    ...(keys.length === 0
      ? { warning: "no API keys: every proxied request gets 503 until keys are added" }
      : {}),
  };
}
