/**
 * How the admin API shows one key: its fingerprint and names, whether it can serve now, the
 * cooldowns and disablement that apply to it, its last error and today's counters. Never the
 * key value. Pure: everything comes in as arguments.
 */

import type { KeySource, PoolKey } from "../keys.ts";
import type { KeyPool } from "../pool.ts";
import type { CooldownWindow } from "../state/records.ts";
import { emptyCounts, USAGE_FIELDS, type UsageCounts, type UsageRow } from "../state/store.ts";
import type { UnusableKey } from "../key_registry.ts";
import type { LastError } from "./last_errors.ts";

export interface KeyView {
  readonly id: string;
  readonly label: string | null;
  readonly project: string;
  readonly source: KeySource;
  /** `disabled` wins over `cooling`: a cooling key may still serve models it is not cooling for. */
  readonly status: "ok" | "cooling" | "disabled";
  readonly disabled: null | {
    readonly scope: "key" | "project";
    readonly reason: string;
    readonly status: number;
    readonly since: string;
    readonly recheckAt: string | null;
  };
  readonly cooldowns: {
    readonly model: string;
    readonly until: string;
    readonly window: CooldownWindow;
    readonly reason: string;
  }[];
  readonly lastError: null | {
    readonly status: number;
    readonly reason: string;
    readonly at: string;
  };
  readonly usageToday: UsageCounts;
  readonly usageByModel: Record<string, UsageCounts>;
}

export interface ViewContext {
  readonly pool: KeyPool;
  readonly now: number;
  readonly lastError?: LastError;
  /** Today's usage rows of this key. */
  readonly usage: readonly UsageRow[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The view of a pool key. */
export function keyView(key: PoolKey, ctx: ViewContext): KeyView {
  const { pool, now } = ctx;
  const off = [pool.disablement("key", key.id), pool.disablement("project", key.project)]
    .find((d) => d !== undefined && (d.recheckAt === null || d.recheckAt > now));
  return view(
    key.id,
    key.label,
    key.project,
    key.source,
    ctx,
    off && {
      scope: off.scope,
      reason: off.reason,
      status: off.status,
      since: iso(off.since),
      recheckAt: off.recheckAt === null ? null : iso(off.recheckAt),
    },
  );
}

/** The view of a stored key this instance cannot open: shown as disabled, so it can be removed. */
export function unusableKeyView(key: UnusableKey, ctx: ViewContext): KeyView {
  return view(key.id, key.label, key.project, "kv", ctx, {
    scope: "key",
    reason: key.reason === "NO_SECRET"
      ? "KEY_ENCRYPTION_SECRET_MISSING"
      : "KEY_ENCRYPTION_SECRET_MISMATCH",
    status: 0,
    since: iso(key.addedAt),
    recheckAt: null,
  });
}

function view(
  id: string,
  label: string | undefined,
  project: string,
  source: KeySource,
  ctx: ViewContext,
  disabled: KeyView["disabled"] | undefined,
): KeyView {
  const cooldowns = ctx.pool.cooldownsOf(project, ctx.now)
    .sort((a, b) => a.until - b.until)
    .map((c) => ({ model: c.model, until: iso(c.until), window: c.window, reason: c.reason }));
  const usageToday = emptyCounts();
  const usageByModel: Record<string, UsageCounts> = {};
  for (const row of ctx.usage) {
    const counts = usageByModel[row.model] ??= emptyCounts();
    for (const field of USAGE_FIELDS) {
      counts[field] += row[field];
      usageToday[field] += row[field];
    }
  }
  return {
    id,
    label: label ?? null,
    project,
    source,
    status: disabled ? "disabled" : cooldowns.length > 0 ? "cooling" : "ok",
    disabled: disabled ?? null,
    cooldowns,
    lastError: ctx.lastError
      ? { status: ctx.lastError.status, reason: ctx.lastError.reason, at: iso(ctx.lastError.at) }
      : null,
    usageToday,
    usageByModel,
  };
}
