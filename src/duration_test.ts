import assert from "node:assert/strict";
import { parseDuration, retryDelayFromMessage } from "./duration.ts";

Deno.test("parseDuration() reads protobuf Durations from RetryInfo", () => {
  assert.equal(parseDuration("33s"), 33_000);
  assert.equal(parseDuration("0.539477544s"), 540);
  assert.equal(parseDuration("39043s"), 39_043_000);
});

Deno.test("parseDuration() reads Go durations from messages", () => {
  assert.equal(parseDuration("10h50m43.651927829s"), 39_043_652);
  assert.equal(parseDuration("900.2ms"), 901);
  assert.equal(parseDuration("1m30s"), 90_000);
});

Deno.test("parseDuration() rejects what is not a duration", () => {
  for (const text of ["", "33", "s", "abc", "3x", "-5s", null, 12, {}]) {
    assert.equal(parseDuration(text), undefined, String(text));
  }
});

Deno.test("retryDelayFromMessage() finds the delay at the end of a quota message", () => {
  assert.equal(
    retryDelayFromMessage("limit: 2\nPlease retry in 56.185908122s."),
    56_186,
  );
  assert.equal(retryDelayFromMessage("Please retry in 10h50m43.651927829s."), 39_043_652);
  assert.equal(retryDelayFromMessage("Resource has been exhausted (e.g. check quota)."), undefined);
});
