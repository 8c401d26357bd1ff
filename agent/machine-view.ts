import type { Clock } from '../lib/clock.js';
import { mapLimit } from '../lib/concurrency.js';
import type { Placement, StoredUnit, UnitRecord } from '../registry/model.js';
import type { GlobalUnitStore, ScheduleStore, Subscription, UnitStore } from '../registry/registry.js';
import { triggeredUnitOf } from '../unit/trigger-units.js';
import { desiredAgentUnits, type CandidateUnit, type DesiredAgentUnit } from './plan.js';

/** The registry roles the view reads: this machine's schedule, global units, unit contents. */
export type MachineViewRegistry = Pick<UnitStore, 'getUnit'> & GlobalUnitStore & ScheduleStore;

export interface MachineViewDeps {
  readonly machineId: string;
  readonly registry: MachineViewRegistry;
  readonly clock: Clock;
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * The safety net behind the watches: the schedule and the global units are read again from
   * etcd when the last read is older than this, even without an event.
   */
  readonly refreshIntervalMs: number;
  /** Called whenever a watch reports a change (the owner reconciles). */
  readonly onChange: () => void;
}

/** What should run on this machine, from one look at the registry. */
export interface MachineSchedule {
  readonly desired: DesiredAgentUnit[];
  /** The desired units by name. */
  readonly wanted: ReadonlyMap<string, DesiredAgentUnit>;
}

/** How many unit reads the view runs at once. */
const READ_CONCURRENCY = 32;

/** A candidate for this machine from a unit record, with the unit it triggers if a trigger. */
function candidate(
  unit: UnitRecord,
  hash: string,
  desiredState: CandidateUnit['desiredState'],
): CandidateUnit {
  const activates = triggeredUnitOf(unit.name, unit.options);
  return {
    name: unit.name,
    hash,
    desiredState,
    fleet: unit.fleet,
    ...(activates === undefined ? {} : { activates }),
  };
}

/**
 * The agent's view of what this machine should run: it watches only its own schedule
 * (`schedule/<machine>/`) and the global units, caches them (and unit contents by hash, read
 * once), and re-reads them when a watch fires or, as the safety net, when the cache is older
 * than `refreshIntervalMs`.
 */
export class MachineView {
  /** Unit records by hash, so a unit's contents are read once. */
  private readonly records = new Map<string, UnitRecord>();
  private globals: StoredUnit[] = [];
  private globalsDirty = true;
  private globalsReadAt = 0;
  private scheduleCache: Placement[] = [];
  private scheduleDirty = true;
  private scheduleReadAt = 0;
  private subscriptions: Subscription[] = [];

  constructor(private readonly deps: MachineViewDeps) {}

  /** Starts the watches. */
  async watch(): Promise<void> {
    const { registry, machineId, onChange } = this.deps;
    this.subscriptions = [
      await registry.watchMachineSchedule(machineId, () => {
        this.scheduleDirty = true;
        onChange();
      }),
      await registry.watchGlobalUnits(() => {
        this.globalsDirty = true;
        onChange();
      }),
    ];
  }

  /** Makes the next `read` go to the registry. */
  invalidate(): void {
    this.scheduleDirty = true;
    this.globalsDirty = true;
  }

  async close(): Promise<void> {
    await Promise.all(this.subscriptions.map((s) => s.close().catch(() => undefined)));
    this.subscriptions = [];
  }

  /** A unit record already read (by hash), if any. */
  cachedRecord(hash: string): UnitRecord | undefined {
    return this.records.get(hash);
  }

  /** The contents of a unit at a hash, read once per hash; undefined when not (yet) stored. */
  async unitRecord(name: string, hash: string): Promise<UnitRecord | undefined> {
    const cached = this.records.get(hash);
    if (cached !== undefined && cached.name === name) return cached;
    const stored = await this.deps.registry.getUnit(name);
    if (stored === undefined) return undefined;
    this.records.set(stored.unit.hash, stored.unit);
    return stored.unit.hash === hash ? stored.unit : undefined;
  }

  /** What should run here now: the schedule's units and the global units this machine takes. */
  async read(): Promise<MachineSchedule> {
    const { registry, clock } = this.deps;
    const now = clock.now();
    if (this.scheduleDirty || now - this.scheduleReadAt >= this.deps.refreshIntervalMs) {
      this.scheduleDirty = false;
      try {
        this.scheduleCache = await registry.machineSchedule(this.deps.machineId);
        this.scheduleReadAt = now;
      } catch (err) {
        this.scheduleDirty = true;
        throw err;
      }
    }
    if (this.globalsDirty || now - this.globalsReadAt >= this.deps.refreshIntervalMs) {
      this.globalsDirty = false;
      try {
        this.globals = await registry.listGlobalUnits();
        this.globalsReadAt = now;
      } catch (err) {
        this.globalsDirty = true;
        throw err;
      }
      for (const g of this.globals) this.records.set(g.unit.hash, g.unit);
    }

    const scheduled: CandidateUnit[] = [];
    // Contents are read once per hash; new ones concurrently (one request each).
    const records = await mapLimit(this.scheduleCache, READ_CONCURRENCY, (p) =>
      this.unitRecord(p.unit, p.hash),
    );
    this.scheduleCache.forEach((p, i) => {
      const unit = records[i];
      // A placement whose contents we cannot read yet (a replace racing the schedule) waits.
      if (unit !== undefined) scheduled.push(candidate(unit, p.hash, p.desiredState));
    });
    const globals = this.globals.map((g) => candidate(g.unit, g.unit.hash, g.desiredState));
    const desired = desiredAgentUnits(scheduled, globals, this.deps.metadata);
    return { desired, wanted: new Map(desired.map((d) => [d.name, d])) };
  }
}
