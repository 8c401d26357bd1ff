import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';
import { pidsInCgroupTree, removeCgroupTree } from './lab-cgroups.js';
import type { LabNaming } from './lab-naming.js';
import { deleteLink, deleteNetns, listLinks, listNetns } from './lab-network.js';
import {
  INIT_COMM,
  isAlive,
  listProcesses,
  NSPAWN_COMM,
  nspawnMachineName,
  readCmdline,
  readNamespacePids,
  readProcess,
  signalIfComm,
} from './lab-processes.js';
import { pollUntil } from './poll.js';
import { ownerFile } from './lab-owner.js';
import { readLabState, stateFile } from './lab-state.js';

/** Where nspawn keeps a directory per machine that it cannot remove itself when /run is no tmpfs. */
export const PROPAGATE_DIR = '/run/systemd/nspawn/propagate';
const LOCKS_DIR = '/run/systemd/nspawn/locks';

/** What of a lab still exists on the host. All empty (and `stateDir` false) means none. */
export interface LabLeftovers {
  /** Live nspawn processes and machine inits of the lab. */
  readonly processes: readonly { readonly pid: number; readonly comm: string }[];
  readonly links: readonly string[];
  readonly netns: readonly string[];
  readonly cgroups: readonly string[];
  readonly propagate: readonly string[];
  /** nspawn lock files of the lab's machine roots. */
  readonly locks: readonly string[];
  /** Whether the state file is still there. */
  readonly stateFile: boolean;
  /** Whether the owner file (lab-owner.ts) is still there. */
  readonly ownerFile: boolean;
}

/**
 * Finds what lab `naming.lab` left on the host, by name and by what its state file recorded,
 * never touching another lab's resources: nspawn processes booting one of the lab's machine
 * names, machine inits in the lab's cgroups, its links (by name and alias), namespaces, cgroups
 * and nspawn propagate dirs.
 */
export async function findLabLeftovers(naming: LabNaming, stateDir: string): Promise<LabLeftovers> {
  const links = (await listLinks())
    .filter(
      (link) => naming.isLinkName(link.name) && (link.alias === undefined || link.alias === naming.linkAlias),
    )
    .map((link) => link.name);
  return {
    processes: findLabProcesses(naming, stateDir),
    links,
    netns: listNetns().filter((name) => naming.isNetnsName(name)),
    cgroups: naming.cgroupRoots.filter((dir) => listDir(dir) !== undefined),
    propagate: (listDir(PROPAGATE_DIR) ?? []).filter((name) => naming.isMachineName(name)),
    locks: imageLocks(stateDir).filter((file) => existsSync(file)),
    stateFile: existsSync(stateFile(stateDir)),
    ownerFile: existsSync(ownerFile(naming.lab)),
  };
}

/** True when nothing of the lab is left (the state dir itself may stay, holding journals). */
export function isClean(leftovers: LabLeftovers): boolean {
  return (
    leftovers.processes.length === 0 &&
    leftovers.links.length === 0 &&
    leftovers.netns.length === 0 &&
    leftovers.cgroups.length === 0 &&
    leftovers.propagate.length === 0 &&
    leftovers.locks.length === 0 &&
    !leftovers.stateFile &&
    !leftovers.ownerFile
  );
}

/**
 * Removes everything of lab `naming.lab` from the host: SIGKILLs its nspawn processes and machine
 * inits (a machine's whole PID namespace dies with its init), then deletes its links, namespaces,
 * cgroups, propagate dirs and its state file, or, unless `keepStateDir`, the whole state dir.
 * Idempotent; this is how a start recovers from an earlier run that crashed or skipped destroy.
 */
