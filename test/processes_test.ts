/**
 * Real rotator processes (entries/deno.ts, as `deno task start` runs it) sharing one Deno KV
 * file in front of the mock upstream: what one process learns about a key, the other acts on,
 * and a restarted process remembers.
 */

import assert from "node:assert/strict";
import { fingerprint } from "../src/keys.ts";
import { ADMIN_TOKEN, eventually, testKey, TOKEN } from "./harness.ts";
import { startMockUpstream } from "./mock_upstream.ts";
import { spawnRotator } from "./rotator_process.ts";

const A = testKey("alpha");
const B = testKey("bravo");

/** How long another process may take to see a change (the poll is 150 ms; see kv.ts). */
const PROPAGATION_BOUND_MS = 1000;

function generate(url: string): Promise<Response> {
  return fetch(`${url}/v1beta/models/gemini-2.5-flash:generateContent`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-goog-api-key": TOKEN },
    body: JSON.stringify({ contents: [{ parts: [{ text: "Hi" }] }] }),
  });
}

async function keyStatus(url: string, id: string): Promise<{ status: string; reason?: string }> {
  const response = await fetch(`${url}/admin/api/keys`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const { keys } = await response.json() as {
    keys: { id: string; status: string; disabled: { reason: string } | null }[];
  };
  const key = keys.find((k) => k.id === id)!;
  return { status: key.status, ...(key.disabled ? { reason: key.disabled.reason } : {}) };
}

async function withKvDir(body: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rotator-processes-" });
  try {
    // A directory that does not exist yet: the entry creates it on first run.
    await body(`${dir}/state/rotator.kv`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("two rotator processes on one KV file: a key one finds rate-limited, the other skips", async () => {
  const mock = startMockUpstream();
  mock.script(A, { type: "error", fixture: "rpm" });
  await withKvDir(async (path) => {
    const env = { API_KEYS: `${A},${B}`, GEMINI_API_BASE_URL: mock.url, KV_PATH: path };
    const [one, two] = await Promise.all([spawnRotator(env), spawnRotator(env)]);
    try {
      const first = await generate(one.url);
      assert.equal(first.status, 200);
      await first.body?.cancel();
      assert.deepEqual(mock.requests.map((r) => r.key), [A, B], "A was rate-limited, B answered");

      // Process two learns it from the shared file, without sending anything to Google.
      const id = await fingerprint(A);
      const { ms } = await eventually(
        "process two to see the cooldown",
        async () => (await keyStatus(two.url, id)).status === "cooling",
        PROPAGATION_BOUND_MS,
      );
      assert.ok(ms < PROPAGATION_BOUND_MS, `seen after ${ms.toFixed(0)} ms`);
      for (let i = 0; i < 3; i++) {
        const response = await generate(two.url);
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }
      assert.equal(mock.requestsFor(A).length, 1, "process two never tried the cooling key");
    } finally {
      await Promise.all([one.stop(), two.stop()]);
      await mock.close();
    }
  });
});

Deno.test("a rotator process restarted on the same KV file keeps an invalid key disabled", async () => {
  const mock = startMockUpstream();
  mock.script(A, { type: "error", fixture: "invalid" });
  await withKvDir(async (path) => {
    const env = { API_KEYS: `${A},${B}`, GEMINI_API_BASE_URL: mock.url, KV_PATH: path };
    const before = await spawnRotator(env);
    try {
      const response = await generate(before.url);
      assert.equal(response.status, 200);
      await response.body?.cancel();
      assert.equal(mock.requestsFor(A).length, 1);
    } finally {
      await before.stop();
    }
    const after = await spawnRotator(env);
    try {
      for (let i = 0; i < 3; i++) {
        const response = await generate(after.url);
        assert.equal(response.status, 200);
        await response.body?.cancel();
      }
      assert.equal(mock.requestsFor(A).length, 1, "not tried again after the restart");
      assert.deepEqual(await keyStatus(after.url, await fingerprint(A)), {
        status: "disabled",
        reason: "API_KEY_INVALID",
      });
    } finally {
      await after.stop();
      await mock.close();
    }
  });
});
