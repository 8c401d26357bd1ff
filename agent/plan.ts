import { globMatches } from '../unit/glob.js';
import type { FleetOptions } from '../unit/fleet-options.js';
import type { DesiredState } from '../unit/states.js';

/** A unit this machine should have, with the state it should be in. */
export interface DesiredAgentUnit {
  readonly name: string;
  readonly hash: string;
  readonly desiredState: Exclude<DesiredState, 'inactive'>;
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
 * - Desired `loaded` but running: stop it.
 * - Desired `launched` and not running: start it, unless this agent already started it (then it
 *   ran and exited or failed, which systemd's own Restart= governs; fleet did not restart it
 *   either). After an agent restart the memory is empty: a running unit is adopted untouched,
 *   one that is not running is started again, as fleet did.
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

  for (const name of names) {
    const d = want.get(name);
    const o = have.get(name);
    const hasFile = o?.fileHash !== undefined;
    if (d === undefined) {
      if (hasFile)
        tasks.push({ kind: 'unload', unit: name, reason: 'unit loaded here but not scheduled here' });
      continue;
    }
    let freshlyLoaded = false;
    if (!hasFile) {
      tasks.push({ kind: 'load', unit: name, hash: d.hash, reason: 'unit scheduled here but not loaded' });
      freshlyLoaded = true;
    } else if (o.fileHash !== d.hash) {
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
      freshlyLoaded = true;
    } else if (o.loadState === 'not-found') {
      tasks.push({
        kind: 'load',
        unit: name,
        hash: d.hash,
        reason: 'unit file present but unknown to systemd',
      });
    }
    const running = !freshlyLoaded && o !== undefined && isRunning(o.activeState);
    switch (d.desiredState) {
      case 'loaded':
        if (running)
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

/** A unit candidate for this machine, with what deciding eligibility needs. */
export interface CandidateUnit {
  readonly name: string;
  readonly hash: string;
  readonly desiredState: DesiredState;
  readonly fleet: FleetOptions;
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
 */
export function desiredAgentUnits(
  scheduled: readonly CandidateUnit[],
  globals: readonly CandidateUnit[],
  metadata: Readonly<Record<string, string>>,
): DesiredAgentUnit[] {
  const accepted: CandidateUnit[] = scheduled.filter((u) => u.desiredState !== 'inactive');
  const sortedGlobals = [...globals].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const g of sortedGlobals) {
    if (g.desiredState === 'inactive') continue;
    if (!metadataMatches(g.fleet, metadata)) continue;
    if (accepted.some((u) => unitsConflict(u, g))) continue;
    accepted.push(g);
  }
  return accepted.map((u) => ({
    name: u.name,
    hash: u.hash,
    desiredState: u.desiredState === 'loaded' ? 'loaded' : 'launched',
  }));
}
