import assert from "node:assert/strict";
import { ConfigError } from "./config.ts";
import { fallbackChain, parseModelFallbacks } from "./model_fallback.ts";

Deno.test("parseModelFallbacks() follows chains, nearest substitute first", () => {
  const map = parseModelFallbacks(
    "gemini-2.5-pro=gemini-2.5-flash; gemini-2.5-flash = gemini-2.5-flash-lite",
  );
  assert.deepEqual(fallbackChain(map, "gemini-2.5-pro"), [
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
  ]);
  assert.deepEqual(fallbackChain(map, "gemini-2.5-flash-lite"), []);
  assert.equal(parseModelFallbacks(undefined).size, 0);
});

Deno.test("parseModelFallbacks() refuses loops, repeats and malformed entries, naming them", () => {
  const refused = (text: string, message: RegExp) =>
    assert.throws(() => parseModelFallbacks(text), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  refused(
    "a=b;b=c;c=a",
    /MODEL_FALLBACKS has a loop: a -> b -> c -> a; a model cannot stand in for itself/,
  );
  refused("a=a", /has a loop: a -> a/);
  refused("a=b;a=c", /names a substitute for a twice/);
  refused("gemini-2.5-pro", /entry "gemini-2.5-pro" must look like model=substitute/);
  refused("a=b c", /must look like model=substitute/);
});