export async function removeLabLeftovers(
  naming: LabNaming,
  stateDir: string,
  options: { readonly keepStateDir?: boolean } = {},
): Promise<void> {
  // Kill until nothing of the lab runs: an nspawn that a launch shell was about to exec, or the
  // members of a dying PID namespace, show up a moment later.
  const livePids = (): number[] => {
    const processes = findLabProcesses(naming, stateDir);
    for (const proc of processes) signalIfComm(proc.pid, proc.comm, 'SIGKILL');
    const inCgroups = naming.cgroupRoots.flatMap((dir) => pidsInCgroupTree(dir));
    return [...processes.map((proc) => proc.pid), ...inCgroups].filter(isAlive);
  };
  const gone = await pollUntil(() => (livePids().length === 0 ? true : undefined), {
    timeoutMs: 15_000,
    intervalMs: 50,
  });
  if (gone === undefined) {
    throw new FleetError(
      'HARNESS_COMMAND_FAILED',
      `Lab ${naming.lab}: processes survive SIGKILL: ${describe(livePids())}`,
    );
  }

  const links = (await listLinks()).filter(
    (link) => naming.isLinkName(link.name) && (link.alias === undefined || link.alias === naming.linkAlias),
  );
  // Veths first, then the bridge they hang on.
  for (const link of links.sort(
    (a, b) => Number(a.name === naming.bridge) - Number(b.name === naming.bridge),
  )) {
    await deleteLink(link.name);
  }
  for (const netns of listNetns().filter((name) => naming.isNetnsName(name))) await deleteNetns(netns);
  for (const dir of naming.cgroupRoots) removeCgroupTree(dir);
  removeImageLocks(stateDir);
  for (const name of (listDir(PROPAGATE_DIR) ?? []).filter((entry) => naming.isMachineName(entry))) {
    rmSync(join(PROPAGATE_DIR, name), { recursive: true, force: true });
  }
  rmSync(options.keepStateDir === true ? stateFile(stateDir) : stateDir, { recursive: true, force: true });
}

/**
 * nspawn locks a root through `/run/systemd/nspawn/locks/inode-DEV:INO` and removes the file when
 * it exits; an nspawn that was SIGKILLed leaves it behind. Called once no nspawn of the lab runs.
 */
function removeImageLocks(stateDir: string): void {
  for (const file of imageLocks(stateDir)) rmSync(file, { force: true });
}

/** The lock files nspawn uses for the lab's machine roots, whether they exist or not. */
function imageLocks(stateDir: string): string[] {
  const machinesDir = join(stateDir, 'machines');
  return (listDir(machinesDir) ?? []).flatMap((machine) => {
    const root = join(machinesDir, machine, 'root');
    if (!existsSync(root)) return [];
    const { dev, ino } = statSync(root);
    return [join(LOCKS_DIR, `inode-${dev}:${ino}`)];
  });
}

/** Removes what nspawn leaves of one machine after it stopped: its propagate dir and cgroups. */
export function removeMachineLeftovers(machine: string, cgroupDirs: readonly string[]): void {
  rmSync(join(PROPAGATE_DIR, machine), { recursive: true, force: true });
  for (const dir of cgroupDirs) removeCgroupTree(dir);
}

function findLabProcesses(naming: LabNaming, stateDir: string): { pid: number; comm: string }[] {
  const found = new Map<number, string>();
  const consider = (pid: number | undefined, comm: string): void => {
    if (pid === undefined) return;
    const info = readProcess(pid);
    if (info?.comm === comm && info.state !== 'Z') found.set(pid, comm);
  };
  // The pids the lab recorded.
  for (const machine of readStateQuietly(stateDir)?.machines ?? []) {
    const argv = machine.nspawnPid === undefined ? undefined : readCmdline(machine.nspawnPid);
    if (argv !== undefined && nspawnMachineName(argv) === machine.name)
      consider(machine.nspawnPid, NSPAWN_COMM);
    if (machine.pid1 !== undefined && isMachineInit(machine.pid1)) consider(machine.pid1, INIT_COMM);
  }
  // nspawn processes booting one of the lab's machine names, whoever started them.
  for (const info of listProcesses()) {
    if (info.comm !== NSPAWN_COMM) continue;
    const name = nspawnMachineName(readCmdline(info.pid) ?? []);
    if (name !== undefined && naming.isMachineName(name)) consider(info.pid, NSPAWN_COMM);
  }
  // Machine inits (and nspawns) in the lab's cgroups: an init outlives an nspawn that was SIGKILLed.
  for (const pid of naming.cgroupRoots.flatMap((dir) => pidsInCgroupTree(dir))) {
    if (isMachineInit(pid)) consider(pid, INIT_COMM);
    consider(pid, NSPAWN_COMM);
  }
  return [...found].map(([pid, comm]) => ({ pid, comm }));
}

/** PID 1 of a nested PID namespace, running systemd. */
function isMachineInit(pid: number): boolean {
  const nsPids = readNamespacePids(pid);
  return (
    readProcess(pid)?.comm === INIT_COMM && nsPids !== undefined && nsPids.length > 1 && nsPids.at(-1) === 1
  );
}

function readStateQuietly(stateDir: string): ReturnType<typeof readLabState> {
  try {
    return readLabState(stateDir);
  } catch (err) {
    // A state file cut short by the crash we are cleaning up after: the scans below still find all.
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

function listDir(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function describe(pids: readonly number[]): string {
  return pids.map((pid) => `${readProcess(pid)?.comm ?? '?'}[${pid}]`).join(', ');
}
