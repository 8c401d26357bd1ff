/* eslint-disable max-lines -- the complete in-memory twin of every registry role, kept in one place so it passes the one contract suite. */
import { systemClock, type Clock } from '../lib/clock.js';
import { FleetError, type FleetErrorCode } from '../lib/errors.js';
import {
  compareEvents,
  matchesEvent,
  type ClusterEvent,
  type EventFilter,
  type StoredClusterEvent,
} from '../unit/cluster-events.js';
import type { DesiredState } from '../unit/states.js';
import { mergeMetadata, sameIncarnationHost } from './codec.js';
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
import { InMemoryOutputRelay } from './in-memory-output-relay.js';
import type { OutputChunk, OutputHandler, OutputRequest } from './output-relay.js';
import { bucketLeaseSeconds, bucketOf, eventId, type EventRetention } from './event-retention.js';
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

type Scope =
  | { readonly kind: 'events' }
  | { readonly kind: 'units' }
  | { readonly kind: 'globals' }
  | { readonly kind: 'machines' }
  | { readonly kind: 'drains' }
  | { readonly kind: 'schedule'; readonly machine: string };

interface Watcher {
  readonly scope: Scope;
  readonly listener: ChangeListener;
}

interface Fault {
  readonly code: FleetErrorCode;
  readonly message: string;
}

function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}

class MemoryPresence implements MachinePresence {
  lost = false;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly registry: InMemoryRegistry,
    readonly machine: string,
  ) {}

  async update(record: MachineRecord): Promise<void> {
    await this.registry.presenceCall(this, () => {
      this.registry.machinesById.set(this.machine, { ...record, id: this.machine });
      this.registry.notify({ kind: 'machines' });
    });
  }

  async publishUnitState(state: UnitStateRecord): Promise<void> {
    await this.registry.presenceCall(this, () => {
      this.registry.states.set(stateKey(state.unit, this.machine), { ...state, machine: this.machine });
    });
  }

  async removeUnitState(unit: string): Promise<void> {
    await this.registry.presenceCall(this, () => {
      this.registry.states.delete(stateKey(unit, this.machine));
    });
  }

  onLost(listener: () => void): void {
    if (this.lost) queueMicrotask(listener);
    else this.listeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.lost) return;
    await this.registry.call(() => undefined);
    this.registry.expirePresence(this);
  }

  /** Marks the presence lost and tells its listeners; the registry drops its keys. */
  markLost(): void {
    if (this.lost) return;
    this.lost = true;
    for (const l of this.listeners.splice(0)) queueMicrotask(l);
  }
}

class MemoryLeadership implements Leadership {
  lost = false;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly registry: InMemoryRegistry,
    readonly candidate: string,
    readonly term: number,
  ) {}

  onLost(listener: () => void): void {
    if (this.lost) queueMicrotask(listener);
    else this.listeners.push(listener);
  }

  async resign(): Promise<void> {
    if (this.lost) return;
    await this.registry.call(() => undefined);
    this.registry.dropLeader(this);
  }

  markLost(): void {
    if (this.lost) return;
    this.lost = true;
    for (const l of this.listeners.splice(0)) queueMicrotask(l);
  }
}

function stateKey(unit: string, machine: string): string {
  return `${unit}\u0000${machine}`;
}

/**
 * A complete Registry in memory: the same contract as EtcdRegistry (spec/contracts/), for fast
 * component tests of the engine, agent and API. Fault controls make the bad days reproducible:
 * `failNext`, `partition`/`heal` (every call fails as if etcd were unreachable), `expireMachine`
 * (a machine's lease runs out) and `expireLeader`.
 *
 * Leases do not expire on their own: a test expires them on purpose, so it never races a timer.
 */
