/**
 * Resumable uploads (Files API): the start request rotates like any other; Google answers with
 * an `x-goog-upload-url` that the rotator rewrites to its own origin, so the client's chunks come
 * back here, and records which key opened the session. Chunks then stream through to Google with
 * that same key, unbuffered and never retried (a streamed body cannot be sent twice).
 *
 * Protocol: ../shared/gemini-api-facts.md §1.2 (py-genai `_upload_fd`, js-genai
 * `uploadBlobInternal`); the upload_id itself authorises the chunks, and py-genai sends no key on
 * them, so a known upload_id stands in for the access token.
 */

import { errorResponse } from "./errors.ts";
import type { PoolKey } from "./keys.ts";

/** Upload commands that carry file bytes (not the `start` command). */
export function isUploadChunk(headers: Headers, search: URLSearchParams): boolean {
  const command = headers.get("x-goog-upload-command")?.toLowerCase() ?? "";
  return search.has("upload_id") && !command.includes("start");
}

/**
 * Rewrites Google's upload URL in `headers` to the same path and query on `publicOrigin`
 * (dropping any `key=` it may carry); returns the upload_id, if there was such a header.
 */
export function rewriteUploadUrl(headers: Headers, publicOrigin: string): string | undefined {
  const value = headers.get("x-goog-upload-url");
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    headers.delete("x-goog-upload-url");
    return undefined;
  }
  url.searchParams.delete("key");
  const rewritten = new URL(`${url.pathname}${url.search}`, publicOrigin);
  headers.set("x-goog-upload-url", rewritten.href);
  return url.searchParams.get("upload_id") ?? undefined;
}

/** The answer when a chunk names an upload session this rotator did not open. */
export function unknownUploadAnswer(): Response {
  return errorResponse(
    404,
    "NOT_FOUND",
    "Unknown or expired upload session: start the upload through the rotator (POST /upload/" +
      "v1beta/files with x-goog-upload-command: start) and send the chunks to the URL it returns.",
    { reason: "UNKNOWN_UPLOAD" },
  );
}

/** The answer when the key that opened an upload session can no longer be used. */
export function uploadKeyGoneAnswer(key: PoolKey | undefined, why: string): Response {
  return errorResponse(
    409,
    "FAILED_PRECONDITION",
    `This upload session belongs to ${key ? `key ${key.id}` : "a key no longer in the pool"}, ` +
      `which ${why}. Start the upload again.`,
    { reason: "UPLOAD_KEY_UNAVAILABLE" },
  );
}
