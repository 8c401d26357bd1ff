import { ChangeRecord } from './change-record.js';
import type { ClusterIndex, MachineRec, UnitRec } from './cluster-index.js';
import { compareNames } from './cluster-snapshot.js';
import {
  checkConflicts,
  checkGlobal,
  checkMachineOnly,
  checkMetadata,
  checkPlacement,
  describeCause,
  explainExclusions,
  type Verdict,
} from './eligibility.js';
import { findCycles } from './placement-cycles.js';
import { describeUnplaceable, type SchedulePlan, type UnplaceableCause } from './schedule-plan.js';
import { UnitQueue } from './unit-queue.js';

/**
 * The working half of the scheduler (see scheduler.ts for the rules): one planning operation on
 * a `ClusterIndex`. It makes the decisions, applies each to the index at once so the next
 * decision sees it, and records where every unit it touched was before and why it moved, to
 * report the net changes at the end.
 */

/** How often units found unplaceable are tried again after pushes; bounds the work per plan. */
const MAX_RETRY_ROUNDS = 4;

type PeerGate =
  | { readonly kind: 'ready' }
  | { readonly kind: 'wait'; readonly peer: UnitRec }
  | { readonly kind: 'blocked'; readonly cause: UnplaceableCause };

/** One planning operation on an index, with the record of what changed and why. */
export class Planner {
  private readonly queue = new UnitQueue();
  private readonly record = new ChangeRecord();
  private readonly attempted = new Set<UnitRec>();
  private readonly decidedAt = new Map<UnitRec, number>();
  private seq = 0;
  private lastEviction = 0;

