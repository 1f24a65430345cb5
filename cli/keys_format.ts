/**
 * How the keys CLI prints the admin API's answers for a terminal: aligned tables and one line
 * per checked key. The shapes are the admin API's JSON (the parts printed).
 */

import type { UsageCounts as Counts } from "../src/state/store.ts";

export interface KeyView {
  id: string;
  label: string | null;
  project: string;
  source: string;
  status: string;
  disabled: null | { scope: string; reason: string; recheckAt: string | null };
  cooldowns: { model: string; until: string; window: string }[];
  lastError: null | { status: number; reason: string; at: string };
  usageToday: Counts;
}

export interface CheckResult {
  id: string;
  upstreamStatus: number;
  outcome: string;
  reason?: string;
  key: KeyView;
}

export interface UsageRow extends Counts {
  keyId: string;
  model: string;
}

export function keyTable(keys: readonly KeyView[]): string {
  if (keys.length === 0) return "no keys";
  const rows = keys.map((k) => [
    k.id,
    k.source,
    k.status === "disabled" && k.disabled
      ? `disabled (${k.disabled.scope === "project" ? "project: " : ""}${k.disabled.reason})`
      : k.status,
    k.project.startsWith("key:") ? "-" : k.project,
    k.label ?? "-",
    k.cooldowns.length === 0
      ? "-"
      : k.cooldowns.map((c) => `${c.model || "(none)"} until ${shortTime(c.until)}`).join(", "),
    k.lastError ? `${k.lastError.status} ${k.lastError.reason} ${shortTime(k.lastError.at)}` : "-",
    `${k.usageToday.requests}/${k.usageToday.successes}/${k.usageToday.rateLimited}/` +
    `${k.usageToday.errors}`,
  ]);
  return table(
    ["ID", "SOURCE", "STATUS", "PROJECT", "LABEL", "COOLING", "LAST ERROR", "TODAY req/ok/429/err"],
    rows,
  );
}

export function usageTable(day: string, rows: readonly UsageRow[]): string {
  if (rows.length === 0) return `no usage on ${day} (Pacific)`;
  const fields = [
    "requests",
    "successes",
    "rateLimited",
    "errors",
    "promptTokens",
    "outputTokens",
  ] as const;
  const total = Object.fromEntries(fields.map((f) => [f, 0])) as Record<string, number>;
  for (const row of rows) for (const f of fields) total[f] += row[f];
  return `usage on ${day} (Pacific)\n` + table(
    ["KEY", "MODEL", "REQUESTS", "OK", "429", "ERRORS", "PROMPT TOK", "OUTPUT TOK"],
    [
      ...rows.map((r) => [r.keyId, r.model || "(none)", ...fields.map((f) => String(r[f]))]),
      ["total", "", ...fields.map((f) => String(total[f]))],
    ],
  );
}

export interface LimitsView {
  pacing: string;
  declared: {
    model: string;
    project: string | null;
    unit: string;
    limit: number;
    window: string;
  }[];
  buckets: {
    project: string;
    model: string;
    unit: string;
    limit: number;
    window: string | null;
    source: string;
    used: number;
    counting: string;
    roomAt: string | null;
  }[];
}

/** Pacing's limits: the declared ones, then each bucket's limit in force and its use. */
export function limitsTable(view: LimitsView): string {
  const amount = (limit: number, unit: string) =>
    unit === "tokens" ? `${limit} tokens` : `${limit}`;
  const declared = view.declared.length === 0 ? "declared: none (QUOTA_LIMITS is empty)" : table(
    ["MODEL", "PROJECT", "LIMIT", "WINDOW"],
    view.declared.map((d) => [d.model, d.project ?? "(all)", amount(d.limit, d.unit), d.window]),
  );
  const buckets = view.buckets.length === 0 ? "buckets: none paced yet" : table(
    ["PROJECT", "MODEL", "LIMIT", "WINDOW", "SOURCE", "USED", "COUNTING", "ROOM AT"],
    view.buckets.map((b) => [
      b.project,
      b.model,
      amount(b.limit, b.unit),
      b.window ?? "(learning)",
      b.source,
      String(b.used),
      b.counting,
      b.roomAt ? shortTime(b.roomAt) : "now",
    ]),
  );
  return `pacing: ${view.pacing}\n\n${declared}\n\n${buckets}`;
}

export function checkLine(result: CheckResult): string {
  const what = result.outcome === "ok"
    ? "ok"
    : `${result.outcome}${result.reason ? ` ${result.reason}` : ""}`;
  const status = result.upstreamStatus ? ` (HTTP ${result.upstreamStatus})` : "";
  const now = result.key.status === "disabled" ? ", now disabled" : "";
  return `${result.id}: ${what}${status}${result.outcome === "ok" ? "" : now}`;
}

function table(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}
