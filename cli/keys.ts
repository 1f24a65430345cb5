/**
 * `deno task keys ...`: manage the keys of a running rotator (local or deployed) through its
 * admin API. The URL and admin token come from --url/--token, or ROTATOR_URL/ADMIN_TOKEN in the
 * environment or in ./.env. Exit codes: 0 done, 1 the rotator refused (its message is printed),
 * 2 bad usage, 3 the rotator could not be reached, 4 a checked key failed its check.
 */

import { parseArgs } from "node:util";
import { parseDotenv } from "../src/dotenv.ts";
import { KeyListError, type KeySpec, parseKeyList } from "../src/key_list.ts";

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

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, checkFailed: 4 } as const;

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

class UsageError extends Error {}
class Refused extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

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

/** The admin API over fetch; errors become Refused with the rotator's own message. */
class AdminClient {
  readonly #base: string;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(url: string, token: string | undefined, fetchFn: typeof fetch) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new UsageError(`--url/ROTATOR_URL is not a URL: ${JSON.stringify(url.slice(0, 100))}`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new UsageError("--url/ROTATOR_URL must start with http:// or https://");
    }
    this.#base = base.href.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = fetchFn;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    if (!this.#token) {
      throw new UsageError("no admin token: set ADMIN_TOKEN (or pass --token)");
    }
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw new Refused(
        `cannot reach the rotator at ${this.#base}: ${(error as Error).message}`,
        EXIT.unreachable,
      );
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = (json as { error?: { message?: string; status?: string } })?.error;
      const message = error?.message ??
        `${this.#base}${path} answered HTTP ${response.status} without an error message` +
          " (is this a rotator?)";
      const hint = response.status === 401 ? " Check ADMIN_TOKEN." : "";
      throw new Refused(
        `${message}${hint} (HTTP ${response.status}${error?.status ? ` ${error.status}` : ""})`,
        EXIT.refused,
      );
    }
    if (json === undefined) {
      throw new Refused(
        `${this.#base}${path} did not answer JSON (is this a rotator?)`,
        EXIT.refused,
      );
    }
    return json;
  }
}

interface Counts {
  requests: number;
  successes: number;
  rateLimited: number;
  errors: number;
  promptTokens: number;
  outputTokens: number;
}

interface KeyView {
  id: string;
  label: string | null;
  project: string;
  source: string;
  status: string;
  disabled: null | { scope: string; reason: string; recheckAt: string | null };
  cooldowns: { model: string; until: string; window: string }[];
  lastError: null | { status: number; reason: string; at: string };
  usageToday: Counts;
}

interface CheckResult {
  id: string;
  upstreamStatus: number;
  outcome: string;
  reason?: string;
  key: KeyView;
}

interface UsageRow extends Counts {
  keyId: string;
  model: string;
}

function keyTable(keys: readonly KeyView[]): string {
  if (keys.length === 0) return "no keys";
  const rows = keys.map((k) => [
    k.id,
    k.source,
    k.status === "disabled" && k.disabled
      ? `disabled (${k.disabled.scope === "project" ? "project: " : ""}${k.disabled.reason})`
      : k.status,
    k.project.startsWith("key:") ? "-" : k.project,
    k.label ?? "-",
    k.cooldowns.length === 0
      ? "-"
      : k.cooldowns.map((c) => `${c.model || "(none)"} until ${shortTime(c.until)}`).join(", "),
    k.lastError ? `${k.lastError.status} ${k.lastError.reason} ${shortTime(k.lastError.at)}` : "-",
    `${k.usageToday.requests}/${k.usageToday.successes}/${k.usageToday.rateLimited}/` +
    `${k.usageToday.errors}`,
  ]);
  return table(
    ["ID", "SOURCE", "STATUS", "PROJECT", "LABEL", "COOLING", "LAST ERROR", "TODAY req/ok/429/err"],
    rows,
  );
}

function usageTable(day: string, rows: readonly UsageRow[]): string {
  if (rows.length === 0) return `no usage on ${day} (Pacific)`;
  const fields = [
    "requests",
    "successes",
    "rateLimited",
    "errors",
    "promptTokens",
    "outputTokens",
  ] as const;
  const total = Object.fromEntries(fields.map((f) => [f, 0])) as Record<string, number>;
  for (const row of rows) for (const f of fields) total[f] += row[f];
  return `usage on ${day} (Pacific)\n` + table(
    ["KEY", "MODEL", "REQUESTS", "OK", "429", "ERRORS", "PROMPT TOK", "OUTPUT TOK"],
    [
      ...rows.map((r) => [r.keyId, r.model || "(none)", ...fields.map((f) => String(r[f]))]),
      ["total", "", ...fields.map((f) => String(total[f]))],
    ],
  );
}

function checkLine(result: CheckResult): string {
  const what = result.outcome === "ok"
    ? "ok"
    : `${result.outcome}${result.reason ? ` ${result.reason}` : ""}`;
  const status = result.upstreamStatus ? ` (HTTP ${result.upstreamStatus})` : "";
  const now = result.key.status === "disabled" ? ", now disabled" : "";
  return `${result.id}: ${what}${status}${result.outcome === "ok" ? "" : now}`;
}

function table(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
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