  /**
   * `globalsCounted`: the index already counts global units (any index but a fresh one).
   * `previous`: where units not scheduled now ran last (see `ClusterSnapshot.previous`).
   */
  constructor(
    private readonly index: ClusterIndex,
    private globalsCounted: boolean,
    private readonly previous: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** Queues a pending unit for placement. */
  enqueue(rec: UnitRec): void {
    this.queue.push(rec);
  }

  /**
   * Step 1: breaks every MachineOf or Replaces cycle, rejecting the units left out; the units for
   * which `first` holds are kept first. Returns every unit of a cycle, kept or not.
   */
  rejectCycles(first: (name: string) => boolean): Set<string> {
    const onCycles = new Set<string>();
    for (const [rec, cause] of findCycles(this.index, first)) {
      rec.status = 'rejected';
      rec.outcome = { unit: rec.name, reason: describeUnplaceable(cause), cause };
      if (cause.kind === 'cycle') for (const u of cause.units) onCycles.add(u);
    }
    return onCycles;
  }

  /** Step 2 of the pass: decide which scheduled units stay, and join them to their machines. */
  adoptSchedule(schedule: ReadonlyMap<string, string>): void {
    const entries = [...schedule].sort((a, b) => compareNames(a[0], b[0]));
    const staying = new Map<UnitRec, MachineRec>();
    for (const [name, machineId] of entries) {
      const rec = this.index.unit(name);
      if (rec === undefined) {
        this.record.orphan(name, machineId, 'unit no longer exists');
        continue;
      }
      const verdict = this.whereItStays(rec, machineId);
      if (typeof verdict === 'string') this.record.left(rec, machineId, verdict);
      else staying.set(rec, verdict);
    }
    // A follower stays only if its peers stay on the same machine (a global peer: if it can run
    // there; whether it conflicts with something there is known later); repeat for chains.
    for (let changed = true; changed;) {
      changed = false;
      for (const [rec, m] of staying) {
        const missing = rec.unit.fleet.machineOf.find((peer) => {
          const p = this.index.unit(peer);
          if (p === undefined) return true;
          return p.global ? !p.active || checkMetadata(p, m) !== undefined : staying.get(p) !== m;
        });
        if (missing !== undefined) {
          staying.delete(rec);
          this.record.left(rec, m.id, `MachineOf peer ${missing} is not on ${m.id}`);
          changed = true;
        }
      }
    }
    // Of units that conflict on one machine, the first by name stays (as agents accept them).
    for (const [rec, m] of staying) {
      const conflict = checkConflicts(this.index, rec, m);
      if (conflict === undefined) this.index.join(rec, m);
      else this.record.left(rec, m.id, describeCause(this.index, rec, m, conflict));
    }
  }

  /** The machine a scheduled unit may stay on, or why it must leave. */
  private whereItStays(rec: UnitRec, machineId: string): MachineRec | string {
    switch (rec.status) {
      case 'global':
        return 'global units are run by the agents, not scheduled';
      case 'inactive':
        return 'desired state inactive';
      case 'rejected':
        return rec.outcome?.reason ?? 'rejected';
      case 'pending':
      case 'placed':
      case 'unplaceable': {
        const m = this.index.machine(machineId);
        if (m === undefined) return `machine ${machineId} went away`;
        const cause = checkMachineOnly(rec, m);
        return cause === undefined ? m : describeCause(this.index, rec, m, cause);
      }
    }
  }

  /** Step 3: count global units on the machines whose agents will run them, by name. */
  countGlobals(): void {
    for (const rec of this.index.globalUnits()) {
      for (const m of this.index.machines) {
        if (checkGlobal(this.index, rec, m) === undefined) this.index.countGlobal(rec, m);
      }
    }
    this.globalsCounted = true;
  }

  /**
   * Counts a global unit new to the index. Where it fits, adding it changes nothing else: the
   * global units counted there do not conflict with it, and those not counted stay blocked.
   * Where it conflicts with a global unit counted there, it may come first by name, so that
   * machine's global units are counted again.
   */
  countNewGlobal(rec: UnitRec): void {
    for (const m of this.index.machines) {
      const cause = checkGlobal(this.index, rec, m);
      if (cause === undefined) this.index.countGlobal(rec, m);
      else if (cause.constraint === 'Conflicts' && m.globals.length > 0) this.recountGlobals(m);
    }
  }

  /**
   * Counts the global units of `m` again after units left it: one that conflicted with a unit
   * that left may run there now, and may in turn push out a later one (by name) that conflicts
   * with it, whose followers then leave too. Each round removes units, so this ends.
   */
  private recountGlobals(m: MachineRec): void {
    if (!this.globalsCounted) return;
    const before = [...m.globals];
    const globals = this.index.globalUnits();
    for (const g of globals) this.index.uncountGlobal(g, m);
    for (const g of globals) if (checkGlobal(this.index, g, m) === undefined) this.index.countGlobal(g, m);
    for (const g of before) {
      if (m.globals.includes(g)) continue;
      // Like a unit leaving: room for units found unplaceable so far.
      this.lastEviction = ++this.seq;
      for (const f of this.index.followers(g.name)) {
        if (f.machine === m) this.evict(f, `MachineOf peer ${g.name} no longer runs on ${m.id}`);
      }
    }
  }

  /**
   * Whether a global peer runs on a machine is known only once global units are counted: move
   * followers whose global peer conflicts with something there.
   */
  checkPlacedPeers(): void {
    for (const rec of this.index.allUnits()) {
      const m = rec.machine;
      if (m === undefined) continue;
      const missing = rec.unit.fleet.machineOf.find((peer) => !this.index.peerPresent(peer, m));
      if (missing !== undefined) this.evict(rec, `MachineOf peer ${missing} is not on ${m.id}`);
    }
  }

  /** A placed unit whose Replaces matches units on its machine pushes them off, in name order. */
  applyPlacedReplaces(): void {
    for (const rec of this.index.allUnits()) {
      const m = rec.machine;
      if (m === undefined || rec.replaceIds.length === 0) continue;
      const pushed = [...m.jobs].filter(
        (j) => j !== rec && rec.replaceIds.some((id) => j.replaceMatchedBy.includes(id)),
      );
      pushed.sort((a, b) => compareNames(a.name, b.name));
      for (const r of pushed) if (r.machine === m) this.evict(r, this.replacedReason(rec, r, m));
    }
  }

  /** Units that waited for `rec` as a MachineOf peer (and their own followers) get another try. */
  retryFollowers(rec: UnitRec): void {
    const todo = [rec];
    for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
      for (const f of this.index.followers(next.name)) {
        if (f.status !== 'unplaceable') continue;
        f.status = 'pending';
        f.outcome = undefined;
        this.queue.push(f);
        todo.push(f);
      }
    }
  }

