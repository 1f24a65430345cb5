/** Deno-specific plumbing shared by the Deno entries: environment, platform, log output. */

import { ConfigError } from "../src/config.ts";
import { parseDotenv } from "../src/dotenv.ts";

/**
 * `deno-deploy` on Deno Deploy, else `deno`. Current Deploy sets DENO_DEPLOY, Deploy Classic only
 * DENO_DEPLOYMENT_ID (https://docs.deno.com/deploy/reference/env_vars_and_contexts/).
 */
export function denoPlatform(): "deno" | "deno-deploy" {
  return Deno.env.has("DENO_DEPLOY") || Deno.env.get("DENO_DEPLOYMENT_ID") ? "deno-deploy" : "deno";
}

/**
 * The process environment over a `.env` file (ENV_FILE, default `./.env`) when one exists: a
 * variable set in the real environment wins over the file.
 */
export async function readEnv(): Promise<Record<string, string>> {
  const env = Deno.env.toObject();
  const path = env.ENV_FILE ?? ".env";
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || env.ENV_FILE) {
      if (error instanceof Deno.errors.NotFound) {
        throw new Deno.errors.NotFound(`ENV_FILE ${path} does not exist`);
      }
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return text === undefined ? env : { ...parseDotenv(text), ...env };
}

/**
 * Log lines collected and written in batches: one write per event-loop turn instead of one per
 * request keeps logging off the hot path.
 */
export function bufferedStdout(): { write: (line: string) => void; flush: () => void } {
  const encoder = new TextEncoder();
  let lines: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (lines.length === 0) return;
    const data = encoder.encode(lines.join("\n") + "\n");
    lines = [];
    let written = 0;
    while (written < data.length) written += Deno.stdout.writeSync(data.subarray(written));
  };
  return {
    write(line) {
      lines.push(line);
      if (lines.length >= 256) flush();
      else if (!scheduled) {
        scheduled = true;
        setTimeout(flush, 0);
      }
    },
    flush,
  };
}

/** The text of the PROVIDERS_FILE, when one is named. */
export async function readProvidersFile(path: string | undefined): Promise<string | undefined> {
  if (!path?.trim()) return undefined;
  try {
    return await Deno.readTextFile(path.trim());
  } catch (error) {
    throw new ConfigError(
      `PROVIDERS_FILE is ${JSON.stringify(path.trim().slice(0, 200))}, which cannot be read (${
        error instanceof Error ? error.name : "error"
      }): point it at a JSON file of providers`,
    );
  }
}
