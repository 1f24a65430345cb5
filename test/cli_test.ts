/**
 * The keys CLI end to end against a running rotator (real server, mock upstream, Deno KV file):
 * what an operator types and reads, and the exit codes scripts rely on. Most runs call the CLI's
 * `run()` in this process over real HTTP; two spawn it as `deno task keys` would.
 */

import assert from "node:assert/strict";
import { type CliIo, EXIT, run } from "../cli/keys.ts";
import { fingerprint } from "../src/keys.ts";
import {
  ADMIN_TOKEN,
  generate,
  KEY_SECRET,
  type Rotator,
  startRotator,
  tempKv,
  testKey,
} from "./harness.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const A = testKey("alpha");
const K1 = testKey("cli-one");
const K2 = testKey("cli-two");

interface Ran {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

function cli(rotator: Rotator | undefined, stdin = "") {
  return async (...args: string[]): Promise<Ran> => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      env: rotator ? { ROTATOR_URL: rotator.url, ADMIN_TOKEN } : {},
      fetch,
      out: (text) => out.push(text),
      err: (text) => err.push(text),
      readStdin: () => Promise.resolve(stdin),
      readFile: (path) => Deno.readTextFile(path),
    };
    const code = await run(args, io);
    return { code, out: out.join("\n"), err: err.join("\n") };
  };
}

async function withRotator(body: (rotator: Rotator) => Promise<void>): Promise<void> {
  const kv = await tempKv();
  const store = await kv.open();
  const rotator = await startRotator({
    keys: [A],
    store,
    env: { ADMIN_TOKEN, KEY_ENCRYPTION_SECRET: KEY_SECRET },
  });
  try {
    await body(rotator);
  } finally {
    await rotator.close();
    await store.close();
    await kv.dispose();
  }
}

Deno.test("keys CLI: add from stdin with labels, list, disable, enable, remove", async () => {
  await withRotator(async (rotator) => {
    const stdin = JSON.stringify([{ key: K1, label: "laptop" }, { key: K2, project: "team-b" }]);
    const added = await cli(rotator, stdin)("add");
    assert.equal(added.code, EXIT.ok, added.err);
    const [id1, id2] = [await fingerprint(K1), await fingerprint(K2)];
    assert.match(added.out, new RegExp(`added 2 key\\(s\\): ${id1}, ${id2}`));

    const listed = await cli(rotator)("list");
    assert.equal(listed.code, EXIT.ok);
    assert.match(listed.out, /^ID\s+SOURCE\s+STATUS\s+PROJECT\s+LABEL/);
    assert.match(listed.out, new RegExp(`${id1}\\s+kv\\s+ok\\s+-\\s+laptop`));
    assert.match(listed.out, new RegExp(`${id2}\\s+kv\\s+ok\\s+team-b`));
    assert.ok(!listed.out.includes(K1) && !listed.out.includes(A), "no key value printed");

    const disabled = await cli(rotator)("disable", id1, "--reason", "rotating it");
    assert.equal(disabled.code, EXIT.ok);
    assert.match((await cli(rotator)("list")).out, /disabled \(rotating it\)/);
    assert.equal((await cli(rotator)("enable", id1)).code, EXIT.ok);

    const json = JSON.parse((await cli(rotator)("list", "--json")).out);
    assert.deepEqual(json.keys.map((k: { status: string }) => k.status), ["ok", "ok", "ok"]);

    assert.equal((await cli(rotator)("remove", id1, id2)).code, EXIT.ok);
    assert.equal(rotator.app.pool.size, 1);
  });
});

