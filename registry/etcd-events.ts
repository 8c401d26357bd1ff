import { Range, type IKeyValue, type IRangeRequest } from 'etcd3';
import { describeError } from '../lib/errors.js';
import {
  compareEvents,
  matchesEvent,
  type ClusterEvent,
  type EventFilter,
  type StoredClusterEvent,
} from '../unit/cluster-events.js';
import { decodeEvent, encodeEvent } from './event-codec.js';
import { isLeaseGone, keyOf, MAX_TXN_OPS, ops, valueOf, type EtcdConnection } from './etcd-connection.js';
import { bucketLeaseSeconds, bucketOf, eventId, type EventRetention } from './event-retention.js';
import type { KeyLayout } from './keys.js';
import type { EventRead } from './registry.js';

/** Events per write transaction, below etcd's --max-txn-ops. */
const EVENTS_PER_TXN = Math.min(100, MAX_TXN_OPS);
/** Keys per page when reading events, so no answer nears gRPC's 4 MiB limit. */
const PAGE_KEYS = 2000;
/** Bucket leases kept per writer: the current bucket and the one before (writes near its end). */
const LEASES_KEPT = 2;

/**
 * The event store on etcd (registry.ts `EventStore`): one key per event under `events/`, written
 * many to a transaction under the lease of their time bucket (event-retention.ts), so they expire
 * on their own. Reads filter by mod revision on the server, so a replay after a revision costs
 * only what it returns and does not depend on etcd's compacted history.
 */
export class EtcdEvents {
  /** Bucket -> lease ID granted for it by this writer. */
  private readonly leases = new Map<number, string>();
  private sequence = 0;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeyLayout,
  ) {}

  async record(events: readonly ClusterEvent[], retention: EventRetention): Promise<void> {
    // One bucket per write: the events of a flush are close in time; a late one rides a lease
    // granted later, which only keeps it a little longer.
    for (let i = 0; i < events.length; i += EVENTS_PER_TXN) {
      const chunk = events.slice(i, i + EVENTS_PER_TXN);
      const bucket = bucketOf(this.conn.clock.now(), retention);
      const puts = (lease: string) =>
        chunk.map((e) =>
          ops.put(this.keys.event(eventId(e.time, e.reporter, ++this.sequence)), encodeEvent(e), lease),
        );
      const lease = await this.lease(bucket, retention);
      try {
        await this.conn.txn('recordEvents', { success: puts(lease) });
      } catch (err) {
        if (!isLeaseGone(err)) throw err;
        // The bucket's lease is gone (revoked, or etcd restored from a backup): grant it anew.
        this.leases.delete(bucket);
        const again = await this.lease(bucket, retention);
        await this.conn.txn('recordEvents', { success: puts(again) });
      }
    }
  }

  private async lease(bucket: number, retention: EventRetention): Promise<string> {
    const known = this.leases.get(bucket);
    if (known !== undefined) return known;
    const granted = await this.conn.request('grantEventLease', (options) =>
      this.conn.client.leaseClient.leaseGrant({ TTL: bucketLeaseSeconds(retention), ID: 0 }, options),
    );
    this.leases.set(bucket, granted.ID);
    for (const old of [...this.leases.keys()].sort((a, b) => b - a).slice(LEASES_KEPT))
      this.leases.delete(old);
    return granted.ID;
  }

  async list(filter: EventFilter): Promise<EventRead> {
    const prefix = this.keys.events;
    const end = Range.prefix(prefix).end;
    const extra: Partial<IRangeRequest> =
      filter.afterRevision === undefined ? {} : { min_mod_revision: String(filter.afterRevision + 1) };
    const kvs: IKeyValue[] = [];
    let start: Buffer = Buffer.from(prefix);
    let revision: string | undefined;
    for (;;) {
      const page = await this.conn.request('listEvents', (options) =>
        this.conn.client.kv.range(
          {
            key: start,
            range_end: end,
            limit: PAGE_KEYS,
            ...(revision === undefined ? {} : { revision }),
            ...extra,
          },
          options,
        ),
      );
      revision ??= page.header.revision;
      kvs.push(...page.kvs);
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) break;
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
    const events: StoredClusterEvent[] = [];
    for (const kv of kvs) {
      const key = keyOf(kv);
      try {
        const e = decodeEvent(key, valueOf(kv));
        const stored = { ...e, id: this.keys.tail(key, prefix), revision: Number(kv.mod_revision) };
        if (matchesEvent(stored, filter)) events.push(stored);
      } catch (err) {
        this.conn.logger.warn('stored event skipped', { key, error: describeError(err) });
      }
    }
    return { events: events.sort(compareEvents), revision: Number(revision) };
  }

  async trim(maxCount: number): Promise<number> {
    const prefix = this.keys.events;
    const end = Range.prefix(prefix).end;
    const counted = await this.conn.request('trimEvents', (options) =>
      this.conn.client.kv.range({ key: Buffer.from(prefix), range_end: end, count_only: true }, options),
    );
    const excess = Number(counted.count) - maxCount;
    if (excess <= 0) return 0;
    // Ids sort by time, so the first keys are the oldest.
    const oldest = await this.conn.request('trimEvents', (options) =>
      this.conn.client.kv.range(
        {
          key: Buffer.from(prefix),
          range_end: end,
          keys_only: true,
          limit: excess,
          revision: counted.header.revision,
        },
        options,
      ),
    );
    const last = oldest.kvs.at(-1);
    if (last === undefined) return 0;
    const deleted = await this.conn.request('trimEvents', (options) =>
      this.conn.client.kv.deleteRange(
        { key: Buffer.from(prefix), range_end: Buffer.concat([last.key, Buffer.from([0])]) },
        options,
      ),
    );
    return Number(deleted.deleted);
  }
}
