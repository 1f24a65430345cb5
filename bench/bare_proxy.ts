/**
 * The floor for any proxy on this runtime: fetch the upstream and return its response, nothing
 * else (no auth, no key, no retries). The rotator's overhead is measured against this.
 *
 *   UPSTREAM=http://127.0.0.1:N deno run -A bench/bare_proxy.ts    prints `{"port":N}`
 */

const upstream = Deno.env.get("UPSTREAM")!;

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, (request) => {
  const url = new URL(request.url);
  return fetch(upstream + url.pathname + url.search, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: request.signal,
  });
});