export class InMemoryRegistry implements Registry {
  readonly units = new Map<string, UnitRecord>();
  readonly desired = new Map<string, DesiredState>();
  readonly globals = new Map<string, { hash: string; desiredState: DesiredState }>();
  /** unit -> placement */
  readonly placements = new Map<string, Placement>();
  readonly machinesById = new Map<string, MachineRecord>();
  readonly presences = new Map<string, MemoryPresence>();
  readonly apiMetadata = new Map<string, Map<string, string>>();
  readonly states = new Map<string, UnitStateRecord>();
  readonly reasons = new Map<string, string>();
  /** machine -> drain mark and the engine's progress on it */
  readonly drains = new Map<string, DrainRecord>();
  private leader: MemoryLeadership | undefined;
  private term = 0;
  private readonly leaderWaiters: (() => void)[] = [];
  private watchers = new Set<Watcher>();
  private faults: Fault[] = [];
  private partitioned = false;
  private closed = false;
  /** Calls made, for tests that count round trips. */
  requestCount = 0;
  /** Events by id, with when their bucket's lease runs out. */
  private readonly events = new Map<string, { event: StoredClusterEvent; expiresAt: number }>();
  /** Bucket -> when its lease was granted (the first write in it). */
  private readonly eventBuckets = new Map<number, number>();
  private revision = 0;
  private eventSequence = 0;
  private readonly clock: Clock;

  /** `clock` decides when events expire; the real clock by default. */
  constructor(options: { readonly clock?: Clock } = {}) {
    this.clock = options.clock ?? systemClock;
  }

  // Fault controls -----------------------------------------------------------------------------

  /** The next `count` calls fail with REGISTRY_UNAVAILABLE (retryable), as a flaky etcd would. */
  failNext(count = 1, message = 'injected failure'): void {
    for (let i = 0; i < count; i++) this.faults.push({ code: 'REGISTRY_UNAVAILABLE', message });
  }

  /** Every call fails until `heal()`, as when the store is unreachable. Nothing expires meanwhile. */
  partition(): void {
    this.partitioned = true;
  }

  heal(): void {
    this.partitioned = false;
    // Watches re-establish after a partition and fire once, so callers re-read.
    for (const scope of [
      { kind: 'units' },
      { kind: 'globals' },
      { kind: 'machines' },
      { kind: 'events' },
      { kind: 'drains' },
    ] as const)
      this.notify(scope);
    for (const w of this.watchers) if (w.scope.kind === 'schedule') queueMicrotask(w.listener);
  }

  /** The machine's lease runs out: its record and states vanish, its presence is lost. */
  expireMachine(machine: string): void {
    const p = this.presences.get(machine);
    if (p !== undefined) this.expirePresence(p);
  }

  /** The leader's lease runs out: leadership is lost and the next campaigner wins. */
  expireLeader(): void {
    if (this.leader !== undefined) this.dropLeader(this.leader);
  }

  // Internals shared with presences and leaderships ----------------------------------------------

  /** Runs one registry call: counts it, applies faults, then runs `fn` after a microtask. */
  async call<T>(fn: () => T): Promise<T> {
    this.requestCount++;
    await Promise.resolve();
    if (this.closed) throw new FleetError('REGISTRY_UNAVAILABLE', 'registry is closed', { retryable: false });
    if (this.partitioned) {
      throw new FleetError('REGISTRY_UNAVAILABLE', 'registry unreachable (partitioned)', { retryable: true });
    }
    const fault = this.faults.shift();
    if (fault !== undefined) throw new FleetError(fault.code, fault.message, { retryable: true });
    return fn();
  }

  async presenceCall(presence: MemoryPresence, fn: () => void): Promise<void> {
    await this.call(() => {
      if (presence.lost) {
        throw new FleetError('REGISTRY_UNAVAILABLE', `lease of machine ${presence.machine} is gone`, {
          retryable: false,
        });
      }
      fn();
    });
  }

  notify(scope: Scope): void {
    for (const w of this.watchers) {
      const hit =
        w.scope.kind === scope.kind &&
        (scope.kind !== 'schedule' || (w.scope.kind === 'schedule' && w.scope.machine === scope.machine));
      if (hit) queueMicrotask(w.listener);
    }
  }

  expirePresence(p: MemoryPresence): void {
    if (this.presences.get(p.machine) !== p) {
      p.markLost();
      return;
    }
    this.presences.delete(p.machine);
    this.machinesById.delete(p.machine);
    for (const [k, s] of this.states) if (s.machine === p.machine) this.states.delete(k);
    p.markLost();
    this.notify({ kind: 'machines' });
  }

  dropLeader(l: MemoryLeadership): void {
    if (this.leader === l) {
      this.leader = undefined;
      for (const w of this.leaderWaiters.splice(0)) queueMicrotask(w);
    }
    l.markLost();
  }

