/**
 * Writes src/admin/embedded_assets.ts from the files in src/admin/assets/: the status page's
 * HTML, CSS and script and the vendored chart library, as string constants. Run it after editing
 * any of them (`deno task assets`); src/admin/embedded_assets_test.ts fails while they differ.
 *
 * Why strings in a module: Deno Deploy (and the Supabase and Netlify bundlers) reliably ship
 * only the module graph, and `import ... with { type: "text" }` needs --unstable-raw-imports on
 * Deno 2.5, which Deploy cannot pass.
 */

import { ASSET_FILES, renderEmbeddedModule } from "./embedded_assets_source.ts";

const root = new URL("../src/admin/assets/", import.meta.url);
const files: Record<string, string> = {};
for (const name of ASSET_FILES) files[name] = await Deno.readTextFile(new URL(name, root));
const target = new URL("../src/admin/embedded_assets.ts", import.meta.url);
await Deno.writeTextFile(target, renderEmbeddedModule(files));
console.log(`wrote ${target.pathname} (${ASSET_FILES.length} files)`);
