import assert from "node:assert/strict";
import { Probation } from "./quota_probation.ts";

const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const M = "gemini-2.5-flash";

Deno.test("Probation: nothing is held until the model has met a quota somewhere", () => {
  const probation = new Probation();
  probation.sending("b", M);
  probation.sending("b", M);
  assert.equal(probation.holds("b", M), false, "no quota met yet: full speed");
  probation.met(M, T0);
  assert.equal(probation.holds("b", M), true, "met elsewhere, b busy, b not proven since");
  assert.equal(probation.holds("b", "gemini-2.5-pro"), false, "another model is not held");
});

Deno.test("Probation: one request at a time until the bucket answers with a success", () => {
  const probation = new Probation();
  probation.met(M, T0);
  assert.equal(probation.holds("b", M), false, "nothing in flight: the first request goes");
  probation.sending("b", M);
  assert.equal(probation.holds("b", M), true, "the second waits for the first");
  // A refusal frees the bucket for the next request, which is still held behind its own.
  assert.equal(probation.answered("b", M, false, T0 + 10), true, "it was held: look again");
  assert.equal(probation.holds("b", M), false);
  probation.sending("b", M);
  assert.equal(probation.holds("b", M), true, "not proven yet");
  // A success proves the bucket has room at this tier: concurrency is free again.
  assert.equal(probation.answered("b", M, true, T0 + 20), true);
  probation.sending("b", M);
  probation.sending("b", M);
  assert.equal(probation.holds("b", M), false, "proven after the quota was met: not held");
  // A project meeting a quota again later puts the bucket back on probation.
  probation.met(M, T0 + 30);
  assert.equal(probation.holds("b", M), true);
});

Deno.test("Probation: answered() says whether it freed a bucket someone was told to wait for", () => {
  const probation = new Probation();
  probation.met(M, T0);
  probation.sending("b", M);
  assert.equal(probation.answered("b", M, true, T0 + 1), false, "never held: nothing to wake");
  // In-flight counts never go below zero, and a bucket at zero is forgotten.
  assert.equal(probation.answered("b", M, true, T0 + 2), false);
  assert.equal(probation.holds("b", M), false);
});
