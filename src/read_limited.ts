/**
 * Reading upstream answers with a bound: error bodies and small answers are read whole, but
 * never more than a limit, so an unexpected huge body cannot fill memory.
 */

/**
 * Reads a body whole if it is at most `limit` bytes; otherwise gives back a stream that yields
 * what was read followed by the rest, so nothing is lost.
 */
export async function readUpTo(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<
  { complete: true; bytes: Uint8Array<ArrayBuffer> } | {
    complete: false;
    stream: ReadableStream<Uint8Array>;
  }
> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limit) {
      return {
        complete: false,
        stream: new ReadableStream<Uint8Array>({
          pull(controller) {
            const next = chunks.shift();
            if (next) return controller.enqueue(next);
            return reader.read().then(({ done, value }) => {
              if (done) controller.close();
              else controller.enqueue(value);
            });
          },
          cancel: (reason) => reader.cancel(reason),
        }),
      };
    }
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { complete: true, bytes };
}

/** Reads at most `limit` bytes of a body as text and releases the rest. */
export async function readLimitedText(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      total += value.byteLength;
    }
  } catch {
    // A body cut short still classifies by what arrived.
  } finally {
    reader.cancel().catch(() => {});
  }
  return text + decoder.decode();
}
