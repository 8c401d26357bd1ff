/* eslint-disable max-lines -- the facade over units, schedule and machines; the machine half is still to move into its own file. */
import type { IKeyValue } from 'etcd3';
import { FleetError, describeError } from '../lib/errors.js';
import type { ClusterEvent, EventFilter } from '../unit/cluster-events.js';
import type { DesiredState } from '../unit/states.js';
import {
  decodeMachine,
  decodeMetadataEntry,
  decodePlacement,
  decodeReason,
  decodeUnitState,
  encodeMachine,
  encodeMetadataValue,
  encodeReason,
  mergeMetadata,
  sameIncarnationHost,
} from './codec.js';
import {
  decodeDrainMark,
  decodeDrainProgress,
  encodeDrainMark,
  encodeDrainProgress,
} from './codec-drains.js';
import {
  EtcdConnection,
  MAX_TXN_OPS,
  compare,
  keyOf,
  ops,
  rangeAt,
  single,
  valueOf,
  type EtcdRegistryOptions,
  type RegistryStats,
} from './etcd-connection.js';
import { EtcdElection, EtcdLeadership } from './etcd-election.js';
import { EtcdEvents } from './etcd-events.js';
import { KeptLease } from './etcd-lease.js';
import { EtcdPresence } from './etcd-presence.js';
import { applySchedule } from './etcd-schedule.js';
import * as units from './etcd-units.js';
import { MAX_CAS_ATTEMPTS, byKey, raceLost } from './etcd-units.js';
import { EtcdOutputRelay } from './etcd-output-relay.js';
import { EtcdWatch, type WatchScope } from './etcd-watch.js';
import type { OutputChunk, OutputHandler, OutputRequest } from './output-relay.js';
import type { EventRetention } from './event-retention.js';
import { KeyLayout } from './keys.js';
import type {
  DrainMark,
  DrainProgress,
  DrainRecord,
  MachineRecord,
  Placement,
  ScheduleWrite,
  StoredUnit,
  SubmitResult,
  UnitRecord,
  UnitStateRecord,
} from './model.js';
import {
  MAX_METADATA_CHANGES,
  type ChangeListener,
  type EventRead,
  type Leadership,
  type MachinePresence,
  type MetadataChange,
  type Registry,
  type Subscription,
} from './registry.js';

export type {
  EtcdAuthOptions,
  EtcdRegistryOptions,
  EtcdTlsOptions,
  RegistryStats,
} from './etcd-connection.js';

/**
 * The Registry on etcd v3 (the key layout is in keys.ts, values in codec.ts). Every request has a
 * deadline (`requestTimeoutMs`) and fails with a retryable REGISTRY_UNAVAILABLE naming the
 * operation. A stored value that does not decode (codec.ts) is skipped by every read and logged
 * once per version (etcd-corrupt.ts), so one malformed record never hides the rest.
 *
 * Writes that must agree are single transactions: a submit, a destroy, a desired-state change
 * and each schedule chunk. Schedule transactions carry the leadership fence. `requestCount` and
 * `stats()` count the requests sent, for benchmarks.
 */
export class EtcdRegistry implements Registry {
  /** The key layout under this registry's prefix. */
  readonly keys: KeyLayout;
  private readonly conn: EtcdConnection;
  private readonly election: EtcdElection;
  private readonly watches = new Set<EtcdWatch>();
  private readonly presences = new Set<EtcdPresence>();
  private readonly leaderships = new Set<EtcdLeadership>();
  /** The latest presence announced per machine ID, to reclaim a machine key after a lost lease. */
  private readonly announced = new Map<string, EtcdPresence>();
  private closing: Promise<void> | undefined;
  /** What listUnits read last, so the next one reads only what changed. */
  private readonly unitList = new units.UnitListCache();
  private readonly events: EtcdEvents;

  private readonly relay: EtcdOutputRelay;

  constructor(options: EtcdRegistryOptions) {
    this.conn = new EtcdConnection(options);
    this.keys = new KeyLayout(this.conn.prefix);
    this.relay = new EtcdOutputRelay(this.conn, this.keys);
    this.election = new EtcdElection(this.conn, this.keys.leader, this.leaderships);
    this.events = new EtcdEvents(this.conn, this.keys);
  }

