import assert from "node:assert/strict";
import { LEARNED_RULE_TTL_MS, QuotaLedger } from "./quota.ts";
import { PROBATION_RECHECK_MS } from "./quota_probation.ts";
import { parseQuotaLimits } from "./quota_config.ts";
import { ConfigError } from "./config.ts";
import { nextPacificMidnight } from "./cooldown.ts";

const T0 = Date.UTC(2026, 10, 25, 18, 0, 0);
const M = "gemini-2.5-flash";
const rpm = (limit: number, retryDelayMs: number) => ({
  kind: "quota" as const,
  window: "minute" as const,
  limit,
  retryDelayMs,
  unit: "requests" as const,
  quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
});

Deno.test("QuotaLedger: a declared per-minute limit blocks the bucket after N sends", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=3/min`));
  for (let i = 0; i < 3; i++) {
    assert.equal(ledger.blockedUntil("p", M, T0 + i), undefined);
    ledger.record("p", M, T0 + i);
  }
  assert.equal(
    ledger.blockedUntil("p", M, T0 + 3),
    T0 + 60_000,
    "room when the first send ages out",
  );
  assert.equal(ledger.blockedUntil("p", M, T0 + 60_000), undefined);
  assert.equal(ledger.blockedUntil("other", M, T0 + 3), undefined, "buckets are per project");
  assert.equal(ledger.blockedUntil("p", "gemini-2.5-pro", T0 + 3), undefined, "and per model");
});

Deno.test("QuotaLedger: in-flight sends count, so concurrent requests cannot overshoot", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=2/min`));
  ledger.record("p", M, T0);
  ledger.record("p", M, T0); // both still in flight: no answer yet
  assert.notEqual(ledger.blockedUntil("p", M, T0), undefined);
});

Deno.test("QuotaLedger: a sliding window never puts more than N in any fixed window", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=5/10s`));
  const sends: number[] = [];
  for (let t = T0; t < T0 + 100_000; t += 250) {
    if (ledger.blockedUntil("p", M, t) === undefined) {
      ledger.record("p", M, t);
      sends.push(t);
    }
  }
  // Whatever the phase of the upstream's fixed windows, none gets more than 5.
  for (let phase = 0; phase < 10_000; phase += 1250) {
    const perWindow = new Map<number, number>();
    for (const t of sends) {
      const w = Math.floor((t - T0 - phase) / 10_000);
      perWindow.set(w, (perWindow.get(w) ?? 0) + 1);
    }
    assert.ok(Math.max(...perWindow.values()) <= 5, `phase ${phase}`);
  }
  assert.ok(sends.length >= 50, "and under load every window is filled");
});

Deno.test("QuotaLedger: learns the limit from a 429 and the window from two resets", () => {
  const ledger = new QuotaLedger();
  assert.equal(ledger.active, false);
  ledger.learn("p", M, rpm(4, 6_000), T0);
  assert.equal(ledger.blockedUntil("p", M, T0 + 1000), T0 + 6_000, "full until the reset");
  // Window length unknown yet: after the reset the bucket takes its limit, then exactly one
  // more request (a probe, to hear the next reset), and holds the rest until that answer.
  for (let i = 0; i < 4; i++) {
    assert.equal(ledger.blockedUntil("p", M, T0 + 6_000 + i), undefined);
    ledger.record("p", M, T0 + 6_000 + i);
  }
  assert.equal(ledger.blockedUntil("p", M, T0 + 6_004), undefined, "the probe");
  ledger.record("p", M, T0 + 6_004);
  assert.ok(ledger.blockedUntil("p", M, T0 + 6_005)! > T0 + 6_005, "held while the probe is out");
  // Second 429: the next reset is one window later, so the window is 10 s.
  ledger.learn("p", M, rpm(4, 9_990), T0 + 6_010);
  const [rule] = ledger.rules(T0 + 6_010).map((r) => r.rule);
  assert.equal(rule.window, 10_000);
  assert.equal(rule.limit, 4);
  assert.equal(rule.source, "learned");
  // From the reset on (give or take RetryInfo's millisecond), the bucket takes 4 per window and
  // then waits for the next fixed window.
  const reset = T0 + 16_001;
  for (let i = 0; i < 4; i++) {
    assert.equal(ledger.blockedUntil("p", M, reset + i), undefined);
    ledger.record("p", M, reset + i);
  }
  assert.equal(ledger.blockedUntil("p", M, reset + 4), reset + 10_000);
});

Deno.test("QuotaLedger: a per-day 429 blocks until midnight Pacific and counts per day", () => {
  const ledger = new QuotaLedger();
  ledger.learn("p", M, { kind: "quota", window: "day", limit: 20, retryDelayMs: 38_000 }, T0);
  const midnight = nextPacificMidnight(T0);
  assert.equal(ledger.blockedUntil("p", M, T0 + 60_000), midnight);
  for (let i = 0; i < 20; i++) ledger.record("p", M, midnight + i * 1000);
  assert.equal(ledger.blockedUntil("p", M, midnight + 30_000), nextPacificMidnight(midnight + 1));
});

Deno.test("QuotaLedger: tokens per minute count estimates, corrected by the answer", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=1000t/min`));
  const ticket = ledger.record("p", M, T0, 900);
  assert.notEqual(ledger.blockedUntil("p", M, T0, 200), undefined);
  ledger.settleTokens(ticket, 100); // the answer said 100 input tokens
  assert.equal(ledger.blockedUntil("p", M, T0, 200), undefined);
});

