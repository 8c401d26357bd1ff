/* eslint-disable max-lines -- one lease lifecycle (grant, keepalive streams per member, revoke) whose states must be read together. */
import { EtcdLeaseInvalidError, castGrpcError, type ILeaseKeepAliveResponse, type Lease } from 'etcd3';
import { Backoff } from '../lib/backoff.js';
import { describeError, isFleetError } from '../lib/errors.js';
import type { EtcdConnection, KeepaliveStream } from './etcd-connection.js';

/** Why a lease ended, for listeners and logs. */
export type LeaseEnd = 'revoked' | 'expired' | 'unreachable' | 'abandoned';

/**
 * Keepalives sent per TTL while etcd answers. etcd3 (like the Go client) sends one every TTL/3;
 * TTL/2.5 leaves 0.6 TTL after the first attempt for its retries (KeptLease), which go out at
 * once when an answer is late. That is 15 a minute for a 10 s lease: a leading fleetd with the
 * default configuration (presence and leader lease, both 10 s) sends 30 a minute instead of 36,
 * and every other fleetd 15, since a waiting candidate holds no lease (etcd-election.ts).
 *
 * Putting the leader key on the presence lease instead would halve the leader's keepalives, but
 * tie two lifecycles together that differ on purpose: a presence is left to etcd when etcd is
 * unreachable and taken over by a restarted fleetd, while leadership is revoked at once when lost
 * or resigned. Keeping them apart keeps failover and fencing exactly as they are.
 */
export const KEEPALIVES_PER_TTL = 2.5;
/** The first pause after a keepalive that failed at once (a member refused it, say). */
const RETRY_MIN_MS = 100;
/** The longest pause between failed keepalives (at most one interval). */
const RETRY_MAX_MS = 500;

/**
 * One LeaseKeepAlive stream of one lease, on one etcd member: a request, then its answer, one at
 * a time. A stream that failed is dropped; one whose answer did not come in time is retired (it
 * sends nothing more, but a late answer still counts) and the next keepalive opens another, on
 * another member. Every keepalive is one message etcd receives: a persistent stream costs no
 * stream start per keepalive, as `keepaliveOnce` would.
 */
class KeepaliveChannel {
  private waiter:
    { resolve: (res: ILeaseKeepAliveResponse) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly stream: KeepaliveStream,
    /** The member the stream went to. */
    readonly member: string,
  ) {
    stream.on('data', (res) => {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.resolve(res);
    });
    stream.on('error', (err) => {
      this.fail(castGrpcError(err));
    });
    stream.on('end', () => {
      this.fail(new Error('etcd ended the lease keepalive stream'));
    });
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** Sends one keepalive for lease `id`; resolves with etcd's answer. */
  send(id: string): Promise<ILeaseKeepAliveResponse> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.stream.write({ ID: id });
    });
  }

  /**
   * Ends the stream: gracefully after the lease ended, cancelled when it failed or was retired
   * (a cancellation does not count against the member: etcd-connection.ts). Idempotent.
   */
  close(how: 'end' | 'cancel'): void {
    if (this.failure === undefined) this.fail(new Error('lease keepalive stream closed'));
    try {
      if (how === 'end') this.stream.end();
      else this.stream.cancel();
    } catch {
      // Already ended or failed: nothing left to close.
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(err);
  }
}

/** How one keepalive attempt went. */
type Attempt = 'renewed' | 'unanswered' | 'failed';

