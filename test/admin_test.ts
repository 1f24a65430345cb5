/**
 * The key-management admin API end to end: real server, mock upstream, Deno KV on a temp file.
 * What an operator sees when listing, adding, removing, disabling, checking keys and clearing
 * cooldowns, and what the KV file holds afterwards.
 */

import assert from "node:assert/strict";
import type { KvStore } from "../src/state/kv.ts";
import {
  admin,
  ADMIN_TOKEN,
  eventually,
  generate,
  KEY_SECRET,
  type Rotator,
  startRotator,
  type TempKv,
  tempKv,
  testKey,
  TOKEN,
} from "./harness.ts";
import { loadConfig } from "../src/config.ts";
import { fingerprint } from "../src/keys.ts";
import type { MockUpstream } from "./mock_upstream.ts";

const A = testKey("alpha");
const B = testKey("bravo");
const K1 = testKey("added-one");
const K2 = testKey("added-two");

interface Setup {
  readonly rotator: Rotator;
  readonly kv: TempKv;
  readonly store: KvStore;
}

/** A rotator with the admin API on, state in a fresh KV file. */
async function withAdmin(
  options: { keys?: string[]; env?: Record<string, string>; kv?: TempKv; mock?: MockUpstream },
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const kv = options.kv ?? await tempKv();
  const store = await kv.open();
  const rotator = await startRotator({
    keys: options.keys ?? [A, B],
    store,
    env: { ADMIN_TOKEN, KEY_ENCRYPTION_SECRET: KEY_SECRET, ...options.env },
    ...(options.mock ? { mock: options.mock } : {}),
  });
  try {
    await body({ rotator, kv, store });
  } finally {
    await rotator.close();
    await store.close();
    if (!options.kv) await kv.dispose();
  }
}

async function send(rotator: Rotator, n = 1, model = "gemini-2.5-flash"): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const response = await generate(rotator, model);
    statuses.push(response.status);
    await response.body?.cancel();
  }
  return statuses;
}

type View = {
  id: string;
  status: string;
  source: string;
  label: string | null;
  project: string;
  disabled: { reason: string; scope: string } | null;
  cooldowns: { model: string; window: string }[];
  lastError: { status: number; reason: string } | null;
  usageToday: Record<string, number>;
};

async function listed(rotator: Rotator): Promise<View[]> {
  const { status, json } = await admin(rotator, "GET", "/admin/api/keys");
  assert.equal(status, 200);
  return json.keys as View[];
}

Deno.test("the admin API is off without ADMIN_TOKEN: every /admin/ path answers 404", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    for (const path of ["/admin/api/keys", "/admin/", "/admin"]) {
      const { status, json } = await admin(rotator, "GET", path, undefined, { token: "anything" });
      assert.equal(status, 404, path);
      assert.match(JSON.stringify(json), /ADMIN_TOKEN/);
    }
  } finally {
    await rotator.close();
  }
});

Deno.test("admin calls need the admin token: Bearer or X-Admin-Token, never the access token", async () => {
  await withAdmin({}, async ({ rotator }) => {
    assert.equal(
      (await admin(rotator, "GET", "/admin/api/keys", undefined, { token: null }))
        .status,
      401,
    );
    const wrong = await admin(rotator, "GET", "/admin/api/keys", undefined, { token: TOKEN });
    assert.equal(wrong.status, 401);
    assert.equal((wrong.json.error as { status: string }).status, "UNAUTHENTICATED");
    const viaHeader = await fetch(`${rotator.url}/admin/api/keys`, {
      headers: { "x-admin-token": ADMIN_TOKEN },
    });
    assert.equal(viaHeader.status, 200);
    await viaHeader.body?.cancel();
    assert.equal((await admin(rotator, "GET", "/admin/api/nothing")).status, 404);
  });
});

