import assert from "node:assert/strict";
import { effectOf, nextPacificMidnight, pacificDay } from "./cooldown.ts";
import { DEFAULTS } from "./config.ts";
import type { Outcome } from "./classify.ts";

const settings = {
  minuteCooldownMs: DEFAULTS.MINUTE_COOLDOWN_MS,
  unknownQuotaCooldownMs: DEFAULTS.UNKNOWN_QUOTA_COOLDOWN_MS,
  noAllowanceCooldownMs: DEFAULTS.NO_ALLOWANCE_COOLDOWN_MS,
  spendCapCooldownMs: DEFAULTS.SPEND_CAP_COOLDOWN_MS,
  disabledRecheckMs: DEFAULTS.DISABLED_RECHECK_MS,
};
const NOW = Date.UTC(2026, 10, 25, 18, 0, 0); // 10:00 PST
const ctx = {
  keyId: "k1",
  project: "p1",
  model: "gemini-2.5-flash",
  status: 429,
  now: NOW,
  settings,
};

Deno.test("nextPacificMidnight() in winter (PST, UTC-8)", () => {
  assert.equal(nextPacificMidnight(NOW), Date.UTC(2026, 10, 26, 8, 0, 0));
});

Deno.test("nextPacificMidnight() in summer (PDT, UTC-7)", () => {
  assert.equal(nextPacificMidnight(Date.UTC(2026, 6, 1, 12, 0, 0)), Date.UTC(2026, 6, 2, 7, 0, 0));
});

Deno.test("nextPacificMidnight() just before and at midnight", () => {
  const midnight = Date.UTC(2026, 10, 26, 8, 0, 0);
  assert.equal(nextPacificMidnight(midnight - 1), midnight);
  assert.equal(nextPacificMidnight(midnight), Date.UTC(2026, 10, 27, 8, 0, 0));
});

Deno.test("nextPacificMidnight() across the DST switches", () => {
  // 2026-03-08 02:00 PST -> PDT. From 2026-03-07 12:00 PST, midnight of the 8th is still PST.
  assert.equal(nextPacificMidnight(Date.UTC(2026, 2, 7, 20, 0, 0)), Date.UTC(2026, 2, 8, 8, 0, 0));
  // From the 8th at noon PDT, midnight of the 9th is PDT (UTC-7).
  assert.equal(nextPacificMidnight(Date.UTC(2026, 2, 8, 19, 0, 0)), Date.UTC(2026, 2, 9, 7, 0, 0));
  // 2026-11-01 02:00 PDT -> PST: from Oct 31 noon PDT, midnight of Nov 1 is PDT.
  assert.equal(
    nextPacificMidnight(Date.UTC(2026, 9, 31, 19, 0, 0)),
    Date.UTC(2026, 10, 1, 7, 0, 0),
  );
  // From Nov 1 noon PST, midnight of Nov 2 is PST.
  assert.equal(
    nextPacificMidnight(Date.UTC(2026, 10, 1, 20, 0, 0)),
    Date.UTC(2026, 10, 2, 8, 0, 0),
  );
});

Deno.test("pacificDay() names the Pacific calendar day", () => {
  assert.equal(pacificDay(Date.UTC(2026, 10, 26, 7, 59, 59)), "2026-11-25");
  assert.equal(pacificDay(Date.UTC(2026, 10, 26, 8, 0, 0)), "2026-11-26");
});

Deno.test("effectOf() cools a per-minute quota for the RetryInfo delay", () => {
  const outcome: Outcome = { kind: "quota", window: "minute", retryDelayMs: 33_000, quotaId: "Q" };
  const effect = effectOf(outcome, ctx);
  assert.equal(effect.type, "cooldown");
  if (effect.type !== "cooldown") return;
  assert.equal(effect.record.until, NOW + 33_000);
  assert.equal(effect.record.project, "p1");
  assert.equal(effect.record.model, "gemini-2.5-flash");
});

Deno.test("effectOf() uses 60 s for a per-minute quota without RetryInfo", () => {
  const effect = effectOf({ kind: "quota", window: "minute" }, ctx);
  assert.equal(effect.type === "cooldown" && effect.record.until, NOW + 60_000);
});

Deno.test("effectOf() ignores the short retryDelay of a per-day quota", () => {
  const effect = effectOf({ kind: "quota", window: "day", retryDelayMs: 38_000 }, ctx);
  assert.equal(effect.type === "cooldown" && effect.record.until, Date.UTC(2026, 10, 26, 8, 0, 0));
});

Deno.test("effectOf(): no details is a short cooldown, limit 0 a long one", () => {
  const unknown = effectOf({ kind: "quota", window: "unknown" }, ctx);
  assert.equal(unknown.type === "cooldown" && unknown.record.until, NOW + 30_000);
  const none = effectOf({ kind: "no_allowance" }, ctx);
  assert.equal(none.type === "cooldown" && none.record.until, NOW + 24 * 3600_000);
});

Deno.test("effectOf(): a spending cap cools the whole project for every model", () => {
  const effect = effectOf({ kind: "project_exhausted", reason: "SPEND_CAP" }, ctx);
  assert.equal(effect.type === "cooldown" && effect.record.model, "*");
});

Deno.test("effectOf(): prepaid credits depleted disables the project", () => {
  const effect = effectOf({ kind: "project_exhausted", reason: "PREPAY_DEPLETED" }, ctx);
  assert.deepEqual(effect.type === "disable" && [effect.record.scope, effect.record.id], [
    "project",
    "p1",
  ]);
});

Deno.test("effectOf(): a rejected key is disabled with a re-check time", () => {
  const effect = effectOf({ kind: "key_rejected", scope: "key", reason: "LEAKED" }, {
    ...ctx,
    status: 403,
  });
  assert.equal(effect.type, "disable");
  if (effect.type !== "disable") return;
  assert.equal(effect.record.id, "k1");
  assert.equal(effect.record.reason, "LEAKED");
  assert.equal(effect.record.recheckAt, NOW + 24 * 3600_000);
  const never = effectOf({ kind: "key_rejected", scope: "key", reason: "LEAKED" }, {
    ...ctx,
    settings: { ...settings, disabledRecheckMs: 0 },
  });
  assert.equal(never.type === "disable" && never.record.recheckAt, null);
});

Deno.test("effectOf(): transient, client and location errors change nothing", () => {
  for (
    const outcome of [
      { kind: "transient", reason: "OVERLOADED" },
      { kind: "client_error" },
      { kind: "not_key", reason: "LOCATION" },
      { kind: "ok" },
    ] as Outcome[]
  ) {
    assert.deepEqual(effectOf(outcome, ctx), { type: "none" });
  }
});