  private watch(scope: Scope, listener: ChangeListener): Promise<Subscription> {
    return this.call(() => {
      const w: Watcher = { scope, listener };
      this.watchers.add(w);
      return {
        close: () => {
          this.watchers.delete(w);
          return Promise.resolve();
        },
      };
    });
  }

  private stored(name: string): StoredUnit | undefined {
    const unit = this.units.get(name);
    const desiredState = this.desired.get(name);
    if (unit === undefined || desiredState === undefined) return undefined;
    return { unit, desiredState };
  }

  // UnitStore ----------------------------------------------------------------------------------

  submitUnit(
    unit: UnitRecord,
    desiredState: DesiredState,
    options: { replace?: boolean } = {},
  ): Promise<SubmitResult> {
    return this.call((): SubmitResult => {
      const existing = this.units.get(unit.name);
      if (existing !== undefined && existing.hash === unit.hash) return { kind: 'unchanged' };
      if (existing !== undefined && options.replace !== true)
        return { kind: 'conflict', existingHash: existing.hash };
      this.units.set(unit.name, unit);
      this.desired.set(unit.name, desiredState);
      const wasGlobal = this.globals.delete(unit.name);
      if (unit.fleet.global) this.globals.set(unit.name, { hash: unit.hash, desiredState });
      this.notify({ kind: 'units' });
      if (wasGlobal || unit.fleet.global) this.notify({ kind: 'globals' });
      return existing === undefined ? { kind: 'created' } : { kind: 'replaced', previousHash: existing.hash };
    });
  }

  getUnit(name: string): Promise<StoredUnit | undefined> {
    return this.call(() => this.stored(name));
  }

  listUnits(): Promise<StoredUnit[]> {
    return this.call(() =>
      [...this.units.keys()]
        .sort()
        .map((n) => this.stored(n))
        .filter((s): s is StoredUnit => s !== undefined),
    );
  }

  setDesiredState(name: string, state: DesiredState): Promise<boolean> {
    return this.call(() => {
      const unit = this.units.get(name);
      if (unit === undefined) return false;
      this.desired.set(name, state);
      this.notify({ kind: 'units' });
      if (unit.fleet.global) {
        this.globals.set(name, { hash: unit.hash, desiredState: state });
        this.notify({ kind: 'globals' });
      }
      return true;
    });
  }

  destroyUnit(name: string): Promise<boolean> {
    return this.call(() => {
      if (!this.units.has(name)) return false;
      this.units.delete(name);
      this.desired.delete(name);
      if (this.globals.delete(name)) this.notify({ kind: 'globals' });
      const placement = this.placements.get(name);
      this.placements.delete(name);
      if (placement !== undefined) this.notify({ kind: 'schedule', machine: placement.machine });
      for (const [k, s] of this.states) if (s.unit === name) this.states.delete(k);
      this.reasons.delete(name);
      this.notify({ kind: 'units' });
      return true;
    });
  }

