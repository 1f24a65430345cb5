/**
 * What a large body costs the rotator's process in resident memory, read from /proc as the
 * benchmark does (bench/run.ts): the peak (VmHWM, reset before each transfer) minus the resident
 * size just before. The rotator runs as `deno task start` runs it, so the server, the relay and
 * the body reader are the production ones. Linux only (/proc).
 */

import assert from "node:assert/strict";
import { testKey, TOKEN } from "./harness.ts";
import { type MockUpstream, startMockUpstream } from "./mock_upstream.ts";
import { childEnv, spawnStartTask } from "./start_task.ts";
import type { Child } from "./subprocess.ts";

const A = testKey("alpha");
const MIB = 1024 * 1024;
const GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
const ignore = Deno.build.os !== "linux";

function memoryKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)![1]);
}

/** The growth of `pid`'s peak resident size over its current one while `work` runs, in MiB. */
async function peakGrowthMiB(pid: number, work: () => Promise<void>): Promise<number> {
  const before = memoryKiB(pid, "VmRSS");
  Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5"); // resets VmHWM to the current size
  await work();
  return (memoryKiB(pid, "VmHWM") - before) / 1024;
}

/** Sends `body` to generateContent; the rotator's peak growth meanwhile (the body went upstream whole). */
async function uploadGrowthMiB(
  child: Child,
  mock: MockUpstream,
  body: Uint8Array<ArrayBuffer>,
): Promise<number> {
  const growth = await peakGrowthMiB(child.pid, async () => {
    const response = await fetch(`${child.ready}${GENERATE}`, {
      method: "POST",
      headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
      body,
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });
  assert.equal(mock.requests.at(-1)?.bytes.byteLength, body.byteLength, "every byte went upstream");
  return growth;
}

async function withRotator(
  test: (child: Child, mock: MockUpstream) => Promise<void>,
) {
  const mock = startMockUpstream();
  const cwd = await Deno.makeTempDir();
  try {
    const child = await spawnStartTask({
      ...childEnv(mock.url, A, TOKEN),
      STATE: "memory",
      LOG_REQUESTS: "false",
    }, cwd);
    try {
      // Warm-up: a process's first requests compile code and grow its heap, whatever their size.
      for (let i = 0; i < 20; i++) {
        for (const path of [GENERATE, STREAM]) {
          const response = await fetch(`${child.ready}${path}`, {
            method: "POST",
            headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
            body: "{}",
          });
          await response.arrayBuffer();
        }
      }
      await test(child, mock);
    } finally {
      await child.stop("SIGTERM");
    }
  } finally {
    await mock.close();
    await Deno.remove(cwd, { recursive: true });
  }
}

Deno.test({
  name: "relaying a 100 MiB stream raises the rotator's resident memory by less than 20 MiB",
  ignore,
  fn: () =>
    withRotator(async (child, mock) => {
      mock.setDefault({ type: "big_stream", chunkBytes: 64 * 1024, chunks: 1600 });
      let received = 0;
      const growth = await peakGrowthMiB(child.pid, async () => {
        const response = await fetch(
          `${child.ready}${STREAM}`,
          { method: "POST", headers: { "x-goog-api-key": TOKEN }, body: "{}" },
        );
        assert.equal(response.status, 200);
        for await (const chunk of response.body!) received += chunk.byteLength;
      });
      assert.ok(received > 100 * MIB, `the whole stream arrived (${received} bytes)`);
      assert.ok(growth < 20, `resident memory grew by ${growth.toFixed(1)} MiB`);
    }),
});

Deno.test({
  name:
    "taking in and sending on a 20 MiB request body raises the rotator's resident memory by less than 40 MiB",
  ignore,
  fn: () =>
    withRotator(async (child, mock) => {
      const growth = await uploadGrowthMiB(child, mock, new Uint8Array(20 * MIB).fill(0x61));
      assert.ok(growth < 40, `resident memory grew by ${growth.toFixed(1)} MiB`);
    }),
});

Deno.test({
  name:
    "a 5 MiB text body (a long document: 1.3 million tokens, no media) raises resident memory by less than 64 MiB",
  ignore,
  fn: () =>
    withRotator(async (child, mock) => {
      // Prose is all short words: the skeleton inspected for names keeps nearly every byte.
      const words = "the quick brown fox jumps over the lazy dog, écrit 日本語 ".repeat(64);
      const text = words.repeat(Math.ceil(5 * MIB / new TextEncoder().encode(words).length));
      const body = new TextEncoder().encode(
        JSON.stringify({ contents: [{ parts: [{ text }] }] }),
      ).subarray(0, 5 * MIB);
      const growth = await uploadGrowthMiB(child, mock, body);
      assert.ok(growth < 64, `resident memory grew by ${growth.toFixed(1)} MiB`);
    }),
});
