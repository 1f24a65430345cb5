/**
 * The documentation's commands run: every code block marked `<!-- checked -->` in README.md and
 * docs/*.md runs against a local rotator in front of the mock upstream and must exit 0.
 *
 * Blocks are written for a reader who followed the quickstart: a rotator at
 * http://localhost:8000 and the token in $ACCESS_TOKEN. Each block gets a fresh rotator on a
 * free port; `http://localhost:8000` in the block is rewritten to it, and ACCESS_TOKEN and
 * ROTATOR_URL are set. HOME is an empty temporary directory and the repository's
 * node_modules/.bin is on PATH (the Gemini CLI, for one, comes from there).
 *
 * The marker takes attributes, in double or single quotes: `<!-- checked expect="regex"
 * upstream="rpd" -->` also requires the output to match the regex (`^` and `$` match at line
 * ends), and makes every pool key answer with that real error body (test/fixtures/gemini-errors)
 * instead of success; `admin="true"` turns the admin API on and sets ADMIN_TOKEN for the block. `sh`/`bash`/`shell` blocks run in bash with `set -euo pipefail`; `js`
 * blocks run in Node as an ES module from the repository root.
 */

import assert from "node:assert/strict";
import { ROOT } from "./start_task.ts";
import { ADMIN_TOKEN, KEY_SECRET, startRotator, testKey, TOKEN } from "./harness.ts";
import { FIXTURE_FILES, type FixtureName } from "./mock_upstream.ts";

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  /** Attributes of the `<!-- checked ... -->` marker, or undefined when unmarked. */
  readonly checked?: Readonly<Record<string, string>>;
}

const SHELL = new Set(["sh", "bash", "shell"]);
const RUNNABLE = new Set([...SHELL, "js"]);

/** Fenced code blocks of a Markdown file, with the marker on the line before each, if any. */
function blocks(file: string, text: string): Block[] {
  const lines = text.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    const code = lines.slice(i + 1, end).map((l) => l.slice(indent)).join("\n");
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === "") before--;
    const marker = before >= 0 ? /^\s*<!--\s*checked\b(.*?)-->\s*$/.exec(lines[before]) : null;
    const checked = marker
      ? Object.fromEntries(
        [...marker[1].matchAll(/(\w+)=(?:"([^"]*)"|'([^']*)')/g)].map((m) => [m[1], m[2] ?? m[3]]),
      )
      : undefined;
    out.push({ file, line: i + 1, lang: open[2], code, ...(checked ? { checked } : {}) });
    i = end;
  }
  return out;
}

const files = [
  "README.md",
  ...[...Deno.readDirSync(`${ROOT}/docs`)].filter((e) => e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`).sort(),
];
const all = files.flatMap((file) => blocks(file, Deno.readTextFileSync(`${ROOT}/${file}`)));
const checked = all.filter((b) => b.checked);

async function runCommand(command: Deno.Command) {
  const output = await command.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("the docs mark their runnable examples as checked", () => {
  for (const file of ["README.md", "docs/user-guide.md", "docs/api.md"]) {
    assert.ok(checked.some((b) => b.file === file), `${file} has checked blocks`);
  }
  // Every shell block is either checked or says why it cannot be.
  for (const block of all.filter((b) => SHELL.has(b.lang) && !b.checked)) {
    const text = Deno.readTextFileSync(`${ROOT}/${block.file}`).split("\n");
    const before = text.slice(0, block.line - 1).reverse().find((l) => l.trim() !== "") ?? "";
    assert.match(
      before,
      /<!--\s*not checked:/,
      `${block.file}:${block.line} is checked or says why not`,
    );
  }
});

for (const block of checked) {
  const title = block.code.split("\n").find((l) => l.trim() && !l.startsWith("#")) ?? "";
  Deno.test(`${block.file}:${block.line} runs: ${title.trim().slice(0, 60)}`, async () => {
    assert.ok(RUNNABLE.has(block.lang), `a checked block is one of ${[...RUNNABLE]}`);
    const upstream = block.checked!.upstream;
    if (upstream) assert.ok(upstream in FIXTURE_FILES, `upstream="${upstream}" names a fixture`);
    // `admin="true"`: the admin API is on, and the block has ADMIN_TOKEN.
    const admin = block.checked!.admin === "true";
    const rotator = await startRotator({
      keys: [testKey("doc-a"), `second:${testKey("doc-b")}`],
      ...(admin ? { env: { ADMIN_TOKEN, KEY_ENCRYPTION_SECRET: KEY_SECRET } } : {}),
    });
    if (upstream) rotator.mock.setDefault({ type: "error", fixture: upstream as FixtureName });
    const home = await Deno.makeTempDir({ prefix: "doc-check-" });
    try {
      const result = await runCommand(command(block, rotator.url, home, admin));
      const output = result.stdout + result.stderr;
      assert.equal(result.code, 0, `exit code of ${block.file}:${block.line}:\n${output}`);
      if (block.checked!.expect) {
        assert.match(result.stdout, new RegExp(block.checked!.expect, "m"));
      }
    } finally {
      await rotator.close();
      await Deno.remove(home, { recursive: true });
    }
  });
}

function command(block: Block, url: string, home: string, admin: boolean): Deno.Command {
  const code = block.code.replaceAll("http://localhost:8000", url);
  const env = {
    PATH: `${ROOT}/node_modules/.bin:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    HOME: home,
    TMPDIR: home,
    ACCESS_TOKEN: TOKEN,
    ROTATOR_URL: url,
    NO_COLOR: "1",
    ...(admin ? { ADMIN_TOKEN } : {}),
  };
  return SHELL.has(block.lang)
    ? new Deno.Command("bash", {
      args: ["-euo", "pipefail", "-c", code],
      cwd: home,
      env,
      clearEnv: true,
      stdin: "null",
      signal: AbortSignal.timeout(60_000),
    })
    : new Deno.Command("node", {
      args: ["--input-type=module", "-e", code],
      cwd: ROOT,
      env,
      clearEnv: true,
      stdin: "null",
      signal: AbortSignal.timeout(60_000),
    });
}