Deno.test("GET /admin/api/keys shows state, cooldowns, last error and today's counts, never a key", async () => {
  await withAdmin({}, async ({ rotator }) => {
    rotator.mock.script(A, { type: "error", fixture: "rpm" });
    assert.deepEqual(await send(rotator), [200]);
    const { json, text } = await admin(rotator, "GET", "/admin/api/keys");
    assert.ok(!text.includes(A) && !text.includes(B), "no key value in the answer");
    assert.ok(!Number.isNaN(Date.parse(json.now as string)));
    const [a, b] = json.keys as View[];
    assert.equal(a.id, await fingerprint(A));
    assert.equal(a.source, "env");
    assert.equal(a.status, "cooling");
    assert.deepEqual(a.cooldowns.map((c) => [c.model, c.window]), [["gemini-2.5-flash", "minute"]]);
    assert.deepEqual(a.lastError && [a.lastError.status, a.lastError.reason], [429, "quota"]);
    assert.equal(a.usageToday.rateLimited, 1);
    assert.equal(b.status, "ok");
    assert.equal(b.lastError, null);
    assert.equal(b.usageToday.successes, 1);
    assert.equal(b.usageToday.promptTokens, 8);
  });
});

Deno.test("adding keys without KEY_ENCRYPTION_SECRET: 409 saying to set it, nothing stored", async () => {
  await withAdmin({ env: { KEY_ENCRYPTION_SECRET: "" } }, async ({ rotator, store }) => {
    const { status, json } = await admin(rotator, "POST", "/admin/api/keys", { key: K1 });
    assert.equal(status, 409);
    const error = json.error as { status: string; message: string };
    assert.equal(error.status, "FAILED_PRECONDITION");
    assert.match(error.message, /KEY_ENCRYPTION_SECRET/);
    assert.deepEqual(await store.listKeys(), []);
  });
});

Deno.test("added keys join the pool and are stored encrypted: the KV file never holds them in plain text", async () => {
  await withAdmin({}, async ({ rotator, kv, store }) => {
    const { status, json, text } = await admin(rotator, "POST", "/admin/api/keys", {
      keys: [{ key: K1, label: "laptop-key" }, { key: K2, project: "project-nine" }, { key: A }],
    });
    assert.equal(status, 201);
    assert.ok(!text.includes(K1) && !text.includes(K2));
    const added = json.added as View[];
    assert.deepEqual(added.map((k) => [k.source, k.label, k.project]), [
      ["kv", "laptop-key", `key:${await fingerprint(K1)}`],
      ["kv", null, "project-nine"],
    ]);
    assert.deepEqual(json.existing, [await fingerprint(A)], "an env key counts once");
    assert.equal((await listed(rotator)).length, 4);

    await send(rotator, 4);
    assert.equal(rotator.mock.requestsFor(K1).length, 1);
    assert.equal(rotator.mock.requestsFor(K2).length, 1);

    const bytes = new TextDecoder("latin1").decode(await kv.bytes());
    assert.ok(bytes.includes("laptop-key"), "the test reads the file the records are in");
    for (const key of [K1, K2]) {
      assert.ok(!bytes.includes(key.slice(6, 26)), "no stretch of a key in the file");
    }
    const stored = await store.listKeys();
    assert.equal(stored.length, 2);
    assert.equal(stored[0].sealed.byteLength, 12 + K1.length + 16, "nonce || ciphertext || tag");
  });
});

