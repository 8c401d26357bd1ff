import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';
import type { BindMount } from './nspawn-boot.js';

/** Where a lab keeps its state unless told otherwise: `/var/lib/fleet-ts-lab/<name>`. */
export const DEFAULT_STATE_ROOT = '/var/lib/fleet-ts-lab';

/** One machine as recorded in the state file. */
export interface MachineState {
  readonly index: number;
  readonly name: string;
  readonly ip: string;
  readonly machineId: string;
  readonly rootDir: string;
  readonly consoleLog: string;
  readonly netns: string;
  readonly hostVeth: string;
  /** Set while the machine runs. */
  nspawnPid: number | undefined;
  pid1: number | undefined;
  /** True while the host side of its veth is down on purpose (cut, or killed). */
  cut: boolean;
}

/**
 * A lab's state file (`state.json` in its state dir). It lets separate processes (CLI invocations,
 * a start after a crash) find the lab's machines and the pids it recorded.
 */
export interface LabState {
  readonly version: 1;
  readonly name: string;
  readonly subnetIndex: number;
  readonly hostIp: string;
  readonly bridge: string;
  readonly bindRo: readonly BindMount[];
  /** Machines have a writable /usr (LabOptions.writableUsr); absent in older state files. */
  readonly writableUsr?: boolean;
  readonly machines: MachineState[];
}

/** The state dir of lab `name` when none is given. */
export function defaultStateDir(name: string): string {
  return join(DEFAULT_STATE_ROOT, name);
}

/** The state file in `stateDir`. */
export function stateFile(stateDir: string): string {
  return join(stateDir, 'state.json');
}

/** Reads the state file; `undefined` when there is none. */
export function readLabState(stateDir: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(stateFile(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as { readonly version?: unknown };
  if (parsed.version !== 1) {
    throw new FleetError(
      'HARNESS_COMMAND_FAILED',
      `${stateFile(stateDir)} has unknown version ${String(parsed.version)}`,
    );
  }
  return parsed as LabState;
}

/** Writes the state file atomically (a reader sees the old or the new state, never half). */
export function writeLabState(stateDir: string, state: LabState): void {
  const file = stateFile(stateDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}
