/**
 * Entry for Supabase Edge Functions: `export default { fetch }`, which Supabase's runtime serves
 * as it is (and `deno serve entries/supabase.ts` serves locally). State is in memory.
 *
 * Supabase routes `https://<ref>.supabase.co/functions/v1/<name>/...` to the function with the
 * path `/<name>/...` ("paths should always be prefixed with the function name",
 * https://supabase.com/docs/guides/functions/routing); the prefix is dropped here so the app
 * sees `/v1beta/...` and `/healthz`.
 */

import { edgeHandler } from "./edge.ts";

const handle = edgeHandler({
  entry: "entries/supabase.ts",
  platform: "supabase",
  env: () => Deno.env.toObject(),
});

/**
 * The URL without Supabase's `/<function-name>` prefix (and a `/functions/v1` before it, should
 * a host leave that in too).
 */
export function withoutFunctionName(url: URL): URL {
  const out = new URL(url);
  const path = out.pathname.replace(/^\/functions\/v1(?=\/)/, "");
  out.pathname = path.replace(/^\/[^/]+/, "") || "/";
  return out;
}

export default {
  fetch(request: Request): Promise<Response> {
    // Supabase sets DENO_DEPLOYMENT_ID on its hosted runtime
    // (https://supabase.com/docs/guides/functions/secrets).
    const build = Deno.env.get("DENO_DEPLOYMENT_ID");
    return handle(
      new Request(withoutFunctionName(new URL(request.url)), request),
      build ? { build } : {},
    );
  },
};
