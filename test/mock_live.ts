/**
 * The mock's Live API endpoint: a WebSocket that answers `setup` with `setupComplete` and each
 * `clientContent` turn with a model turn, echoes binary frames, and refuses the handshake with
 * 429 for keys scripted to fail, as Google does when a key is out of quota. A test may ask it to
 * close its side (`{"mockClose": {"code", "reason"}}`), as Google does when a session ends.
 */

import type { Behavior } from "./mock_upstream.ts";

export interface LiveUpgrade {
  readonly path: string;
  readonly key: string | undefined;
  readonly search: string;
  readonly headers: Headers;
  readonly accepted: boolean;
}

export class MockLive {
  readonly upgrades: LiveUpgrade[] = [];
  /** Frames received from the rotator, as text (binary frames as `<binary N>`). */
  readonly received: string[] = [];
  /** Close codes the upstream side saw. */
  readonly closes: number[] = [];
  readonly #closed: (() => void)[] = [];

  constructor(private readonly behaviorFor: (key: string | undefined) => Behavior) {}

  /** Resolves when the next upstream socket closes. */
  nextClose(): Promise<void> {
    return new Promise((resolve) => this.#closed.push(resolve));
  }

  accept(req: Request, url: URL): Response {
    const key = req.headers.get("x-goog-api-key") ?? undefined;
    const behavior = this.behaviorFor(key);
    const accepted = behavior.type === "ok";
    this.upgrades.push({
      path: url.pathname,
      key,
      search: url.search,
      headers: new Headers(req.headers),
      accepted,
    });
    if (!accepted) {
      return new Response('{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}', { status: 429 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") {
        this.received.push(`<binary ${(event.data as ArrayBuffer).byteLength}>`);
        socket.send(event.data);
        return;
      }
      this.received.push(event.data);
      const message = JSON.parse(event.data);
      if (message.setup) socket.send(JSON.stringify({ setupComplete: {} }));
      if (message.mockClose) socket.close(message.mockClose.code, message.mockClose.reason);
      if (message.clientContent) {
        socket.send(JSON.stringify({
          serverContent: {
            modelTurn: { parts: [{ text: "Hello from the mock" }] },
            turnComplete: true,
          },
        }));
      }
    };
    socket.onclose = (event) => {
      this.closes.push(event.code);
      this.#closed.splice(0).forEach((resolve) => resolve());
    };
    return response;
  }
}
