/** Deno's WebSocket plumbing for the Live API: server upgrades and clients that send headers. */

import type { WebSocketAdapters } from "../src/live.ts";

export const denoWebSockets: WebSocketAdapters = {
  upgrade: (request) => Deno.upgradeWebSocket(request),
  // Deno's WebSocket client accepts headers (checked on 2.5 and 2.9), so the key need not go
  // into the URL.
  connect: (url, headers) => new WebSocket(url, { headers } as unknown as string[]),
};
