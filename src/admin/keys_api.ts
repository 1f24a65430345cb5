/**
 * Key management over HTTP (the admin API's issue-3 routes): list keys with their state and
 * counters, add keys (sealed into the shared store), remove, disable, enable and check one,
 * clear cooldowns, and read a day's usage. Every input is validated in full before anything is
 * written, errors name the problem, and no answer ever carries a key value.
 *
 *   GET    /admin/api/keys                     { now, keys: KeyView[] }
 *   POST   /admin/api/keys                     { keys: [{ key, label?, project? }] } or { key, ... }
 *   DELETE /admin/api/keys/{id}
 *   POST   /admin/api/keys/{id}/disable        { reason? }
 *   POST   /admin/api/keys/{id}/enable
 *   POST   /admin/api/keys/{id}/check
 *   POST   /admin/api/cooldowns/clear          { project?, model?, keyId? }
 *   GET    /admin/api/usage?day=YYYY-MM-DD
 */

import type { Config } from "../config.ts";
import { pacificDay } from "../cooldown.ts";
import { errorResponse } from "../errors.ts";
import type { KeyRegistry, UnusableKey } from "../key_registry.ts";
import type { PoolKey } from "../keys.ts";
import type { Logger, Redactor } from "../log.ts";
import type { KeyPool } from "../pool.ts";
import type { QuotaLedger } from "../quota.ts";
import type { UsageRow } from "../state/store.ts";
import type { StateSync } from "../state/sync.ts";
import type { UsageRecorder } from "../usage.ts";
import type { AdminModule } from "./dispatch.ts";
import { expectObject, invalidArgument, jsonResponse, optionalString, readJson } from "./json.ts";
import { checkKey } from "./key_check.ts";
import { isDay, parseKeysBody } from "./key_input.ts";
import type { LastErrors } from "./last_errors.ts";
import { type KeyView, keyView, unusableKeyView } from "./key_view.ts";

export interface KeysApiContext {
  readonly config: Config;
  readonly pool: KeyPool;
  readonly sync: StateSync;
  readonly registry: KeyRegistry;
  readonly usage: UsageRecorder;
  readonly lastErrors: LastErrors;
  /** Knows every key and token: a free-text field containing one is refused. */
  readonly redactor: Redactor;
  readonly fetch: typeof fetch;
  readonly now: () => number;
  readonly log: Logger;
  /** Pacing: clearing cooldowns also lifts the holds it keeps after a 429 (on this instance). */
  readonly ledger?: QuotaLedger;
}

const KEYS = "/admin/api/keys";
const ONE_KEY = /^\/admin\/api\/keys\/([^/]+)$/;
const KEY_ACTION = /^\/admin\/api\/keys\/([^/]+)\/(disable|enable|check)$/;
const CLEAR = "/admin/api/cooldowns/clear";
const USAGE = "/admin/api/usage";
/** What a key id looks like (keys.ts fingerprints); anything else is never echoed back. */
const ID_PATTERN = /^[0-9a-f]{12}$/;
const MAX_REASON = 200;
const MAX_NAME = 200;

type Known =
  | { readonly kind: "pool"; readonly key: PoolKey }
  | { readonly kind: "unusable"; readonly key: UnusableKey };

export function keysApi(ctx: KeysApiContext): AdminModule {
  return async (request, url) => {
    const path = url.pathname;
    if (path === KEYS) {
      if (request.method === "GET") return await listKeys(ctx);
      if (request.method === "POST") return await addKeys(ctx, request);
      return methodNotAllowed(request, "GET, POST");
    }
    const action = KEY_ACTION.exec(path);
    if (action) {
      if (request.method !== "POST") return methodNotAllowed(request, "POST");
      const known = find(ctx, action[1]);
      if (!known) return await unknownKey(request, action[1]);
      if (action[2] === "disable") return await disableKey(ctx, request, known);
      if (action[2] === "enable") return await enableKey(ctx, request, known);
      return await checkOne(ctx, request, known);
    }
    const one = ONE_KEY.exec(path);
    if (one) {
      if (request.method !== "DELETE") return methodNotAllowed(request, "DELETE");
      const known = find(ctx, one[1]);
      if (!known) return await unknownKey(request, one[1]);
      return await removeKey(ctx, known);
    }
    if (path === CLEAR) {
      if (request.method !== "POST") return methodNotAllowed(request, "POST");
      return await clearCooldowns(ctx, request);
    }
    if (path === USAGE) {
      if (request.method !== "GET" && request.method !== "HEAD") {
        return methodNotAllowed(request, "GET");
      }
      return await usageOfDay(ctx, url);
    }
    return undefined;
  };
}

async function listKeys(ctx: KeysApiContext): Promise<Response> {
  const now = ctx.now();
  const byKey = await usageByKey(ctx, now);
  const keys: KeyView[] = [
    ...ctx.pool.keys.map((key) => viewOf(ctx, { kind: "pool", key }, now, byKey)),
    ...ctx.registry.unusable.map((key) => viewOf(ctx, { kind: "unusable", key }, now, byKey)),
  ];
  return jsonResponse({ now: new Date(now).toISOString(), keys });
}

