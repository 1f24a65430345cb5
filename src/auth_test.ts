import assert from "node:assert/strict";
import { clientCredential, constantTimeEqual, TokenSet } from "./auth.ts";

Deno.test("clientCredential() reads every place clients put a key", () => {
  const q = new URLSearchParams();
  assert.equal(clientCredential(new Headers({ "x-goog-api-key": "t1" }), q), "t1");
  assert.equal(clientCredential(new Headers({ "x-access-token": "t2" }), q), "t2");
  assert.equal(clientCredential(new Headers({ authorization: "Bearer t3" }), q), "t3");
  assert.equal(clientCredential(new Headers(), new URLSearchParams("key=t4")), "t4");
  assert.equal(clientCredential(new Headers(), q), undefined);
});

Deno.test("clientCredential() skips an empty x-goog-api-key (Gemini CLI sends one)", () => {
  const headers = new Headers({ "x-goog-api-key": "", authorization: "Bearer t5" });
  assert.equal(clientCredential(headers, new URLSearchParams()), "t5");
});

Deno.test("TokenSet.matches() accepts exactly the configured tokens", () => {
  const tokens = new TokenSet(["first-token-1", "second-token-2"]);
  assert.equal(tokens.matches("first-token-1"), true);
  assert.equal(tokens.matches("second-token-2"), true);
  assert.equal(tokens.matches("first-token-"), false);
  assert.equal(tokens.matches("first-token-12"), false);
  assert.equal(tokens.matches(""), false);
  assert.equal(tokens.matches(undefined), false);
  assert.equal(new TokenSet([]).matches("anything"), false);
});

Deno.test("constantTimeEqual() compares characters and lengths", () => {
  assert.equal(constantTimeEqual("abc", "abc"), true);
  assert.equal(constantTimeEqual("abd", "abc"), false);
  assert.equal(constantTimeEqual("ab", "abc"), false);
  assert.equal(constantTimeEqual("abcabc", "abc"), false);
  assert.equal(constantTimeEqual("", ""), true);
  assert.equal(constantTimeEqual("", "abc"), false);
  assert.equal(constantTimeEqual("\u0000bc", "abc"), false);
  assert.equal(constantTimeEqual("ábc", "abc"), false);
});
