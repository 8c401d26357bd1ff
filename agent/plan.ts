import { globMatches } from '../unit/glob.js';
import type { FleetOptions } from '../unit/fleet-options.js';
import type { DesiredState } from '../unit/states.js';
import { isTemplate } from '../unit/unit-name.js';

/** A unit this machine should have, with the state it should be in. */
export interface DesiredAgentUnit {
  readonly name: string;
  readonly hash: string;
  readonly desiredState: Exclude<DesiredState, 'inactive'>;
  /** For a trigger (socket, timer, path, automount): the unit it starts (`triggeredUnitOf`). */
  readonly activates?: string;
}

/** What the machine has for one unit: fleet's file (if any) and systemd's view of it. */
export interface ObservedAgentUnit {
  readonly name: string;
  /** Hash of the file in fleet's units directory; undefined when there is no file. */
  readonly fileHash: string | undefined;
  readonly loadState: string;
  readonly activeState: string;
}

/**
 * One step of an agent reconcile. Every task carries a human reason, for logs and debugging.
 * Tasks run in the order: unload, load, reload, stop, start.
 */
export type AgentTask =
  | { readonly kind: 'unload'; readonly unit: string; readonly reason: string }
  | { readonly kind: 'load'; readonly unit: string; readonly hash: string; readonly reason: string }
  | { readonly kind: 'reload'; readonly reason: string }
  | { readonly kind: 'stop'; readonly unit: string; readonly reason: string }
  | { readonly kind: 'start'; readonly unit: string; readonly reason: string };

/** systemd active states that mean "running or on its way there". */
const RUNNING_STATES: ReadonlySet<string> = new Set(['active', 'activating', 'reloading', 'refreshing']);

/** True when systemd's active state means the unit runs (or is starting, or reloading). */
export function isRunning(activeState: string): boolean {
  return RUNNING_STATES.has(activeState);
}

const ORDER: Readonly<Record<AgentTask['kind'], number>> = {
  unload: 0,
  load: 1,
  reload: 2,
  stop: 3,
  start: 4,
};

/**
 * The agent's reconcile plan, a pure function of what should be here (`desired`), what is here
 * (`observed`: every file in fleet's units directory, plus systemd's states) and which units this
 * agent has already started (`launched`, its memory since it began).
 *
 * - A file that is not desired here: unload it (stop, unlink, delete).
 * - A desired unit without a file, or whose file has another hash (a replace), or that systemd
 *   does not know although the file is there: (unload and) load it, then start it if launched.
 * - Desired `loaded` but running: stop it, unless a trigger launched here starts it (a socket's
 *   service that systemd started for a connection, a timer's or path unit's job running now:
 *   while the trigger is active, the unit is the trigger's).
 * - Desired `launched` and not running: start it, unless this agent already started it (then it
 *   ran and exited or failed, which systemd's own Restart= governs; fleet did not restart it
 *   either). After an agent restart the memory is empty: a running unit is adopted untouched,
 *   one that is not running is started again, as fleet did. One exception: a launched trigger that
 *   is not running is started again when its unit is being loaded, because systemd refuses to
 *   start a trigger whose unit it does not have ("Socket service foo.service not loaded",
 *   "Refusing to start, unit tick.service to trigger not loaded").
 * - A template (`foo@.service`, the service of an `Accept=yes` socket) is only written and
 *   linked: systemd knows its instances, not the template (it reports no state for it and
 *   refuses to start or stop it), so it is never started or stopped, and not re-loaded because
 *   systemd does not list it.
 * - One daemon-reload after all loads and unloads, only when there are any.
 *
 * Idempotent: applying the plan and planning again yields no tasks.
 */
export function planAgent(
  desired: readonly DesiredAgentUnit[],
  observed: readonly ObservedAgentUnit[],
  launched: ReadonlySet<string>,
): AgentTask[] {
  const tasks: AgentTask[] = [];
  const want = new Map(desired.map((d) => [d.name, d]));
  const have = new Map(observed.map((o) => [o.name, o]));
  const names = [...new Set([...want.keys(), ...have.keys()])].sort();
  // Units whose trigger is launched here: systemd starts them (a connection, a timer, a path).
  const triggered = new Set<string>();
  for (const d of desired) {
    if (d.activates !== undefined && d.desiredState === 'launched') triggered.add(d.activates);
  }
  const loading = new Set(
    desired.filter((d) => needsLoad(d, have.get(d.name)) !== undefined).map((d) => d.name),
  );

  for (const name of names) {
    const d = want.get(name);
    const o = have.get(name);
    if (d === undefined) {
      if (o?.fileHash !== undefined)
        tasks.push({ kind: 'unload', unit: name, reason: 'unit loaded here but not scheduled here' });
      continue;
    }
    const load = needsLoad(d, o);
    if (load === 'replace') {
      tasks.push({
        kind: 'unload',
        unit: name,
        reason: 'unit loaded but its hash differs from the scheduled one',
      });
      tasks.push({
        kind: 'load',
        unit: name,
        hash: d.hash,
        reason: 'unit replaced: loading the scheduled contents',
      });
    } else if (load === 'missing') {
      tasks.push({ kind: 'load', unit: name, hash: d.hash, reason: 'unit scheduled here but not loaded' });
    } else if (load === 'unknown') {
      tasks.push({
        kind: 'load',
        unit: name,
        hash: d.hash,
        reason: 'unit file present but unknown to systemd',
      });
    }
    if (isTemplate(name)) continue;
    const freshlyLoaded = load === 'missing' || load === 'replace';
    const running = !freshlyLoaded && o !== undefined && isRunning(o.activeState);
    switch (d.desiredState) {
      case 'loaded':
        if (running && !triggered.has(name))
          tasks.push({ kind: 'stop', unit: name, reason: 'unit running but desired state is loaded' });
        break;
      case 'launched':
        if (freshlyLoaded) {
          tasks.push({
            kind: 'start',
            unit: name,
            reason: 'unit newly loaded and desired state is launched',
          });
        } else if (!running && !launched.has(name)) {
          tasks.push({ kind: 'start', unit: name, reason: 'unit not running and desired state is launched' });
        } else if (!running && d.activates !== undefined && loading.has(d.activates)) {
          tasks.push({
            kind: 'start',
            unit: name,
            reason: `trigger not active and the unit it triggers, ${d.activates}, is being loaded`,
          });
        }
        break;
    }
  }

  if (tasks.some((t) => t.kind === 'load' || t.kind === 'unload')) {
    tasks.push({ kind: 'reload', reason: 'unit files changed' });
  }
  // Stable sort by kind keeps the name order within each kind.
  return tasks.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
}

