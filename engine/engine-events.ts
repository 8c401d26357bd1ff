import { unitMoved, type ClusterEventInput } from '../unit/cluster-events.js';
import type { ScheduleChange } from './schedule-plan.js';

/**
 * The events of the engine's decisions, as pure functions of what it read and wrote (the engine
 * records them through its EventSink).
 */

/** Machines that joined or vanished between two reads of the machine list. */
export function machineEvents(before: ReadonlySet<string>, now: ReadonlySet<string>): ClusterEventInput[] {
  const events: ClusterEventInput[] = [];
  for (const id of now) {
    if (!before.has(id))
      events.push({ kind: 'machine-joined', machine: id, message: `machine ${id} joined` });
  }
  for (const id of before) {
    if (!now.has(id)) {
      events.push({
        kind: 'machine-lost',
        machine: id,
        message: `machine ${id} is gone: its presence in etcd ended (lease expired or revoked)`,
      });
    }
  }
  return events;
}

/**
 * The written schedule changes as events: a unit unscheduled from one machine and scheduled on
 * another in the same plan moved (with the reason it left); otherwise it was placed or unscheduled.
 */
export function decisionEvents(changes: readonly ScheduleChange[]): ClusterEventInput[] {
  const events: ClusterEventInput[] = [];
  const left = new Map<string, { machine: string; reason: string }>();
  for (const c of changes) if (c.kind === 'unschedule') left.set(c.unit, c);
  const placed = new Set<string>();
  for (const c of changes) {
    if (c.kind !== 'schedule') continue;
    placed.add(c.unit);
    const from = left.get(c.unit);
    if (from === undefined) {
      events.push({
        kind: 'placed',
        unit: c.unit,
        machine: c.machine,
        message: `placed on ${c.machine}: ${c.reason}`,
      });
    } else if (from.machine !== c.machine) {
      events.push(unitMoved(c.unit, from.machine, c.machine, from.reason));
    }
  }
  for (const [unit, from] of left) {
    if (placed.has(unit)) continue;
    events.push({
      kind: 'unscheduled',
      unit,
      machine: from.machine,
      message: `unscheduled from ${from.machine}: ${from.reason}`,
    });
  }
  return events;
}
