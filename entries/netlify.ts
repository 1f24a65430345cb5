/**
 * Entry for Netlify Edge Functions: `export default (request, context)` plus a `config` that
 * routes every path here (https://docs.netlify.com/edge-functions/declarations/). State is in
 * memory.
 */

import { edgeHandler } from "./edge.ts";

/** The part of Netlify's global this entry uses. */
interface NetlifyGlobal {
  readonly env: { toObject(): Record<string, string> };
}

/** The part of Netlify's Context this entry uses (https://docs.netlify.com/functions/api). */
interface NetlifyContext {
  readonly deploy?: { readonly id?: string };
}

const handle = edgeHandler({
  entry: "entries/netlify.ts",
  platform: "netlify",
  // Variables set in the UI, CLI or API with the Functions scope; netlify.toml's are not passed
  // to edge functions (https://docs.netlify.com/build/edge-functions/environment-variables).
  // Older runtimes exposed them on Deno.env only.
  env: () =>
    (globalThis as { Netlify?: NetlifyGlobal }).Netlify?.env.toObject() ?? Deno.env.toObject(),
});

export default (request: Request, context?: NetlifyContext): Promise<Response> => {
  const build = context?.deploy?.id;
  return handle(request, build ? { build } : {});
};

export const config = { path: "/*" };
