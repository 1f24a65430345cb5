/**
 * The Live API WebSocket through the rotator: relayed both ways, a pool key injected in a header,
 * the client's token never forwarded, a key refused at the handshake rotated to the next.
 */

import assert from "node:assert/strict";
import { GoogleGenAI, Modality } from "@google/genai";
import type { RequestEvent } from "../src/events.ts";
import { fingerprint } from "../src/keys.ts";
import { pacificDay } from "../src/cooldown.ts";
import { startRotator, testKey, TOKEN } from "./harness.ts";

const A = testKey("live-a");
const B = testKey("live-b");
const PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

/** Resolves with the next message on a socket. */
function nextMessage(socket: WebSocket): Promise<MessageEvent> {
  return new Promise((resolve, reject) => {
    socket.addEventListener("message", resolve, { once: true });
    socket.addEventListener("close", (e) => reject(new Error(`closed ${e.code} ${e.reason}`)), {
      once: true,
    });
  });
}

/** An observer that hands over each session's report (a Live session is reported as a request). */
function sessionReports() {
  const waiting: ((event: RequestEvent) => void)[] = [];
  return {
    observers: [{ request: (event: RequestEvent) => waiting.shift()?.(event) }],
    next: () => new Promise<RequestEvent>((resolve) => waiting.push(resolve)),
  };
}

function open(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    socket.onopen = () => resolve(socket);
    socket.onerror = (e) => reject(new Error((e as ErrorEvent).message));
  });
}

