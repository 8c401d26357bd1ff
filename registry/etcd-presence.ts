import { FleetError, describeError } from '../lib/errors.js';
import { encodeMachine, encodeUnitState } from './codec.js';
import { isLeaseGone, ops, type EtcdConnection } from './etcd-connection.js';
import type { Tracker } from './etcd-election.js';
import type { KeptLease } from './etcd-lease.js';
import type { KeyLayout } from './keys.js';
import type { MachineRecord, UnitStateRecord } from './model.js';
import type { MachinePresence } from './registry.js';

/**
 * A machine's presence on etcd: `machines/<id>` and every `state/<unit>/<id>` it publishes live
 * on one lease, so they vanish together when the agent stops renewing it (its TTL after a crash,
 * at once on `close()`).
 */
export class EtcdPresence implements MachinePresence {
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly conn: EtcdConnection,
    private readonly keys: KeyLayout,
    readonly machine: string,
    /** The lease everything of this presence lives on. */
    readonly lease: KeptLease,
    private readonly tracker: Tracker<EtcdPresence>,
  ) {
    tracker.add(this);
    lease.onEnd((end) => {
      tracker.delete(this);
      if (end !== 'revoked') conn.logger.warn('machine presence lost', { machine, end });
      for (const listener of this.listeners.splice(0)) listener();
    });
  }

  get lost(): boolean {
    return this.lease.lost;
  }

  async update(record: MachineRecord): Promise<void> {
    await this.put(
      'updateMachine',
      this.keys.machine(this.machine),
      encodeMachine({ ...record, id: this.machine }),
    );
  }

  async publishUnitState(state: UnitStateRecord): Promise<void> {
    await this.put(
      'publishUnitState',
      this.keys.state(state.unit, this.machine),
      encodeUnitState({ ...state, machine: this.machine }),
    );
  }

  async removeUnitState(unit: string): Promise<void> {
    this.assertLive('removeUnitState');
    await this.conn.txn('removeUnitState', { success: [ops.delete(this.keys.state(unit, this.machine))] });
  }

  onLost(listener: () => void): void {
    if (this.lease.lost) queueMicrotask(listener);
    else this.listeners.push(listener);
  }

  async close(): Promise<void> {
    await this.lease.revoke('closePresence');
  }

  /** For the registry's crash(): stops renewing without revoking. */
  halt(): void {
    this.lease.halt();
  }

  /** For the registry's close(): revokes the lease if etcd answers in time. */
  async release(): Promise<void> {
    await this.close().catch((err: unknown) => {
      this.conn.logger.debug('revoking a presence at close failed', {
        machine: this.machine,
        error: describeError(err),
      });
    });
  }

  private async put(operation: string, key: string, value: string): Promise<void> {
    this.assertLive(operation);
    try {
      await this.conn.txn(operation, { success: [ops.put(key, value, this.lease.id)] });
    } catch (err) {
      if (!isLeaseGone(err)) throw err;
      this.lease.abandon('expired');
      throw this.gone(operation);
    }
  }

  private assertLive(operation: string): void {
    if (this.lease.lost) throw this.gone(operation);
  }

  private gone(operation: string): FleetError {
    return new FleetError(
      'REGISTRY_UNAVAILABLE',
      `etcd ${operation}: the lease of machine ${this.machine} is gone; announce the machine again`,
      { retryable: false },
    );
  }
}
