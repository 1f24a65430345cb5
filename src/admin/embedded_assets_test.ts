import assert from "node:assert/strict";
import packageJson from "../../package.json" with { type: "json" };
import { ASSET_FILES, renderEmbeddedModule } from "../../scripts/embedded_assets_source.ts";
import { EMBEDDED_ASSETS } from "./embedded_assets.ts";

const ASSETS = new URL("./assets/", import.meta.url);
const UPLOT = new URL("../../node_modules/uplot/", import.meta.url);

Deno.test("the embedded status page module is current with src/admin/assets/ (run `deno task assets`)", async () => {
  const files: Record<string, string> = {};
  for (const name of ASSET_FILES) files[name] = await Deno.readTextFile(new URL(name, ASSETS));
  const current = await Deno.readTextFile(new URL("./embedded_assets.ts", import.meta.url));
  assert.equal(current, renderEmbeddedModule(files));
  for (const name of ASSET_FILES) assert.equal(EMBEDDED_ASSETS[name], files[name], name);
});

Deno.test("the vendored uPlot is the pinned npm package's files, byte for byte", async () => {
  const pinned = packageJson.devDependencies.uplot;
  assert.match(pinned, /^\d+\.\d+\.\d+$/, "uplot is pinned to an exact version");
  let installed: { version: string; license: string };
  try {
    installed = JSON.parse(await Deno.readTextFile(new URL("package.json", UPLOT)));
  } catch {
    throw new Error("node_modules/uplot is missing: run `npm ci` first");
  }
  assert.equal(installed.version, pinned, "node_modules holds the pinned uplot (run `npm ci`)");
  assert.equal(installed.license, "MIT");
  for (
    const [vendored, original] of [
      ["vendor/uPlot.iife.min.js", "dist/uPlot.iife.min.js"],
      ["vendor/uPlot.min.css", "dist/uPlot.min.css"],
      ["vendor/uPlot.LICENSE", "LICENSE"],
    ]
  ) {
    const mine = await Deno.readFile(new URL(vendored, ASSETS));
    const theirs = await Deno.readFile(new URL(original, UPLOT));
    assert.deepEqual(mine, theirs, `${vendored} differs from uplot@${pinned}/${original}`);
  }
  assert.match(EMBEDDED_ASSETS["vendor/uPlot.iife.min.js"], new RegExp(`\\(v${pinned}\\)`));
});
