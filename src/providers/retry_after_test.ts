import assert from "node:assert/strict";
import { nextUtcMidnight, resetDelayMs, retryAfterMs } from "./retry_after.ts";

const NOW = Date.UTC(2026, 8, 7, 18, 0, 0);

Deno.test("retryAfterMs() reads seconds, HTTP dates and retry-after-ms", () => {
  assert.equal(retryAfterMs(new Headers({ "retry-after": "60" }), NOW), 60_000);
  assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "1500" }), NOW), 1500);
  assert.equal(
    retryAfterMs(new Headers({ "retry-after": new Date(NOW + 90_000).toUTCString() }), NOW),
    90_000,
  );
  assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" }), NOW), undefined);
  assert.equal(retryAfterMs(new Headers(), NOW), undefined);
});

Deno.test("resetDelayMs() tells epoch ms, epoch seconds, deltas and durations apart", () => {
  assert.equal(resetDelayMs("1788825600000", NOW), 6 * 3600 * 1000);
  assert.equal(resetDelayMs(1788825600, NOW), 6 * 3600 * 1000);
  assert.equal(resetDelayMs("30", NOW), 30_000);
  assert.equal(resetDelayMs("6m0s", NOW), 360_000);
  assert.equal(resetDelayMs("1700000000000", NOW), 0, "a reset in the past is now");
  assert.equal(resetDelayMs(undefined, NOW), undefined);
});

Deno.test("nextUtcMidnight() is the coming 00:00 UTC", () => {
  assert.equal(nextUtcMidnight(NOW), Date.UTC(2026, 8, 8));
  assert.equal(nextUtcMidnight(Date.UTC(2026, 8, 8)), Date.UTC(2026, 8, 9));
});
