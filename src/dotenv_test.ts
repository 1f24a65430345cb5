import assert from "node:assert/strict";
import { DotenvError, parseDotenv } from "./dotenv.ts";

Deno.test("parseDotenv() reads names, values, comments, export and quotes", () => {
  const env = parseDotenv([
    "# comment",
    "export PORT=8080",
    "HOST = 127.0.0.1  # trailing comment",
    "ACCESS_TOKEN='single # not a comment'",
    'API_KEYS="a1,',
    "b2,",
    'c3"',
    'ESCAPED="say \\"hi\\"\\n"',
    "EMPTY=",
  ].join("\n"));
  assert.deepEqual(env, {
    PORT: "8080",
    HOST: "127.0.0.1",
    ACCESS_TOKEN: "single # not a comment",
    API_KEYS: "a1,\nb2,\nc3",
    ESCAPED: 'say "hi"\n',
    EMPTY: "",
  });
});

Deno.test("parseDotenv() errors give the line, never the value", () => {
  for (
    const [text, pattern] of [
      ["OK=1\nnot a line", /line 2: expected NAME=value/],
      ["1BAD=x", /line 1: the text before "=" is not a variable name/],
      ['API_KEYS="secretvalue', /line 1: the quoted value of API_KEYS is not closed/],
    ] as const
  ) {
    assert.throws(() => parseDotenv(text), (error: unknown) => {
      assert.ok(error instanceof DotenvError);
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes("secretvalue"));
      return true;
    });
  }
});
