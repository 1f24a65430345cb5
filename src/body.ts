/**
 * Reads a client's request body into memory, up to a limit, so a failed attempt can be sent
 * again to another key byte for byte. Larger bodies are refused before anything goes upstream.
 */

export type BodyResult =
  | { readonly ok: true; readonly bytes: Uint8Array<ArrayBuffer> }
  | { readonly ok: false; readonly reason: "too_large" | "aborted"; readonly limit: number };

/** The whole body, or why it could not be read (too large, or the client went away). */
export async function readBody(request: Request, limit: number): Promise<BodyResult> {
  if (request.body === null) return { ok: true, bytes: new Uint8Array() };
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await request.body.cancel().catch(() => {});
    return { ok: false, reason: "too_large", limit };
  }
  if (declared !== null && /^\d+$/.test(declared)) {
    // A declared length within the limit: the runtime's own whole-body read is the fastest.
    try {
      return { ok: true, bytes: new Uint8Array(await request.arrayBuffer()) };
    } catch {
      return { ok: false, reason: "aborted", limit };
    }
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        return { ok: false, reason: "too_large", limit };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, reason: "aborted", limit };
  }
  if (chunks.length === 1 && chunks[0].buffer instanceof ArrayBuffer) {
    return { ok: true, bytes: chunks[0] as Uint8Array<ArrayBuffer> };
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { ok: true, bytes };
}
