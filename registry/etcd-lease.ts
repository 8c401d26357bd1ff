import type { Lease } from 'etcd3';
import { Backoff } from '../lib/backoff.js';
import { describeError, isFleetError } from '../lib/errors.js';
import type { EtcdConnection } from './etcd-connection.js';

/** Why a lease ended, for listeners and logs. */
export type LeaseEnd = 'revoked' | 'expired' | 'unreachable' | 'abandoned';

/**
 * An etcd lease kept alive until revoked or lost. etcd3 sends keepalives every ttl/3 on one
 * stream and reports loss when etcd says the lease is gone, but only two TTLs after the last
 * answer when etcd is unreachable. A holder must not go on believing in a lease etcd may already
 * have expired, so a watchdog declares it lost when no keepalive was answered for one TTL.
 *
 * A lease given up while etcd might still hold it (watchdog, leader key taken) is revoked in the
 * background, retrying until etcd answers or the registry closes, so its keys do not linger;
 * unless it was granted with `revokeWhenUnreachable: false` (a machine's presence): then a lease
 * given up because etcd was unreachable is left to etcd. After an outage of etcd itself, etcd
 * renews every lease when it comes back, so the machine stays listed while its fleetd takes the
 * presence over, and the engine moves nothing; after a partition of this machine alone, the lease
 * has expired by then anyway.
 */
export class KeptLease {
  private ended: LeaseEnd | undefined;
  private readonly listeners: ((end: LeaseEnd) => void)[] = [];
  private lastAlive: number;
  private readonly stopWatchdog = new AbortController();
  private revoking: Promise<void> | undefined;

  private constructor(
    private readonly conn: EtcdConnection,
    private readonly lease: Lease,
    /** etcd's lease ID (a decimal string). */
    readonly id: string,
    readonly ttlSeconds: number,
    /** What the lease is for, for logs: `presence of machine m1`. */
    readonly purpose: string,
    private readonly revokeWhenUnreachable: boolean,
  ) {
    this.lastAlive = conn.clock.now();
    lease.on('keepaliveFired', () => {
      conn.countKeepalive();
    });
    lease.on('keepaliveSucceeded', () => {
      this.lastAlive = conn.clock.now();
    });
    lease.on('lost', (err) => {
      conn.logger.warn('etcd lease lost', { purpose, lease: id, error: describeError(err) });
      this.end('expired');
    });
    void this.watchdog();
  }

  /**
   * Grants a lease of `ttlSeconds` (rounded up to whole seconds, at least 1) and starts keeping it
   * alive. Fails with REGISTRY_UNAVAILABLE when etcd does not grant it in time.
   */
  static async grant(
    conn: EtcdConnection,
    ttlSeconds: number,
    purpose: string,
    operation: string,
    options: { readonly revokeWhenUnreachable?: boolean } = {},
  ): Promise<KeptLease> {
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    if (conn.closed) throw conn.closedError(operation);
    const lease = conn.client.lease(ttl, conn.callOptions());
    try {
      const id = await conn.request(operation, () => lease.grant());
      return new KeptLease(conn, lease, id, ttl, purpose, options.revokeWhenUnreachable ?? true);
    } catch (err) {
      // A grant answered after our deadline would otherwise be kept alive forever.
      lease.revoke().catch((revokeErr: unknown) => {
        conn.logger.debug('revoking a late lease failed', { purpose, error: describeError(revokeErr) });
      });
      throw err;
    }
  }

  /** True once the lease ended: revoked, expired, or given up. */
  get lost(): boolean {
    return this.ended !== undefined;
  }

  /** Calls `listener` once when the lease ends (at once, asynchronously, if it already has). */
  onEnd(listener: (end: LeaseEnd) => void): void {
    const ended = this.ended;
    if (ended !== undefined) {
      queueMicrotask(() => {
        listener(ended);
      });
    } else this.listeners.push(listener);
  }

  /**
   * Stops keepalives and revokes the lease, so its keys vanish at once. When etcd cannot be
   * reached, fails with REGISTRY_UNAVAILABLE and keeps revoking in the background (the lease
   * expires within its TTL anyway). Idempotent.
   */
  async revoke(operation: string): Promise<void> {
    if (this.ended === undefined) this.end('revoked');
    if (this.revoking !== undefined) return this.revoking;
    // etcd itself said the lease is gone: nothing left to revoke.
    if (this.ended === 'expired') return;
    try {
      await this.conn.request(operation, (options) => this.lease.revoke(options));
      this.revoking = Promise.resolve();
    } catch (err) {
      this.revokeInBackground();
      throw err;
    }
  }

  /**
   * Gives the lease up without waiting: it counts as lost now and is revoked in the background.
   * For losses noticed on our side (no keepalive answered, the leader key taken).
   */
  abandon(end: LeaseEnd = 'abandoned'): void {
    if (this.ended !== undefined) return;
    this.end(end);
    this.revokeInBackground();
  }

  /**
   * Stops keepalives without revoking, as a killed process would: the lease runs out on etcd's
   * side after its TTL. Locally it counts as abandoned. For fault tests (EtcdRegistry.crash).
   */
  halt(end: LeaseEnd = 'abandoned'): void {
    if (this.ended !== undefined) return;
    this.revoking = Promise.resolve();
    this.end(end);
  }

  /** Revokes now if the lease was given up while etcd may still hold it; for a retried announce. */
  async revokeNow(operation: string): Promise<void> {
    await this.conn.request(operation, (options) => this.lease.revoke(options));
    this.revoking = Promise.resolve();
  }

  private end(end: LeaseEnd): void {
    if (this.ended !== undefined) return;
    this.ended = end;
    this.stopWatchdog.abort();
    // Stops the keepalive stream; a later revoke() still reaches etcd with the lease ID.
    this.lease.release();
    for (const listener of this.listeners.splice(0)) {
      queueMicrotask(() => {
        listener(end);
      });
    }
  }

  private revokeInBackground(): void {
    if (this.revoking !== undefined) return;
    this.revoking = (async () => {
      const backoff = new Backoff({ initialMs: 200, maxMs: 2_000 });
      while (!this.conn.closed) {
        try {
          await this.conn.request('revokeLease', (options) => this.lease.revoke(options));
          return;
        } catch (err) {
          if (!isFleetError(err, 'REGISTRY_UNAVAILABLE') || !err.retryable) return;
        }
        try {
          await this.conn.clock.sleep(backoff.next(), this.conn.signal);
        } catch {
          // The registry is closing; its close() revokes what it still can.
          return;
        }
      }
    })();
  }

  private async watchdog(): Promise<void> {
    const ttlMs = this.ttlSeconds * 1000;
    const signal = this.stopWatchdog.signal;
    while (!signal.aborted) {
      try {
        await this.conn.clock.sleep(Math.max(100, ttlMs / 6), signal);
      } catch {
        // Stopped: the lease ended.
        return;
      }
      if (this.conn.clock.now() - this.lastAlive > ttlMs) {
        this.conn.logger.warn('etcd lease not renewed within its TTL; giving it up', {
          purpose: this.purpose,
          lease: this.id,
          ttlSeconds: this.ttlSeconds,
        });
        if (this.revokeWhenUnreachable) this.abandon('unreachable');
        else this.halt('unreachable');
        return;
      }
    }
  }
}
