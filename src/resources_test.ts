import assert from "node:assert/strict";
import { resourcesInRequest } from "./resources.ts";

Deno.test("resourcesInRequest() reads the path and the body, in order, once each", () => {
  const body = new TextEncoder().encode(
    '{"cachedContent":"cachedContents/c1","contents":[{"parts":[{"fileData":{"fileUri":' +
      '"https://generativelanguage.googleapis.com/v1beta/files/f1"}},{"text":"files/f1"}]}]}',
  );
  assert.deepEqual(resourcesInRequest("files/f0", body), [
    "files/f0",
    "cachedContents/c1",
    "files/f1",
  ]);
  assert.deepEqual(resourcesInRequest("models/gemini-2.5-flash:generateContent", undefined), []);
});

Deno.test("resourcesInRequest() takes names at a word boundary only, as a pattern would", () => {
  const text = "myfiles/no _files/no -files/yes files/ corpora/files/x tunedModels/t-1";
  assert.deepEqual(resourcesInRequest("models/m:generateContent", new TextEncoder().encode(text)), [
    "files/yes",
    "corpora/files",
    "tunedModels/t-1",
  ]);
});
