/**
 * Files, cached contents and batches through the rotator with the real @google/genai SDK: each
 * resource is used with a key of the project that created it, although rotation would pick
 * another key for every request in between. The mock refuses a resource to any other project,
 * as Google does.
 */

import assert from "node:assert/strict";
import { createPartFromUri, GoogleGenAI } from "@google/genai";
import { fingerprint } from "../src/keys.ts";
import { admin, ADMIN_TOKEN, startRotator, testKey, TOKEN } from "./harness.ts";

const A = testKey("res-a");
const B = testKey("res-b");
const C = testKey("res-c");

/**
 * The SDK does not read the (empty) body of an upload's start answer; Deno 2.5's sanitizer
 * reports that as a leak of the SDK's, not ours.
 */
const SDK_UPLOADS = { sanitizeResources: false };

/** Opens a resumable upload session of a text file of `length` bytes, as the SDKs do. */
function startUpload(url: string, length: number): Promise<Response> {
  return fetch(`${url}/upload/v1beta/files`, {
    method: "POST",
    headers: {
      "x-goog-api-key": TOKEN,
      "x-goog-upload-protocol": "resumable",
      "x-goog-upload-command": "start",
      "x-goog-upload-header-content-length": String(length),
      "x-goog-upload-header-content-type": "text/plain",
      "content-type": "application/json",
    },
    body: JSON.stringify({ file: { mimeType: "text/plain" } }),
  });
}

function genai(url: string): GoogleGenAI {
  return new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: url } });
}

Deno.test(
  "files: upload, generate with it, list and delete, all with the creating key",
  SDK_UPLOADS,
  async () => {
    const rotator = await startRotator({ keys: [A, B, C] });
    try {
      const ai = genai(rotator.url);
      const file = await ai.files.upload({
        file: new Blob(["a small text file for the model"], { type: "text/plain" }),
        config: { mimeType: "text/plain", displayName: "notes.txt" },
      });
      assert.match(file.name ?? "", /^files\//);
      const creator = rotator.mock.requests[0].key;
      assert.equal(creator, A);
      // The upload chunks came back through the rotator and went out with the same key.
      const chunks = rotator.mock.requests.filter((r) => r.search.includes("upload_id"));
      assert.ok(chunks.length >= 1);
      assert.ok(chunks.every((r) => r.key === A));

      // Rotation moves on between resource requests...
      for (let i = 0; i < 2; i++) {
        await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "no resource" });
      }
      const rotated = rotator.mock.requests.slice(-2).map((r) => r.key);
      assert.ok(rotated.some((k) => k !== A), "plain requests rotate to other keys");

      // ...but a request naming the file goes to its project.
      const answer = await ai.models.generateContent({
        model: "gemini-2.5-flash",
        contents: [createPartFromUri(file.uri!, file.mimeType!), "Summarise the file"],
      });
      assert.equal(answer.text, "Hello from the mock");
      assert.equal(rotator.mock.requests.at(-1)!.key, A);

      const listed: string[] = [];
      for await (const f of await ai.files.list()) listed.push(f.name ?? "");
      assert.deepEqual(listed, [file.name]);
      assert.equal(rotator.mock.requests.at(-1)!.key, A);

      const got = await ai.files.get({ name: file.name! });
      assert.equal(got.displayName, "notes.txt");
      assert.equal(rotator.mock.requests.at(-1)!.key, A);

      await ai.files.delete({ name: file.name! });
      assert.equal(rotator.mock.requests.at(-1)!.key, A);
      assert.equal(rotator.mock.resources.files.size, 0);
    } finally {
      await rotator.close();
    }
  },
);

Deno.test("cached contents: created with a file's key and used with it", SDK_UPLOADS, async () => {
  const rotator = await startRotator({ keys: [A, B, C] });
  try {
    const ai = genai(rotator.url);
    const file = await ai.files.upload({
      file: new Blob(["long context ".repeat(100)], { type: "text/plain" }),
      config: { mimeType: "text/plain" },
    });
    const owner = rotator.mock.requests[0].key;
    const cache = await ai.caches.create({
      model: "gemini-2.5-flash",
      config: {
        contents: [{ role: "user", parts: [createPartFromUri(file.uri!, "text/plain")] }],
        systemInstruction: "Answer from the document.",
      },
    });
    assert.match(cache.name ?? "", /^cachedContents\//);
    assert.equal(rotator.mock.requests.at(-1)!.key, owner);
    for (let i = 0; i < 2; i++) {
      await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "rotate" });
    }
    const answer = await ai.models.generateContent({
      model: "gemini-2.5-flash",
      contents: "What does the document say?",
      config: { cachedContent: cache.name },
    });
    assert.equal(answer.text, "Hello from the mock");
    assert.equal(rotator.mock.requests.at(-1)!.key, owner);
    await ai.caches.delete({ name: cache.name! });
    assert.equal(rotator.mock.requests.at(-1)!.key, owner);
  } finally {
    await rotator.close();
  }
});