  /** etcd requests sent so far (keepalives excluded; see `stats()`). */
  get requestCount(): number {
    return this.conn.stats().requests;
  }

  /** Request counts, in total and per operation. */
  stats(): RegistryStats {
    return this.conn.stats();
  }

  // OutputRelay (etcd-output-relay.ts) --------------------------------------------------------

  requestOutput(machine: string, request: OutputRequest, signal: AbortSignal): AsyncIterable<OutputChunk> {
    this.conn.assertOpen('requestOutput');
    return this.relay.requestOutput(machine, request, signal);
  }

  serveOutput(machine: string, handler: OutputHandler): Promise<Subscription> {
    this.conn.assertOpen('serveOutput');
    return this.relay.serveOutput(machine, handler);
  }

  // EventStore ---------------------------------------------------------------------------------

  recordEvents(events: readonly ClusterEvent[], retention: EventRetention): Promise<void> {
    this.conn.assertOpen('recordEvents');
    return this.events.record(events, retention);
  }

  listEvents(filter: EventFilter = {}): Promise<EventRead> {
    this.conn.assertOpen('listEvents');
    return this.events.list(filter);
  }

  watchEvents(onChange: ChangeListener): Promise<Subscription> {
    return this.watch('watchEvents', [{ prefix: this.keys.events }], onChange);
  }

  trimEvents(maxCount: number): Promise<number> {
    this.conn.assertOpen('trimEvents');
    return this.events.trim(maxCount);
  }

  // UnitStore ----------------------------------------------------------------------------------

  submitUnit(
    unit: UnitRecord,
    desiredState: DesiredState,
    options: { replace?: boolean } = {},
  ): Promise<SubmitResult> {
    this.conn.assertOpen('submitUnit');
    return units.submitUnit(this.conn, this.keys, unit, desiredState, options);
  }

  getUnit(name: string): Promise<StoredUnit | undefined> {
    this.conn.assertOpen('getUnit');
    return units.getUnit(this.conn, this.keys, name);
  }

  listUnits(): Promise<StoredUnit[]> {
    this.conn.assertOpen('listUnits');
    return units.listUnits(this.conn, this.keys, this.unitList);
  }

  setDesiredState(name: string, state: DesiredState): Promise<boolean> {
    this.conn.assertOpen('setDesiredState');
    return units.setDesiredState(this.conn, this.keys, name, state);
  }

  destroyUnit(name: string): Promise<boolean> {
    this.conn.assertOpen('destroyUnit');
    return units.destroyUnit(this.conn, this.keys, name);
  }

  watchUnits(onChange: ChangeListener): Promise<Subscription> {
    return this.watch(
      'watchUnits',
      [{ prefix: this.keys.units }, { prefix: this.keys.desiredAll }],
      onChange,
    );
  }

  // GlobalUnitStore ------------------------------------------------------------------------------

  listGlobalUnits(): Promise<StoredUnit[]> {
    this.conn.assertOpen('listGlobalUnits');
    return units.listGlobalUnits(this.conn, this.keys);
  }

  watchGlobalUnits(onChange: ChangeListener): Promise<Subscription> {
    return this.watch('watchGlobalUnits', [{ prefix: this.keys.globals }], onChange);
  }

  // ScheduleStore --------------------------------------------------------------------------------

  async listSchedule(): Promise<Placement[]> {
    this.conn.assertOpen('listSchedule');
    const kvs = await units.readPrefix(this.conn, 'listSchedule', this.keys.schedules);
    return this.conn.corrupt
      .decodeAll(kvs, decodePlacement)
      .sort(byKey((p) => `${p.machine}\u0000${p.unit}`));
  }

  async getPlacement(unit: string): Promise<Placement | undefined> {
    this.conn.assertOpen('getPlacement');
    const [kvs = []] = await this.conn.read('getPlacement', [ops.get(this.keys.placement(unit))]);
    const kv = single(kvs);
    return kv === undefined ? undefined : this.conn.corrupt.decode(kv, decodePlacement);
  }

  async machineSchedule(machine: string): Promise<Placement[]> {
    this.conn.assertOpen('machineSchedule');
    const [kvs = []] = await this.conn.read('machineSchedule', [
      ops.getPrefix(this.keys.machineSchedule(machine)),
    ]);
    return this.conn.corrupt.decodeAll(kvs, decodePlacement).sort(byKey((p) => p.unit));
  }

