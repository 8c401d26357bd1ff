import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { FleetError } from '../../lib/errors.js';

/**
 * Which process started a lab. A start cleans up whatever an earlier run of the same name left
 * behind, which is right after a crash and wrong while that earlier run is still alive (two test
 * runs of one suite at once would tear down each other's machines). So the process that starts a
 * lab records itself in `/run/fleet-ts-lab/<name>.owner`, and a start or a blind cleanup from
 * another process refuses while the owner lives. An owner that exited (a crash, or the CLI's `up`,
 * which returns once the machines run) no longer counts.
 */
export const OWNER_DIR = '/run/fleet-ts-lab';

interface Owner {
  readonly pid: number;
  /** Start time from /proc/PID/stat, so a reused pid is not mistaken for the owner. */
  readonly startTime: string;
}

/** The owner file of lab `name`. */
export function ownerFile(name: string): string {
  return join(OWNER_DIR, `${name}.owner`);
}

/**
 * The pid of a live process other than this one that owns lab `name`; `undefined` when the lab
 * is unowned, owned by this process, or its owner has exited.
 */
export function otherLiveOwner(name: string): number | undefined {
  let owner: Owner;
  try {
    owner = JSON.parse(readFileSync(ownerFile(name), 'utf8')) as Owner;
  } catch (err) {
    // No owner file, or one cut short by a crash: nobody alive owns the lab.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return undefined;
    throw err;
  }
  if (owner.pid === process.pid) return undefined;
  return processStartTime(owner.pid) === owner.startTime ? owner.pid : undefined;
}

/** Throws HARNESS_START_FAILED when another live process owns lab `name`. */
export function assertNoOtherOwner(name: string, action: string): void {
  const pid = otherLiveOwner(name);
  if (pid !== undefined) {
    throw new FleetError(
      'HARNESS_START_FAILED',
      `Cannot ${action} lab ${name}: process ${pid} started it and is still running (${ownerFile(name)}). ` +
        'Use another lab name, or stop that process first.',
    );
  }
}

/**
 * Records this process as the owner of lab `name`. Throws HARNESS_START_FAILED when another live
 * process owns it, or claims it at the same moment (the file is created exclusively).
 */
export function claimOwnership(name: string): void {
  mkdirSync(OWNER_DIR, { recursive: true });
  const startTime = processStartTime(process.pid);
  if (startTime === undefined) throw new FleetError('INTERNAL', 'Cannot read the start time of this process');
  const content = `${JSON.stringify({ pid: process.pid, startTime } satisfies Owner)}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(ownerFile(name), content, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw claimFailed(name, err);
    }
    // The file is there: fine if it names this process or a dead one, which it then replaces.
    assertNoOtherOwner(name, 'start');
    releaseOwnership(name);
  }
}

function claimFailed(name: string, cause: unknown): FleetError {
  return new FleetError('HARNESS_START_FAILED', `Cannot claim lab ${name} (${ownerFile(name)})`, { cause });
}

/** Forgets the owner of lab `name`; idempotent. */
export function releaseOwnership(name: string): void {
  rmSync(ownerFile(name), { force: true });
}

function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // Field 22 (starttime); fields after the parenthesised comm start at field 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
