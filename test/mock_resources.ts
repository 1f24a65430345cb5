/**
 * The project-scoped resources of the mock Gemini API: resumable file uploads, files, cached
 * contents and batches, each owned by the project of the key that created it. Another project
 * gets the 403 Google sends ("You do not have permission to access the File ..."), so a test
 * fails if the rotator sends a request naming a resource with the wrong key.
 */

export interface MockFile {
  name: string;
  uri: string;
  mimeType: string;
  sizeBytes: string;
  state: "ACTIVE";
  expirationTime: string;
  displayName?: string;
}

interface Owned<T> {
  project: string;
  value: T;
}

interface UploadSession {
  project: string;
  mimeType: string;
  displayName?: string;
  bytes: number;
}

const json = (value: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(value, null, 2), {
    status,
    headers: { "content-type": "application/json; charset=UTF-8", ...headers },
  });

function permissionDenied(message: string): Response {
  return json({ error: { code: 403, message, status: "PERMISSION_DENIED" } }, 403);
}

export class MockResources {
  readonly files = new Map<string, Owned<MockFile>>();
  readonly caches = new Map<string, Owned<Record<string, unknown>>>();
  readonly batches = new Map<string, Owned<Record<string, unknown>>>();
  readonly uploads = new Map<string, UploadSession>();
  /** Bytes received per upload session chunk request (to check nothing was buffered whole). */
  readonly chunkSizes: number[] = [];
  #next = 1;

  constructor(readonly origin: () => string) {}

  #id(prefix: string): string {
    return `${prefix}${(this.#next++).toString(36).padStart(6, "0")}`;
  }

  /** Answers resource requests; undefined when the path is not one of them. */
  handle(
    method: string,
    url: URL,
    headers: Headers,
    body: Uint8Array,
    project: string | undefined,
  ): Response | undefined {
    const path = url.pathname;
    const command = headers.get("x-goog-upload-command") ?? "";
    if (/^\/upload\/v1\w*\/files$/.test(path)) return this.#upload(url, command, body, project);
    const match = /^\/v1\w*\/(files|cachedContents|batches)(?:\/([\w-]+))?(?::(\w+))?$/.exec(path);
    if (!match) return undefined;
    const [, collection, id, verb] = match;
    if (!project) {
      return json({ error: { code: 403, message: "no key", status: "PERMISSION_DENIED" } }, 403);
    }
    if (collection === "files") return this.#files(method, id, project);
    if (collection === "cachedContents") {
      return this.#caches(method, id, project, body);
    }
    if (collection === "batches") return this.#batch(method, id, verb, project);
    return undefined;
  }

  /** The 403 a generate request gets when it names another project's resource. */
  checkAccess(body: string, project: string | undefined): Response | undefined {
    for (const [, id] of body.matchAll(/files\/([\w-]+)/g)) {
      if (this.files.get(id)?.project !== project) {
        return permissionDenied(
          `You do not have permission to access the File ${id} or it may not exist.`,
        );
      }
    }
    for (const [, id] of body.matchAll(/cachedContents\/([\w-]+)/g)) {
      if (this.caches.get(id)?.project !== project) {
        return permissionDenied(`CachedContent not found (or permission denied)`);
      }
    }
    return undefined;
  }

  #upload(url: URL, command: string, body: Uint8Array, project: string | undefined) {
    if (command.includes("start")) {
      if (!project) return permissionDenied("no key");
      const meta = JSON.parse(new TextDecoder().decode(body) || "{}");
      const id = this.#id("up");
      this.uploads.set(id, {
        project,
        mimeType: meta.file?.mimeType ?? "application/octet-stream",
        displayName: meta.file?.displayName,
        bytes: 0,
      });
      return new Response(null, {
        headers: {
          "x-goog-upload-url":
            `${this.origin()}${url.pathname}?upload_id=${id}&upload_protocol=resumable`,
          "x-goog-upload-status": "active",
          "x-goog-upload-chunk-granularity": "8388608",
        },
      });
    }
    const id = url.searchParams.get("upload_id") ?? "";
    const session = this.uploads.get(id);
    if (!session) {
      return json({ error: { code: 404, message: "no upload", status: "NOT_FOUND" } }, 404);
    }
    // A chunk sent with another project's key would be refused by Google.
    if (project !== undefined && project !== session.project) {
      return permissionDenied("The caller does not have permission");
    }
    this.chunkSizes.push(body.byteLength);
    session.bytes += body.byteLength;
    if (!command.includes("finalize")) {
      return new Response(null, {
        headers: {
          "x-goog-upload-status": "active",
          "x-goog-upload-size-received": String(session.bytes),
        },
      });
    }
    const fileId = this.#id("file");
    const file: MockFile = {
      name: `files/${fileId}`,
      uri: `${this.origin()}/v1beta/files/${fileId}`,
      mimeType: session.mimeType,
      sizeBytes: String(session.bytes),
      state: "ACTIVE",
      expirationTime: new Date(Date.now() + 48 * 3600_000).toISOString(),
      ...(session.displayName ? { displayName: session.displayName } : {}),
    };
    this.files.set(fileId, { project: session.project, value: file });
    this.uploads.delete(id);
    return json({ file }, 200, { "x-goog-upload-status": "final" });
  }

  #files(method: string, id: string | undefined, project: string) {
    if (!id) {
      return json({
        files: [...this.files.values()].filter((f) => f.project === project).map((f) => f.value),
      });
    }
    const owned = this.files.get(id);
    if (owned?.project !== project) {
      return permissionDenied(
        `You do not have permission to access the File ${id} or it may not exist.`,
      );
    }
    if (method === "DELETE") {
      this.files.delete(id);
      return json({});
    }
    return json(owned.value);
  }

  #caches(method: string, id: string | undefined, project: string, body: Uint8Array) {
    if (!id && method === "POST") {
      const text = new TextDecoder().decode(body);
      const denied = this.checkAccess(text, project);
      if (denied) return denied;
      const request = JSON.parse(text || "{}");
      const cacheId = this.#id("cache");
      const cache = {
        name: `cachedContents/${cacheId}`,
        model: request.model,
        createTime: new Date().toISOString(),
        expireTime: new Date(Date.now() + 3600_000).toISOString(),
        usageMetadata: { totalTokenCount: 4096 },
      };
      this.caches.set(cacheId, { project, value: cache });
      return json(cache);
    }
    if (!id) {
      return json({
        cachedContents: [...this.caches.values()].filter((c) => c.project === project).map((c) =>
          c.value
        ),
      });
    }
    const owned = this.caches.get(id);
    if (owned?.project !== project) {
      return permissionDenied("CachedContent not found (or permission denied)");
    }
    if (method === "DELETE") {
      this.caches.delete(id);
      return json({});
    }
    return json(owned.value);
  }

  #batch(method: string, id: string | undefined, verb: string | undefined, project: string) {
    const owned = id ? this.batches.get(id) : undefined;
    if (!id || owned?.project !== project) {
      return permissionDenied(`Batch ${id} not found or permission denied`);
    }
    if (verb === "cancel" || method === "DELETE") return json({});
    return json(owned.value);
  }

  /** A batch created by `models/x:batchGenerateContent`. */
  createBatch(project: string, model: string): Response {
    const id = this.#id("batch");
    const batch = {
      name: `batches/${id}`,
      metadata: {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        model: `models/${model}`,
        state: "BATCH_STATE_PENDING",
      },
    };
    this.batches.set(id, { project, value: batch });
    return json(batch);
  }
}
