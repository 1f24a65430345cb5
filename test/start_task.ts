/**
 * The start command as deno.json's `start` task spells it: its permission flags and entry
 * module. Packaging files and subprocess tests compare against this, so none can drift from it.
 */

import denoJson from "../deno.json" with { type: "json" };
import { baseEnv, type Child, spawnUntilReady } from "./subprocess.ts";

export interface StartCommand {
  /** Flags between `run` and the entry module, e.g. `--allow-net`. */
  readonly flags: readonly string[];
  /** The entry module, relative to the repository root. */
  readonly entry: string;
}

/** The repository root, as a path. */
export const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Parses `<deno> run <flags...> <entry>` from deno.json's start task. */
export function startCommand(): StartCommand {
  const words = denoJson.tasks.start.trim().split(/\s+/);
  const run = words.indexOf("run");
  if (run < 0) throw new Error(`the start task does not use "deno run": ${denoJson.tasks.start}`);
  const rest = words.slice(run + 1);
  const entry = rest.at(-1)!;
  return { flags: rest.slice(0, -1), entry };
}

/** The deno.json `deploy` section (current Deno Deploy). */
export function deployConfig(): { runtime?: { type?: string; entrypoint?: string } } {
  return (denoJson as { deploy?: { runtime?: { type?: string; entrypoint?: string } } }).deploy ??
    {};
}

/** The line entries/deno.ts writes once it listens; its group is the address. */
export const STARTED_LINE = /"msg":"started".*"address":"(http:\/\/[^"]+)"/;

/**
 * Spawns the rotator as `deno task start` starts it (its flags and entry, this repository's
 * deno.json), in `cwd` (a temporary directory: no stray .env, state files land there), and
 * resolves once it listens.
 */
export function spawnStartTask(env: Record<string, string>, cwd: string): Promise<Child> {
  const { flags, entry } = startCommand();
  return spawnUntilReady({
    args: ["run", ...flags, "--config", `${ROOT}/deno.json`, `${ROOT}/${entry}`],
    env,
    cwd,
    ready: STARTED_LINE,
  });
}

/** A child rotator's variables: one key, one access token, `upstream` as Gemini, any free port. */
export function childEnv(upstream: string, key: string, token: string): Record<string, string> {
  return {
    ...baseEnv(),
    API_KEYS: key,
    ACCESS_TOKEN: token,
    GEMINI_API_BASE_URL: upstream,
    HOST: "127.0.0.1",
    PORT: "0",
  };
}
