/**
 * Probation for buckets whose limits are about to bind. Requests already in flight to a bucket
 * when it first refuses are refused with it. At start-up above all: every client's request is in
 * flight when the first 429s come back, and each refused one is retried at once on the buckets
 * that have not answered yet, each retry wasting another 429. So once a model has met a quota in
 * one project, its buckets in projects that have not met it take one request at a time until one
 * of them answers with a success: a bucket on a larger tier is held for one round trip at most,
 * and one on the same tier refuses one request, not several. Pure: time is passed in.
 */

/** How soon a held bucket is looked at again (its request in flight usually answers sooner). */
export const PROBATION_RECHECK_MS = 100;

export class Probation {
  /** Requests sent to each bucket whose answer has not come yet; a bucket at 0 is dropped. */
  readonly #inFlight = new Map<string, number>();
  /** Per model: the last time a project met a quota of it that it had not met before. */
  readonly #metAt = new Map<string, number>();
  /** Per bucket of a model in `#metAt`: its last success. */
  readonly #provedAt = new Map<string, number>();
  /** Buckets `holds` said must wait: their next answer frees them before the recheck. */
  readonly #held = new Set<string>();

  /** A project met a quota of `model` for the first time. */
  met(model: string, now: number): void {
    this.#metAt.set(model, Math.max(this.#metAt.get(model) ?? now, now));
  }

  /** A request leaves for (project, model). */
  sending(project: string, model: string): void {
    const bucket = bucketOf(project, model);
    this.#inFlight.set(bucket, (this.#inFlight.get(bucket) ?? 0) + 1);
  }

  /**
   * The answer of a request `sending` counted has come (`ok`: a success). True when it frees a
   * bucket that was held: whoever set it aside should look at it again now.
   */
  answered(project: string, model: string, ok: boolean, now: number): boolean {
    const bucket = bucketOf(project, model);
    const left = (this.#inFlight.get(bucket) ?? 1) - 1;
    if (left > 0) this.#inFlight.set(bucket, left);
    else this.#inFlight.delete(bucket);
    if (ok && this.#metAt.has(model)) this.#provedAt.set(bucket, now);
    return this.#held.delete(bucket);
  }

  /**
   * Whether (project, model) must wait for its request in flight: its model met a quota
   * elsewhere since the bucket's last success. The caller checks that the bucket has not met
   * every such quota itself (then its room is counted, not guessed).
   */
  holds(project: string, model: string): boolean {
    const metAt = this.#metAt.get(model);
    if (metAt === undefined) return false;
    const bucket = bucketOf(project, model);
    if ((this.#inFlight.get(bucket) ?? 0) === 0) return false;
    if ((this.#provedAt.get(bucket) ?? -Infinity) >= metAt) return false;
    this.#held.add(bucket);
    return true;
  }
}

function bucketOf(project: string, model: string): string {
  return `${project}\u0000${model}`;
}
