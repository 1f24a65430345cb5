/**
 * Requests, upstream 429s and errors per minute over the last day, for the status page's chart
 * (`GET /admin/api/history?hours=6`). Kept in memory by this instance only: it starts empty
 * after a restart, and each instance of a multi-instance deployment counts its own traffic.
 * A ring of one-minute buckets: O(1) per event, fixed memory.
 */

import { methodNotAllowed } from "./answer.ts";
import type { AdminModule } from "./dispatch.ts";
import { invalidArgument, jsonResponse } from "./json.ts";
import type { AttemptEvent, ProxyObserver, RequestEvent } from "../events.ts";

const BUCKET_MS = 60_000;
/** One day of minutes. */
const BUCKETS = 24 * 60;
/** Most points a history answer holds; longer ranges use wider buckets. */
const MAX_POINTS = 360;

export interface HistoryPoint {
  /** Start of the bucket. */
  readonly t: number;
  requests: number;
  /** Upstream attempts answered 429 (keys hitting their limits). */
  rateLimited: number;
  /** Client requests answered with a status of 400 or more. */
  errors: number;
}

export class RequestHistory implements ProxyObserver {
  readonly #now: () => number;
  /** Bucket start per slot; a slot whose start is old holds stale counts. */
  readonly #starts = new Float64Array(BUCKETS).fill(-1);
  readonly #requests = new Uint32Array(BUCKETS);
  readonly #rateLimited = new Uint32Array(BUCKETS);
  readonly #errors = new Uint32Array(BUCKETS);

  constructor(now: () => number) {
    this.#now = now;
  }

  attempt(event: AttemptEvent): void {
    if (event.status === 429) this.#rateLimited[this.#slot(this.#now())]++;
  }

  request(event: RequestEvent): void {
    const slot = this.#slot(this.#now());
    this.#requests[slot]++;
    if (event.status >= 400) this.#errors[slot]++;
  }

  /**
   * Points covering the last `hours` up to now, oldest first, in buckets of `bucketMs` (a
   * multiple of one minute chosen so at most MAX_POINTS come back).
   */
  points(hours: number, now = this.#now()): { bucketMs: number; points: HistoryPoint[] } {
    const minutes = Math.round(hours * 60);
    const width = Math.max(1, Math.ceil(minutes / MAX_POINTS));
    const bucketMs = width * BUCKET_MS;
    const end = Math.floor(now / bucketMs) * bucketMs + bucketMs;
    const start = end - Math.ceil(minutes / width) * bucketMs;
    const points: HistoryPoint[] = [];
    for (let t = start; t < end; t += bucketMs) {
      points.push({ t, requests: 0, rateLimited: 0, errors: 0 });
    }
    const oldest = Math.max(
      start,
      Math.floor(now / BUCKET_MS) * BUCKET_MS - (BUCKETS - 1) * BUCKET_MS,
    );
    for (let t = oldest; t < end; t += BUCKET_MS) {
      const slot = (t / BUCKET_MS) % BUCKETS;
      if (this.#starts[slot] !== t) continue;
      const point = points[Math.floor((t - start) / bucketMs)];
      point.requests += this.#requests[slot];
      point.rateLimited += this.#rateLimited[slot];
      point.errors += this.#errors[slot];
    }
    return { bucketMs, points };
  }

  /** The slot of the minute `now` falls in, emptied first if it holds an older minute. */
  #slot(now: number): number {
    const start = Math.floor(now / BUCKET_MS) * BUCKET_MS;
    const slot = (start / BUCKET_MS) % BUCKETS;
    if (this.#starts[slot] !== start) {
      this.#starts[slot] = start;
      this.#requests[slot] = 0;
      this.#rateLimited[slot] = 0;
      this.#errors[slot] = 0;
    }
    return slot;
  }
}

/** `GET /admin/api/history?hours=N` (above 0, at most 24; default 6). */
export function historyRoute(history: RequestHistory, now: () => number): AdminModule {
  return (request, url) => {
    if (url.pathname !== "/admin/api/history") return Promise.resolve(undefined);
    if (request.method !== "GET") return methodNotAllowed(request, "GET", url.pathname);
    const raw = url.searchParams.get("hours") ?? "6";
    const hours = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw) || hours <= 0 || hours > 24) {
      return Promise.resolve(
        invalidArgument(
          `hours is ${
            JSON.stringify(raw.slice(0, 20))
          }: give a number of hours above 0 and at most 24`,
        ),
      );
    }
    const { bucketMs, points } = history.points(hours, now());
    return Promise.resolve(jsonResponse({
      bucketSeconds: bucketMs / 1000,
      points: points.map((p) => ({
        t: new Date(p.t).toISOString(),
        requests: p.requests,
        rateLimited: p.rateLimited,
        errors: p.errors,
      })),
    }));
  };
}
