import type { ICompare, IKeyValue } from 'etcd3';
import { Backoff } from '../lib/backoff.js';
import { FleetError, describeError, isFleetError } from '../lib/errors.js';
import { decodeLeader, encodeLeader } from './codec.js';
import { compare, ops, rangeAt, single, valueOf, type EtcdConnection } from './etcd-connection.js';
import { KeptLease } from './etcd-lease.js';
import { EtcdWatch } from './etcd-watch.js';
import type { Leadership } from './registry.js';

/** The revision after `revision` (revisions are 64-bit decimal strings). */
function nextRevision(revision: string): string {
  return (BigInt(revision) + 1n).toString();
}

/** Objects the registry closes with itself. */
export interface Tracker<T> {
  add(item: T): void;
  delete(item: T): void;
}

/**
 * Proof of engine leadership on etcd v3: the leader key as this campaign created it, bound to
 * this campaign's lease. `guard()` is the fence: a transaction carrying it succeeds only while the
 * key still exists with this creation revision and value, so a deposed leader's write is rejected
 * by etcd itself, however late it arrives.
 *
 * Leadership is lost when the lease is (expired, or not renewed within its TTL), when the key is
 * deleted or recreated by someone else (watched), on `resign()`, and when the registry closes.
 */
export class EtcdLeadership implements Leadership {
  private isLost = false;
  private readonly listeners: (() => void)[] = [];
  private monitor: EtcdWatch | undefined;
  private resigning: Promise<void> | undefined;

  constructor(
    private readonly conn: EtcdConnection,
    /** The leader key (`engine/leader` under the registry's prefix). */
    readonly key: string,
    readonly candidate: string,
    private readonly lease: KeptLease,
    /** The revision at which this campaign created the leader key. */
    readonly createRevision: string,
    private readonly value: string,
    private readonly tracker: Tracker<EtcdLeadership>,
  ) {
    tracker.add(this);
    lease.onEnd((end) => {
      if (end !== 'revoked') this.markLost(`lease ${end}`);
    });
  }

  get lost(): boolean {
    return this.isLost;
  }

  onLost(listener: () => void): void {
    if (this.isLost) queueMicrotask(listener);
    else this.listeners.push(listener);
  }

  /** The comparisons that hold only while this leadership does, for every fenced transaction. */
  guard(): ICompare[] {
    return [compare.created(this.key, this.createRevision), compare.value(this.key, this.value)];
  }

  /** True when `kv`, the leader key as just read, is still this leadership's. */
  holds(kv: IKeyValue | undefined): boolean {
    return kv !== undefined && kv.create_revision === this.createRevision && valueOf(kv) === this.value;
  }

  /** Starts watching the leader key, so that losing it is noticed without a write. */
  async startMonitor(): Promise<void> {
    try {
      this.monitor = await EtcdWatch.start(
        this.conn,
        'campaign',
        [{ key: this.key, startRevision: nextRevision(this.createRevision) }],
        () => {
          void this.verify();
        },
      );
    } catch (err) {
      // Not fatal: the lease still tells loss, and every write is fenced anyway.
      this.conn.logger.warn('cannot watch the leader key', { error: describeError(err) });
    }
    if (this.isLost) await this.monitor?.close();
  }

  /** Marks leadership lost (once) and gives the lease up in the background. */
  markLost(reason: string): void {
    if (!this.setLost()) return;
    this.conn.logger.warn('engine leadership lost', { candidate: this.candidate, reason });
    this.lease.abandon();
  }

  /**
   * Deletes the leader key (if still ours) and revokes the lease, so a waiting campaigner takes
   * over at once. Leadership counts as lost from the start; when etcd cannot be reached this fails
   * with REGISTRY_UNAVAILABLE and the lease lapses within its TTL. Idempotent.
   */
  resign(): Promise<void> {
    if (this.resigning !== undefined) return this.resigning;
    if (this.isLost) return Promise.resolve();
    this.resigning = (async () => {
      this.setLost();
      try {
        await this.conn.txn('resign', { compare: this.guard(), success: [ops.delete(this.key)] });
      } catch (err) {
        this.lease.abandon();
        throw err;
      }
      await this.lease.revoke('resign').catch((err: unknown) => {
        // The key is gone already, which is what hands leadership over; the lease lapses.
        this.conn.logger.debug('revoking the leader lease failed', { error: describeError(err) });
      });
    })();
    return this.resigning;
  }

  /** For the registry's crash(): stops renewing without stepping down. */
  halt(): void {
    this.lease.halt();
  }

  /** For the registry's close(): steps down, revoking the lease if etcd answers in time. */
  async release(): Promise<void> {
    await this.resign().catch((err: unknown) => {
      this.conn.logger.debug('resigning at close failed', { error: describeError(err) });
    });
  }

  private setLost(): boolean {
    if (this.isLost) return false;
    this.isLost = true;
    this.tracker.delete(this);
    void this.monitor?.close();
    for (const listener of this.listeners.splice(0)) queueMicrotask(listener);
    return true;
  }

  private async verify(): Promise<void> {
    if (this.isLost) return;
    try {
      const [kvs] = await this.conn.read('leaderCheck', [ops.get(this.key)]);
      if (!this.holds(single(kvs ?? []))) this.markLost('leader key deleted or taken over');
    } catch (err) {
      // Unreachable etcd is the lease watchdog's call; writes stay fenced meanwhile.
      this.conn.logger.debug('checking the leader key failed', { error: describeError(err) });
    }
  }
}

