/** Opens the state store the environment asks for (Deno-specific: Deno.openKv lives here). */

import type { Config } from "../src/config.ts";
import { ConfigError } from "../src/config.ts";
import { MemoryStore } from "../src/state/memory.ts";
import type { StateStore } from "../src/state/store.ts";

export function openStore(
  env: Record<string, string | undefined>,
  _config: Config,
): Promise<StateStore> {
  const kind = (env.STATE ?? "memory").toLowerCase();
  if (kind === "memory") return Promise.resolve(new MemoryStore());
  throw new ConfigError(`STATE is ${JSON.stringify(kind.slice(0, 20))}: set it to memory or kv`);
}