Deno.test("QuotaLedger: learned rules go stale after a day and are relearned", () => {
  const ledger = new QuotaLedger();
  ledger.learn("p", M, rpm(4, 6_000), T0);
  ledger.learn("p", M, rpm(4, 16_000), T0 + 6_000);
  assert.equal(ledger.rules(T0 + 7_000).length, 1);
  const later = T0 + LEARNED_RULE_TTL_MS + 60_000;
  assert.equal(ledger.blockedUntil("p", M, later), undefined);
  assert.equal(ledger.rules(later).length, 0);
});

Deno.test("QuotaLedger: a stated limit replaces a declared one that was wrong", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=10/min`));
  ledger.record("p", M, T0);
  ledger.learn("p", M, rpm(5, 30_000), T0 + 1);
  const [entry] = ledger.rules(T0 + 2);
  assert.equal(entry.rule.limit, 5);
  assert.equal(entry.rule.source, "learned");
  assert.equal(entry.rule.window, 60_000, "the declared window is kept");
});

Deno.test("parseQuotaLimits() reads models, projects, units and windows", () => {
  const rules = parseQuotaLimits(
    "gemini-2.5-flash=10/min,250/day,250000t/min; gemini-2.5-pro@paid=5/30s",
  );
  assert.deepEqual(rules.map((r) => [r.model, r.project, r.unit, r.limit, r.window]), [
    ["gemini-2.5-flash", undefined, "requests", 10, 60_000],
    ["gemini-2.5-flash", undefined, "requests", 250, "day"],
    ["gemini-2.5-flash", undefined, "tokens", 250000, 60_000],
    ["gemini-2.5-pro", "paid", "requests", 5, 30_000],
  ]);
});

Deno.test("parseQuotaLimits() names what is wrong", () => {
  for (
    const [text, pattern] of [
      ["gemini-2.5-flash", /must look like model=10\/min/],
      ["m=ten/min", /is not a limit/],
      ["m=10/fortnight", /window "fortnight"/],
      ["m=0/min", /is not a limit/],
    ] as const
  ) {
    assert.throws(() => parseQuotaLimits(text), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, pattern);
      return true;
    });
  }
});

Deno.test("QuotaLedger.paces(): a bucket that has not met a quota other projects of its model have is not counted as known", () => {
  const ledger = new QuotaLedger();
  const daily = {
    ...rpm(18, 9_000),
    quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
  };
  assert.equal(ledger.paces("a", M), false, "nothing learned: room is a guess");
  ledger.learn("a", M, rpm(5, 2_000), T0);
  ledger.learn("b", M, rpm(5, 2_500), T0);
  assert.equal(ledger.paces("a", M), true);
  assert.equal(ledger.paces("b", M), true);
  // Project a meets a second quota; b has not met it yet, so b is not known to have room.
  ledger.learn("a", M, daily, T0 + 1_000);
  assert.equal(ledger.paces("a", M), true);
  assert.equal(ledger.paces("b", M), false);
  ledger.learn("b", M, daily, T0 + 2_000);
  assert.equal(ledger.paces("b", M), true);
  // Another model's quotas say nothing about this one.
  ledger.learn("a", "gemini-2.5-pro", rpm(2, 2_000), T0);
  assert.equal(ledger.paces("b", M), true);
  // Declared limits are known from the first request.
  assert.equal(new QuotaLedger(parseQuotaLimits(`${M}=3/min`)).paces("c", M), true);
});

Deno.test("QuotaLedger: with probation, a bucket that has not met a quota another project met takes one request at a time", () => {
  const ledger = new QuotaLedger([], { probation: true });
  // Project b has a request in flight when project a first refuses.
  ledger.sending("b", M);
  assert.equal(ledger.blockedUntil("b", M, T0), undefined, "nothing learned anywhere yet");
  ledger.sending("a", M);
  ledger.answered("a", M, false, T0);
  ledger.learn("a", M, rpm(5, 2_000), T0);
  assert.equal(ledger.paces("b", M), false);
  const version = ledger.version;
  assert.equal(
    ledger.blockedUntil("b", M, T0),
    T0 + PROBATION_RECHECK_MS,
    "b must wait for its request in flight",
  );
  // b's answer frees it at once (the pool is told by the version), not at the recheck time.
  ledger.answered("b", M, true, T0 + 5);
  assert.ok(ledger.version > version, "the pool looks at held buckets again");
  ledger.sending("b", M);
  assert.equal(ledger.blockedUntil("b", M, T0 + 6), undefined, "b proved itself: free");
  // Once b has met the quota itself, its room is counted, not guessed: never held.
  const other = new QuotaLedger([], { probation: true });
  other.learn("a", M, rpm(5, 2_000), T0);
  other.learn("b", M, rpm(5, 2_000), T0);
  other.sending("b", M);
  other.sending("b", M);
  assert.equal(other.paces("b", M), true);
  assert.equal(other.blockedUntil("b", M, T0 + 2_001), undefined);
});

Deno.test("QuotaLedger: without probation (no waiting, or declared limits) nothing is held", () => {
  const ledger = new QuotaLedger();
  ledger.learn("a", M, rpm(5, 2_000), T0);
  ledger.sending("b", M);
  ledger.sending("b", M);
  assert.equal(ledger.blockedUntil("b", M, T0), undefined);
});
