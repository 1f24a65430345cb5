import assert from "node:assert/strict";
import { QuotaLedger } from "./quota.ts";
import { parseQuotaLimits } from "./quota_config.ts";

const T0 = Date.UTC(2026, 10, 25, 18, 0, 0);
const M = "gemini-2.5-flash";

Deno.test({
  name: "QuotaLedger: two declared request limits with sub-day windows are both enforced",
  // BUG (src/quota.ts): dimensions are keyed by unit and "minute"/"day" only, so of
  // `5/3s,18/15s` the ledger keeps the first and drops the second: 25 sends pass in 15 s. The
  // quota benchmark (bench/quota.ts, BENCH_PACING=declared) shows it as 41 upstream 429s, all on
  // the longer window. Two learned per-minute quotas with different ids share one dimension the
  // same way (each 429 overwrites the other's limit). Remove `ignore` once fixed.
  ignore: true,
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