  /** Steps 4 and 5: place every queued unit; retry the unplaceable ones after pushes. */
  run(): void {
    for (let round = 0; ; round++) {
      this.drain();
      if (this.lastEviction === 0 || round >= MAX_RETRY_ROUNDS) return;
      let retried = false;
      for (const rec of this.index.allUnits()) {
        if (rec.status !== 'unplaceable' || (this.decidedAt.get(rec) ?? 0) > this.lastEviction) continue;
        rec.status = 'pending';
        rec.outcome = undefined;
        this.queue.push(rec);
        retried = true;
      }
      if (!retried) return;
    }
  }

  private drain(): void {
    const waiting = new Map<UnitRec, UnitRec[]>();
    for (let rec = this.queue.pop(); rec !== undefined; rec = this.queue.pop()) {
      if (rec.status !== 'pending') continue;
      this.attempted.add(rec);
      const gate = this.peerGate(rec);
      switch (gate.kind) {
        case 'wait': {
          const list = waiting.get(gate.peer);
          if (list === undefined) waiting.set(gate.peer, [rec]);
          else list.push(rec);
          continue;
        }
        case 'blocked':
          this.markUnplaceable(rec, gate.cause);
          break;
        case 'ready':
          this.tryPlace(rec);
          break;
      }
      const woken = waiting.get(rec);
      if (woken !== undefined) {
        waiting.delete(rec);
        for (const w of woken) this.queue.push(w);
      }
    }
    // Cycles are rejected up front, so nothing is left waiting; this only keeps the status honest.
    for (const list of waiting.values()) {
      for (const w of list) {
        const peer = w.unit.fleet.machineOf.find((p) => this.index.unit(p)?.status === 'pending') ?? '';
        this.markUnplaceable(w, { kind: 'peer-unavailable', peer, peerState: 'unplaceable' });
      }
    }
  }

  /** Whether every MachineOf peer of `rec` is placed (or an active global unit). */
  private peerGate(rec: UnitRec): PeerGate {
    for (const peer of rec.unit.fleet.machineOf) {
      const p = this.index.unit(peer);
      if (p === undefined)
        return { kind: 'blocked', cause: { kind: 'peer-unavailable', peer, peerState: 'missing' } };
      switch (p.status) {
        case 'global':
          if (!p.active)
            return { kind: 'blocked', cause: { kind: 'peer-unavailable', peer, peerState: 'inactive' } };
          break;
        case 'placed':
          break;
        case 'pending':
          return { kind: 'wait', peer: p };
        case 'inactive':
        case 'unplaceable':
        case 'rejected':
          return { kind: 'blocked', cause: { kind: 'peer-unavailable', peer, peerState: p.status } };
      }
    }
    return { kind: 'ready' };
  }

