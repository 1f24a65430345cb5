import assert from "node:assert/strict";
import { QuotaLedger } from "./quota.ts";
import { parseQuotaLimits } from "./quota_config.ts";

const T0 = Date.UTC(2026, 10, 25, 18, 0, 0);
const M = "gemini-2.5-flash";

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
  const quota = (limit: number, retryDelayMs: number) => ({
    kind: "quota" as const,
    window: "minute" as const,
    unit: "requests" as const,
    quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    limit,
    retryDelayMs,
  });
  // Both projects learn the limit; neither knows the window's length yet.
  ledger.learn("a", M, quota(2, 1_000), T0);
  ledger.learn("b", M, quota(2, 2_000), T0);
  // Project a hears a second reset one window (3 s) after the first: the window is 3 s.
  ledger.learn("a", M, quota(2, 3_000), T0 + 1_000);
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
