/**
 * Plumbing shared by the edge-function entries (Supabase, Netlify). Those platforms call a
 * handler per request and have no start-up step, so the app starts on the first request, from
 * the platform's environment, on the in-memory store (neither platform offers Deno KV: each
 * isolate learns cooldowns on its own).
 *
 * A configuration error answers every request with its message (it names the variable, never a
 * secret), because a crashed isolate shows the caller only a bare platform error page.
 */

import denoJson from "../deno.json" with { type: "json" };
import { ConfigError } from "../src/config.ts";
import { errorResponse } from "../src/errors.ts";
import { MemoryStore } from "../src/state/memory.ts";
import { startApp, type Started, startupFields } from "../src/startup.ts";

export interface EdgeEntryOptions {
  /** The entry module, as `GET /healthz` reports it. */
  readonly entry: string;
  readonly platform: "supabase" | "netlify";
  /** Reads the platform's environment; called once, on the first request. */
  readonly env: () => Readonly<Record<string, string | undefined>>;
}

/** Per-request facts the platform hands over, used when the first request starts the app. */
export interface RequestHints {
  /** The deployment's id, when the platform tells it. */
  readonly build?: string;
}

export type EdgeHandler = (request: Request, hints?: RequestHints) => Promise<Response>;

/** A handler that starts the app once, on first use, and then serves every request with it. */
export function edgeHandler(options: EdgeEntryOptions): EdgeHandler {
  let starting: Promise<Started> | undefined;

  const start = async (request: Request, hints: RequestHints): Promise<Started> => {
    try {
      const started = await startApp({
        env: options.env(),
        meta: {
          version: denoJson.version,
          entry: options.entry,
          platform: options.platform,
          ...(hints.build ? { build: hints.build } : {}),
        },
        openStore: () => Promise.resolve(new MemoryStore()),
        // Both platforms serve every function on a public URL.
        publicPlatform: true,
      });
      started.app.log.info("started", startupFields(started, new URL(request.url).origin));
      return started;
    } catch (error) {
      // Logged once here; every request then gets the answer below.
      console.error(error instanceof ConfigError ? error.message : error);
      throw error;
    }
  };

  return async (request, hints = {}) => {
    starting ??= start(request, hints);
    let started: Started;
    try {
      started = await starting;
    } catch (error) {
      await request.body?.cancel().catch(() => {});
      if (error instanceof ConfigError) {
        return errorResponse(503, "UNAVAILABLE", error.message, { reason: "MISCONFIGURED" });
      }
      return errorResponse(500, "INTERNAL", "The rotator could not start; see its log.");
    }
    return await started.app.fetch(request);
  };
}
