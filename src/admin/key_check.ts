/**
 * "Check a key": one cheap upstream call with that key (list one model, which draws on no
 * generation quota) and what its answer means for the key, by the same classification the
 * proxy uses. Effects are returned, not applied.
 *
 * Models list: https://ai.google.dev/api/models#method:-models.list
 */

import { classify, type Outcome } from "../classify.ts";
import { type CooldownSettings, type Effect, effectOf } from "../cooldown.ts";
import type { PoolKey } from "../keys.ts";
import { NO_MODEL } from "../route.ts";
import { upstreamHeaders, upstreamUrl } from "../upstream.ts";

/** How long a check waits for Google's answer. */
export const CHECK_TIMEOUT_MS = 15_000;
/** Error bodies are small; a models page is too. */
const BODY_LIMIT = 64 * 1024;

export interface CheckContext {
  readonly origin: string;
  readonly fetch: typeof fetch;
  readonly now: () => number;
  readonly settings: CooldownSettings;
  readonly timeoutMs?: number;
}

export interface CheckResult {
  /** Upstream HTTP status, 0 when none arrived. */
  readonly upstreamStatus: number;
  readonly outcome: Outcome["kind"] | "network_error" | "timeout";
  /** The machine reason, when the outcome has one (e.g. `API_KEY_INVALID`). */
  readonly reason?: string;
  /** What the answer changes in the shared state (`none` when it worked). */
  readonly effect: Effect;
}

export async function checkKey(key: PoolKey, ctx: CheckContext): Promise<CheckResult> {
  const timeout = AbortSignal.timeout(ctx.timeoutMs ?? CHECK_TIMEOUT_MS);
  let response: Response;
  try {
    response = await ctx.fetch(upstreamUrl(ctx.origin, "/v1beta/models", "?pageSize=1"), {
      headers: upstreamHeaders(new Headers({ accept: "application/json" }), key, "native"),
      redirect: "manual",
      signal: timeout,
    });
  } catch {
    const timedOut = timeout.aborted;
    return {
      upstreamStatus: 0,
      outcome: timedOut ? "timeout" : "network_error",
      reason: timedOut ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE",
      effect: { type: "none" },
    };
  }
  const body = await readLimited(response);
  const outcome = classify({ status: response.status, body });
  return {
    upstreamStatus: response.status,
    outcome: outcome.kind,
    ...reasonOf(outcome),
    effect: effectOf(outcome, {
      keyId: key.id,
      project: key.project,
      model: NO_MODEL,
      status: response.status,
      now: ctx.now(),
      settings: ctx.settings,
    }),
  };
}

function reasonOf(outcome: Outcome): { reason?: string } {
  switch (outcome.kind) {
    case "key_rejected":
    case "project_exhausted":
    case "transient":
    case "not_key":
      return { reason: outcome.reason };
    case "quota":
      return { reason: outcome.quotaId ?? `PER_${outcome.window.toUpperCase()}` };
    case "no_allowance":
      return { reason: "LIMIT_ZERO" };
    default:
      return {};
  }
}

async function readLimited(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < BODY_LIMIT) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // A body cut short still classifies by what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  const decoder = new TextDecoder();
  return chunks.map((c) => decoder.decode(c, { stream: true })).join("") + decoder.decode();
}