/**
 * Why a desired unit must be (re)loaded: no file (`missing`), a file with another hash
 * (`replace`), or a file systemd does not know (`unknown`; never for a template, which systemd
 * does not list by name); undefined when it is loaded.
 */
function needsLoad(
  d: DesiredAgentUnit,
  o: ObservedAgentUnit | undefined,
): 'missing' | 'replace' | 'unknown' | undefined {
  if (o?.fileHash === undefined) return 'missing';
  if (o.fileHash !== d.hash) return 'replace';
  if (o.loadState === 'not-found' && !isTemplate(d.name)) return 'unknown';
  return undefined;
}

/** A unit candidate for this machine, with what deciding eligibility needs. */
export interface CandidateUnit {
  readonly name: string;
  readonly hash: string;
  readonly desiredState: DesiredState;
  readonly fleet: FleetOptions;
  /** For a trigger (socket, timer, path, automount): the unit it starts (`triggeredUnitOf`). */
  readonly activates?: string;
}

/** True when the machine's metadata satisfies every MachineMetadata key (OR within a key). */
export function metadataMatches(fleet: FleetOptions, metadata: Readonly<Record<string, string>>): boolean {
  return fleet.machineMetadata.every((req) => {
    const have = metadata[req.key];
    return have !== undefined && req.values.includes(have);
  });
}

/** Conflicts in either direction between two units (a unit never conflicts with itself). */
export function unitsConflict(a: CandidateUnit, b: CandidateUnit): boolean {
  if (a.name === b.name) return false;
  return (
    a.fleet.conflicts.some((p) => globMatches(p, b.name)) ||
    b.fleet.conflicts.some((p) => globMatches(p, a.name))
  );
}

/**
 * What this machine should run (fleet's `desiredAgentState`, 5.2): every unit the engine
 * scheduled here, plus every global unit whose MachineMetadata this machine satisfies and which
 * conflicts with nothing already accepted (scheduled units first, then global units by name, so
 * the first global unit by name wins a conflict). Inactive units are left out.
 *
 * Triggers: a global trigger (socket, timer, path unit, automount) that is loaded or launched and
 * whose metadata this machine satisfies raises the global unit it triggers (for an `Accept=yes`
 * socket, the template) to `loaded` here, so that systemd can start it when the trigger fires;
 * that unit's own metadata and conflicts still apply. (The engine does the same for scheduled
 * pairs in their placements.)
 */
export function desiredAgentUnits(
  scheduled: readonly CandidateUnit[],
  globals: readonly CandidateUnit[],
  metadata: Readonly<Record<string, string>>,
): DesiredAgentUnit[] {
  const accepted: CandidateUnit[] = scheduled.filter((u) => u.desiredState !== 'inactive');
  const sortedGlobals = [...globals].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const raised = new Set<string>();
  for (const g of sortedGlobals) {
    if (g.activates !== undefined && g.desiredState !== 'inactive' && metadataMatches(g.fleet, metadata))
      raised.add(g.activates);
  }
  for (const global of sortedGlobals) {
    const g: CandidateUnit =
      global.desiredState === 'inactive' && raised.has(global.name)
        ? { ...global, desiredState: 'loaded' }
        : global;
    if (g.desiredState === 'inactive') continue;
    if (!metadataMatches(g.fleet, metadata)) continue;
    if (accepted.some((u) => unitsConflict(u, g))) continue;
    accepted.push(g);
  }
  return accepted.map((u) => ({
    name: u.name,
    hash: u.hash,
    desiredState: u.desiredState === 'loaded' ? 'loaded' : 'launched',
    ...(u.activates === undefined ? {} : { activates: u.activates }),
  }));
}