  watchMachineSchedule(machine: string, onChange: ChangeListener): Promise<Subscription> {
    return this.watch('watchMachineSchedule', [{ prefix: this.keys.machineSchedule(machine) }], onChange);
  }

  /**
   * See ScheduleStore. `leadership` must come from an EtcdRegistry on the same etcd and prefix
   * (its fence is the leader key's creation revision); anything else is a programming error.
   */
  async applySchedule(writes: readonly ScheduleWrite[], leadership: Leadership): Promise<boolean> {
    this.conn.assertOpen('applySchedule');
    return applySchedule(this.conn, this.keys, writes, this.etcdLeadership(leadership, 'applySchedule'));
  }

  /** See ScheduleStore: one fenced transaction per chunk of etcd's operation limit. */
  async recordUnplaceable(
    update: { readonly set: ReadonlyMap<string, string>; readonly clear: readonly string[] },
    leadership: Leadership,
  ): Promise<boolean> {
    this.conn.assertOpen('recordUnplaceable');
    const etcdLeadership = this.etcdLeadership(leadership, 'recordUnplaceable');
    if (etcdLeadership.lost) return false;
    const all = [
      ...[...update.set].map(([unit, reason]) => ops.put(this.keys.reason(unit), encodeReason(reason))),
      ...update.clear.map((unit) => ops.delete(this.keys.reason(unit))),
    ];
    for (let i = 0; i === 0 || i < all.length; i += MAX_TXN_OPS) {
      const res = await this.conn.txn('recordUnplaceable', {
        compare: etcdLeadership.guard(),
        success: all.slice(i, i + MAX_TXN_OPS),
      });
      if (!res.succeeded) {
        etcdLeadership.markLost('the leader key changed (seen by recordUnplaceable)');
        return false;
      }
    }
    return true;
  }

  async getUnplaceable(unit: string): Promise<string | undefined> {
    this.conn.assertOpen('getUnplaceable');
    const [kvs = []] = await this.conn.read('getUnplaceable', [ops.get(this.keys.reason(unit))]);
    const kv = single(kvs);
    return kv === undefined ? undefined : this.conn.corrupt.decode(kv, decodeReason);
  }

