import assert from "node:assert/strict";
import type { AttemptEvent, RequestEvent } from "../events.ts";
import { historyRoute, RequestHistory } from "./history.ts";

const START = Date.UTC(2026, 10, 25, 18, 0, 0);
const MINUTE = 60_000;

const request = (status: number) => ({ status } as RequestEvent);
const attempt = (status: number) => ({ status } as AttemptEvent);

Deno.test("RequestHistory counts per minute and drops what is older than a day", () => {
  let now = START;
  const history = new RequestHistory(() => now);
  history.request(request(200));
  history.request(request(429));
  history.attempt(attempt(429));
  now += 2 * MINUTE + 5000;
  history.request(request(200));
  const { bucketMs, points } = history.points(1, now);
  assert.equal(bucketMs, MINUTE);
  assert.equal(points.length, 60);
  assert.equal(points.at(-1)!.t, START + 2 * MINUTE);
  assert.deepEqual(
    points.slice(-3).map((p) => [p.requests, p.rateLimited, p.errors]),
    [[2, 1, 1], [0, 0, 0], [1, 0, 0]],
  );
  // A day later the same ring slot is reused: old counts must not come back.
  now = START + 24 * 60 * MINUTE;
  history.request(request(200));
  const day = history.points(24, now);
  assert.equal(day.bucketMs, 4 * MINUTE, "24 h in at most 360 points");
  assert.equal(day.points.reduce((n, p) => n + p.requests, 0), 1);
});

Deno.test("historyRoute() validates hours and answers points with ISO times", async () => {
  const history = new RequestHistory(() => START);
  const route = historyRoute(history, () => START);
  const ask = (query: string) =>
    route(
      new Request(`http://x/admin/api/history${query}`),
      new URL(`http://x/admin/api/history${query}`),
    );
  const ok = await ask("?hours=6");
  const body = await ok!.json();
  assert.equal(body.bucketSeconds, 60);
  assert.equal(body.points.length, 360);
  assert.equal(body.points.at(-1).t, "2026-11-25T18:00:00.000Z");
  for (const bad of ["?hours=0", "?hours=25", "?hours=abc"]) {
    const response = await ask(bad);
    assert.equal(response!.status, 400, bad);
    assert.match((await response!.json()).error.message, /hours is/);
  }
  assert.equal(
    await route(new Request("http://x/admin/api/keys"), new URL("http://x/admin/api/keys")),
    undefined,
  );
});
