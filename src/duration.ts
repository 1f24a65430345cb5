/**
 * Durations as Gemini writes them: protobuf Durations in RetryInfo (`"33s"`, `"0.539477544s"`)
 * and Go-style durations in messages (`Please retry in 10h50m43.651927829s.`, `900.2ms`).
 * Source: ../shared/gemini-api-facts.md §3.1 (real bodies).
 */

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
const GO_DURATION = /^(?:(\d+(?:\.\d+)?)(h|ms|m|s|us))+$/;
const GO_PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us)/g;

/** Milliseconds in a duration string, or undefined when it is not one. */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== "string") return undefined;
  const trimmed = text.trim();
  if (trimmed === "" || !GO_DURATION.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(GO_PART)) total += Number(amount) * UNIT_MS[unit];
  return Number.isFinite(total) ? Math.ceil(total) : undefined;
}

/** The delay in a message such as `... Please retry in 44.097740004s.` */
export function retryDelayFromMessage(message: string): number | undefined {
  const match = /retry in ([0-9hms.u]+?)\.?(?:\s|$)/i.exec(message);
  return match ? parseDuration(match[1]) : undefined;
}