Deno.test("bad admin input: a 400 naming the problem, and nothing half-written", async () => {
  await withAdmin({}, async ({ rotator, store }) => {
    const cases: [unknown, RegExp][] = [
      [undefined, /body is empty/],
      [{}, /"key"|"keys"/],
      [{ keys: [] }, /"keys" is empty/],
      [{ keys: "AIza" }, /"keys" must be an array/],
      [{ keys: [{ key: "" }] }, /keys\[0\]: "key" must be a non-empty string/],
      [{ keys: [{ key: K1 }, { key: "two words" }] }, /keys\[1\] contains spaces/],
      [{ keys: [{ key: K1, colour: "red" }] }, /Unknown field "colour"/],
      [{ keys: [{ key: K1, label: 7 }] }, /keys\[0\]: "label" must be a string/],
      [{ keys: [{ key: K1, project: "no/slashes" }] }, /keys\[0\] has an invalid project name/],
      [{ keys: Array.from({ length: 101 }, (_, i) => ({ key: `${K1}${i}` })) }, /at most 100/],
    ];
    for (const [body, message] of cases) {
      const { status, json, text } = await admin(rotator, "POST", "/admin/api/keys", body);
      assert.equal(status, 400, JSON.stringify(body)?.slice(0, 80));
      assert.match((json.error as { message: string }).message, message);
      assert.equal((json.error as { status: string }).status, "INVALID_ARGUMENT");
      assert.ok(!text.includes(K1), "an error never quotes a key");
    }
    const malformed = await admin(rotator, "POST", "/admin/api/keys", undefined, {
      rawBody: `{"keys": [{"key": "${K1}"`,
    });
    assert.equal(malformed.status, 400);
    assert.match(malformed.text, /not valid JSON/);
    assert.ok(!malformed.text.includes(K1));
    const huge = await admin(rotator, "POST", "/admin/api/keys", undefined, {
      rawBody: JSON.stringify({ keys: [{ key: K1, label: "x".repeat(1024 * 1024) }] }),
    });
    assert.equal(huge.status, 400);
    assert.match(huge.text, /larger than 1048576 bytes/);

    const id = await fingerprint(A);
    const badDisable = await admin(rotator, "POST", `/admin/api/keys/${id}/disable`, {
      reason: 5,
    });
    assert.equal(badDisable.status, 400);
    const secretReason = await admin(rotator, "POST", `/admin/api/keys/${id}/disable`, {
      reason: `leaked ${B}`,
    });
    assert.equal(secretReason.status, 400);
    assert.ok(!secretReason.text.includes(B));
    const badClear = await admin(rotator, "POST", "/admin/api/cooldowns/clear", { model: 3 });
    assert.equal(badClear.status, 400);
    const badDay = await admin(rotator, "GET", "/admin/api/usage?day=2026-02-30");
    assert.equal(badDay.status, 400);
    assert.match(badDay.text, /YYYY-MM-DD/);

    assert.deepEqual(await store.listKeys(), []);
    assert.deepEqual((await store.load(Date.now())).disablements, []);
    assert.deepEqual((await listed(rotator)).map((k) => k.status), ["ok", "ok"]);
  });
});

Deno.test("removing a run-time key takes it out of rotation; env keys and unknown ids are refused", async () => {
  await withAdmin({ keys: [A] }, async ({ rotator, store }) => {
    await admin(rotator, "POST", "/admin/api/keys", { key: K1 });
    const id = await fingerprint(K1);
    const removed = await admin(rotator, "DELETE", `/admin/api/keys/${id}`);
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.json, { removed: id });
    await send(rotator, 3);
    assert.equal(rotator.mock.requestsFor(K1).length, 0);
    assert.deepEqual(await store.listKeys(), []);

    const env = await admin(rotator, "DELETE", `/admin/api/keys/${await fingerprint(A)}`);
    assert.equal(env.status, 409);
    assert.match(env.text, /API_KEYS/);
    const unknown = await admin(rotator, "DELETE", "/admin/api/keys/0123456789ab");
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /0123456789ab/);
    const pasted = await admin(rotator, "DELETE", `/admin/api/keys/${A}`);
    assert.equal(pasted.status, 404);
    assert.ok(!pasted.text.includes(A), "a key pasted as an id is not echoed");
  });
});

