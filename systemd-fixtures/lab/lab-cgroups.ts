import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

import type { LabNaming } from './lab-naming.js';

/**
 * Without a host systemd, every nspawn must run in a cgroup of its own, or all machines share one
 * `payload` cgroup and their systemds fight over it (docs/lab.md). The lab gives machine M of lab L the
 * directories `lab/L/M` in the `name=systemd` hierarchy and in the unified one; nspawn moves itself
 * there before it execs, and the machine's own cgroups nest below.
 */
export function machineCgroupDirs(naming: LabNaming, machine: string): string[] {
  return naming.cgroupRoots.map((root) => join(root, machine));
}

/** Creates the machine's cgroup directories; idempotent. */
export function createMachineCgroups(naming: LabNaming, machine: string): string[] {
  const dirs = machineCgroupDirs(naming, machine);
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  return dirs;
}

/** Every pid in the cgroup `dir` and its descendants; empty when `dir` does not exist. */
export function pidsInCgroupTree(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids: number[] = [];
  for (const line of readOptional(join(dir, 'cgroup.procs')).split('\n')) {
    if (line !== '') pids.push(Number(line));
  }
  for (const child of subdirectories(dir)) pids.push(...pidsInCgroupTree(join(dir, child)));
  return pids;
}

/**
 * Removes the cgroup `dir` and everything below it, deepest first (a cgroup directory is removed
 * with rmdir, its control files go with it). The tree must hold no processes any more; a cgroup
 * that vanished meanwhile is fine.
 */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const child of subdirectories(dir)) removeCgroupTree(join(dir, child));
  try {
    rmdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function readOptional(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
