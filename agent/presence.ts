import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { describeError, isFleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { MachineRecord } from '../registry/model.js';
import type { MachinePresence, MachineStore } from '../registry/registry.js';

export interface AgentPresenceDeps {
  readonly registry: MachineStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The machine record announced (and announced again after a loss). */
  readonly record: () => MachineRecord;
  /** Lease TTL of the presence (agent_ttl). */
  readonly ttlSeconds: number;
  /**
   * Called after the machine was announced again following a lost presence: the new presence
   * has no unit states, so they must all be published again, and the schedule re-read.
   */
  readonly onReannounced: (presence: MachinePresence) => void;
}

/**
 * The machine's presence in the cluster (fleet's agent heartbeat): announces the machine, takes
 * over a presence left by a previous fleetd on the same boot and address, and announces again
 * when the lease was lost (etcd unreachable past agent_ttl).
 */
export class AgentPresence {
  private readonly log: Logger;
  private current: MachinePresence | undefined;
  private closed = false;

  constructor(private readonly deps: AgentPresenceDeps) {
    this.log = deps.logger;
  }

  /** The presence in use; undefined before `announce`. */
  get presence(): MachinePresence | undefined {
    return this.current;
  }

  /** True while the presence is announced and alive. */
  get alive(): boolean {
    return this.current !== undefined && !this.current.lost;
  }

  /**
   * Announces the machine. Fails with MACHINE_ID_IN_USE when another live fleetd holds this
   * machine ID; retries while the registry is unreachable.
   */
  async announce(signal?: AbortSignal): Promise<void> {
    const { registry, clock, ttlSeconds } = this.deps;
    const backoff = new Backoff({ initialMs: 200, maxMs: 10_000 });
    for (;;) {
      try {
        this.current = await registry.announceMachine(this.deps.record(), ttlSeconds);
        break;
      } catch (err) {
        if (!isFleetError(err) || !err.retryable || signal?.aborted === true) throw err;
        const delay = backoff.next();
        this.log.warn('cannot announce machine; retrying', { error: describeError(err), retryInMs: delay });
        await clock.sleep(delay, signal);
      }
    }
    this.watch(this.current);
  }

  /** Stops announcing again (the presence is left to its lease). Idempotent. */
  close(): void {
    this.closed = true;
  }

  /**
   * Revokes the presence at once: the machine leaves the cluster (and its unit states with it)
   * and the engine moves its units. Implies `close`.
   */
  async release(): Promise<void> {
    this.closed = true;
    await this.current?.close().catch(() => undefined);
  }

  private watch(presence: MachinePresence): void {
    presence.onLost(() => {
      if (!this.closed) this.onLost();
    });
  }

  private onLost(): void {
    // The lease expired (etcd unreachable for longer than agent_ttl): the engine has moved our
    // units away. Units keep running until a reconcile against a reachable registry says
    // otherwise; announce again so this machine rejoins.
    this.log.warn('machine presence lost; announcing again');
    void this.reannounce();
  }

  private async reannounce(): Promise<void> {
    // Retry often: after an etcd outage the old presence lease lives one more TTL (etcd renews
    // leases when it comes back), and taking it over within that time keeps the machine listed,
    // so the engine moves nothing.
    const backoff = new Backoff({
      initialMs: 200,
      maxMs: Math.max(250, (this.deps.ttlSeconds * 1000) / 4),
    });
    while (!this.closed) {
      try {
        const presence = await this.deps.registry.announceMachine(this.deps.record(), this.deps.ttlSeconds);
        this.current = presence;
        this.watch(presence);
        this.log.info('machine announced again');
        this.deps.onReannounced(presence);
        return;
      } catch (err) {
        const delay = backoff.next();
        this.log.warn('cannot announce machine; retrying', { error: describeError(err), retryInMs: delay });
        await this.deps.clock.sleep(delay).catch(() => undefined);
      }
    }
  }
}