async function addKeys(ctx: KeysApiContext, request: Request): Promise<Response> {
  if (!ctx.registry.canAdd) {
    await request.body?.cancel().catch(() => {});
    return errorResponse(
      409,
      "FAILED_PRECONDITION",
      "Adding keys at run time needs KEY_ENCRYPTION_SECRET: keys are stored encrypted with it. " +
        "Set KEY_ENCRYPTION_SECRET (for example `openssl rand -hex 32`) on every instance and " +
        "restart, or add the keys to API_KEYS instead.",
      { reason: "KEY_ENCRYPTION_SECRET_MISSING" },
    );
  }
  const body = await readJson(request);
  if (!body.ok) return body.response;
  const specs = parseKeysBody(body.value);
  if (typeof specs === "string") return invalidArgument(specs);
  const result = await ctx.registry.add(specs);
  const now = ctx.now();
  const byKey = await usageByKey(ctx, now);
  ctx.log.info("admin: keys added", {
    added: result.added.map((k) => k.id),
    existing: result.existing,
  });
  return jsonResponse({
    added: result.added.map((key) => viewOf(ctx, { kind: "pool", key }, now, byKey)),
    existing: result.existing,
  }, 201);
}

async function removeKey(ctx: KeysApiContext, known: Known): Promise<Response> {
  const id = known.key.id;
  if (known.kind === "pool" && known.key.source === "env") {
    return errorResponse(
      409,
      "FAILED_PRECONDITION",
      `Key ${id} comes from API_KEYS: remove it from API_KEYS and restart (or disable it here).`,
      { reason: "ENV_KEY" },
    );
  }
  await ctx.registry.remove(id);
  ctx.log.info("admin: key removed", { key: id });
  return jsonResponse({ removed: id });
}

async function disableKey(
  ctx: KeysApiContext,
  request: Request,
  known: Known,
): Promise<Response> {
  const body = await readJson(request);
  if (!body.ok) return body.response;
  const fields = expectObject(body.value, ["reason"], true);
  if (typeof fields === "string") return invalidArgument(fields);
  const reason = optionalString(fields, "reason", MAX_REASON);
  if (typeof reason === "object") return invalidArgument(reason.error);
  if (reason !== undefined && ctx.redactor.redact(reason) !== reason) {
    return invalidArgument('"reason" contains a key or token: describe the reason instead.');
  }
  await ctx.sync.disable({
    scope: "key",
    id: known.key.id,
    reason: reason ?? "MANUAL",
    status: 0,
    since: ctx.now(),
    recheckAt: null,
  });
  ctx.log.info("admin: key disabled", { key: known.key.id, reason: reason ?? "MANUAL" });
  return jsonResponse(await oneView(ctx, known));
}

/** Brings the key back, and its project too when the whole project was disabled. */
async function enableKey(ctx: KeysApiContext, request: Request, known: Known): Promise<Response> {
  const body = await readJson(request);
  if (!body.ok) return body.response;
  const fields = expectObject(body.value, [], true);
  if (typeof fields === "string") return invalidArgument(fields);
  await ctx.sync.enable("key", known.key.id);
  if (ctx.pool.disablement("project", known.key.project)) {
    await ctx.sync.enable("project", known.key.project);
  }
  ctx.log.info("admin: key enabled", { key: known.key.id });
  return jsonResponse(await oneView(ctx, known));
}

async function checkOne(ctx: KeysApiContext, request: Request, known: Known): Promise<Response> {
  await request.body?.cancel().catch(() => {});
  if (known.kind === "unusable") {
    return errorResponse(
      409,
      "FAILED_PRECONDITION",
      `Key ${known.key.id} cannot be checked here: this instance cannot decrypt it ` +
        "(KEY_ENCRYPTION_SECRET is unset or differs from the one it was added with).",
      {
        reason: known.key.reason === "NO_SECRET"
          ? "KEY_ENCRYPTION_SECRET_MISSING"
          : "KEY_ENCRYPTION_SECRET_MISMATCH",
      },
    );
  }
  const result = await checkKey(known.key, {
    origin: ctx.config.upstreamOrigin,
    fetch: ctx.fetch,
    now: ctx.now,
    settings: ctx.config,
  });
  if (result.outcome !== "ok" && result.outcome !== "client_error") {
    ctx.lastErrors.note(known.key.id, result.upstreamStatus, result.outcome);
  }
  if (result.effect.type !== "none") {
    // Awaited, so the view below and every instance's next reload see it.
    if (result.effect.type === "disable") await ctx.sync.disable(result.effect.record);
    else ctx.sync.record(result.effect);
  }
  ctx.log.info("admin: key checked", {
    key: known.key.id,
    upstreamStatus: result.upstreamStatus,
    outcome: result.outcome,
    ...(result.reason ? { reason: result.reason } : {}),
  });
  return jsonResponse({
    id: known.key.id,
    upstreamStatus: result.upstreamStatus,
    outcome: result.outcome,
    ...(result.reason ? { reason: result.reason } : {}),
    key: await oneView(ctx, known),
  });
}