Deno.test(
  "a resource's owner is rate-limited: Google-shaped 429 naming it, no other key tried",
  SDK_UPLOADS,
  async () => {
    const rotator = await startRotator({ keys: [A, B] });
    try {
      const ai = genai(rotator.url);
      const file = await ai.files.upload({
        file: new Blob(["x"], { type: "text/plain" }),
        config: { mimeType: "text/plain" },
      });
      rotator.mock.script(A, { type: "error", fixture: "rpm" });
      const sent = rotator.mock.requests.length;
      const response = await fetch(
        `${rotator.url}/v1beta/models/gemini-2.5-flash:generateContent`,
        {
          method: "POST",
          headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
          body: JSON.stringify({
            contents: [{ parts: [{ fileData: { fileUri: file.uri, mimeType: "text/plain" } }] }],
          }),
        },
      );
      assert.equal(response.status, 429);
      assert.ok(Number(response.headers.get("retry-after")) >= 33);
      const body = await response.json();
      assert.match(body.error.message, new RegExp(`${file.name} belongs to project`));
      assert.match(body.error.message, /other projects cannot see it/);
      assert.deepEqual(rotator.mock.requests.slice(sent).map((r) => r.key), [A]);
    } finally {
      await rotator.close();
    }
  },
);

Deno.test(
  "a file made outside the rotator is found by trying projects, then remembered",
  SDK_UPLOADS,
  async () => {
    const rotator = await startRotator({ keys: [A, B, C] });
    try {
      // Upload straight to the mock with key C, as another tool would have.
      const direct = new GoogleGenAI({ apiKey: C, httpOptions: { baseUrl: rotator.mock.url } });
      const file = await direct.files.upload({
        file: new Blob(["elsewhere"], { type: "text/plain" }),
        config: { mimeType: "text/plain" },
      });
      const before = rotator.mock.requests.length;
      const ai = genai(rotator.url);
      const answer = await ai.models.generateContent({
        model: "gemini-2.5-flash",
        contents: [createPartFromUri(file.uri!, "text/plain"), "hi"],
      });
      assert.equal(answer.text, "Hello from the mock");
      assert.deepEqual(rotator.mock.requests.slice(before).map((r) => r.key), [A, B, C]);
      await ai.models.generateContent({
        model: "gemini-2.5-flash",
        contents: [createPartFromUri(file.uri!, "text/plain"), "again"],
      });
      assert.equal(rotator.mock.requests.at(-1)!.key, C, "the owner was remembered");
    } finally {
      await rotator.close();
    }
  },
);

Deno.test(
  "listings merge the files the rotator made in several projects",
  SDK_UPLOADS,
  async () => {
    const rotator = await startRotator({ keys: [A, B] });
    try {
      const ai = genai(rotator.url);
      const first = await ai.files.upload({
        file: new Blob(["1"], { type: "text/plain" }),
        config: { mimeType: "text/plain" },
      });
      const second = await ai.files.upload({
        file: new Blob(["2"], { type: "text/plain" }),
        config: { mimeType: "text/plain" },
      });
      const owners = new Set([...rotator.mock.resources.files.values()].map((f) => f.project));
      assert.equal(owners.size, 2, "round-robin put the two files in two projects");
      const listed: string[] = [];
      for await (const f of await ai.files.list()) listed.push(f.name ?? "");
      assert.deepEqual(listed.sort(), [first.name, second.name].sort());
    } finally {
      await rotator.close();
    }
  },
);

Deno.test("batches: a created batch is polled and cancelled with its project's key", async () => {
  const rotator = await startRotator({ keys: [A, B, C] });
  try {
    const create = await fetch(
      `${rotator.url}/v1beta/models/gemini-2.5-flash:batchGenerateContent`,
      {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: JSON.stringify({ batch: { inputConfig: { requests: { requests: [] } } } }),
      },
    );
    const batch = await create.json();
    const owner = rotator.mock.requests.at(-1)!.key;
    for (const path of [`/v1beta/${batch.name}`, `/v1beta/${batch.name}:cancel`]) {
      const response = await fetch(`${rotator.url}${path}`, {
        method: path.endsWith(":cancel") ? "POST" : "GET",
        headers: { "x-goog-api-key": TOKEN },
      });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
      assert.equal(rotator.mock.requests.at(-1)!.key, owner);
    }
  } finally {
    await rotator.close();
  }
});

