import assert from "node:assert/strict";
import { createLogger, Redactor } from "./log.ts";

const KEY = "AIzaSyA1234567890abcdefghijklmnopqrstuv";

Deno.test("Redactor blanks known secrets wherever they sit in text", () => {
  const redactor = new Redactor(["opaque-pool-key_1", "tok:en/with+punct"]);
  const text = redactor.redact(
    'key=opaque-pool-key_1&x=1 {"t":"tok:en/with+punct"} prefix.opaque-pool-key_1',
  );
  assert.ok(!text.includes("opaque-pool-key_1"), text);
  assert.ok(!text.includes("tok:en/with+punct"), text);
  assert.match(text, /\[REDACTED\]/);
});

Deno.test("Redactor blanks key-shaped strings it was never told about", () => {
  const redactor = new Redactor();
  const text = redactor.redact(`Invalid API key: ${KEY} and AQ.Ab8RN6LabcdefghijklmnopQRST`);
  assert.ok(!text.includes(KEY));
  assert.ok(!text.includes("AQ.Ab8RN6L"));
});

Deno.test("Redactor leaves ordinary text alone", () => {
  const redactor = new Redactor(["secret-value-1"]);
  const text = "request /v1beta/models/gemini-2.5-flash:generateContent 200";
  assert.equal(redactor.redact(text), text);
});

Deno.test("createLogger() writes JSON lines at or above the level, redacted", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "info",
    redactor: new Redactor(["secret-value-1"]),
    write: (line) => lines.push(line),
    now: () => 0,
  });
  log.debug("hidden");
  log.info("shown", { error: "upstream said secret-value-1" });
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]);
  assert.equal(record.msg, "shown");
  assert.equal(record.level, "info");
  assert.equal(record.error, "upstream said [REDACTED]");
});
