/**
 * QUOTA_LIMITS: limits the operator knows (for example the free tier's), which apply from the
 * first request so even the first window sees no 429.
 *
 *   QUOTA_LIMITS="gemini-2.5-flash=10/min,250/day,250000t/min; gemini-2.5-pro@paid=150/min"
 *
 * An entry is `model[@project]=limit,...`; a limit is `N/window` (requests) or `Nt/window`
 * (input tokens); a window is `min`, `day` (the Pacific day, when per-day quotas reset) or a
 * duration such as `30s`.
 */

import { ConfigError } from "./config.ts";
import { parseDuration } from "./duration.ts";
import type { QuotaRule } from "./quota.ts";

export function parseQuotaLimits(text: string | undefined): QuotaRule[] {
  const rules: QuotaRule[] = [];
  for (const raw of (text ?? "").split(/[;\n]/)) {
    const entry = raw.trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError(
        `QUOTA_LIMITS entry "${entry.slice(0, 60)}" must look like model=10/min,250/day`,
      );
    }
    const [model, project] = entry.slice(0, eq).trim().split("@").map((s) => s.trim());
    if (!/^[A-Za-z0-9._\/-]+$/.test(model) || (project !== undefined && project === "")) {
      throw new ConfigError(`QUOTA_LIMITS entry "${entry.slice(0, 60)}" has an invalid model name`);
    }
    for (const limitText of entry.slice(eq + 1).split(",")) {
      const match = /^\s*(\d+)\s*(t?)\s*\/\s*([A-Za-z0-9.]+)\s*$/.exec(limitText);
      if (!match || Number(match[1]) <= 0) {
        throw new ConfigError(
          `QUOTA_LIMITS: "${limitText.trim().slice(0, 40)}" for ${model} is not a limit: write ` +
            `N/min, N/day, N/30s, or Nt/min for input tokens`,
        );
      }
      const window = windowOf(match[3]);
      if (window === undefined) {
        throw new ConfigError(
          `QUOTA_LIMITS: window "${match[3]}" for ${model} is not min, day or a duration like 30s`,
        );
      }
      rules.push({
        model,
        ...(project ? { project } : {}),
        unit: match[2] === "t" ? "tokens" : "requests",
        limit: Number(match[1]),
        window,
        source: "declared",
      });
    }
  }
  return rules;
}

function windowOf(text: string): number | "day" | undefined {
  const lower = text.toLowerCase();
  if (lower === "min" || lower === "minute") return 60_000;
  if (lower === "day" || lower === "d") return "day";
  const ms = parseDuration(lower);
  return ms !== undefined && ms >= 100 ? ms : undefined;
}