Deno.test("keys CLI: check exits 4 when a key fails; clear-cooldowns and usage", async () => {
  await withRotator(async (rotator) => {
    await cli(rotator)("add", "--label", "spare", K1);
    const id = await fingerprint(K1);
    rotator.mock.script(K1, { type: "error", fixture: "expired" });
    const checked = await cli(rotator)("check", "--all");
    assert.equal(checked.code, EXIT.checkFailed);
    assert.match(checked.out, new RegExp(`${await fingerprint(A)}: ok \\(HTTP 200\\)`));
    assert.match(checked.out, new RegExp(`${id}: key_rejected API_KEY_INVALID \\(HTTP 400\\)`));
    assert.match(checked.out, /now disabled/);

    rotator.mock.script(A, { type: "error", fixture: "rpm" }, { type: "ok" });
    const limited = await generate(rotator);
    assert.equal(limited.status, 429);
    await limited.body?.cancel();
    // Google's 429 stated the limit (10 a minute): pacing learned it; its window is not known yet.
    const limits = await cli(rotator)("limits", "--model", "gemini-2.5-flash");
    assert.equal(limits.code, EXIT.ok, limits.err);
    assert.match(limits.out, /declared: none/);
    assert.match(
      limits.out,
      /gemini-2\.5-flash\s+10\s+\(learning\)\s+learned\s+0\s+window-unknown/,
    );
    const cleared = await cli(rotator)("clear-cooldowns", "--model", "gemini-2.5-flash");
    assert.equal(cleared.code, EXIT.ok);
    assert.equal(cleared.out, "cleared 1 cooldown(s)");

    const usage = await cli(rotator)("usage");
    assert.equal(usage.code, EXIT.ok);
    assert.match(usage.out, /gemini-2\.5-flash\s+1\s+0\s+1\s+0/);
    assert.match((await cli(rotator)("usage", "--day", "2020-01-01")).out, /no usage on 2020/);
  });
});

Deno.test("keys CLI: refusals exit 1 with the rotator's message, bad usage 2, unreachable 3", async () => {
  await withRotator(async (rotator) => {
    const unknown = await cli(rotator)("remove", "0123456789ab");
    assert.equal(unknown.code, EXIT.refused);
    assert.match(unknown.err, /No key has the id 0123456789ab.*\(HTTP 404 NOT_FOUND\)/);
    const env = await cli(rotator)("remove", await fingerprint(A));
    assert.equal(env.code, EXIT.refused);
    assert.match(env.err, /remove it from API_KEYS/);
    const badToken = await cli(rotator)("list", "--token", "not-the-admin-token");
    assert.equal(badToken.code, EXIT.refused);
    assert.match(badToken.err, /admin token.*Check ADMIN_TOKEN/);

    for (
      const args of [[], ["frobnicate"], ["list", "--colour"], ["disable"], ["list", "extra"]]
    ) {
      const ran = await cli(rotator)(...args);
      assert.equal(ran.code, EXIT.usage, args.join(" "));
      assert.match(ran.err, /^error: /);
    }
    const noKeys = await cli(rotator, "\n\n")("add");
    assert.equal(noKeys.code, EXIT.usage);
    assert.match(noKeys.err, /no keys found in stdin/);
    const noToken = await cli(undefined)("list", "--url", rotator.url);
    assert.equal(noToken.code, EXIT.usage);
    assert.match(noToken.err, /ADMIN_TOKEN/);
  });
  // Nothing listens on the port of a server that has just been shut down.
  const gone = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response());
  const url = `http://127.0.0.1:${(gone.addr as Deno.NetAddr).port}`;
  await gone.shutdown();
  const unreachable = await cli(undefined)("list", "--url", url, "--token", ADMIN_TOKEN);
  assert.equal(unreachable.code, EXIT.unreachable);
  assert.match(unreachable.err, /cannot reach the rotator/);
});

Deno.test("`deno task keys` runs the CLI: keys piped on stdin are added", async () => {
  await withRotator(async (rotator) => {
    const task = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["task", "--quiet", "keys", ...args],
        cwd: ROOT,
        env: { ROTATOR_URL: rotator.url, ADMIN_TOKEN },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const child = task(["add", "--project", "team-c"]);
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(`${K1}\n`));
    await writer.close();
    const { code, stdout, stderr } = await child.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.match(new TextDecoder().decode(stdout), /added 1 key\(s\)/);
    assert.equal(rotator.app.pool.key(await fingerprint(K1))?.project, "team-c");

    const help = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "keys"],
      cwd: ROOT,
      env: { ADMIN_TOKEN: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(help.code, EXIT.usage);
    assert.match(new TextDecoder().decode(help.stderr), /Usage: deno task keys <command>/);
  });
});
