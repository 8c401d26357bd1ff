import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { mapLimit } from '../lib/concurrency.js';
import type { Logger } from '../lib/logger.js';
import { ReconcileLoop } from '../lib/reconcile-loop.js';
import type { UnitStateRecord } from '../registry/model.js';
import type { MachinePresence } from '../registry/registry.js';
import { isTemplate } from '../unit/unit-name.js';
import type { SystemdManager, UnitStatus } from './systemd-manager.js';

/** How many state records the publisher writes at once. */
const CONCURRENCY = 32;

export interface UnitStatePublisherDeps {
  readonly machineId: string;
  readonly systemd: SystemdManager;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The presence whose lease carries the state records (undefined or lost: nothing published). */
  readonly presence: () => MachinePresence | undefined;
  /** The hash of fleet's file of a unit on this machine; undefined when it has none. */
  readonly fileHash: (unit: string) => string | undefined;
  /** True when this agent started the unit (published as `launched`). */
  readonly launched: (unit: string) => boolean;
  /** Safety-net period of the publisher (a publish of whatever is dirty). */
  readonly intervalMs: number;
  readonly backoff: Backoff;
}

function sameState(a: UnitStateRecord | undefined, b: UnitStateRecord): boolean {
  return (
    a !== undefined &&
    a.hash === b.hash &&
    a.loadState === b.loadState &&
    a.activeState === b.activeState &&
    a.subState === b.subState &&
    a.launched === b.launched
  );
}

/**
 * The unit-state publisher: reports what systemd does with the units fleet owns on this machine
 * (`states/<unit>/<machine>`, under the presence's lease), only when a unit's state changed.
 * systemd's signals and the agent's reconciles mark units dirty; the publisher reads their
 * states and writes what changed.
 */
export class UnitStatePublisher {
  private readonly loop: ReconcileLoop;
  /** What we published last per unit, to publish only changes. */
  private readonly published = new Map<string, UnitStateRecord>();
  /** Units whose state must be looked at again (signals, tasks). */
  private readonly stateDirty = new Set<string>();
  /** Units fleet owns on this machine: desired here or with a file here. */
  private ownedUnits = new Set<string>();

  constructor(private readonly deps: UnitStatePublisherDeps) {
    this.loop = new ReconcileLoop({
      name: 'unit-state-publisher',
      intervalMs: deps.intervalMs,
      clock: deps.clock,
      logger: deps.logger,
      backoff: deps.backoff,
      reconcile: () => this.publishStates(),
    });
  }

  start(): void {
    this.loop.start();
  }

  async close(): Promise<void> {
    await this.loop.close();
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Asks for a publish of what is dirty. */
  trigger(): void {
    this.loop.trigger();
  }

  /** True when the unit is fleet's on this machine. */
  owns(unit: string): boolean {
    return this.ownedUnits.has(unit);
  }

  /** The units fleet owns on this machine now (a reconcile's result). */
  setOwned(units: ReadonlySet<string>): void {
    this.ownedUnits = new Set(units);
  }

  /** Marks units to be looked at again (does not publish by itself). */
  markDirty(units: Iterable<string>): void {
    for (const u of units) this.stateDirty.add(u);
  }

  get hasDirty(): boolean {
    return this.stateDirty.size > 0;
  }

  /** A new presence has no state records: publish every owned unit again. */
  republishAll(): void {
    this.published.clear();
    this.markDirty(this.ownedUnits);
    this.trigger();
  }

  /** Publishes the state of every unit marked dirty, when it changed. */
  private async publishStates(): Promise<void> {
    const presence = this.deps.presence();
    if (presence === undefined || presence.lost) return;
    const dirty = [...this.stateDirty].sort();
    this.stateDirty.clear();
    // Units no longer owned lose their state record.
    for (const name of [...this.published.keys()]) {
      if (!this.ownedUnits.has(name)) {
        await presence.removeUnitState(name);
        this.published.delete(name);
      }
    }
    // A template has no state in systemd (its instances do): nothing to publish for it.
    const toRead = dirty.filter((n) => this.ownedUnits.has(n) && !isTemplate(n));
    if (toRead.length === 0) return;
    let statuses: UnitStatus[];
    try {
      statuses = await this.deps.systemd.unitStatus(toRead);
    } catch (err) {
      for (const n of toRead) this.stateDirty.add(n);
      throw err;
    }
    // One request per changed unit, concurrently: a wave of starts is reported at once.
    await mapLimit(statuses, CONCURRENCY, async (s) => {
      const hash = this.deps.fileHash(s.name);
      if (hash === undefined) {
        // Not loaded (yet, or any more): nothing true to report.
        if (this.published.has(s.name)) {
          await presence.removeUnitState(s.name);
          this.published.delete(s.name);
        }
        return;
      }
      const record: UnitStateRecord = {
        unit: s.name,
        machine: this.deps.machineId,
        hash,
        loadState: s.loadState,
        activeState: s.activeState,
        subState: s.subState,
        launched: this.deps.launched(s.name),
        updatedAt: this.deps.clock.now(),
      };
      if (sameState(this.published.get(s.name), record)) return;
      try {
        await presence.publishUnitState(record);
        // Announced again meanwhile: the key died with the old lease (or is about to), and the
        // new presence has forgotten what was published; it must be published again.
        if (this.deps.presence() === presence) this.published.set(s.name, record);
      } catch (err) {
        this.stateDirty.add(s.name);
        throw err;
      }
    });
  }
}
