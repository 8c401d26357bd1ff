import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { DrainRecord, UnitStateRecord } from '../registry/model.js';
import type { DrainStore, Leadership, UnitStateStore } from '../registry/registry.js';
import type { ClusterSnapshot } from './cluster-snapshot.js';
import { placeOffWith, planDrains, type DrainDecision, type DrainUnitState } from './drain-plan.js';
import { planCluster } from './scheduler.js';

/** While a drain has units moving, the engine looks at their states this often (ms). */
const DRAIN_POLL_MS = 250;

/** The registry roles drains need, besides the engine's own. */
export type EngineDrainRegistry = Pick<DrainStore, 'listDrains' | 'recordDrainProgress' | 'watchDrains'> &
  Pick<UnitStateStore, 'listUnitStates'>;

/**
 * The leading engine's side of drains (the decision itself is engine/drain-plan.ts): the marks as
 * last read, the decision for a round, and storing each drain's progress when it changes. Unit
 * states are not watched, so while a drain is in progress the loop is triggered again every
 * 250 ms to look at them.
 */
export class EngineDrains {
  /** The drain marks with their progress, as last read or written. */
  records: DrainRecord[] = [];
  /** Set by the drain watch: the marks must be read again. */
  dirty = true;
  private poll: Promise<void> | undefined;

  /** `signal` aborts the state polling when the engine closes; `trigger` asks for another run. */
  constructor(
    private readonly deps: { readonly registry: EngineDrainRegistry; readonly clock: Clock },
    private readonly logger: Logger,
    private readonly signal: AbortSignal,
    private readonly trigger: () => void,
  ) {}

  /**
   * Reads the marks when the watch fired or a drain is in progress, and then the unit states
   * (which a drain in progress waits on). On failure the marks stay to be read.
   */
  async refresh(inProgress: boolean): Promise<UnitStateRecord[]> {
    if (!this.dirty && !inProgress) return [];
    this.dirty = false;
    try {
      this.records = await this.deps.registry.listDrains();
      return this.records.length === 0 ? [] : await this.deps.registry.listUnitStates();
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  /** True while some drain is not finished (every run then re-plans). */
  get inProgress(): boolean {
    return this.records.some((d) => d.progress?.state !== 'drained');
  }

  /** The drain decision for this round, logged step by step. */
  decide(base: ClusterSnapshot, states: readonly UnitStateRecord[]): DrainDecision {
    const byUnit = new Map<string, DrainUnitState[]>();
    for (const s of states) {
      const list = byUnit.get(s.unit) ?? [];
      list.push(s);
      byUnit.set(s.unit, list);
    }
    const unschedulable = new Set(this.records.map((d) => d.mark.machine));
    const decision = planDrains({
      drains: this.records,
      units: base.units,
      machines: new Set(base.machines.map((m) => m.id)),
      schedule: base.schedule,
      states: byUnit,
      placeOff: placeOffWith(base, unschedulable, planCluster),
    });
    for (const step of decision.steps) {
      this.logger.info(`drain: ${step.kind}`, {
        unit: step.unit,
        machine: step.machine,
        reason: step.reason,
      });
    }
    return decision;
  }

  /** Stores each drain's progress when it changed; keeps polling while a drain is in progress. */
  async record(decision: DrainDecision, leadership: Leadership): Promise<void> {
    for (const [machine, progress] of decision.progress) {
      // Compared with the progress as last read or written (a cleared mark has none).
      const stored = this.records.find((d) => d.mark.machine === machine)?.progress;
      if (stored !== undefined && JSON.stringify(stored) === JSON.stringify(progress)) continue;
      if (!(await this.deps.registry.recordDrainProgress(machine, progress, leadership))) return;
      this.records = this.records.map((d) => (d.mark.machine === machine ? { mark: d.mark, progress } : d));
      if (progress.state === 'drained') this.logger.info('drain: machine drained', { machine });
    }
    const moving = [...decision.progress.values()].some((p) => p.state === 'draining');
    if (moving && this.poll === undefined) {
      this.poll = this.deps.clock
        .sleep(DRAIN_POLL_MS, this.signal)
        .then(this.trigger, () => undefined)
        .finally(() => {
          this.poll = undefined;
        });
    }
  }
}
