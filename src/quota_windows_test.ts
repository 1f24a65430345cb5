import assert from "node:assert/strict";
import { QuotaLedger } from "./quota.ts";
import { parseQuotaLimits } from "./quota_config.ts";

const T0 = Date.UTC(2026, 10, 25, 18, 0, 0);
const M = "gemini-2.5-flash";

/** A per-minute 429 of the free tier, as classify() reports it. */
const rpm = (limit: number, retryDelayMs: number) => ({
  kind: "quota" as const,
  window: "minute" as const,
  unit: "requests" as const,
  quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
  limit,
  retryDelayMs,
});

Deno.test({
  name: "QuotaLedger: two declared request limits with sub-day windows are both enforced",
  // Of `5/3s,18/15s` both limits hold: the second is not folded into the first.
  fn() {
    const ledger = new QuotaLedger(parseQuotaLimits(`${M}=5/3s,18/15s`));
    let sent = 0;
    for (let now = T0; now < T0 + 15_000; now += 50) {
      while (ledger.blockedUntil("p", M, now) === undefined) {
        ledger.record("p", M, now);
        sent++;
      }
    }
    assert.equal(sent, 18, "at most 18 in any 15 s");
  },
});

Deno.test("QuotaLedger: two learned per-minute quotas with different ids keep their own limits", () => {
  const ledger = new QuotaLedger();
  const quota = (quotaId: string, limit: number, retryDelayMs: number) => ({
    kind: "quota" as const,
    window: "minute" as const,
    unit: "requests" as const,
    quotaId,
    limit,
    retryDelayMs,
  });
  ledger.learn("p", M, quota("ShortWindow", 5, 3_000), T0);
  ledger.learn("p", M, quota("LongWindow", 18, 15_000), T0);
  const limits = ledger.rules(T0).map((r) => [r.rule.quotaId, r.rule.limit]).sort();
  assert.deepEqual(limits, [["LongWindow", 18], ["ShortWindow", 5]]);
});

Deno.test("QuotaLedger: a window length one project learns ends every project's probe", () => {
  const ledger = new QuotaLedger();
  // Both projects learn the limit; neither knows the window's length yet.
  ledger.learn("a", M, rpm(2, 1_000), T0);
  ledger.learn("b", M, rpm(2, 2_000), T0);
  // Project a hears a second reset one window (3 s) after the first: the window is 3 s.
  ledger.learn("a", M, rpm(2, 3_000), T0 + 1_000);
  const b = ledger.rules(T0 + 1_000).find((r) => r.project === "b")!;
  assert.equal(b.rule.window, 3_000, "b adopts the length a learned");
  // So after its reset b takes its limit and no probe: the third send waits for the window.
  const reset = T0 + 2_000;
  for (let i = 0; i < 2; i++) {
    assert.equal(ledger.blockedUntil("b", M, reset + i), undefined);
    ledger.record("b", M, reset + i);
  }
  assert.notEqual(ledger.blockedUntil("b", M, reset + 2), undefined, "no probe");
});

/** A ledger that knows a 10 s window of 4 and was refused at T0 with its reset 2.5 s ahead. */
function anchored(): QuotaLedger {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=4/10s`));
  for (let i = 0; i < 4; i++) ledger.record("p", M, T0 - 7_000 + i);
  // Sent at T0 - 10 ms, refused at T0: the reset lies in [T0 + 2489.5, T0 + 2500.5].
  ledger.learn("p", M, rpm(4, 2_499.5), T0, T0 - 10);
  return ledger;
}

Deno.test("QuotaLedger: after a 429 names the reset, the bucket fills Google's fixed windows", () => {
  const ledger = anchored();
  const boundary = T0 + 2_500.5;
  assert.equal(ledger.blockedUntil("p", M, T0 + 1_000), T0 + 2_499.5, "spent until the reset");
  // Four sends late in the first window; a sliding window would hold the bucket until they age
  // out (about 10 s later), the fixed window gives four more at its next boundary.
  for (let i = 0; i < 4; i++) ledger.record("p", M, boundary + 9_000 + i);
  assert.equal(ledger.blockedUntil("p", M, boundary + 9_500), boundary + 10_000);
  assert.equal(ledger.blockedUntil("p", M, boundary + 10_000), undefined);
  for (let i = 0; i < 4; i++) ledger.record("p", M, boundary + 10_000 + i);
  assert.equal(ledger.blockedUntil("p", M, boundary + 10_004), boundary + 20_000);
});

Deno.test("QuotaLedger: a send just before an anchored boundary counts in the next window too", () => {
  const ledger = anchored();
  const boundary = T0 + 2_500.5;
  // Google's boundary may be up to 11 ms earlier and a send may take 10 ms to arrive: these
  // three, 15 ms before the rotator's boundary, may land in Google's next window.
  for (let i = 0; i < 3; i++) ledger.record("p", M, boundary + 10_000 - 15);
  ledger.record("p", M, boundary + 10_000);
  assert.notEqual(ledger.blockedUntil("p", M, boundary + 10_001), undefined, "3 + 1 of 4");
  // Sent well before the boundary, a send belongs to its own window only.
  const other = anchored();
  for (let i = 0; i < 3; i++) other.record("p", M, boundary + 10_000 - 500);
  other.record("p", M, boundary + 10_000);
  assert.equal(other.blockedUntil("p", M, boundary + 10_001), undefined);
});

Deno.test("QuotaLedger: a reset off the anchored grid means the windows slide", () => {
  const ledger = anchored();
  const boundary = T0 + 2_500.5;
  // Google announces a reset 3 s off the 10 s grid: its windows are not the fixed ones assumed.
  ledger.learn("p", M, rpm(4, 3_000.5), boundary + 10_000, boundary + 9_990);
  const reset = boundary + 13_000.5;
  for (let i = 0; i < 4; i++) ledger.record("p", M, reset + 9_000 + i);
  // Sliding: the next send waits until the first of those four is 10 s old.
  assert.equal(ledger.blockedUntil("p", M, reset + 10_000), reset + 19_000);
});

Deno.test("QuotaLedger: a RetryInfo in whole seconds anchors a second later, with a wider guard", () => {
  const ledger = new QuotaLedger(parseQuotaLimits(`${M}=4/10s`));
  ledger.learn("p", M, rpm(4, 3_000), T0, T0 - 10);
  const boundary = T0 + 4_000; // "3s" may be 2 s to 4 s
  for (let i = 0; i < 4; i++) ledger.record("p", M, boundary + 10_000 - 1_500);
  assert.notEqual(
    ledger.blockedUntil("p", M, boundary + 10_000),
    undefined,
    "1.5 s before the boundary is inside the guard",
  );
});
