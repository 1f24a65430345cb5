import assert from "node:assert/strict";
import { buildFromEnv } from "./health.ts";

Deno.test("buildFromEnv() prefers BUILD_ID, then Deno Deploy's build and deployment ids", () => {
  assert.deepEqual(buildFromEnv({}), {});
  assert.deepEqual(buildFromEnv({ DENO_DEPLOYMENT_ID: "dep1" }), {
    build: "dep1",
    buildSource: "DENO_DEPLOYMENT_ID",
  });
  assert.deepEqual(buildFromEnv({ DENO_DEPLOYMENT_ID: "dep1", DENO_DEPLOY_BUILD_ID: "rev2" }), {
    build: "rev2",
    buildSource: "DENO_DEPLOY_BUILD_ID",
  });
  assert.deepEqual(
    buildFromEnv({ BUILD_ID: " 3f9c2e1 ", DENO_DEPLOY_BUILD_ID: "rev2" }),
    { build: "3f9c2e1", buildSource: "BUILD_ID" },
  );
});

Deno.test("buildFromEnv() ignores a value that is not an id (spaces, control characters, huge)", () => {
  assert.deepEqual(buildFromEnv({ BUILD_ID: "two words", DENO_DEPLOYMENT_ID: "dep1" }), {
    build: "dep1",
    buildSource: "DENO_DEPLOYMENT_ID",
  });
  assert.deepEqual(buildFromEnv({ BUILD_ID: "x".repeat(101) }), {});
  assert.deepEqual(buildFromEnv({ BUILD_ID: "abc\u0000def" }), {});
});
