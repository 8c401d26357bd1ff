import type { UnitRec } from './cluster-index.js';
import { compareNames } from './cluster-snapshot.js';
import type { ScheduleChange } from './schedule-plan.js';

/**
 * What one planning operation did to the schedule, kept as it happens and reported as net
 * changes: a unit that leaves a machine and is placed again on the same one changes nothing, and
 * a unit pushed twice is reported once, from where it was to where it ends up, with the first
 * reason it left and the reason for its final placement.
 */
export class ChangeRecord {
  /** Where each touched unit was before the operation (undefined: not scheduled). */
  private readonly baseline = new Map<UnitRec, string | undefined>();
  private readonly leaveReasons = new Map<UnitRec, string>();
  private readonly placements = new Map<UnitRec, { reason: string; seq: number }>();
  private readonly orphans: ScheduleChange[] = [];
  private seq = 0;

  /** A schedule entry for a unit that does not exist: it is simply removed. */
  orphan(unit: string, machine: string, reason: string): void {
    this.orphans.push({ kind: 'unschedule', unit, machine, reason });
  }

  /** `rec` leaves (or, if it never joined the index, is refused) `machine`. */
  left(rec: UnitRec, machine: string, reason: string): void {
    if (!this.baseline.has(rec)) this.baseline.set(rec, machine);
    if (!this.leaveReasons.has(rec)) this.leaveReasons.set(rec, reason);
  }

  /** The machine `rec` was on before the operation, if it has moved since. */
  movedFrom(rec: UnitRec): string | undefined {
    return this.baseline.get(rec);
  }

  /** `rec` was just placed, for `reason`. */
  placed(rec: UnitRec, reason: string): void {
    if (!this.baseline.has(rec)) this.baseline.set(rec, undefined);
    this.placements.set(rec, { reason, seq: ++this.seq });
  }

  /** Unschedules by unit name, then schedules in the order of the final placements. */
  changes(): ScheduleChange[] {
    const unschedules: ScheduleChange[] = [...this.orphans];
    const schedules: { change: ScheduleChange; seq: number }[] = [];
    for (const [rec, from] of this.baseline) {
      const to = rec.machine?.id;
      if (from === to) continue;
      if (from !== undefined) {
        const reason = this.leaveReasons.get(rec) ?? 'moved';
        unschedules.push({ kind: 'unschedule', unit: rec.name, machine: from, reason });
      }
      const placement = this.placements.get(rec);
      const desiredState = rec.unit.desiredState;
      if (to === undefined || placement === undefined || desiredState === 'inactive') continue;
      schedules.push({
        change: {
          kind: 'schedule',
          unit: rec.name,
          machine: to,
          hash: rec.unit.hash,
          desiredState,
          reason: placement.reason,
        },
        seq: placement.seq,
      });
    }
    unschedules.sort((a, b) => compareNames(a.unit, b.unit));
    schedules.sort((a, b) => a.seq - b.seq);
    return [...unschedules, ...schedules.map((s) => s.change)];
  }
}