  async listUnplaceable(): Promise<Map<string, string>> {
    this.conn.assertOpen('listUnplaceable');
    const [kvs = []] = await this.conn.read('listUnplaceable', [ops.getPrefix(this.keys.reasons)]);
    const reasons: [string, string][] = [];
    for (const kv of kvs) {
      const reason = this.conn.corrupt.decode(kv, decodeReason);
      if (reason !== undefined) reasons.push([this.keys.tail(keyOf(kv), this.keys.reasons), reason]);
    }
    return new Map(reasons.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  private etcdLeadership(leadership: Leadership, operation: string): EtcdLeadership {
    if (!(leadership instanceof EtcdLeadership) || leadership.key !== this.keys.leader) {
      throw new FleetError(
        'INTERNAL',
        `${operation} needs a leadership won through an EtcdRegistry on ${this.keys.leader}`,
      );
    }
    return leadership;
  }

  // MachineStore ---------------------------------------------------------------------------------

  async announceMachine(record: MachineRecord, ttlSeconds: number): Promise<MachinePresence> {
    this.conn.assertOpen('announceMachine');
    const key = this.keys.machine(record.id);
    const lease = await KeptLease.grant(
      this.conn,
      ttlSeconds,
      `presence of machine ${record.id}`,
      'announceMachine',
      { revokeWhenUnreachable: false },
    );
    try {
      for (let attempt = 0; ; attempt++) {
        const res = await this.conn.txn('announceMachine', {
          compare: [compare.absent(key)],
          success: [ops.put(key, encodeMachine(record), lease.id)],
          failure: [ops.get(key)],
        });
        const holder = res.succeeded ? undefined : single(rangeAt(res, 0));
        // A holder on our own lease is an earlier attempt of ours whose answer was lost.
        if (res.succeeded || holder?.lease === lease.id) break;
        if (holder !== undefined && (await this.takeOver(record, holder, lease.id))) break;
        if (holder !== undefined && !(await this.reclaim(record.id, holder)))
          throw this.inUse(record.id, holder);
        if (attempt >= MAX_CAS_ATTEMPTS) throw raceLost('announceMachine', record.id);
      }
    } catch (err) {
      await lease.revoke('announceMachine').catch((revokeErr: unknown) => {
        this.conn.logger.debug('revoking an unused lease failed', { error: describeError(revokeErr) });
      });
      throw err;
    }
    const presence = new EtcdPresence(this.conn, this.keys, record.id, lease, this.presences);
    this.announced.set(record.id, presence);
    return presence;
  }

  async listMachines(): Promise<MachineRecord[]> {
    this.conn.assertOpen('listMachines');
    const [machines = [], metadata = []] = await this.conn.read('listMachines', [
      ops.getPrefix(this.keys.machines),
      ops.getPrefix(this.keys.metadataAll),
    ]);
    const api = new Map<string, Map<string, string>>();
    for (const kv of metadata) {
      const entry = this.conn.corrupt.decode(kv, (key, text) =>
        decodeMetadataEntry(this.keys.tail(key, this.keys.metadataAll), key, text),
      );
      if (entry === undefined) continue;
      const values = api.get(entry.machine) ?? new Map<string, string>();
      values.set(entry.key, entry.value);
      api.set(entry.machine, values);
    }
    return this.conn.corrupt
      .decodeAll(machines, decodeMachine)
      .map((m) => mergeMetadata(m, api.get(m.id)))
      .sort(byKey((m) => m.id));
  }

  watchMachines(onChange: ChangeListener): Promise<Subscription> {
    return this.watch(
      'watchMachines',
      [{ prefix: this.keys.machines }, { prefix: this.keys.metadataAll }],
      onChange,
    );
  }

  /**
   * See MachineStore: one transaction that checks every machine's key is present; when one is
   * not, etcd's answer (the machine keys) names the missing ones. Removing stores an empty
   * value, which hides a configured key (as fleet did).
   */
  async changeMachineMetadata(changes: readonly MetadataChange[]): Promise<string[]> {
    this.conn.assertOpen('changeMachineMetadata');
    if (changes.length > MAX_METADATA_CHANGES) {
      throw new FleetError(
        'INTERNAL',
        `at most ${MAX_METADATA_CHANGES} metadata changes at once, got ${changes.length}`,
      );
    }
    if (changes.length === 0) return [];
    const machines = [...new Set(changes.map((c) => c.machine))].sort();
    const res = await this.conn.txn('changeMachineMetadata', {
      compare: machines.map((m) => compare.present(this.keys.machine(m))),
      // etcd refuses a transaction that writes one key twice: the last change of a key wins.
      success: [
        ...new Map(changes.map((c) => [this.keys.metadata(c.machine, c.key), c.value])).entries(),
      ].map(([key, value]) => ops.put(key, encodeMetadataValue(value ?? ''))),
      failure: machines.map((m) => ops.get(this.keys.machine(m))),
    });
    if (res.succeeded) return [];
    return machines.filter((_, i) => single(rangeAt(res, i)) === undefined);
  }

  // DrainStore -----------------------------------------------------------------------------------

  async setDrain(mark: DrainMark): Promise<void> {
    this.conn.assertOpen('setDrain');
    await this.conn.txn('setDrain', {
      success: [ops.put(this.keys.drain(mark.machine), encodeDrainMark(mark))],
    });
  }

  async clearDrain(machine: string): Promise<boolean> {
    this.conn.assertOpen('clearDrain');
    const res = await this.conn.txn('clearDrain', {
      compare: [compare.present(this.keys.drain(machine))],
      success: [ops.delete(this.keys.drain(machine)), ops.delete(this.keys.drainProgress(machine))],
      // A progress record left without its mark (written before the mark was cleared) goes too.
      failure: [ops.delete(this.keys.drainProgress(machine))],
    });
    return res.succeeded;
  }

  async getDrain(machine: string): Promise<DrainRecord | undefined> {
    this.conn.assertOpen('getDrain');
    const markKey = this.keys.drain(machine);
    const progressKey = this.keys.drainProgress(machine);
    const [marks = [], progress = []] = await this.conn.read('getDrain', [
      ops.get(markKey),
      ops.get(progressKey),
    ]);
    const m = single(marks);
    const mark = m === undefined ? undefined : this.conn.corrupt.decode(m, decodeDrainMark);
    if (mark === undefined) return undefined;
    const p = single(progress);
    const decoded = p === undefined ? undefined : this.conn.corrupt.decode(p, decodeDrainProgress);
    return decoded === undefined ? { mark } : { mark, progress: decoded };
  }

  async listDrains(): Promise<DrainRecord[]> {
    this.conn.assertOpen('listDrains');
    const [marks = [], progress = []] = await this.conn.read('listDrains', [
      ops.getPrefix(this.keys.drains),
      ops.getPrefix(this.keys.drainProgressAll),
    ]);
    const byMachine = new Map<string, DrainProgress>();
    for (const kv of progress) {
      const p = this.conn.corrupt.decode(kv, decodeDrainProgress);
      if (p !== undefined) byMachine.set(this.keys.tail(keyOf(kv), this.keys.drainProgressAll), p);
    }
    const out: DrainRecord[] = [];
    for (const kv of marks) {
      const decoded = this.conn.corrupt.decode(kv, decodeDrainMark);
      // A mark must name the machine of its key; anything else is skipped like a malformed value.
      const machine = this.keys.tail(keyOf(kv), this.keys.drains);
      if (decoded === undefined || decoded.machine !== machine) continue;
      const p = byMachine.get(machine);
      out.push(p === undefined ? { mark: decoded } : { mark: decoded, progress: p });
    }
    return out.sort(byKey((d) => d.mark.machine));
  }

  async recordDrainProgress(
    machine: string,
    progress: DrainProgress,
    leadership: Leadership,
  ): Promise<boolean> {
    this.conn.assertOpen('recordDrainProgress');
    const etcdLeadership = this.etcdLeadership(leadership, 'recordDrainProgress');
    if (etcdLeadership.lost) return false;
    const res = await this.conn.txn('recordDrainProgress', {
      compare: [...etcdLeadership.guard(), compare.present(this.keys.drain(machine))],
      success: [ops.put(this.keys.drainProgress(machine), encodeDrainProgress(progress))],
      failure: [ops.get(this.keys.leader)],
    });
    if (res.succeeded) return true;
    // Either the machine was undrained meanwhile (nothing to record) or leadership is gone.
    if (etcdLeadership.holds(single(rangeAt(res, 0)))) return true;
    etcdLeadership.markLost('the leader key changed (seen by recordDrainProgress)');
    return false;
  }

  watchDrains(onChange: ChangeListener): Promise<Subscription> {
    return this.watch(
      'watchDrains',
      [{ prefix: this.keys.drains }, { prefix: this.keys.drainProgressAll }],
      onChange,
    );
  }

  // UnitStateStore -------------------------------------------------------------------------------

  async listUnitStates(
    filter: { readonly machine?: string; readonly unit?: string } = {},
  ): Promise<UnitStateRecord[]> {
    this.conn.assertOpen('listUnitStates');
    const { machine, unit } = filter;
    // State keys are unit-major (state/<unit>/<machine>): a machine filter alone reads them all,
    // in pages (one state per unit and machine can outgrow one answer).
    const kvs =
      unit === undefined
        ? await units.readPrefix(this.conn, 'listUnitStates', this.keys.states)
        : ((
            await this.conn.read('listUnitStates', [
              machine === undefined
                ? ops.getPrefix(this.keys.unitStates(unit))
                : ops.get(this.keys.state(unit, machine)),
            ])
          )[0] ?? []);
    return this.conn.corrupt
      .decodeAll(kvs, decodeUnitState)
      .filter(
        (s) => (machine === undefined || s.machine === machine) && (unit === undefined || s.unit === unit),
      )
      .sort(byKey((s) => `${s.unit}\u0000${s.machine}`));
  }

  // LeaderElection -------------------------------------------------------------------------------

  campaign(candidate: string, ttlSeconds: number, signal: AbortSignal): Promise<Leadership> {
    return this.election.campaign(candidate, ttlSeconds, signal);
  }

  currentLeader(): Promise<string | undefined> {
    return this.election.currentLeader();
  }

  // Lifecycle ------------------------------------------------------------------------------------

  /**
   * Ends campaigns, closes watches, steps down from leadership and revokes presences (so the
   * machine vanishes at once), then closes the client. Clean-up that etcd does not answer in time
   * is left to lease expiry. Idempotent (the options of the first call apply).
   *
   * With `keepPresences`, machine presences are not revoked: their keepalives stop with the
   * client, so the machine stays listed until its lease expires (agent_ttl), and a fleetd that
   * starts again on the same boot within that time takes it over (the agent's shutdown policy).
   */
  close(options: { readonly keepPresences?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      this.conn.beginClose();
      await Promise.all([...this.watches].map((w) => w.close()));
      await Promise.all([
        ...[...this.leaderships].map((l) => l.release()),
        ...(options.keepPresences === true ? [] : [...this.presences].map((p) => p.release())),
      ]);
      this.conn.close();
    })();
    return this.closing;
  }

  /**
   * Drops the connection at once without resigning or revoking anything, as a killed fleetd
   * would: its leases run out on their own. For fault tests.
   */
  crash(): Promise<void> {
    this.closing ??= (async () => {
      for (const l of this.leaderships) l.halt();
      for (const p of this.presences) p.halt();
      this.conn.close();
      await Promise.resolve();
    })();
    return this.closing;
  }

  // Helpers --------------------------------------------------------------------------------------

  private async watch(
    operation: string,
    scopes: WatchScope[],
    onChange: ChangeListener,
  ): Promise<Subscription> {
    this.conn.assertOpen(operation);
    const watch = await EtcdWatch.start(this.conn, operation, scopes, onChange, (w) =>
      this.watches.delete(w),
    );
    this.watches.add(watch);
    if (this.conn.isClosing) await watch.close();
    return watch;
  }

  /**
   * A machine key held by a presence of this registry that we gave up while etcd may still hold
   * its lease (etcd was unreachable past the TTL, then came back with leases renewed): revokes
   * that lease so the machine can announce itself again. False when the holder is someone else.
   */
  private async reclaim(id: string, holder: IKeyValue): Promise<boolean> {
    const previous = this.announced.get(id);
    if (previous === undefined || !previous.lost || previous.lease.id !== holder.lease) return false;
    await previous.lease.revokeNow('announceMachine');
    this.announced.delete(id);
    return true;
  }

  /**
   * Takes over the live record of an earlier run of the same fleetd (same boot ID and address):
   * the key moves to our lease in one guarded put, so the machine never looks gone, then the old
   * lease is revoked, taking the old run's unit states with it. False when the holder is another
   * machine (or changed meanwhile).
   */
  private async takeOver(record: MachineRecord, holder: IKeyValue, leaseId: string): Promise<boolean> {
    const key = keyOf(holder);
    let existing: MachineRecord;
    try {
      existing = decodeMachine(key, valueOf(holder));
    } catch {
      return false;
    }
    if (!sameIncarnationHost(existing, record)) return false;
    const res = await this.conn.txn('announceMachine', {
      compare: [compare.modified(key, holder.mod_revision)],
      success: [ops.put(key, encodeMachine(record), leaseId)],
    });
    if (!res.succeeded) return false;
    const oldLease = holder.lease;
    if (oldLease !== '0' && oldLease !== leaseId) {
      await this.conn
        .request('announceMachine', (options) =>
          this.conn.client.leaseClient.leaseRevoke({ ID: oldLease }, options),
        )
        .catch((err: unknown) => {
          // Already expired is fine; otherwise it expires on its own within its TTL.
          this.conn.logger.debug("revoking the previous run's lease failed", { error: describeError(err) });
        });
    }
    this.conn.logger.info('took over the presence of an earlier run of this fleetd', { machine: record.id });
    return true;
  }

  private inUse(id: string, holder: IKeyValue): FleetError {
    let publicIp = 'unknown';
    try {
      publicIp = decodeMachine(keyOf(holder), valueOf(holder)).publicIp;
    } catch (err) {
      publicIp = `unreadable record: ${describeError(err)}`;
    }
    return new FleetError(
      'MACHINE_ID_IN_USE',
      `machine ID ${id} is already in use by a live fleetd (public IP ${publicIp}); ` +
        'do two machines share one /etc/machine-id?',
    );
  }
}
