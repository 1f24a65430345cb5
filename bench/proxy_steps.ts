/**
 * The bare proxy plus one step a key-swapping proxy takes, to see what each step costs on this
 * runtime (`deno task bench:proxy --decompose`). STEP chooses:
 *   headers  the client's credential swapped for a key in a copy of the request's `Headers`
 *   body     the swap, and the request body read whole first and sent as bytes
 *   answer   the swap, and the answer read whole first and answered with its headers (the
 *            request body streamed, as in `headers`)
 *
 *   STEP=body UPSTREAM=http://127.0.0.1:N deno run -A bench/proxy_steps.ts    prints `{"port":N}`
 */

const upstream = Deno.env.get("UPSTREAM")!;
const step = Deno.env.get("STEP");
const KEY = "AIzaSyBenchOkay000000000000000000000000";
if (step !== "headers" && step !== "body" && step !== "answer") {
  throw new Error(`STEP must be headers, body or answer, not ${step}`);
}

Deno.serve({
  port: 0,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, async (request) => {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.set("x-goog-api-key", KEY);
  const body = step === "body" ? new Uint8Array(await request.arrayBuffer()) : request.body;
  const answer = await fetch(upstream + url.pathname + url.search, {
    method: request.method,
    headers,
    body,
    signal: request.signal,
  });
  if (step !== "answer") return answer;
  return new Response(await answer.arrayBuffer(), {
    status: answer.status,
    headers: answer.headers,
  });
});
