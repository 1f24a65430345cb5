/**
 * The least a key-rotating proxy must do per request, with nothing else: read the body whole
 * (a retry on another key must resend it), swap the client's credential for a key in the
 * headers, bound the wait for the upstream, read the answer (to look at it before the client
 * does) and answer with new headers. No routing, auth, choice of key, bookkeeping or retries.
 * It shows what part of the distance between the bare proxy and the rotator no rotator can
 * avoid on this runtime.
 *
 *   UPSTREAM=http://127.0.0.1:N deno run -A bench/minimal_proxy.ts    prints `{"port":N}`
 */

const upstream = Deno.env.get("UPSTREAM")!;
const KEY = "AIzaSyBenchOkay000000000000000000000000";
const REQUEST_DROP = new Set(["connection", "host", "content-length", "x-goog-api-key"]);
const RESPONSE_DROP = new Set(["connection", "content-length", "content-encoding"]);

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, async (request) => {
  const url = new URL(request.url);
  const headers: Record<string, string> = Object.create(null);
  request.headers.forEach((value, name) => {
    if (!REQUEST_DROP.has(name)) headers[name] = value;
  });
  headers["x-goog-api-key"] = KEY;
  const body = new Uint8Array(await request.arrayBuffer());
  const deadline = new AbortController();
  const onAbort = () => deadline.abort();
  request.signal.addEventListener("abort", onAbort);
  const answer = await fetch(upstream + url.pathname + url.search, {
    method: request.method,
    headers,
    body,
    redirect: "manual",
    signal: deadline.signal,
  });
  request.signal.removeEventListener("abort", onAbort);
  // A stream is passed on as it comes; anything else is read whole first.
  const streamed = url.pathname.endsWith(":streamGenerateContent");
  const bytes = streamed ? undefined : new Uint8Array(await answer.arrayBuffer());
  const response = new Response(bytes ?? answer.body, { status: answer.status });
  answer.headers.forEach((value, name) => {
    if (!RESPONSE_DROP.has(name)) response.headers.append(name, value);
  });
  if (bytes) response.headers.set("content-length", String(bytes.byteLength));
  return response;
});