Deno.test("upload chunks without any key (as py-genai sends them) are accepted for a known session", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  try {
    const start = await startUpload(rotator.url, 11);
    assert.equal(start.status, 200);
    await start.body?.cancel();
    const uploadUrl = start.headers.get("x-goog-upload-url")!;
    assert.ok(uploadUrl.startsWith(rotator.url), "the session URL points back at the rotator");
    const chunk = await fetch(uploadUrl, {
      method: "POST",
      headers: { "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0" },
      body: "hello world",
    });
    assert.equal(chunk.status, 200);
    assert.equal(chunk.headers.get("x-goog-upload-status"), "final");
    const { file } = await chunk.json();
    assert.equal(file.sizeBytes, "11");
    const keys = rotator.mock.requests.map((r) => r.key);
    assert.equal(keys[0], keys[1], "the chunk used the session's key");
    assert.equal(
      rotator.mock.requests[1].headers.get("content-length"),
      "11",
      "the chunk went upstream with its length, not chunked",
    );

    const forged = await fetch(`${rotator.url}/upload/v1beta/files?upload_id=forged`, {
      method: "POST",
      headers: { "x-goog-upload-command": "upload, finalize" },
      body: "x",
    });
    assert.equal(forged.status, 401, "an unknown session is not a capability");
    await forged.body?.cancel();
  } finally {
    await rotator.close();
  }
});

Deno.test("a file no project can see: each project asked once, then Google's 403, no key blamed", async () => {
  const rotator = await startRotator({ keys: [A, B, C] });
  try {
    const response = await fetch(`${rotator.url}/v1beta/files/doesnotexist`, {
      headers: { "x-goog-api-key": TOKEN },
    });
    assert.equal(response.status, 403);
    assert.match((await response.json()).error.message, /permission to access the File/);
    assert.deepEqual(rotator.mock.requests.map((r) => r.key).sort(), [A, B, C].sort());
    assert.equal(rotator.app.pool.summary(Date.now()).disabled, 0);
    assert.equal(rotator.app.pool.summary(Date.now()).cooling, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test(
  "a resource's key is disabled: 503 OWNER_UNAVAILABLE naming it; an open upload gets 409",
  async () => {
    const rotator = await startRotator({ keys: [A, B], env: { ADMIN_TOKEN } });
    try {
      // A file uploaded in one chunk (plain HTTP: every body is read, nothing left open).
      const first = await startUpload(rotator.url, 1);
      await first.body?.cancel();
      const finalized = await fetch(first.headers.get("x-goog-upload-url")!, {
        method: "POST",
        headers: { "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0" },
        body: "x",
      });
      const { file } = await finalized.json();
      const start = await startUpload(rotator.url, 1);
      await start.body?.cancel();
      const owner = rotator.mock.requests.at(-1)!.key!;
      assert.equal(rotator.mock.requests[0].key, A, "the file is project A's");

      // The operator takes both owners out of rotation.
      for (const key of new Set([A, owner])) {
        const id = await fingerprint(key);
        assert.equal((await admin(rotator, "POST", `/admin/api/keys/${id}/disable`)).status, 200);
      }
      const sent = rotator.mock.requests.length;

      const named = await fetch(`${rotator.url}/v1beta/models/gemini-2.5-flash:generateContent`, {
        method: "POST",
        headers: { "x-goog-api-key": TOKEN, "content-type": "application/json" },
        body: JSON.stringify({
          contents: [{ parts: [{ fileData: { fileUri: file.uri, mimeType: "text/plain" } }] }],
        }),
      });
      assert.equal(named.status, 503);
      const error = (await named.json()).error;
      assert.equal(error.details[0].reason, "OWNER_UNAVAILABLE");
      assert.match(error.message, new RegExp(`${file.name} belongs to project`));
      assert.match(error.message, /its keys are disabled/);

      const chunk = await fetch(start.headers.get("x-goog-upload-url")!, {
        method: "POST",
        headers: { "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0" },
        body: "x",
      });
      assert.equal(chunk.status, 409);
      const refused = (await chunk.json()).error;
      assert.equal(refused.details[0].reason, "UPLOAD_KEY_UNAVAILABLE");
      assert.match(refused.message, /which is disabled\. Start the upload again\./);
      assert.equal(rotator.mock.requests.length, sent, "nothing went upstream for either");
    } finally {
      await rotator.close();
    }
  },
);

Deno.test("an upload chunk larger than MAX_BODY_BYTES streams through to Google whole, with the session's key", async () => {
  const rotator = await startRotator({ keys: [A, B], env: { MAX_BODY_BYTES: "1024" } });
  try {
    const start = await startUpload(rotator.url, 5000);
    assert.equal(start.status, 200);
    await start.body?.cancel();
    const payload = new Uint8Array(5000).map((_, i) => i % 251);
    const chunk = await fetch(start.headers.get("x-goog-upload-url")!, {
      method: "POST",
      headers: {
        "x-goog-api-key": TOKEN,
        "x-goog-upload-command": "upload, finalize",
        "x-goog-upload-offset": "0",
      },
      body: payload,
    });
    assert.equal(chunk.status, 200, "not refused for its size: chunks are not buffered");
    assert.equal((await chunk.json()).file.sizeBytes, "5000");
    const [opened, sent] = rotator.mock.requests;
    assert.equal(sent.key, opened.key, "the chunk used the session's key");
    assert.deepEqual(sent.bytes, payload, "byte for byte");
  } finally {
    await rotator.close();
  }
});
