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
