import type { ClusterIndex, UnitRec } from './cluster-index.js';
import { compareNames } from './cluster-snapshot.js';
import type { CycleEdge, UnplaceableCause } from './schedule-plan.js';

/**
 * Cycles among placement dependencies. Between the non-global units that want to run there are
 * two kinds of edge: P -> F when F has MachineOf=P (F is placed after P and moves with it), and
 * X -> R when X's Replaces matches R (placing X can push R away). A cycle of such edges has no
 * stable answer: fleet deadlocked on MachineOf cycles (its docs say so) and placed an arbitrary
 * one of two units that replace each other.
 *
 * We break every cycle by leaving units out, never one that is already scheduled when that can
 * be helped: a unit submitted later never stops or moves a running unit because of a cycle it
 * closes (fleet's TestScheduleCircularReplace keeps the running unit). Per strongly connected
 * group, the units are taken in order, the scheduled ones first (by name), then the others (by
 * name); a unit is kept, together with the MachineOf peers it needs inside the group, when the
 * kept units still form no cycle, and left out otherwise (also when a peer it needs was left
 * out). The units left out are rejected with a reason that names the cycle and the units kept.
 * A pure MachineOf cycle keeps nobody: each of its units needs all the others. What is kept is
 * acyclic, so planning terminates.
 */

interface Edge {
  readonly to: UnitRec;
  readonly constraint: 'MachineOf' | 'Replaces';
}

function inGraph(rec: UnitRec): boolean {
  return !rec.global && rec.active;
}

function successors(index: ClusterIndex, rec: UnitRec): Edge[] {
  const out: Edge[] = [];
  for (const r of index.replaceTargetsOf(rec)) {
    if (inGraph(r)) out.push({ to: r, constraint: 'Replaces' });
  }
  for (const f of index.followers(rec.name)) {
    if (inGraph(f)) out.push({ to: f, constraint: 'MachineOf' });
  }
  return out;
}

function toCycleEdge(from: UnitRec, edge: Edge): CycleEdge {
  // A MachineOf edge points from the peer to its follower; users read it the other way round.
  return edge.constraint === 'Replaces'
    ? { unit: from.name, constraint: 'Replaces', other: edge.to.name }
    : { unit: edge.to.name, constraint: 'MachineOf', other: from.name };
}

/**
 * The units left out to break every cycle, each with the cycle as an unplaceable cause (shared
 * by the units left out of one strongly connected group). `scheduled` says which units are
 * already scheduled: they are kept first. Tarjan's algorithm, iterative, over the units that have
 * edges.
 */
export function findCycles(
  index: ClusterIndex,
  scheduled: (name: string) => boolean = () => false,
): Map<UnitRec, UnplaceableCause> {
  const edges = new Map<UnitRec, Edge[]>();
  for (const rec of index.allUnits()) {
    if (!inGraph(rec)) continue;
    const out = successors(index, rec);
    if (out.length > 0) edges.set(rec, out);
  }
  const result = new Map<UnitRec, UnplaceableCause>();
  const order = new Map<UnitRec, number>();
  const low = new Map<UnitRec, number>();
  const onStack = new Set<UnitRec>();
  const stack: UnitRec[] = [];
  let counter = 0;

  for (const root of edges.keys()) {
    if (order.has(root)) continue;
    const work: { node: UnitRec; next: number }[] = [{ node: root, next: 0 }];
    order.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame === undefined) break;
      const out = edges.get(frame.node) ?? [];
      const edge = out[frame.next];
      if (edge !== undefined) {
        frame.next++;
        const to = edge.to;
        if (!order.has(to)) {
          order.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, next: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node) ?? 0, order.get(to) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) {
        low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(frame.node) ?? 0));
      }
      if (low.get(frame.node) !== order.get(frame.node)) continue;
      const group: UnitRec[] = [];
      for (;;) {
        const member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        group.push(member);
        if (member === frame.node) break;
      }
      const cause = describeGroup(group, edges);
      if (cause === undefined) continue;
      const { kept, left } = breakGroup(group, edges, scheduled);
      const named: UnplaceableCause = { ...cause, kept: kept.map((u) => u.name).sort(compareNames) };
      for (const member of left) result.set(member, named);
    }
  }
  return result;
}

