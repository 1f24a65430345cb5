import assert from "node:assert/strict";
import { KeyListError, parseKeyList } from "./key_list.ts";

Deno.test("parseKeyList() splits on commas and newlines, trims, drops blanks and duplicates", () => {
  const { keys, dropped } = parseKeyList("API_KEYS", " a1 , b2\n\nc3,\r\na1,, ");
  assert.deepEqual(keys.map((k) => k.value), ["a1", "b2", "c3"]);
  assert.equal(dropped, 2);
});

Deno.test("parseKeyList() reads project prefixes", () => {
  const { keys } = parseKeyList("API_KEYS", "work:AIzaA,work:AIzaB,AQ.Ab_c-d.e");
  assert.deepEqual(keys, [
    { value: "AIzaA", project: "work" },
    { value: "AIzaB", project: "work" },
    { value: "AQ.Ab_c-d.e" },
  ]);
});

Deno.test("parseKeyList() reads a JSON array of strings and objects", () => {
  const { keys, dropped } = parseKeyList(
    "API_KEYS",
    '["k1", {"key":"k2","project":"p","label":"laptop"}, "", "k1"]',
  );
  assert.deepEqual(keys, [{ value: "k1" }, { value: "k2", project: "p", label: "laptop" }]);
  assert.equal(dropped, 2);
});

Deno.test("parseKeyList() of nothing is empty", () => {
  assert.deepEqual(parseKeyList("API_KEYS", undefined), { keys: [], dropped: 0 });
  assert.deepEqual(parseKeyList("API_KEYS", "  "), { keys: [], dropped: 0 });
});

Deno.test("parseKeyList() errors name the entry, never the key", () => {
  const cases: [string, RegExp][] = [
    ["[1]", /entry 1 must be a string or an object/],
    ['{"a":1}', /./], // not starting with [: read as a plain entry with quotes -> refused
    ['[{"project":"p"}]', /entry 1 needs a non-empty "key"/],
    ['[{"key":"secretvalue","label":5}]', /"label" must be a string/],
    ["p:", /entry 1 has a project but no key/],
    ["x".repeat(600), /longer than 512/],
    ["caf\u00e9secretvalue", /non-ASCII/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseKeyList("API_KEYS", text), (error: unknown) => {
      assert.ok(error instanceof KeyListError, text);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("secretvalue"));
      return true;
    });
  }
});
