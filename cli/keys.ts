/**
 * `deno task keys ...`: manage the keys of a running rotator (local or deployed) through its
 * admin API. The URL and admin token come from --url/--token, or ROTATOR_URL/ADMIN_TOKEN in the
 * environment or in ./.env. Exit codes: 0 done, 1 the rotator refused (its message is printed),
 * 2 bad usage, 3 the rotator could not be reached, 4 a checked key failed its check.
 */

import { parseArgs } from "node:util";
import { AdminClient, EXIT, Refused, UsageError } from "./admin_client.ts";
import { parseDotenv } from "../src/dotenv.ts";
import { KeyListError, type KeySpec, parseKeyList } from "../src/key_list.ts";
import {
  checkLine,
  type CheckResult,
  keyTable,
  type KeyView,
  limitsTable,
  type LimitsView,
  type UsageRow,
  usageTable,
} from "./keys_format.ts";

const USAGE = `Usage: deno task keys <command> [options]

Manage the keys of a running rotator through its admin API.

Commands:
  list                           keys with status, cooldowns, last error, today's counts
  add [KEY...]                   add keys; with no KEY, reads them from stdin (one per line,
                                 project:KEY, or a JSON array of {"key","label","project"})
      --label TEXT                 label for the keys given
      --project NAME               Google Cloud project of the keys given
      --file PATH                  read the keys from a file instead (same formats as stdin)
  remove ID...                   remove keys that were added at run time
  disable ID... [--reason TEXT]  take keys out of rotation until enabled
  enable ID...                   bring keys (and a disabled project) back
  check ID... | --all            one cheap upstream call per key (lists one model)
  clear-cooldowns [--project NAME] [--model MODEL] [--key ID]
  usage [--day YYYY-MM-DD]       per-key, per-model counts of a day (default: today, Pacific)
  limits [--model M] [--project P]
                                 pacing: declared limits, and each bucket's limit in force,
                                 use and when it has room

Options:
  --url URL      the rotator (default: $ROTATOR_URL, else http://127.0.0.1:8000)
  --token TOKEN  its ADMIN_TOKEN (default: $ADMIN_TOKEN, also read from ./.env; prefer the
                 variable: \`deno task\` echoes its arguments)
  --json         print the admin API's JSON instead of a table
  -h, --help     this text

Keys given as arguments are echoed by \`deno task\` and kept in your shell history: prefer
stdin or --file, e.g.
  pbpaste | deno task keys add --label laptop

Exit codes: 0 done, 1 the rotator refused, 2 bad usage, 3 rotator unreachable, 4 a key failed
its check.`;

export { EXIT };

/** What the CLI touches, so tests can run it in-process. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly fetch: typeof fetch;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readStdin: () => Promise<string>;
  readonly readFile: (path: string) => Promise<string>;
}

const DEFAULT_URL = "http://127.0.0.1:8000";
/** The admin API takes at most this many keys per request. */
const ADD_BATCH = 100;