  private tryPlace(rec: UnitRec): void {
    const index = this.index;
    const fleet = rec.unit.fleet;
    let candidates: readonly MachineRec[];
    let how: (m: MachineRec) => string;
    const anchor = fleet.machineOf.map((p) => index.unit(p)?.machine).find((m) => m !== undefined);
    const back = fleet.machineId === undefined && anchor === undefined ? this.goesBack(rec) : undefined;
    if (fleet.machineId !== undefined) {
      // Usually one machine; several only when an 8-character value is several machines' short ID.
      candidates = [...index.machinesMatchingId(fleet.machineId)].sort(
        (a, b) => index.order.load(a.rank) - index.order.load(b.rank) || a.rank - b.rank,
      );
      how = () => `MachineID ${fleet.machineId ?? ''}`;
    } else if (anchor !== undefined) {
      candidates = [anchor];
      how = () => `with its MachineOf peers`;
    } else if (back !== undefined) {
      candidates = [back];
      how = () => 'back on the machine it ran on last';
    } else {
      const rank = index.order.find(
        (r) => checkPlacement(index, rec, index.machineAt(r)).kind === 'eligible',
      );
      candidates = rank < 0 ? [] : [index.machineAt(rank)];
      how = (m) => `least-loaded eligible machine (load ${index.order.load(m.rank)})`;
    }
    for (const m of candidates) {
      const verdict = checkPlacement(index, rec, m);
      if (verdict.kind === 'eligible') {
        this.place(rec, m, verdict, how(m));
        return;
      }
    }
    this.markUnplaceable(
      rec,
      index.machines.length === 0
        ? { kind: 'no-machines' }
        : { kind: 'excluded', exclusions: explainExclusions(index, rec) },
    );
  }

  /**
   * The machine a unit placed anew ran on last, when it can run there now (a replace or a stop
   * and start keeps its placement); undefined otherwise, and for a unit that moved in this plan.
   */
  private goesBack(rec: UnitRec): MachineRec | undefined {
    if (this.record.movedFrom(rec) !== undefined) return undefined;
    const id = this.previous.get(rec.name);
    const m = id === undefined ? undefined : this.index.machine(id);
    return m !== undefined && checkPlacement(this.index, rec, m).kind === 'eligible' ? m : undefined;
  }

  private place(
    rec: UnitRec,
    m: MachineRec,
    verdict: Extract<Verdict, { kind: 'eligible' }>,
    how: string,
  ): void {
    const from = this.record.movedFrom(rec);
    const context =
      from === undefined ? `desired state ${rec.unit.desiredState}, not scheduled` : `moved from ${from}`;
    this.index.join(rec, m);
    this.record.placed(rec, `${context}: ${how}`);
    // Followers given up on while this unit was unplaceable (before a retry) try again.
    this.retryFollowers(rec);
    for (const r of verdict.displaces) if (r.machine === m) this.evict(r, this.replacedReason(rec, r, m));
  }

  private replacedReason(by: UnitRec, r: UnitRec, m: MachineRec): string {
    const id = by.replaceIds.find((i) => r.replaceMatchedBy.includes(i));
    const pattern = id === undefined ? '' : ` (Replaces ${this.index.replaces.pattern(id)})`;
    return `replaced by ${by.name} on ${m.id}${pattern}`;
  }

  /** Takes a placed unit off its machine, with its followers there, and queues them again. */
  private evict(rec: UnitRec, reason: string): void {
    const m = rec.machine;
    if (m === undefined) return;
    this.evictWithFollowers(rec, m, reason);
    this.recountGlobals(m);
  }

  private evictWithFollowers(rec: UnitRec, m: MachineRec, reason: string): void {
    this.record.left(rec, m.id, reason);
    this.index.leave(rec);
    rec.status = 'pending';
    this.queue.push(rec);
    this.lastEviction = ++this.seq;
    for (const f of this.index.followers(rec.name)) {
      if (f.machine === m) this.evictWithFollowers(f, m, `MachineOf peer ${rec.name} left ${m.id}`);
    }
  }

  private markUnplaceable(rec: UnitRec, cause: UnplaceableCause): void {
    rec.status = 'unplaceable';
    rec.outcome = { unit: rec.name, reason: describeUnplaceable(cause), cause };
    this.decidedAt.set(rec, ++this.seq);
  }

  /** The net changes, and the unplaceable units (all, or those considered). */
  result(scope: 'all' | 'attempted'): SchedulePlan {
    const unplaceable =
      scope === 'all'
        ? this.index.unplaceable()
        : [...this.attempted]
            .flatMap((rec) => (rec.outcome === undefined ? [] : [rec.outcome]))
            .sort((a, b) => compareNames(a.unit, b.unit));
    return { changes: this.record.changes(), unplaceable };
  }
}
