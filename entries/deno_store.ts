/**
 * Opens the state store the environment asks for (Deno-specific: Deno.openKv lives here).
 *
 * - Deno Deploy (DENO_DEPLOYMENT_ID set): the app's assigned KV database, `Deno.openKv()`.
 * - Locally: Deno KV on a SQLite file, KV_PATH (default ./data/rotator.kv; the directory is
 *   created on first run), shared by every rotator process given the same file. KV_PATH is
 *   not used on Deploy.
 * - STATE=memory or KV_PATH=:memory:: the in-memory store (one process, lost on restart).
 *
 * With KV, the one database also holds resource affinity (which project owns a file) and pacing
 * counts, so every instance shares those too. The state store owns the handle and closes it.
 */

import type { Config } from "../src/config.ts";
import { ConfigError } from "../src/config.ts";
import type { OpenedState } from "../src/startup.ts";
import { DEFAULT_POLL_MS, KvStore } from "../src/state/kv.ts";
import { KvAffinityStore } from "../src/state/kv_affinity_store.ts";
import { KvQuotaCounter } from "../src/state/kv_quota_counter.ts";
import { MemoryStore } from "../src/state/memory.ts";

export const DEFAULT_KV_PATH = "./data/rotator.kv";

/**
 * On Deploy, watch() reaches every isolate, so the poll is a safety net that still bounds the
 * delay to about a second; each poll is a billed KV read, hence not the local 150 ms.
 */
const DEPLOY_POLL_MS = 1_000;

export async function openStore(
  env: Record<string, string | undefined>,
  _config: Config,
): Promise<OpenedState> {
  const kind = (env.STATE?.trim() || "kv").toLowerCase();
  if (kind !== "memory" && kind !== "kv") {
    throw new ConfigError(`STATE is ${JSON.stringify(kind.slice(0, 20))}: set it to kv or memory`);
  }
  const path = env.KV_PATH?.trim() || DEFAULT_KV_PATH;
  if (kind === "memory" || path === ":memory:") return { store: new MemoryStore() };
  const pollMs = pollInterval(
    env.KV_POLL_MS,
    env.DENO_DEPLOYMENT_ID ? DEPLOY_POLL_MS : DEFAULT_POLL_MS,
  );
  if (typeof Deno.openKv !== "function") {
    throw new ConfigError(
      "Deno KV is not available in this Deno: run with --unstable-kv (deno.json's " +
        '"unstable": ["kv"] does this for the tasks), or set STATE=memory',
    );
  }
  if (env.DENO_DEPLOYMENT_ID) {
    let kv: Deno.Kv;
    try {
      kv = await Deno.openKv();
    } catch (error) {
      throw new ConfigError(
        `Deno KV could not be opened (${(error as Error).message}): assign a KV database to ` +
          "this app (Databases in the Deno Deploy console), or set STATE=memory",
      );
    }
    return shared(kv, new KvStore(kv, { watch: true, pollMs }));
  }
  const slash = path.lastIndexOf("/");
  if (slash > 0) {
    try {
      await Deno.mkdir(path.slice(0, slash), { recursive: true });
    } catch (error) {
      throw new ConfigError(
        `KV_PATH is ${JSON.stringify(path)} but its directory cannot be created ` +
          `(${(error as Error).message}): set KV_PATH to a writable file, or STATE=memory`,
      );
    }
  }
  let kv: Deno.Kv;
  try {
    kv = await Deno.openKv(path);
  } catch (error) {
    throw new ConfigError(
      `KV_PATH is ${JSON.stringify(path)} but it cannot be opened as a Deno KV database ` +
        `(${(error as Error).message}): set KV_PATH to a writable file, or STATE=memory`,
    );
  }
  return shared(kv, new KvStore(kv, { pollMs }));
}

function shared(kv: Deno.Kv, store: KvStore): OpenedState {
  return { store, affinityStore: new KvAffinityStore(kv), quotaCounter: new KvQuotaCounter(kv) };
}

/** KV_POLL_MS: how often other instances' changes are looked for. */
function pollInterval(raw: string | undefined, fallback: number): number {
  const text = raw?.trim();
  if (!text) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < 20 || Number(text) > 60_000) {
    throw new ConfigError(
      `KV_POLL_MS is ${JSON.stringify(text.slice(0, 20))}: set it to a whole number of ` +
        "milliseconds from 20 to 60000",
    );
  }
  return Number(text);
}