/** Runs one command; resolves to the exit code. */
export async function run(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        label: { type: "string" },
        project: { type: "string" },
        file: { type: "string" },
        reason: { type: "string" },
        model: { type: "string" },
        key: { type: "string" },
        day: { type: "string" },
        all: { type: "boolean" },
      },
    });
  } catch (error) {
    io.err(`error: ${(error as Error).message}\nRun with --help for usage.`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === "help") {
    io.out(USAGE);
    return EXIT.ok;
  }
  if (!command) {
    io.err(`error: no command given.\n\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    const api = new AdminClient(
      values.url ?? io.env.ROTATOR_URL ?? DEFAULT_URL,
      values.token ?? io.env.ADMIN_TOKEN,
      io.fetch,
    );
    const show = (value: unknown, text: () => string) =>
      io.out(values.json ? JSON.stringify(value, null, 2) : text());
    switch (command) {
      case "list": {
        noArgs(command, rest);
        const listed = await api.call("GET", "/admin/api/keys") as { keys: KeyView[] };
        show(listed, () => keyTable(listed.keys));
        return EXIT.ok;
      }
      case "add": {
        const specs = await keysToAdd(rest, values, io);
        const added: KeyView[] = [];
        const existing: string[] = [];
        for (let i = 0; i < specs.length; i += ADD_BATCH) {
          const batch = specs.slice(i, i + ADD_BATCH);
          const result = await api.call("POST", "/admin/api/keys", {
            keys: batch.map((s) => ({
              key: s.value,
              ...(s.label ? { label: s.label } : {}),
              ...(s.project ? { project: s.project } : {}),
            })),
          }) as { added: KeyView[]; existing: string[] };
          added.push(...result.added);
          existing.push(...result.existing);
        }
        show({ added, existing }, () =>
          [
            `added ${added.length} key(s)${added.length ? ": " : ""}${
              added.map((k) => k.id).join(", ")
            }`,
            ...(existing.length ? [`already present: ${existing.join(", ")}`] : []),
          ].join("\n"));
        return EXIT.ok;
      }
      case "remove":
      case "enable":
      case "disable": {
        const ids = needIds(command, rest);
        const results: unknown[] = [];
        for (const id of ids) {
          const path = `/admin/api/keys/${encodeURIComponent(id)}`;
          if (command === "remove") {
            results.push(await api.call("DELETE", path));
          } else {
            const body = command === "disable" && values.reason ? { reason: values.reason } : {};
            results.push(await api.call("POST", `${path}/${command}`, body));
          }
        }
        show(
          results.length === 1 ? results[0] : results,
          () =>
            ids.map((id) => `${id}: ${command === "remove" ? "removed" : `${command}d`}`).join(
              "\n",
            ),
        );
        return EXIT.ok;
      }
      case "check": {
        let ids = values.all ? [] : needIds(command, rest);
        if (values.all) {
          noArgs("check --all", rest);
          const listed = await api.call("GET", "/admin/api/keys") as { keys: KeyView[] };
          ids = listed.keys.map((k) => k.id);
        }
        const results: CheckResult[] = [];
        for (const id of ids) {
          results.push(
            await api.call(
              "POST",
              `/admin/api/keys/${encodeURIComponent(id)}/check`,
              {},
            ) as CheckResult,
          );
        }
        show(results.length === 1 ? results[0] : results, () => results.map(checkLine).join("\n"));
        return results.every((r) => r.outcome === "ok") ? EXIT.ok : EXIT.checkFailed;
      }
      case "clear-cooldowns": {
        noArgs(command, rest);
        const result = await api.call("POST", "/admin/api/cooldowns/clear", {
          ...(values.project !== undefined ? { project: values.project } : {}),
          ...(values.model !== undefined ? { model: values.model } : {}),
          ...(values.key !== undefined ? { keyId: values.key } : {}),
        }) as { cleared: number };
        show(result, () => `cleared ${result.cleared} cooldown(s)`);
        return EXIT.ok;
      }
      case "usage": {
        noArgs(command, rest);
        const query = values.day ? `?day=${encodeURIComponent(values.day)}` : "";
        const result = await api.call("GET", `/admin/api/usage${query}`) as {
          day: string;
          rows: UsageRow[];
        };
        show(result, () => usageTable(result.day, result.rows));
        return EXIT.ok;
      }
      case "limits": {
        noArgs(command, rest);
        const query = new URLSearchParams();
        if (values.model !== undefined) query.set("model", values.model);
        if (values.project !== undefined) query.set("project", values.project);
        const path = `/admin/api/limits${query.size > 0 ? `?${query}` : ""}`;
        const result = await api.call("GET", path) as LimitsView;
        show(result, () => limitsTable(result));
        return EXIT.ok;
      }
      default:
        throw new UsageError(`unknown command "${command.slice(0, 40)}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${error.message}\nRun with --help for usage.`);
      return EXIT.usage;
    }
    if (error instanceof Refused) {
      io.err(`error: ${error.message}`);
      return error.code;
    }
    throw error;
  }
}

function noArgs(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`${command} takes no arguments`);
}

function needIds(command: string, rest: readonly string[]): string[] {
  if (rest.length === 0) {
    throw new UsageError(`${command} needs key ids (the fingerprints \`list\` shows)`);
  }
  return [...rest];
}

/** The keys of an `add`: from arguments, --file or stdin, in API_KEYS syntax. */
async function keysToAdd(
  rest: readonly string[],
  values: { label?: string; project?: string; file?: string },
  io: CliIo,
): Promise<KeySpec[]> {
  let source: string;
  let text: string;
  if (values.file !== undefined) {
    if (rest.length > 0) throw new UsageError("give keys as arguments or with --file, not both");
    source = values.file;
    try {
      text = await io.readFile(values.file);
    } catch (error) {
      throw new UsageError(`cannot read ${values.file}: ${(error as Error).message}`);
    }
  } else if (rest.length > 0) {
    source = "arguments";
    text = rest.join("\n");
  } else {
    source = "stdin";
    text = await io.readStdin();
  }
  let specs: KeySpec[];
  try {
    specs = parseKeyList(source, text).keys;
  } catch (error) {
    if (error instanceof KeyListError) throw new UsageError(error.message);
    throw error;
  }
  if (specs.length === 0) throw new UsageError(`no keys found in ${source}`);
  return specs.map((spec) => ({
    ...spec,
    ...(values.label !== undefined && !spec.label ? { label: values.label } : {}),
    ...(values.project !== undefined && !spec.project ? { project: values.project } : {}),
  }));
}

/** The real process: Deno's env (over ./.env), stdin, stdout. */
async function denoIo(): Promise<CliIo> {
  let env: Record<string, string | undefined> = Deno.env.toObject();
  try {
    env = { ...parseDotenv(await Deno.readTextFile(".env")), ...env };
  } catch {
    // No readable .env: the environment alone.
  }
  return {
    env,
    fetch,
    out: (text) => console.log(text),
    err: (text) => console.error(text),
    async readStdin() {
      if (Deno.stdin.isTerminal()) {
        console.error("Paste keys, one per line, then press Ctrl-D:");
      }
      return await new Response(Deno.stdin.readable).text();
    },
    readFile: (path) => Deno.readTextFile(path),
  };
}

if (import.meta.main) Deno.exit(await run(Deno.args, await denoIo()));