Deno.test("Live API: frames relayed both ways with a pool key; the token never forwarded", async () => {
  const reports = sessionReports();
  const rotator = await startRotator({ keys: [A, B], observers: reports.observers });
  try {
    const socket = await open(`${rotator.url.replace("http", "ws")}${PATH}?key=${TOKEN}&alt=x`);
    socket.send(JSON.stringify({ setup: { model: "models/gemini-live-2.5-flash" } }));
    assert.deepEqual(JSON.parse((await nextMessage(socket)).data), { setupComplete: {} });
    socket.send(JSON.stringify({ clientContent: { turns: [{ parts: [{ text: "hi" }] }] } }));
    const turn = JSON.parse((await nextMessage(socket)).data);
    assert.equal(turn.serverContent.modelTurn.parts[0].text, "Hello from the mock");
    socket.send(new Uint8Array([1, 2, 3, 4]));
    const echoed = await nextMessage(socket);
    assert.deepEqual([...new Uint8Array(echoed.data as ArrayBuffer)], [1, 2, 3, 4]);

    const upstreamClosed = rotator.mock.live.nextClose();
    const reported = reports.next();
    socket.close(1000, "done");
    await upstreamClosed;
    assert.deepEqual(rotator.mock.live.closes, [1000]);
    // The session counts like a request: metrics, usage, the request log line.
    const report = await reported;
    assert.deepEqual(
      [report.route, report.model, report.status, report.attempts, report.answeredBy, report.end],
      ["live", "gemini-live-2.5-flash", 101, 1, "upstream", "complete"],
    );
    assert.deepEqual(report.keyIds, [await fingerprint(A)]);
    const day = pacificDay(Date.now());
    const [row] = await rotator.app.usage.usage(day, await fingerprint(A));
    assert.deepEqual([row.model, row.requests, row.successes], ["gemini-live-2.5-flash", 1, 1]);

    const [upgrade] = rotator.mock.live.upgrades;
    assert.equal(upgrade.key, A);
    assert.equal(upgrade.search, "?alt=x", "the client's ?key= was removed");
    for (const [, value] of upgrade.headers) assert.ok(!value.includes(TOKEN));
    assert.equal(rotator.mock.live.received.length, 3);
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: a key refused at connect is rotated to the next", async () => {
  const reports = sessionReports();
  const rotator = await startRotator({ keys: [A, B], observers: reports.observers });
  rotator.mock.script(A, { type: "error", fixture: "rpm" });
  try {
    const socket = await open(`${rotator.url.replace("http", "ws")}${PATH}?key=${TOKEN}`);
    socket.send(JSON.stringify({ setup: { model: "models/gemini-live-2.5-flash" } }));
    assert.deepEqual(JSON.parse((await nextMessage(socket)).data), { setupComplete: {} });
    assert.deepEqual(rotator.mock.live.upgrades.map((u) => [u.key, u.accepted]), [
      [A, false],
      [B, true],
    ]);
    const closed = rotator.mock.live.nextClose();
    const reported = reports.next();
    socket.close();
    await closed;
    const report = await reported;
    assert.equal(report.attempts, 2);
    assert.deepEqual(report.keyIds, [await fingerprint(A), await fingerprint(B)]);
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: every key refused closes the client with 1013 and a reason", async () => {
  const reports = sessionReports();
  const rotator = await startRotator({ keys: [A], observers: reports.observers });
  rotator.mock.setDefault({ type: "error", fixture: "rpm" });
  try {
    const socket = await open(`${rotator.url.replace("http", "ws")}${PATH}?key=${TOKEN}`);
    const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
    socket.send(JSON.stringify({ setup: { model: "models/gemini-live-2.5-flash" } }));
    const reported = reports.next();
    const event = await closed;
    assert.equal(event.code, 1013);
    assert.match(event.reason, /RESOURCE_EXHAUSTED/);
    // Reported as the rotator's own answer, so the "no usable key" alert fires for Live too.
    const report = await reported;
    assert.deepEqual([report.answeredBy, report.reason], ["rotator", "ALL_KEYS_COOLING"]);
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: the upstream closing the session closes the client's, with its code and reason", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const socket = await open(`${rotator.url.replace("http", "ws")}${PATH}?key=${TOKEN}`);
    const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
    socket.send(JSON.stringify({ setup: { model: "models/gemini-live-2.5-flash" } }));
    await nextMessage(socket);
    socket.send(JSON.stringify({ mockClose: { code: 1011, reason: "session ended upstream" } }));
    const event = await closed;
    assert.deepEqual([event.code, event.reason], [1011, "session ended upstream"]);
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: the Constrained endpoint (ephemeral tokens) is relayed on its own path", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    const constrained = PATH.replace("v1beta", "v1alpha") + "Constrained";
    const socket = await open(`${rotator.url.replace("http", "ws")}${constrained}?key=${TOKEN}`);
    socket.send(JSON.stringify({ setup: { model: "models/gemini-live-2.5-flash" } }));
    assert.deepEqual(JSON.parse((await nextMessage(socket)).data), { setupComplete: {} });
    assert.equal(rotator.mock.live.upgrades[0].path, constrained);
    const closed = rotator.mock.live.nextClose();
    socket.close();
    await closed;
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: a wrong token is refused at the upgrade, nothing sent upstream", async () => {
  const rotator = await startRotator({ keys: [A] });
  try {
    await assert.rejects(open(`${rotator.url.replace("http", "ws")}${PATH}?key=wrong-token-123`));
    assert.equal(rotator.mock.live.upgrades.length, 0);
  } finally {
    await rotator.close();
  }
});

Deno.test("Live API: the @google/genai SDK's live.connect works through the rotator", async () => {
  const rotator = await startRotator({ keys: [A, B] });
  try {
    const ai = new GoogleGenAI({ apiKey: TOKEN, httpOptions: { baseUrl: rotator.url } });
    const messages: unknown[] = [];
    let turnDone!: () => void;
    const done = new Promise<void>((resolve) => turnDone = resolve);
    const session = await ai.live.connect({
      model: "gemini-live-2.5-flash",
      config: { responseModalities: [Modality.TEXT] },
      callbacks: {
        onmessage: (message) => {
          messages.push(message);
          if (message.serverContent?.turnComplete) turnDone();
        },
      },
    });
    session.sendClientContent({ turns: [{ role: "user", parts: [{ text: "hi" }] }] });
    await done;
    const closed = rotator.mock.live.nextClose();
    session.close();
    await closed;
    assert.ok(messages.some((m) => JSON.stringify(m).includes("Hello from the mock")));
    assert.equal(rotator.mock.live.upgrades[0].key, A);
  } finally {
    await rotator.close();
  }
});
