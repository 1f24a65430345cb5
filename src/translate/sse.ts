/**
 * Splits a text/event-stream into the data of its events, fed as it arrives in any chunking.
 * Comment lines (`: OPENROUTER PROCESSING`, which OpenRouter sends to keep a connection open,
 * https://openrouter.ai/docs/api/reference/streaming) and `event:`, `id:`, `retry:` fields are
 * skipped.
 *
 * Framing: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 * (lines end in CRLF, LF or CR; a blank line dispatches; several data lines join with "\n").
 */

export class SseDecoder {
  readonly #text = new TextDecoder();
  #buffer = "";
  #data: string[] = [];
  /** The previous chunk ended in CR: a LF starting the next one belongs to it. */
  #pendingCr = false;

  /** Feeds bytes; returns the data of every event they complete. */
  push(bytes: Uint8Array): string[] {
    return this.#lines(this.#text.decode(bytes, { stream: true }));
  }

  /** Ends the stream: an event left without its blank line is still dispatched. */
  end(): string[] {
    const events = this.#lines(this.#text.decode());
    if (this.#buffer !== "") {
      this.#line(this.#buffer, events);
      this.#buffer = "";
    }
    if (this.#data.length > 0) {
      events.push(this.#data.join("\n"));
      this.#data = [];
    }
    return events;
  }

  #lines(text: string): string[] {
    const events: string[] = [];
    if (this.#pendingCr && text.startsWith("\n")) text = text.slice(1);
    this.#pendingCr = false;
    const buffer = this.#buffer + text;
    const breaks = /\r\n|\r|\n/g;
    let start = 0;
    for (let match = breaks.exec(buffer); match; match = breaks.exec(buffer)) {
      this.#line(buffer.slice(start, match.index), events);
      start = match.index + match[0].length;
      // A CR ending the chunk may be the first half of a CRLF split across chunks.
      if (match[0] === "\r" && start === buffer.length) this.#pendingCr = true;
    }
    this.#buffer = buffer.slice(start);
    return events;
  }

  #line(line: string, events: string[]): void {
    if (line === "") {
      if (this.#data.length > 0) events.push(this.#data.join("\n"));
      this.#data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== "data") return;
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.#data.push(value);
  }
}