Deno.test("architecture.md's classification table agrees with the real fixtures' expected outcomes", async () => {
  const expected: Record<
    string,
    { kind: string; window?: string; scope?: string; reason?: string }
  > = JSON.parse(await Deno.readTextFile(`${ROOT}/test/fixtures/gemini-errors/expected.json`));
  const rows = Deno.readTextFileSync(`${ROOT}/docs/architecture.md`).split("\n")
    .filter((line) => line.startsWith("| ") && /`f\d+b?`/.test(line));
  for (const [file, outcome] of Object.entries(expected)) {
    if (file === "//") continue;
    const id = file.split("-")[0];
    const row = rows.find((r) => r.split("|").at(-2)!.includes(`\`${id}\``));
    assert.ok(row, `a row cites ${id}`);
    const cell = row.split("|")[2];
    const detail = outcome.window ?? outcome.scope ??
      (outcome.kind === "project_exhausted" ? outcome.reason : undefined);
    assert.ok(cell.includes(outcome.kind), `${id}: ${cell.trim()} says ${outcome.kind}`);
    if (detail) assert.ok(cell.includes(`(${detail})`), `${id}: ${cell.trim()} says (${detail})`);
  }
});

Deno.test("the README's configuration table lists every variable the code reads", async () => {
  const sources = await Promise.all(
    ["src/config.ts", "entries/deno.ts", "entries/deno_env.ts", "entries/deno_store.ts"]
      .map((file) => Deno.readTextFile(`${ROOT}/${file}`).catch(() => "")),
  );
  const read = new Set<string>();
  for (const source of sources) {
    const patterns = [
      /read\.\w+\(\s*"([A-Z][A-Z0-9_]+)"/g,
      /\benv\.([A-Z][A-Z0-9_]+)\b/g,
      /Deno\.env\.get\("([A-Z][A-Z0-9_]+)"\)/g,
      /parseKeyList\("([A-Z_]+)"/g,
      /\bthis\.string\("([A-Z_]+)"\)/g,
      /\bthis\.list\("([A-Z_]+)"\)/g,
    ];
    for (const pattern of patterns) for (const m of source.matchAll(pattern)) read.add(m[1]);
  }
  // Set by the platforms, not by operators.
  for (const platform of ["DENO_DEPLOYMENT_ID"]) read.delete(platform);
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const documented = new Set([...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]));
  const missing = [...read].filter((name) => !documented.has(name)).sort();
  assert.deepEqual(missing, [], "variables read by the code but missing from the README's table");
  assert.ok(read.size >= 20, `found ${read.size} variables in the code`);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

Deno.test("links between the docs point at files and headings that exist", () => {
  for (const file of files) {
    const text = Deno.readTextFileSync(`${ROOT}/${file}`);
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split("#");
      const resolved = path ? new URL(path, `file:///${dir}`).pathname.slice(1) : file;
      let linked: string;
      try {
        linked = Deno.readTextFileSync(`${ROOT}/${resolved}`);
      } catch {
        assert.fail(`${file}: ${target} names a missing file`);
      }
      if (!anchor) continue;
      const anchors = [...linked.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1]));
      assert.ok(anchors.includes(anchor), `${file}: ${target} names a missing heading`);
    }
  }
});

Deno.test("api.md lists every reason the rotator answers with", async () => {
  const reasons = new Set<string>();
  const dirs = ["src", "src/admin", "entries"];
  for (const dir of dirs) {
    for (const entry of Deno.readDirSync(`${ROOT}/${dir}`)) {
      if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
      const source = await Deno.readTextFile(`${ROOT}/${dir}/${entry.name}`);
      if (!/errorResponse\(/.test(source)) continue;
      for (const m of source.matchAll(/\breason:\s*"([A-Z][A-Z_]+)"/g)) reasons.add(m[1]);
      for (const m of source.matchAll(/\bconst reason\s*=([^;]+);/g)) {
        for (const literal of m[1].matchAll(/"([A-Z][A-Z_]+)"/g)) reasons.add(literal[1]);
      }
    }
  }
  const api = await Deno.readTextFile(`${ROOT}/docs/api.md`);
  const missing = [...reasons].filter((reason) => !api.includes(`\`${reason}\``)).sort();
  assert.deepEqual(missing, [], "reasons the code answers with but api.md does not list");
  assert.ok(reasons.size >= 15, `found ${reasons.size} reasons in the code`);
});
