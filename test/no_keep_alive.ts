/**
 * Test servers answer with `Connection: close`. Deno 2.5's `server.shutdown()` waits about 90 s
 * for a client's idle keep-alive connection (fetch's pool keeps them), which stalled test teardown
 * now and then; 2.9 closes them at once. Closing each connection after its answer costs a little
 * speed and nothing else.
 */

type Handler = (request: Request) => Response | Promise<Response>;

export function noKeepAlive(handler: Handler): Handler {
  return async (request) => {
    const response = await handler(request);
    // A 101 upgrade answer belongs to the runtime and cannot be changed.
    if (response.status !== 101) response.headers.set("connection", "close");
    return response;
  };
}