async function clearCooldowns(ctx: KeysApiContext, request: Request): Promise<Response> {
  const body = await readJson(request);
  if (!body.ok) return body.response;
  const fields = expectObject(body.value, ["project", "model", "keyId"], true);
  if (typeof fields === "string") return invalidArgument(fields);
  const filter: { project?: string; model?: string } = {};
  for (const name of ["project", "model", "keyId"] as const) {
    if (fields[name] !== undefined && typeof fields[name] !== "string") {
      return invalidArgument(`"${name}" must be a string.`);
    }
    if (typeof fields[name] === "string" && (fields[name] as string).length > MAX_NAME) {
      return invalidArgument(`"${name}" is longer than ${MAX_NAME} characters.`);
    }
  }
  if (typeof fields.project === "string") filter.project = fields.project;
  // "" is a real model scope (requests that name no model), so it is kept as given.
  if (typeof fields.model === "string") filter.model = fields.model;
  if (typeof fields.keyId === "string") {
    const known = find(ctx, fields.keyId);
    if (!known) return await unknownKey(request, fields.keyId);
    if (filter.project !== undefined && filter.project !== known.key.project) {
      return invalidArgument(
        `Key ${known.key.id} belongs to project "${known.key.project}", not ` +
          `"${filter.project.slice(0, 64)}": give one of "project" and "keyId".`,
      );
    }
    // Cooldowns belong to the key's project (keys of one project share its quota).
    filter.project = known.key.project;
  }
  const cleared = await ctx.sync.clearCooldowns(filter);
  ctx.ledger?.release(filter);
  ctx.log.info("admin: cooldowns cleared", { ...filter, cleared });
  return jsonResponse({ cleared });
}

async function usageOfDay(ctx: KeysApiContext, url: URL): Promise<Response> {
  const day = url.searchParams.get("day") ?? pacificDay(ctx.now());
  if (!isDay(day)) {
    return invalidArgument(
      `"day" must be a date as YYYY-MM-DD (a Pacific calendar day), not ` +
        `${JSON.stringify(day.slice(0, 20))}.`,
    );
  }
  const rows = (await ctx.usage.usage(day)).sort((a, b) =>
    a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : a.model < b.model ? -1 : 1
  );
  return jsonResponse({ day, rows });
}

function find(ctx: KeysApiContext, id: string): Known | undefined {
  const key = ctx.pool.key(id);
  if (key) return { kind: "pool", key };
  const unusable = ctx.registry.unusable.find((k) => k.id === id);
  return unusable ? { kind: "unusable", key: unusable } : undefined;
}

async function unknownKey(request: Request, id: string): Promise<Response> {
  await request.body?.cancel().catch(() => {});
  // Only an id-shaped value is echoed: a key pasted by mistake must not come back.
  const named = ID_PATTERN.test(id) ? `No key has the id ${id}` : "The id given is not a key id";
  return errorResponse(
    404,
    "NOT_FOUND",
    `${named}. Ids are the 12-character fingerprints that GET /admin/api/keys lists.`,
    { reason: "KEY_NOT_FOUND" },
  );
}

async function methodNotAllowed(request: Request, allow: string): Promise<Response> {
  await request.body?.cancel().catch(() => {});
  return errorResponse(405, "INVALID_ARGUMENT", `Use ${allow} on this path.`, {
    headers: { allow },
    reason: "METHOD_NOT_ALLOWED",
  });
}

async function oneView(ctx: KeysApiContext, known: Known): Promise<KeyView> {
  const now = ctx.now();
  const current = find(ctx, known.key.id) ?? known;
  return viewOf(ctx, current, now, await usageByKey(ctx, now, known.key.id));
}

function viewOf(
  ctx: KeysApiContext,
  known: Known,
  now: number,
  usage: Map<string, UsageRow[]>,
): KeyView {
  const view = {
    pool: ctx.pool,
    now,
    usage: usage.get(known.key.id) ?? [],
    ...(ctx.lastErrors.get(known.key.id) ? { lastError: ctx.lastErrors.get(known.key.id) } : {}),
  };
  return known.kind === "pool" ? keyView(known.key, view) : unusableKeyView(known.key, view);
}

/** Today's (Pacific) usage rows, by key. */
async function usageByKey(
  ctx: KeysApiContext,
  now: number,
  keyId?: string,
): Promise<Map<string, UsageRow[]>> {
  const rows = await ctx.usage.usage(pacificDay(now), keyId);
  const byKey = new Map<string, UsageRow[]>();
  for (const row of rows) {
    const list = byKey.get(row.keyId) ?? [];
    list.push(row);
    byKey.set(row.keyId, list);
  }
  return byKey;
}