/** The cycle cause of a strongly connected group, or undefined when it is a single unit without a self-edge. */
function describeGroup(
  group: readonly UnitRec[],
  edges: ReadonlyMap<UnitRec, Edge[]>,
): Extract<UnplaceableCause, { kind: 'cycle' }> | undefined {
  const members = new Set(group);
  const inside: CycleEdge[] = [];
  for (const from of group) {
    for (const edge of edges.get(from) ?? []) {
      if (members.has(edge.to)) inside.push(toCycleEdge(from, edge));
    }
  }
  if (inside.length === 0) return undefined;
  inside.sort((a, b) => compareNames(a.unit, b.unit) || compareNames(a.other, b.other));
  const kinds = new Set(inside.map((e) => e.constraint));
  const constraint =
    kinds.size > 1
      ? 'MachineOf and Replaces'
      : inside[0]?.constraint === 'Replaces'
        ? 'Replaces'
        : 'MachineOf';
  return {
    kind: 'cycle',
    constraint,
    units: group.map((u) => u.name).sort(compareNames),
    edges: inside,
    kept: [],
  };
}

/**
 * Which units of one strongly connected group are kept (see the file comment). Greedy and
 * deterministic: the scheduled units first, then by name.
 */
function breakGroup(
  group: readonly UnitRec[],
  edges: ReadonlyMap<UnitRec, Edge[]>,
  scheduled: (name: string) => boolean,
): { kept: UnitRec[]; left: UnitRec[] } {
  const members = new Set(group);
  const order = [...group].sort(
    (a, b) => Number(scheduled(b.name)) - Number(scheduled(a.name)) || compareNames(a.name, b.name),
  );
  const kept = new Set<UnitRec>();
  const left = new Set<UnitRec>();
  for (const rec of order) {
    if (kept.has(rec) || left.has(rec)) continue;
    const needed = peersInside(rec, members);
    if ([...needed].some((u) => left.has(u))) {
      left.add(rec);
      continue;
    }
    const trial = new Set([...kept, ...needed]);
    if (hasCycle(trial, edges)) left.add(rec);
    else for (const u of needed) kept.add(u);
  }
  return { kept: order.filter((u) => kept.has(u)), left: order.filter((u) => left.has(u)) };
}

/** `rec` and the MachineOf peers it needs (transitively) among `members`. */
function peersInside(rec: UnitRec, members: ReadonlySet<UnitRec>): Set<UnitRec> {
  const byName = new Map([...members].map((u) => [u.name, u]));
  const out = new Set<UnitRec>([rec]);
  const todo = [rec];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    for (const peer of next.unit.fleet.machineOf) {
      const p = byName.get(peer);
      if (p !== undefined && !out.has(p)) {
        out.add(p);
        todo.push(p);
      }
    }
  }
  return out;
}

/** True when the edges among `nodes` form a cycle (a depth-first search with colours). */
function hasCycle(nodes: ReadonlySet<UnitRec>, edges: ReadonlyMap<UnitRec, Edge[]>): boolean {
  const done = new Set<UnitRec>();
  const active = new Set<UnitRec>();
  for (const root of nodes) {
    if (done.has(root)) continue;
    const work: { node: UnitRec; next: number }[] = [{ node: root, next: 0 }];
    active.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      if (frame === undefined) break;
      const edge = (edges.get(frame.node) ?? [])[frame.next];
      if (edge === undefined) {
        work.pop();
        active.delete(frame.node);
        done.add(frame.node);
        continue;
      }
      frame.next++;
      const to = edge.to;
      if (!nodes.has(to) || done.has(to)) continue;
      if (active.has(to)) return true;
      active.add(to);
      work.push({ node: to, next: 0 });
    }
  }
  return false;
}

/** True when `rec` (just registered) lies on a cycle: a depth-first walk from it comes back. */
export function closesCycle(index: ClusterIndex, rec: UnitRec): boolean {
  if (!inGraph(rec)) return false;
  const seen = new Set<UnitRec>();
  const todo = [rec];
  for (let node = todo.pop(); node !== undefined; node = todo.pop()) {
    for (const edge of successors(index, node)) {
      if (edge.to === rec) return true;
      if (!seen.has(edge.to)) {
        seen.add(edge.to);
        todo.push(edge.to);
      }
    }
  }
  return false;
}