/**
 * An etcd lease kept alive until revoked or lost.
 *
 * The keepalives are ours, not etcd3's (the lease is granted with `autoKeepAlive: false`), so
 * that their cadence is a choice: KEEPALIVES_PER_TTL a TTL, on one persistent LeaseKeepAlive
 * stream. Each attempt waits min(request timeout, half an interval) for its answer. One that goes
 * unanswered is retried at once, on a new stream to another member when there is one (an etcd
 * member that is frozen, cut off, or waiting for a new etcd leader), while its answer, should it
 * still come, renews the lease too. One that fails at once (a member that refuses connections)
 * is retried after 100 ms, doubling to 500 ms, on a member that answers if there is one. So a
 * short TTL survives an etcd leader election: with a 3 s TTL, attempts go out every 0.6 s or
 * faster once the first at 1.2 s goes unanswered. When etcd answers that the lease is gone
 * (TTL 0, or "lease not found"), the lease is lost at once ('expired').
 *
 * A holder must not go on believing in a lease etcd may already have expired: etcd holds it at
 * least until the latest answered keepalive was *sent* plus the TTL it answered with (capped at
 * the TTL asked for), so a watchdog declares it lost as soon as that moment passes.
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
  /** Until when etcd holds the lease at least, as far as its answers tell (clock ms). */
  private aliveUntil: number;
  private readonly stopLoops = new AbortController();
  private channel: KeepaliveChannel | undefined;
  /** The member the last failed or unanswered keepalive went to: the next avoids it. */
  private avoid: string | undefined;
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
    /** When the grant was sent: etcd's TTL runs from no earlier than that. */
    grantedAt: number,
  ) {
    this.aliveUntil = grantedAt + ttlSeconds * 1000;
    void this.keepAlive(grantedAt);
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
    const grantedAt = conn.clock.now();
    const lease = conn.client.lease(ttl, { ...conn.callOptions(), autoKeepAlive: false });
    try {
      const id = await conn.request(operation, () => lease.grant());
      return new KeptLease(conn, lease, id, ttl, purpose, options.revokeWhenUnreachable ?? true, grantedAt);
    } catch (err) {
      // A grant answered after our deadline would otherwise live on for its TTL.
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
    this.stopLoops.abort();
    // Stops keepalives; a later revoke() still reaches etcd with the lease ID.
    this.channel?.close('end');
    this.channel = undefined;
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

  /**
   * Sends a keepalive every TTL / KEEPALIVES_PER_TTL, timed from the start of the previous
   * successful one (the first from the grant), until the lease ends or the client closes; retries
   * as the class comment says.
   */
  private async keepAlive(grantedAt: number): Promise<void> {
    const clock = this.conn.clock;
    const intervalMs = (this.ttlSeconds * 1000) / KEEPALIVES_PER_TTL;
    const attemptMs = Math.min(this.conn.timeoutMs, intervalMs / 2);
    const retry = new Backoff({ initialMs: RETRY_MIN_MS, maxMs: Math.min(RETRY_MAX_MS, intervalMs) });
    const signal = this.stopLoops.signal;
    let next = grantedAt + intervalMs;
    while (!signal.aborted) {
      try {
        await clock.sleep(Math.max(0, next - clock.now()), signal);
      } catch {
        // Stopped: the lease ended.
        return;
      }
      // A closed client sends nothing more; the watchdog tells the holder, as for an outage.
      if (this.conn.closed) return;
      const started = clock.now();
      const attempt = await this.keepAliveOnce(attemptMs);
      if (attempt === 'renewed') {
        retry.reset();
        next = started + intervalMs;
      } else if (attempt === 'unanswered') {
        next = clock.now();
      } else {
        next = clock.now() + retry.next();
      }
    }
  }

  /** One keepalive, waiting `timeoutMs` for its answer. */
  private async keepAliveOnce(timeoutMs: number): Promise<Attempt> {
    const clock = this.conn.clock;
    const sentAt = clock.now();
    const deadline = new AbortController();
    const stop = AbortSignal.any([deadline.signal, this.stopLoops.signal]);
    let channel: KeepaliveChannel | undefined;
    try {
      const exchange = (async () => {
        // A stream that broke since the last keepalive (a reconnect, say) costs no attempt.
        if (this.channel?.broken === true) this.channel = undefined;
        if (this.channel === undefined) {
          const opened = await this.conn.openKeepaliveStream(this.avoid);
          // Opened after this attempt timed out or the lease ended: send nothing on it.
          if (stop.aborted) {
            new KeepaliveChannel(opened.stream, opened.member).close('end');
            return undefined;
          }
          this.channel = new KeepaliveChannel(opened.stream, opened.member);
        }
        channel = this.channel;
        this.conn.countKeepalive();
        return channel.send(this.id);
      })();
      const res = await Promise.race([
        exchange,
        clock.sleep(timeoutMs, stop).then(() => 'unanswered' as const),
      ]);
      if (res === 'unanswered') {
        if (channel !== undefined) this.retire(channel, exchange, sentAt);
        return 'unanswered';
      }
      if (res === undefined || this.ended !== undefined) return 'failed';
      if (!this.answered(sentAt, res)) return 'failed';
      this.avoid = undefined;
      return 'renewed';
    } catch (err) {
      if (this.ended !== undefined) return 'failed';
      if (err instanceof EtcdLeaseInvalidError) {
        this.expired(err);
        return 'failed';
      }
      this.conn.logger.debug('etcd lease keepalive failed', {
        purpose: this.purpose,
        lease: this.id,
        member: channel?.member,
        error: describeError(err),
      });
      this.avoid = channel?.member ?? this.avoid;
      this.channel?.close('cancel');
      this.channel = undefined;
      return 'failed';
    } finally {
      deadline.abort();
      if (this.channel?.broken === true) this.channel = undefined;
    }
  }

  /**
   * Retires a channel whose answer is late: the next keepalive goes elsewhere, and the answer, if
   * it comes within a TTL, renews the lease as of when it was sent.
   */
  private retire(
    channel: KeepaliveChannel,
    answer: Promise<ILeaseKeepAliveResponse | undefined>,
    sentAt: number,
  ): void {
    if (this.channel === channel) this.channel = undefined;
    this.avoid = channel.member;
    this.conn.health.unanswered(channel.member);
    this.conn.logger.debug('etcd lease keepalive unanswered; trying again', {
      purpose: this.purpose,
      lease: this.id,
      member: channel.member,
    });
    // Closed once answered, after a TTL without an answer, or when the lease ends.
    const settled = new AbortController();
    answer
      .then((res) => {
        if (res !== undefined && this.ended === undefined) this.answered(sentAt, res);
      })
      .catch(() => undefined)
      .finally(() => {
        settled.abort();
      });
    this.conn.clock
      .sleep(this.ttlSeconds * 1000, AbortSignal.any([settled.signal, this.stopLoops.signal]))
      .then(
        () => {
          channel.close('cancel');
        },
        () => {
          channel.close(settled.signal.aborted ? 'cancel' : 'end');
        },
      );
  }

  /** Takes etcd's answer to a keepalive sent at `sentAt`; false when it says the lease is gone. */
  private answered(sentAt: number, res: ILeaseKeepAliveResponse): boolean {
    if (res.TTL === '0') {
      this.expired(new EtcdLeaseInvalidError(this.id));
      return false;
    }
    const answeredMs = Number(res.TTL) * 1000;
    const ttlMs = this.ttlSeconds * 1000;
    const renewedMs = Number.isFinite(answeredMs) ? Math.min(ttlMs, answeredMs) : ttlMs;
    this.aliveUntil = Math.max(this.aliveUntil, sentAt + renewedMs);
    return true;
  }

  /** etcd said the lease is gone. */
  private expired(err: unknown): void {
    this.conn.logger.warn('etcd lease lost', {
      purpose: this.purpose,
      lease: this.id,
      error: describeError(err),
    });
    this.end('expired');
  }

  /** Declares the lease lost as soon as etcd may have expired it (see the class comment). */
  private async watchdog(): Promise<void> {
    const clock = this.conn.clock;
    const signal = this.stopLoops.signal;
    while (!signal.aborted) {
      const left = this.aliveUntil - clock.now();
      if (left < 0) {
        this.conn.logger.warn('etcd lease not renewed within its TTL; giving it up', {
          purpose: this.purpose,
          lease: this.id,
          ttlSeconds: this.ttlSeconds,
        });
        if (this.revokeWhenUnreachable) this.abandon('unreachable');
        else this.halt('unreachable');
        return;
      }
      try {
        await clock.sleep(left + 1, signal);
      } catch {
        // Stopped: the lease ended.
        return;
      }
    }
  }
}