  watchUnits(onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'units' }, onChange);
  }

  // EventStore -----------------------------------------------------------------------------------

  recordEvents(events: readonly ClusterEvent[], retention: EventRetention): Promise<void> {
    return this.call(() => {
      const now = this.clock.now();
      const bucket = bucketOf(now, retention);
      const grantedAt = this.eventBuckets.get(bucket) ?? now;
      this.eventBuckets.set(bucket, grantedAt);
      const expiresAt = grantedAt + bucketLeaseSeconds(retention) * 1000;
      const revision = ++this.revision;
      for (const e of events) {
        const id = eventId(e.time, e.reporter, ++this.eventSequence);
        this.events.set(id, { event: { ...e, id, revision }, expiresAt });
      }
      this.notify({ kind: 'events' });
    });
  }

  listEvents(filter: EventFilter = {}): Promise<EventRead> {
    return this.call(() => {
      this.expireEvents();
      const events = [...this.events.values()]
        .map((e) => e.event)
        .filter((e) => matchesEvent(e, filter))
        .sort(compareEvents);
      return { events, revision: this.revision };
    });
  }

  watchEvents(onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'events' }, onChange);
  }

  trimEvents(maxCount: number): Promise<number> {
    return this.call(() => {
      this.expireEvents();
      const ids = [...this.events.keys()].sort();
      const excess = ids.slice(0, Math.max(0, ids.length - maxCount));
      for (const id of excess) this.events.delete(id);
      if (excess.length > 0) this.revision++;
      return excess.length;
    });
  }

  /** Drops the events whose bucket lease ran out, as etcd would have. */
  private expireEvents(): void {
    const now = this.clock.now();
    for (const [id, e] of this.events) if (e.expiresAt <= now) this.events.delete(id);
  }

  // GlobalUnitStore ------------------------------------------------------------------------------

  listGlobalUnits(): Promise<StoredUnit[]> {
    return this.call(() =>
      [...this.globals.keys()]
        .sort()
        .map((n) => this.stored(n))
        .filter((s): s is StoredUnit => s !== undefined),
    );
  }

  watchGlobalUnits(onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'globals' }, onChange);
  }

  // ScheduleStore --------------------------------------------------------------------------------

  listSchedule(): Promise<Placement[]> {
    return this.call(() => [...this.placements.values()].sort(byKey((p) => `${p.machine}\u0000${p.unit}`)));
  }

  getPlacement(unit: string): Promise<Placement | undefined> {
    return this.call(() => this.placements.get(unit));
  }

  machineSchedule(machine: string): Promise<Placement[]> {
    return this.call(() =>
      [...this.placements.values()].filter((p) => p.machine === machine).sort(byKey((p) => p.unit)),
    );
  }

  watchMachineSchedule(machine: string, onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'schedule', machine }, onChange);
  }

  applySchedule(writes: readonly ScheduleWrite[], leadership: Leadership): Promise<boolean> {
    return this.call(() => {
      if (this.leader === undefined || this.leader !== leadership || leadership.lost) return false;
      const touched = new Set<string>();
      for (const w of writes) {
        switch (w.kind) {
          case 'put': {
            const previous = this.placements.get(w.placement.unit);
            if (previous !== undefined && previous.machine !== w.placement.machine)
              touched.add(previous.machine);
            this.placements.set(w.placement.unit, w.placement);
            touched.add(w.placement.machine);
            break;
          }
          case 'delete': {
            const current = this.placements.get(w.unit);
            if (current?.machine === w.machine) this.placements.delete(w.unit);
            touched.add(w.machine);
            break;
          }
        }
      }
      for (const machine of touched) this.notify({ kind: 'schedule', machine });
      return true;
    });
  }

  recordUnplaceable(
    update: { readonly set: ReadonlyMap<string, string>; readonly clear: readonly string[] },
    leadership: Leadership,
  ): Promise<boolean> {
    return this.call(() => {
      if (this.leader === undefined || this.leader !== leadership || leadership.lost) return false;
      for (const [unit, reason] of update.set) this.reasons.set(unit, reason);
      for (const unit of update.clear) this.reasons.delete(unit);
      return true;
    });
  }

  getUnplaceable(unit: string): Promise<string | undefined> {
    return this.call(() => this.reasons.get(unit));
  }

  listUnplaceable(): Promise<Map<string, string>> {
    return this.call(() => new Map([...this.reasons].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  // MachineStore ---------------------------------------------------------------------------------

  announceMachine(record: MachineRecord, _ttlSeconds: number): Promise<MachinePresence> {
    return this.call(() => {
      const previous = this.presences.get(record.id);
      const existing = this.machinesById.get(record.id);
      if (previous !== undefined && existing !== undefined && sameIncarnationHost(existing, record)) {
        // An earlier run of the same fleetd: the record moves to the new presence without ever
        // disappearing; the old presence's states go with its lease.
        this.presences.delete(record.id);
        for (const [k, s] of this.states) if (s.machine === record.id) this.states.delete(k);
        previous.markLost();
      } else if (previous !== undefined) {
        const other = existing;
        throw new FleetError(
          'MACHINE_ID_IN_USE',
          `machine ID ${record.id} is already in use by a live fleetd (public IP ${other?.publicIp ?? 'unknown'}); ` +
            'do two machines share one /etc/machine-id?',
        );
      }
      const p = new MemoryPresence(this, record.id);
      this.presences.set(record.id, p);
      this.machinesById.set(record.id, record);
      this.notify({ kind: 'machines' });
      return p;
    });
  }

  listMachines(): Promise<MachineRecord[]> {
    return this.call(() =>
      [...this.machinesById.values()]
        .map((m) => mergeMetadata(m, this.apiMetadata.get(m.id)))
        .sort(byKey((m) => m.id)),
    );
  }

  watchMachines(onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'machines' }, onChange);
  }

  changeMachineMetadata(changes: readonly MetadataChange[]): Promise<string[]> {
    return this.call(() => {
      if (changes.length > MAX_METADATA_CHANGES)
        throw new FleetError(
          'INTERNAL',
          `at most ${MAX_METADATA_CHANGES} metadata changes at once, got ${changes.length}`,
        );
      const missing = [...new Set(changes.map((c) => c.machine))].filter((id) => !this.machinesById.has(id));
      if (missing.length > 0) return missing.sort();
      for (const { machine, key, value } of changes) {
        let m = this.apiMetadata.get(machine);
        if (m === undefined) {
          m = new Map();
          this.apiMetadata.set(machine, m);
        }
        m.set(key, value ?? '');
      }
      if (changes.length > 0) this.notify({ kind: 'machines' });
      return [];
    });
  }

  // DrainStore -----------------------------------------------------------------------------------

  setDrain(mark: DrainMark): Promise<void> {
    return this.call(() => {
      const progress = this.drains.get(mark.machine)?.progress;
      this.drains.set(
        mark.machine,
        progress === undefined ? { mark: { ...mark } } : { mark: { ...mark }, progress },
      );
      this.notify({ kind: 'drains' });
    });
  }

  clearDrain(machine: string): Promise<boolean> {
    return this.call(() => {
      const existed = this.drains.delete(machine);
      if (existed) this.notify({ kind: 'drains' });
      return existed;
    });
  }

  getDrain(machine: string): Promise<DrainRecord | undefined> {
    return this.call(() => this.drains.get(machine));
  }

  listDrains(): Promise<DrainRecord[]> {
    return this.call(() => [...this.drains.values()].sort(byKey((d) => d.mark.machine)));
  }

  recordDrainProgress(machine: string, progress: DrainProgress, leadership: Leadership): Promise<boolean> {
    return this.call(() => {
      if (this.leader === undefined || this.leader !== leadership || leadership.lost) return false;
      const current = this.drains.get(machine);
      if (current === undefined) return true;
      this.drains.set(machine, { mark: current.mark, progress: structuredClone(progress) });
      this.notify({ kind: 'drains' });
      return true;
    });
  }

  watchDrains(onChange: ChangeListener): Promise<Subscription> {
    return this.watch({ kind: 'drains' }, onChange);
  }

  // UnitStateStore -------------------------------------------------------------------------------

  listUnitStates(
    filter: { readonly machine?: string; readonly unit?: string } = {},
  ): Promise<UnitStateRecord[]> {
    return this.call(() =>
      [...this.states.values()]
        .filter(
          (s) =>
            (filter.machine === undefined || s.machine === filter.machine) &&
            (filter.unit === undefined || s.unit === filter.unit),
        )
        .sort(byKey((s) => stateKey(s.unit, s.machine))),
    );
  }

  // LeaderElection -------------------------------------------------------------------------------

  async campaign(candidate: string, _ttlSeconds: number, signal: AbortSignal): Promise<Leadership> {
    for (;;) {
      if (signal.aborted) throw new FleetError('ABORTED', `campaign of ${candidate} aborted`);
      const won = await this.call(() => {
        if (this.leader !== undefined) return undefined;
        this.term++;
        this.leader = new MemoryLeadership(this, candidate, this.term);
        return this.leader;
      });
      if (won !== undefined) return won;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          reject(new FleetError('ABORTED', `campaign of ${candidate} aborted`));
        };
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener('abort', onAbort, { once: true });
        this.leaderWaiters.push(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  currentLeader(): Promise<string | undefined> {
    return this.call(() => this.leader?.candidate);
  }

  // OutputRelay ----------------------------------------------------------------------------------

  /** The relay between machines of this registry; `relay.unreachable` is its fault control. */
  readonly relay = new InMemoryOutputRelay();

  requestOutput(machine: string, request: OutputRequest, signal: AbortSignal): AsyncIterable<OutputChunk> {
    return this.relay.requestOutput(machine, request, signal);
  }

  serveOutput(machine: string, handler: OutputHandler): Promise<Subscription> {
    return this.relay.serveOutput(machine, handler);
  }

  // Lifecycle ------------------------------------------------------------------------------------

  close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    return Promise.resolve();
  }
}
