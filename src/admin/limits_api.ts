/**
 * Pacing's limits over HTTP: what the operator declared (QUOTA_LIMITS), and what each bucket is
 * paced by now, declared or learned from Google's 429s, with how much of its window this
 * instance has used and when it has room again. Read-only. Counts are this instance's own;
 * learned limits are shared between instances through Deno KV.
 *
 *   GET /admin/api/limits[?model=M][&project=P]   { now, pacing, declared: [...], buckets: [...] }
 */

import type { Config } from "../config.ts";
import type { LimitInForce, QuotaLedger, QuotaRule, QuotaWindow } from "../quota.ts";
import type { AdminModule } from "./dispatch.ts";
import { invalidArgument, jsonResponse } from "./json.ts";
import { errorResponse } from "../errors.ts";

export interface LimitsApiContext {
  readonly config: Pick<Config, "pacing" | "quotaLimits">;
  readonly ledger: QuotaLedger;
  readonly now: () => number;
}

const LIMITS = "/admin/api/limits";
const FILTERS = ["model", "project"] as const;
const MAX_FILTER = 200;

export function limitsApi(ctx: LimitsApiContext): AdminModule {
  return async (request, url) => {
    if (url.pathname !== LIMITS) return undefined;
    await request.body?.cancel().catch(() => {});
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorResponse(405, "INVALID_ARGUMENT", "Use GET on this path.", {
        headers: { allow: "GET, HEAD" },
        reason: "METHOD_NOT_ALLOWED",
      });
    }
    const filter = readFilter(url.searchParams);
    if (typeof filter === "string") return invalidArgument(filter);
    return jsonResponse(limitsView(ctx, filter));
  };
}

type Filter = { model?: string; project?: string };

/** The query's filters, or what is wrong with it. */
function readFilter(params: URLSearchParams): Filter | string {
  const filter: Filter = {};
  for (const [name, value] of params) {
    if (!(FILTERS as readonly string[]).includes(name)) {
      // A short plain name is echoed; anything else might be a secret pasted in the wrong place.
      const shown = /^[A-Za-z_]{1,20}$/.test(name) ? ` "${name}"` : "";
      return `Unknown query parameter${shown}: filter with model= and project= only.`;
    }
    if (value === "" || value.length > MAX_FILTER) {
      return `${name}= must be a ${name} name of 1 to ${MAX_FILTER} characters.`;
    }
    if (filter[name as keyof Filter] !== undefined) return `${name}= is given twice.`;
    filter[name as keyof Filter] = value;
  }
  return filter;
}

function limitsView(ctx: LimitsApiContext, filter: Filter): Record<string, unknown> {
  const now = ctx.now();
  const declared = ctx.config.quotaLimits
    .filter((rule) => filter.model === undefined || rule.model === filter.model)
    .filter((rule) =>
      filter.project === undefined || rule.project === undefined ||
      rule.project === filter.project
    )
    .map((rule) => ({
      model: rule.model,
      project: rule.project ?? null,
      unit: rule.unit,
      limit: rule.limit,
      window: windowText(rule.window),
    }));
  const buckets = ctx.ledger.rules(now)
    .filter((entry) => filter.model === undefined || entry.rule.model === filter.model)
    .filter((entry) => filter.project === undefined || entry.project === filter.project)
    .sort(byBucket)
    .map((entry) => bucketView(entry));
  return { now: iso(now), pacing: ctx.config.pacing, declared, buckets };
}

function bucketView(entry: LimitInForce): Record<string, unknown> {
  const { rule } = entry;
  return {
    project: entry.project,
    model: rule.model,
    unit: rule.unit,
    limit: rule.limit,
    window: windowText(rule.window),
    source: rule.source,
    quotaId: rule.quotaId ?? null,
    learnedAt: rule.learnedAt !== undefined ? iso(rule.learnedAt) : null,
    replacesDeclared: entry.replaced
      ? { limit: entry.replaced.limit, window: windowText(entry.replaced.window) }
      : null,
    counting: entry.counting,
    used: entry.used,
    roomAt: entry.roomAt !== undefined ? iso(entry.roomAt) : null,
    fullUntil: entry.fullUntil !== undefined ? iso(entry.fullUntil) : null,
  };
}

/** `"60s"`, `"2.5s"`, `"day"` (the Pacific day), or null while a learned length is unknown. */
function windowText(window: QuotaWindow | undefined): string | null {
  if (window === undefined) return null;
  return window === "day" ? "day" : `${window / 1000}s`;
}

function byBucket(a: LimitInForce, b: LimitInForce): number {
  return a.rule.model.localeCompare(b.rule.model) || a.project.localeCompare(b.project) ||
    a.rule.unit.localeCompare(b.rule.unit) || windowOrder(a.rule) - windowOrder(b.rule);
}

function windowOrder(rule: QuotaRule): number {
  return rule.window === "day" ? Infinity : rule.window ?? -1;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