Deno.test("a disabled key is skipped until enabled, and stays disabled across a restart", async () => {
  const kv = await tempKv();
  try {
    const id = await fingerprint(A);
    await withAdmin({ kv }, async ({ rotator }) => {
      const { status, json } = await admin(rotator, "POST", `/admin/api/keys/${id}/disable`, {
        reason: "billing review",
      });
      assert.equal(status, 200);
      assert.equal((json as View).status, "disabled");
      assert.equal((json as View).disabled?.reason, "billing review");
      await send(rotator, 3);
      assert.equal(rotator.mock.requestsFor(A).length, 0);
    });
    await withAdmin({ kv }, async ({ rotator }) => {
      await send(rotator, 3);
      assert.equal(rotator.mock.requestsFor(A).length, 0, "still disabled after the restart");
      const { json } = await admin(rotator, "POST", `/admin/api/keys/${id}/enable`);
      assert.equal((json as View).status, "ok");
      await send(rotator, 2);
      assert.equal(rotator.mock.requestsFor(A).length, 1);
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("a key found invalid before a restart is not tried after it", async () => {
  const kv = await tempKv();
  try {
    await withAdmin({ kv }, async ({ rotator }) => {
      rotator.mock.script(A, { type: "error", fixture: "invalid" });
      assert.deepEqual(await send(rotator), [200]);
      assert.equal(rotator.mock.requestsFor(A).length, 1);
    });
    await withAdmin({ kv }, async ({ rotator }) => {
      assert.deepEqual(await send(rotator, 4), [200, 200, 200, 200]);
      assert.equal(rotator.mock.requestsFor(A).length, 0);
      const [a] = await listed(rotator);
      assert.equal(a.disabled?.reason, "API_KEY_INVALID");
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("check: one models-list call with that key; a key Google rejects is disabled", async () => {
  await withAdmin({}, async ({ rotator }) => {
    rotator.mock.script(B, { type: "error", fixture: "invalid" });
    const good = await admin(rotator, "POST", `/admin/api/keys/${await fingerprint(A)}/check`);
    assert.equal(good.status, 200);
    assert.equal(good.json.outcome, "ok");
    assert.equal(good.json.upstreamStatus, 200);
    const [call] = rotator.mock.requestsFor(A);
    assert.equal(call.method, "GET");
    assert.equal(call.path, "/v1beta/models");
    assert.ok(!call.search.includes(A), "the key goes in a header, never the URL");

    const bad = await admin(rotator, "POST", `/admin/api/keys/${await fingerprint(B)}/check`);
    assert.equal(bad.json.outcome, "key_rejected");
    assert.equal(bad.json.reason, "API_KEY_INVALID");
    assert.equal(bad.json.upstreamStatus, 400);
    const view = bad.json.key as View;
    assert.equal(view.status, "disabled");
    assert.equal(view.lastError?.status, 400);
    await send(rotator, 2);
    assert.equal(rotator.mock.requestsFor(B).length, 1, "only the check reached Google");
  });
});

Deno.test("clearing cooldowns puts a rate-limited key back into rotation at once", async () => {
  await withAdmin({ keys: [A] }, async ({ rotator }) => {
    rotator.mock.script(A, { type: "error", fixture: "rpm" }, { type: "ok" });
    assert.deepEqual(await send(rotator), [429]);
    assert.deepEqual(await send(rotator), [429], "cooling: answered without Google");
    const unknown = await admin(rotator, "POST", "/admin/api/cooldowns/clear", {
      keyId: "0123456789ab",
    });
    assert.equal(unknown.status, 404);
    const { status, json } = await admin(rotator, "POST", "/admin/api/cooldowns/clear", {
      keyId: await fingerprint(A),
    });
    assert.equal(status, 200);
    assert.equal(json.cleared, 1);
    assert.deepEqual(await send(rotator), [200]);
  });
});

Deno.test("usage lists a day's counts per key and model", async () => {
  await withAdmin({ keys: [A] }, async ({ rotator }) => {
    await send(rotator, 2);
    await send(rotator, 1, "gemini-2.5-pro");
    const { json } = await admin(rotator, "GET", "/admin/api/usage");
    assert.match(json.day as string, /^\d{4}-\d{2}-\d{2}$/);
    const rows = json.rows as { model: string; requests: number; keyId: string }[];
    assert.deepEqual(rows.map((r) => [r.model, r.requests]), [
      ["gemini-2.5-flash", 2],
      ["gemini-2.5-pro", 1],
    ]);
    const other = await admin(rotator, "GET", "/admin/api/usage?day=2020-01-01");
    assert.deepEqual(other.json, { day: "2020-01-01", rows: [] });
  });
});

Deno.test("a key added on one instance is used by another sharing the KV file", async () => {
  const kv = await tempKv();
  try {
    await withAdmin({ kv, keys: [A] }, async ({ rotator: one }) => {
      await withAdmin({ kv, keys: [A], mock: one.mock }, async ({ rotator: two }) => {
        const id = await fingerprint(K1);
        await admin(one, "POST", "/admin/api/keys", { keys: [{ key: K1, label: "shared" }] });
        await eventually("instance two to list the key", async () => {
          return (await listed(two)).some((k) => k.id === id && k.label === "shared");
        });
        await send(two, 2);
        assert.equal(one.mock.requestsFor(K1).length, 1);

        await admin(one, "DELETE", `/admin/api/keys/${id}`);
        await eventually("instance two to drop the key", async () => {
          return !(await listed(two)).some((k) => k.id === id);
        });
      });
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("a key disabled on one running instance is skipped by another within about a second", async () => {
  const kv = await tempKv();
  try {
    await withAdmin({ kv, keys: [A, B] }, async ({ rotator: one }) => {
      await withAdmin({ kv, keys: [A, B], mock: one.mock }, async ({ rotator: two }) => {
        const id = await fingerprint(A);
        await admin(one, "POST", `/admin/api/keys/${id}/disable`, { reason: "billing review" });
        const { ms } = await eventually("instance two to see the disablement", async () => {
          const view = (await listed(two)).find((k) => k.id === id);
          return view?.status === "disabled" ? view : undefined;
        });
        assert.ok(ms < 3000, `seen after ${Math.round(ms)} ms`);
        const before = one.mock.requestsFor(A).length;
        await send(two, 4);
        assert.equal(one.mock.requestsFor(A).length, before, "instance two sent A nothing");

        await admin(one, "POST", `/admin/api/keys/${id}/enable`);
        await eventually("instance two to use the key again", async () => {
          await send(two, 1);
          return one.mock.requestsFor(A).length > before;
        });
      });
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("the log redacts keys added at run time", async () => {
  await withAdmin({}, async ({ rotator }) => {
    // Not shaped like a Gemini key, so only the redactor's list of known secrets can catch it.
    const odd = "custom-secret-key-value-0123456789";
    await admin(rotator, "POST", "/admin/api/keys", { key: odd });
    rotator.app.log.warn("upstream echoed", { detail: `key=${odd}` });
    const line = rotator.logs.at(-1)!;
    assert.ok(!line.includes(odd), line);
    assert.match(line, /\[REDACTED\]/);
  });
});

Deno.test("stored keys that do not open with this secret are listed as disabled and can be removed", async () => {
  const kv = await tempKv();
  try {
    await withAdmin({ kv, keys: [A] }, async ({ rotator }) => {
      await admin(rotator, "POST", "/admin/api/keys", { key: K1 });
    });
    await withAdmin({
      kv,
      keys: [A],
      env: { KEY_ENCRYPTION_SECRET: "another-secret-0123456789" },
    }, async ({ rotator, store }) => {
      const id = await fingerprint(K1);
      const view = (await listed(rotator)).find((k) => k.id === id)!;
      assert.equal(view.status, "disabled");
      assert.equal(view.disabled?.reason, "KEY_ENCRYPTION_SECRET_MISMATCH");
      await send(rotator, 2);
      assert.equal(rotator.mock.requestsFor(K1).length, 0);
      assert.ok(rotator.logs.some((l) => l.includes("stored keys cannot be used")));
      assert.equal((await admin(rotator, "DELETE", `/admin/api/keys/${id}`)).status, 200);
      assert.deepEqual(await store.listKeys(), []);
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("keys added at run time survive a restart and are used after it", async () => {
  const kv = await tempKv();
  try {
    await withAdmin({ kv, keys: [A] }, async ({ rotator }) => {
      await admin(rotator, "POST", "/admin/api/keys", { key: K1, label: "kept" });
    });
    await withAdmin({ kv, keys: [A] }, async ({ rotator }) => {
      const view = (await listed(rotator)).find((k) => k.source === "kv");
      assert.deepEqual(view && [view.label, view.status], ["kept", "ok"]);
      await send(rotator, 2);
      assert.equal(rotator.mock.requestsFor(K1).length, 1);
    });
  } finally {
    await kv.dispose();
  }
});

Deno.test("ADMIN_TOKEN and KEY_ENCRYPTION_SECRET that would weaken the rotator stop start-up", () => {
  const start = (env: Record<string, string>) => () => loadConfig({ ACCESS_TOKEN: TOKEN, ...env });
  assert.throws(start({ ADMIN_TOKEN: TOKEN }), /ADMIN_TOKEN is the same as an access token/);
  assert.throws(start({ ADMIN_TOKEN: "short" }), /ADMIN_TOKEN is shorter than 8/);
  assert.throws(start({ KEY_ENCRYPTION_SECRET: "too-short" }), /shorter than 16 characters/);
  assert.throws(start({ ADMIN_TOKEN: "has a space in it" }), /ADMIN_TOKEN contains spaces/);
  const config = start({ ADMIN_TOKEN, KEY_ENCRYPTION_SECRET: KEY_SECRET })();
  assert.equal(config.adminToken, ADMIN_TOKEN);
  assert.equal(config.keyEncryptionSecret, KEY_SECRET);
});
