/* eslint-disable max-lines -- the leader's round (read, plan with drains and trigger pairs, write, record) reads as one; the drain side is already in engine-drains.ts and the events in engine-events.ts. */
import type { Clock } from '../lib/clock.js';
import { describeError, isFleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { MetricsHooks } from '../lib/metrics.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import type { MachineRecord, Placement, ScheduleWrite, StoredUnit } from '../registry/model.js';
import type {
  LeaderElection,
  Leadership,
  MachineStore,
  ScheduleStore,
  Subscription,
  UnitStore,
} from '../registry/registry.js';
import { NO_EVENTS, type EventSink } from '../unit/cluster-events.js';
import type { DesiredState } from '../unit/states.js';
import { decisionEvents, machineEvents } from './engine-events.js';
import type { ClusterSnapshot, SchedulableUnit } from './cluster-snapshot.js';
import { applyDrainDecision } from './drain-plan.js';
import { EngineDrains, type EngineDrainRegistry } from './engine-drains.js';
import type { ScheduleChange, SchedulePlan } from './schedule-plan.js';
import { planCluster } from './scheduler.js';
import { explainPlan, pairTriggers, type EngineUnplaceable } from './trigger-pairs.js';

/** How long the engine remembers where an unscheduled unit ran (see `Engine.previous`). */
const PREVIOUS_MS = 10 * 60_000;

/** The registry roles the engine uses. */
export type EngineRegistry = UnitStore & ScheduleStore & MachineStore & LeaderElection & EngineDrainRegistry;

export interface EngineConfig {
  /** Safety-net period of the leader's full reconcile (fleet's engine_reconcile_interval). */
  readonly reconcileIntervalMs: number;
  /** TTL of the leader lease, in seconds (fleet: 5 x reconcile interval = 10 s). */
  readonly leaseTtlSeconds: number;
  /**
   * How often the leader re-reads everything from the registry even when no watch fired
   * (a guard against a missed event). Between those, an idle periodic run costs no request.
   */
  readonly fullResyncIntervalMs?: number;
}

export interface EngineDeps {
  /** This fleetd's machine ID: the engine's candidate name in the election. */
  readonly machineId: string;
  readonly registry: EngineRegistry;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: EngineConfig;
  /** Told of each leader reconcile (lib/metrics.ts); default none. */
  readonly metrics?: MetricsHooks;
  /** Where the leader records what it decides and sees (cluster events); default nowhere. */
  readonly events?: EventSink;
}

/** What the metrics show of the engine: the leader's view of the cluster. */
export interface EngineView {
  readonly leading: boolean;
  /** Live machines, units by desired state and unplaceable units; empty when not leading. */
  readonly machines: number;
  readonly unitsByDesiredState: Readonly<Record<DesiredState, number>>;
  readonly unplaceable: number;
}

/** What the last leader reconcile did, for the API, tests and benchmarks. */
export interface EngineRound {
  /** The scheduler's plan (its input had the trigger pairs' implied constraints). */
  readonly plan: SchedulePlan;
  readonly writes: number;
  readonly at: number;
}

/**
 * The engine: takes part in leader election and, while it leads, keeps the schedule right.
 *
 * Event-driven: watches on units and machines only mark what changed and trigger the reconcile
 * loop; the loop re-reads what changed (the schedule is the leader's own and is kept in memory
 * from the moment it leads), plans with the pure scheduler, and writes every change in one
 * leadership-guarded transaction. A periodic run with nothing changed costs no request; a full
 * re-read happens every `fullResyncIntervalMs` as a safety net.
 */
export class Engine {
  private readonly log: Logger;
  private readonly controller = new AbortController();
  private leadership: Leadership | undefined;
  private loop: ReconcileLoop | undefined;
  private subscriptions: Subscription[] = [];
  private running: Promise<void> | undefined;
  private units: StoredUnit[] = [];
  private machines: MachineRecord[] = [];
  private schedule = new Map<string, Placement>();
  private unitsDirty = true;
  private machinesDirty = true;
  private scheduleDirty = true;
  private readonly drains: EngineDrains;
  private lastFullRead = 0;
  /**
   * Where units the engine unscheduled (and that still exist) ran, and when they left: placed
   * again within `PREVIOUS_MS`, a unit goes back there if it can (a replace passes through
   * `inactive`; see `ClusterSnapshot.previous`). Memory only: a new leader starts without it.
   */
  private readonly previous = new Map<string, { machine: string; at: number }>();
  /** The unplaceable reasons as stored in the registry, to write only changes. */
  private recordedReasons = new Map<string, string>();
  /** The machines of the last read while leading; undefined until the first read. */
  private knownMachines: ReadonlySet<string> | undefined;
  private readonly events: EventSink;
  /** Units the last plan could not place, with reasons (for the API and CLI). */
  unplaceable: readonly EngineUnplaceable[] = [];
  lastRound: EngineRound | undefined;
  /** Leader reconciles run, and schedule writes issued, since start. */
  rounds = 0;

  constructor(private readonly deps: EngineDeps) {
    this.log = deps.logger.child({ component: 'engine' });
    this.events = deps.events ?? NO_EVENTS;
    this.drains = new EngineDrains(deps, this.log, this.controller.signal, () => this.loop?.trigger());
  }

  /** True while this engine leads. */
  get leading(): boolean {
    return this.leadership !== undefined && !this.leadership.lost;
  }

  /** The leader's view for metrics; counts are zero on an engine that does not lead. */
  view(): EngineView {
    const unitsByDesiredState: Record<DesiredState, number> = { inactive: 0, loaded: 0, launched: 0 };
    if (!this.leading) return { leading: false, machines: 0, unitsByDesiredState, unplaceable: 0 };
    for (const u of this.units) unitsByDesiredState[u.desiredState]++;
    return {
      leading: true,
      machines: this.machines.length,
      unitsByDesiredState,
      unplaceable: this.unplaceable.length,
    };
  }

  /** Starts campaigning in the background. Idempotent. */
  start(): void {
    this.running ??= this.run();
  }

  /** Asks the leader loop for a reconcile now (no-op when not leading). */
  trigger(): void {
    this.loop?.trigger();
  }

  /** Resolves when the leader loop has nothing in flight or queued. */
  async idle(): Promise<void> {
    await this.loop?.idle();
  }

  /** Stops leading (resigning, so another engine takes over at once) and campaigning. */
  async close(): Promise<void> {
    this.controller.abort();
    await this.stopLeading();
    const l = this.leadership;
    this.leadership = undefined;
    if (l !== undefined && !l.lost) {
      await l.resign().catch((err: unknown) => {
        this.log.warn('resigning leadership failed; it ends with the lease', { error: describeError(err) });
      });
    }
    await this.running;
  }

  /** A method, so checks after an await are not narrowed away by the type checker. */
  private isClosing(): boolean {
    return this.controller.signal.aborted;
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    const { registry, machineId, config } = this.deps;
    while (!this.isClosing()) {
      let leadership: Leadership;
      try {
        leadership = await registry.campaign(machineId, config.leaseTtlSeconds, signal);
      } catch (err) {
        if (isFleetError(err, 'ABORTED') || this.isClosing()) return;
        this.log.warn('campaign failed; retrying', { error: describeError(err) });
        await this.deps.clock.sleep(1000, signal).catch(() => undefined);
        continue;
      }
      this.leadership = leadership;
      this.log.info('engine leadership acquired', { machine: machineId });
      this.events.record({
        kind: 'leader-changed',
        machine: machineId,
        message: `the engine on ${machineId} leads`,
      });
      const lost = new Promise<void>((resolve) => {
        leadership.onLost(resolve);
      });
      try {
        await this.startLeading();
      } catch (err) {
        this.log.warn('could not start leading; resigning', { error: describeError(err) });
        await leadership.resign().catch(() => undefined);
      }
      const aborted = new Promise<void>((resolve) => {
        if (this.isClosing()) resolve();
        else
          signal.addEventListener(
            'abort',
            () => {
              resolve();
            },
            { once: true },
          );
      });
      await Promise.race([lost, aborted]);
      await this.stopLeading();
      if (!this.isClosing()) this.log.warn('engine leadership lost', { machine: machineId });
    }
  }

  private async startLeading(): Promise<void> {
    const { registry, clock, config } = this.deps;
    this.unitsDirty = true;
    this.machinesDirty = true;
    this.scheduleDirty = true;
    this.drains.dirty = true;
    this.recordedReasons = await registry.listUnplaceable();
    this.knownMachines = undefined;
    const loop = new ReconcileLoop({
      name: 'engine',
      intervalMs: config.reconcileIntervalMs,
      clock,
      logger: this.log,
      reconcile: (signal) => this.reconcile(signal),
      onRunEnd: (ok, ms) => {
        this.deps.metrics?.reconciled('engine', ok, ms / 1000);
      },
    });
    this.loop = loop;
    this.subscriptions = [
      await registry.watchUnits(() => {
        this.unitsDirty = true;
        loop.trigger();
      }),
      await registry.watchMachines(() => {
        this.machinesDirty = true;
        loop.trigger();
      }),
      await registry.watchDrains(() => {
        this.drains.dirty = true;
        loop.trigger();
      }),
    ];
    loop.start();
  }

  private async stopLeading(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    await Promise.all(subs.map((s) => s.close().catch(() => undefined)));
    const loop = this.loop;
    this.loop = undefined;
    await loop?.close();
  }

  /** One leader reconcile: refresh what changed, plan, write. */
  private async reconcile(_signal: AbortSignal): Promise<void> {
    const leadership = this.leadership;
    if (leadership === undefined || leadership.lost) return;
    const { registry, clock, config } = this.deps;
    const now = clock.now();
    const resyncMs = config.fullResyncIntervalMs ?? 5 * 60_000;
    if (now - this.lastFullRead >= resyncMs) {
      this.unitsDirty = this.machinesDirty = this.scheduleDirty = this.drains.dirty = true;
    }
    // A drain in progress waits on unit states, which are not watched: every run re-plans.
    const draining = this.drains.inProgress;
    if (!this.unitsDirty && !this.machinesDirty && !this.scheduleDirty && !this.drains.dirty && !draining)
      return;
    if (this.unitsDirty && this.machinesDirty && this.scheduleDirty) this.lastFullRead = now;

    // Clear the flags before reading: an event during the read sets them again and re-runs.
    const readUnits = this.unitsDirty;
    const readMachines = this.machinesDirty;
    const readSchedule = this.scheduleDirty;
    this.unitsDirty = this.machinesDirty = this.scheduleDirty = false;
    try {
      const [units, machines, schedule] = await Promise.all([
        readUnits ? registry.listUnits() : Promise.resolve(this.units),
        readMachines ? registry.listMachines() : Promise.resolve(this.machines),
        readSchedule ? registry.listSchedule() : Promise.resolve([...this.schedule.values()]),
      ]);
      this.units = units;
      if (readMachines) {
        const before = this.knownMachines;
        this.knownMachines = new Set(machines.map((m) => m.id));
        if (before !== undefined) {
          for (const e of machineEvents(before, this.knownMachines)) this.events.record(e);
        }
      }
      this.machines = machines;
      this.schedule = new Map(schedule.map((p) => [p.unit, p]));
    } catch (err) {
      if (readUnits) this.unitsDirty = true;
      if (readMachines) this.machinesDirty = true;
      if (readSchedule) this.scheduleDirty = true;
      throw err;
    }

    const states = await this.drains.refresh(draining);
    const schedule = new Map([...this.schedule.values()].map((p) => [p.unit, p.machine]));
    // Triggers (sockets, timers, paths, automounts) and their units: implied MachineOf, raised
    // desired states, contradictions.
    const pairs = pairTriggers(this.units, schedule);
    const existing = new Set(this.units.map((u) => u.unit.name));
    for (const [unit, p] of this.previous) {
      if (!existing.has(unit) || now - p.at > PREVIOUS_MS || schedule.has(unit)) this.previous.delete(unit);
    }
    const base: ClusterSnapshot = {
      units: pairs.units,
      machines: this.machines.map((m) => ({ id: m.id, metadata: m.metadata })),
      schedule,
      previous: new Map([...this.previous].map(([unit, p]) => [unit, p.machine])),
    };
    const drain = this.drains.decide(base, states);
    const snapshot = applyDrainDecision(base, drain);
    const plan = planCluster(snapshot);
    const explained = explainPlan(plan, pairs);
    const writes = this.writesFor(explained.changes, snapshot.units);
    this.unplaceable = explained.unplaceable;
    this.rounds++;
    if (writes.length > 0) {
      const ok = await registry.applySchedule(writes, leadership);
      if (!ok) {
        this.scheduleDirty = true;
        this.log.warn('schedule write rejected: leadership lost');
        return;
      }
      this.applyLocally(writes);
      for (const e of decisionEvents(explained.changes)) this.events.record(e);
      for (const c of explained.changes) {
        if (c.kind === 'schedule') this.previous.delete(c.unit);
        else if (existing.has(c.unit)) this.previous.set(c.unit, { machine: c.machine, at: now });
      }
      for (const c of explained.changes) {
        this.log.info(c.kind === 'schedule' ? 'unit scheduled' : 'unit unscheduled', {
          unit: c.unit,
          machine: c.machine,
          reason: c.reason,
        });
      }
    }
    await this.recordReasons(explained.unplaceable, leadership);
    await this.drains.record(drain, leadership);
    this.lastRound = { plan, writes: writes.length, at: now };
  }

  /**
   * The plan's changes as registry writes, plus updates of placements that stay where they are
   * but whose desired state or hash changed (a stop, a start, a replace): the agent reads both
   * from its schedule entry. Desired states are the scheduler's (`units`), which trigger pairing
   * may have raised above the stored ones.
   */
  private writesFor(changes: readonly ScheduleChange[], units: readonly SchedulableUnit[]): ScheduleWrite[] {
    const writes: ScheduleWrite[] = [];
    const touched = new Set<string>();
    for (const c of changes) {
      touched.add(c.unit);
      if (c.kind === 'unschedule') writes.push({ kind: 'delete', unit: c.unit, machine: c.machine });
      else {
        writes.push({
          kind: 'put',
          placement: { unit: c.unit, machine: c.machine, hash: c.hash, desiredState: c.desiredState },
        });
      }
    }
    const byName = new Map(units.map((u) => [u.name, u]));
    for (const p of this.schedule.values()) {
      if (touched.has(p.unit)) continue;
      const u = byName.get(p.unit);
      if (u === undefined || u.desiredState === 'inactive') continue;
      if (u.hash !== p.hash || u.desiredState !== p.desiredState) {
        writes.push({ kind: 'put', placement: { ...p, hash: u.hash, desiredState: u.desiredState } });
      }
    }
    return writes;
  }

  /** Stores why units cannot be placed (for the API and CLI), writing only what changed. */
  private async recordReasons(
    unplaceable: readonly EngineUnplaceable[],
    leadership: Leadership,
  ): Promise<void> {
    const next = new Map(unplaceable.map((u) => [u.unit, u.reason]));
    const set = new Map([...next].filter(([unit, reason]) => this.recordedReasons.get(unit) !== reason));
    const clear = [...this.recordedReasons.keys()].filter((unit) => !next.has(unit));
    if (set.size === 0 && clear.length === 0) return;
    for (const [unit, reason] of set) {
      this.log.info('unit cannot be placed', { unit, reason });
      this.events.record({ kind: 'unplaceable', unit, message: reason });
    }
    if (await this.deps.registry.recordUnplaceable({ set, clear }, leadership)) this.recordedReasons = next;
  }

  private applyLocally(writes: readonly ScheduleWrite[]): void {
    for (const w of writes) {
      if (w.kind === 'put') this.schedule.set(w.placement.unit, w.placement);
      else if (this.schedule.get(w.unit)?.machine === w.machine) this.schedule.delete(w.unit);
    }
  }
}
