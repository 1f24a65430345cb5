/**
 * Names of project-scoped resources in requests and answers. Files, cached contents, batches,
 * tuned models and file-search stores belong to the Google Cloud project of the key that
 * created them; another project gets 403 "You do not have permission to access the File"
 * (../shared/gemini-api-facts.md §1.2, gemini-balance#401). Pure text matching, no I/O.
 */

/** Collections whose members belong to one project. */
const COLLECTIONS = "files|cachedContents|batches|tunedModels|fileSearchStores|corpora";
/** A resource name anywhere in text: `files/abc-123`, inside a URI or a JSON string. */
const NAME_IN_TEXT = new RegExp(`\\b(?:${COLLECTIONS})/[A-Za-z0-9_-]+`, "g");
/** The resource a path addresses: `files/abc`, `batches/x:cancel` -> `batches/x`. */
const NAME_IN_PATH = new RegExp(`^(?:${COLLECTIONS})/[A-Za-z0-9_-]+`);

const decoder = new TextDecoder();
/** Bodies larger than this are scanned only for the fields that can name resources. */
const FULL_SCAN_LIMIT = 256 * 1024;

/** Resource names a request refers to: in its path, or in its JSON body. */
export function resourcesInRequest(resource: string, body: Uint8Array | undefined): string[] {
  const names = new Set<string>();
  const inPath = NAME_IN_PATH.exec(resource);
  if (inPath) names.add(inPath[0]);
  if (body && body.byteLength > 0) {
    for (const name of namesInBody(body)) names.add(name);
  }
  return [...names];
}

/**
 * Names in a JSON body. Small bodies are scanned whole; in large ones (inline media) only the
 * text near `fileUri`, `cachedContent` and `name` fields is, so a 20 MiB image costs little.
 */
function namesInBody(body: Uint8Array): string[] {
  const text = decoder.decode(body);
  if (body.byteLength <= FULL_SCAN_LIMIT) return text.match(NAME_IN_TEXT) ?? [];
  const names: string[] = [];
  for (const field of ['"fileUri"', '"cachedContent"', '"file"', '"name"', '"src"']) {
    for (let at = text.indexOf(field); at !== -1; at = text.indexOf(field, at + 1)) {
      names.push(...(text.slice(at, at + 400).match(NAME_IN_TEXT) ?? []));
    }
  }
  return names;
}

/** Resource names in a successful JSON answer (created or listed resources). */
export function resourcesInAnswer(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/"name"\s*:\s*"([^"]+)"/g)) {
    const name = NAME_IN_PATH.exec(match[1]);
    if (name) names.add(name[0]);
  }
  return [...names];
}

/** Whether a successful answer to this request may create or list resources worth recording. */
export function mayNameResources(method: string, resource: string): boolean {
  if (method === "GET" || method === "DELETE") {
    return NAME_IN_PATH.test(resource) || isListing(resource);
  }
  return /(^|\/)(files|cachedContents|batches|tunedModels|fileSearchStores|corpora)(:[A-Za-z]+)?$/
    .test(resource) ||
    /:(batchGenerateContent|asyncBatchEmbedContent|importFile|uploadToFileSearchStore)$/
      .test(resource);
}

function isListing(resource: string): boolean {
  return new RegExp(`^(?:${COLLECTIONS})$`).test(resource);
}

/** The upload session id of a resumable-upload URL or request query. */
export function uploadId(search: URLSearchParams): string | undefined {
  return search.get("upload_id") ?? undefined;
}