/**
 * Leader election among engines on etcd v3 leases (docs/fleet-compat.md §4.2, with a v3 lease instead
 * of a v2 TTL): the leader is whoever created the leader key, which lives on its lease.
 */
export class EtcdElection {
  constructor(
    private readonly conn: EtcdConnection,
    private readonly key: string,
    private readonly tracker: Tracker<EtcdLeadership>,
  ) {}

  /**
   * Grants a lease, then creates the leader key on it if nobody holds it; otherwise gives the
   * lease up and watches the key until it changes (resign, or lease expiry) and tries again: only
   * the leader keeps a lease alive. Unreachable etcd is retried with backoff. Rejects with ABORTED
   * when `signal` aborts, and with REGISTRY_UNAVAILABLE when the registry closes.
   */
  async campaign(candidate: string, ttlSeconds: number, signal: AbortSignal): Promise<EtcdLeadership> {
    this.conn.assertOpen('campaign');
    const stop = AbortSignal.any([signal, this.conn.signal]);
    const aborted = (): FleetError =>
      this.conn.isClosing
        ? this.conn.closedError('campaign')
        : new FleetError('ABORTED', `campaign of ${candidate} for engine leadership aborted`);
    if (stop.aborted) throw aborted();
    const abort = new Promise<never>((_, reject) => {
      stop.addEventListener(
        'abort',
        () => {
          reject(aborted());
        },
        { once: true },
      );
    });
    // The loop notices the abort itself and resigns a leadership won too late.
    return Promise.race([this.run(candidate, ttlSeconds, stop, aborted), abort]);
  }

  /** The current leader's candidate ID, or undefined. */
  async currentLeader(): Promise<string | undefined> {
    this.conn.assertOpen('currentLeader');
    const [kvs] = await this.conn.read('currentLeader', [ops.get(this.key)]);
    const kv = single(kvs ?? []);
    return kv === undefined ? undefined : decodeLeader(this.key, valueOf(kv));
  }

  private async run(
    candidate: string,
    ttlSeconds: number,
    stop: AbortSignal,
    aborted: () => FleetError,
  ): Promise<EtcdLeadership> {
    // A function, not the property: TypeScript would keep `stop.aborted` narrowed across awaits.
    const stopped = (): boolean => stop.aborted;
    const value = encodeLeader(candidate);
    const backoff = new Backoff({ initialMs: 100, maxMs: 2_000 });
    let lease: KeptLease | undefined;
    try {
      for (;;) {
        if (stopped()) throw aborted();
        try {
          if (lease === undefined || lease.lost) {
            lease = await KeptLease.grant(
              this.conn,
              ttlSeconds,
              `engine leadership of ${candidate}`,
              'campaign',
            );
          }
          const res = await this.conn.txn('campaign', {
            compare: [compare.absent(this.key)],
            success: [ops.put(this.key, value, lease.id)],
            failure: [ops.get(this.key)],
          });
          const holder = res.succeeded ? undefined : single(rangeAt(res, 0));
          // A holder on our own lease is an earlier attempt of ours whose answer was lost.
          if (res.succeeded || holder?.lease === lease.id) {
            const leadership = new EtcdLeadership(
              this.conn,
              this.key,
              candidate,
              lease,
              holder?.create_revision ?? res.header.revision,
              holder === undefined ? value : valueOf(holder),
              this.tracker,
            );
            lease = undefined;
            if (stopped()) {
              await leadership.release();
              throw aborted();
            }
            await leadership.startMonitor();
            this.conn.logger.info('engine leadership acquired', { candidate });
            return leadership;
          }
          backoff.reset();
          // A waiting candidate holds no lease: it would cost a keepalive every TTL/2.5 for
          // nothing. It grants one again when the key changes, one round trip before its put.
          lease.abandon();
          lease = undefined;
          if (holder !== undefined) await this.waitForVacancy(res.header.revision, stop);
        } catch (err) {
          if (stopped()) throw aborted();
          if (!isFleetError(err, 'REGISTRY_UNAVAILABLE') || !err.retryable) throw err;
          this.conn.logger.warn('campaign attempt failed; retrying', {
            candidate,
            error: describeError(err),
          });
          await this.conn.clock.sleep(backoff.next(), stop);
        }
      }
    } finally {
      // A lease granted for a campaign that did not win.
      lease?.abandon();
    }
  }

  /**
   * Waits until the leader key changes after `revision`, or `stop` aborts. The watch alone
   * tells: EtcdWatch replays what a broken stream missed and calls again after reconnecting or
   * recreating a cancelled watch, so no periodic re-check is needed and a waiting candidate sends
   * etcd nothing.
   */
  private async waitForVacancy(revision: string, stop: AbortSignal): Promise<void> {
    let wake = (): void => undefined;
    const changed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const watch = await EtcdWatch.start(
      this.conn,
      'campaign',
      [{ key: this.key, startRevision: nextRevision(revision) }],
      () => {
        wake();
      },
    );
    const stopped = new Promise<void>((resolve) => {
      if (stop.aborted) resolve();
      else
        stop.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
    });
    try {
      await Promise.race([changed, stopped]);
    } finally {
      await watch.close();
    }
  }
}
