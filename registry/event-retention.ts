/**
 * How events expire without a sweeper: every event is written under a lease of its time bucket.
 * A bucket is `bucketMs` wide (a 24th of the maximum age, at least a minute); the first writer in
 * a bucket grants one lease of `maxAge + bucketMs` and every event of that bucket from that
 * writer rides it. etcd deletes the whole bucket when the lease runs out, so each event lives at
 * least `maxAge` and at most `maxAge + bucketMs`, and a writer grants one lease per bucket
 * (about 24 requests per maximum age), never one per event. Nothing keeps these leases alive.
 */

/** How long events are kept. */
export interface EventRetention {
  /** The age after which events go, in ms (they may stay up to a bucket longer). */
  readonly maxAgeMs: number;
  /** The bucket width, for tests that cannot wait minutes; default a 24th of the age, at least 1 min. */
  readonly bucketMs?: number;
}

const MIN_BUCKET_MS = 60_000;
const BUCKETS_PER_AGE = 24;

/** The width of one lease bucket. */
export function bucketWidthMs(retention: EventRetention): number {
  return retention.bucketMs ?? Math.max(MIN_BUCKET_MS, Math.ceil(retention.maxAgeMs / BUCKETS_PER_AGE));
}

/** The bucket an event written at `now` belongs to. */
export function bucketOf(now: number, retention: EventRetention): number {
  return Math.floor(now / bucketWidthMs(retention));
}

/** The TTL, in whole seconds, of a bucket's lease granted at any time within the bucket. */
export function bucketLeaseSeconds(retention: EventRetention): number {
  return Math.ceil((retention.maxAgeMs + bucketWidthMs(retention)) / 1000);
}

/**
 * A store-wide unique event id that sorts by time: the time in ms, zero-padded, then the
 * reporter and its own sequence number (`000001733640000000-<machine>-000042`).
 */
export function eventId(time: number, reporter: string, sequence: number): string {
  return `${String(Math.max(0, Math.floor(time))).padStart(18, '0')}-${reporter}-${String(sequence).padStart(6, '0')}`;
}
