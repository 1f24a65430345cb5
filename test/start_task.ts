/**
 * The start command as deno.json's `start` task spells it: its permission flags and entry
 * module. Packaging files and subprocess tests compare against this, so none can drift from it.
 */

import denoJson from "../deno.json" with { type: "json" };

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
