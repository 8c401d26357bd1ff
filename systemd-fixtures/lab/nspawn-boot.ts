import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

import { FleetError } from '../../lib/errors.js';
import { findMachineInit, isAlive } from './lab-processes.js';
import { pollUntil } from './poll.js';
import { runCommand, STANDARD_PATH } from './run-command.js';

/** A read-only bind mount from the host into a machine. */
export interface BindMount {
  readonly host: string;
  readonly machine: string;
}

/** What it takes to boot one machine. */
export interface NspawnBootOptions {
  readonly machine: string;
  readonly rootDir: string;
  readonly netnsPath: string;
  /** The cgroups nspawn moves itself into before it execs (see lab-cgroups.ts). */
  readonly cgroupDirs: readonly string[];
  readonly bindRo: readonly BindMount[];
  /**
   * When set, the machine's /usr is the host's /usr under an overlay whose changes land in this
   * host directory (kept across boots), so packages can be installed in the machine; otherwise
   * the host's /usr is bound read-only.
   */
  readonly usrUpperDir?: string;
  /** nspawn's stdout and stderr, with the machine's console, are appended here. */
  readonly consoleLog: string;
  readonly timeoutMs: number;
}

/** The nspawn command line for one machine, following docs/lab.md's recipe. */
export function nspawnArgv(options: NspawnBootOptions): string[] {
  return [
    'systemd-nspawn',
    '--quiet',
    '-D',
    options.rootDir,
    options.usrUpperDir === undefined ? '--bind-ro=/usr' : `--overlay=/usr:${options.usrUpperDir}:/usr`,
    ...options.bindRo.map((bind) => `--bind-ro=${bind.host}:${bind.machine}`),
    '-M',
    options.machine,
    `--hostname=${options.machine}`,
    // No host systemd to register with or to create a scope: nspawn stays in the cgroup we chose.
    '--register=no',
    '--keep-unit',
    `--network-namespace-path=${options.netnsPath}`,
    '--link-journal=no',
    '--resolv-conf=off',
    '--timezone=off',
    '--console=read-only',
    '-b',
  ];
}

/**
 * Each cgroup directory gets the shell's pid, then the shell execs nspawn: nspawn starts (and keeps)
 * the pid in its own cgroups. Arguments: the number of cgroup directories, the directories, argv.
 */
const LAUNCH_SCRIPT =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; n=$((n - 1)); done; exec "$@"';

/**
 * Starts nspawn for one machine in its own session (setsid, via `detached`), without a terminal
 * and with stdin on /dev/null, so it outlives the calling process; returns nspawn's pid.
 */
export function launchNspawn(options: NspawnBootOptions): number {
  const log = openSync(options.consoleLog, 'a');
  try {
    const child = spawn(
      'sh',
      [
        '-c',
        LAUNCH_SCRIPT,
        'fleet-lab-launch',
        String(options.cgroupDirs.length),
        ...options.cgroupDirs,
        ...nspawnArgv(options),
      ],
      { detached: true, stdio: ['ignore', log, log], env: { PATH: STANDARD_PATH } },
    );
    // Failure to start shows up as a missing pid below; the event must still have a listener.
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) {
      throw new FleetError('HARNESS_START_FAILED', `Cannot start systemd-nspawn for ${options.machine}`);
    }
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * Waits until the machine that nspawn `nspawnPid` boots reports `running` or `degraded`, polling
 * `systemctl is-system-running` inside every 100 ms, and returns its PID 1 as a host pid. Throws
 * HARNESS_START_FAILED when nspawn exits early and TIMEOUT when the machine is not up within
 * `timeoutMs`, both with the tail of the machine's console.
 */
export async function waitForBoot(options: NspawnBootOptions, nspawnPid: number): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  const failure = (code: 'HARNESS_START_FAILED' | 'TIMEOUT', why: string): FleetError =>
    new FleetError(
      code,
      `Machine ${options.machine} ${why}. Console (${options.consoleLog}), last lines:\n${consoleTail(options.consoleLog)}`,
    );

  const pid1 = await pollUntil(
    () => {
      if (!isAlive(nspawnPid)) throw failure('HARNESS_START_FAILED', 'exited before its systemd started');
      return findMachineInit(nspawnPid);
    },
    { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 20 },
  );
  if (pid1 === undefined) throw failure('TIMEOUT', `has no systemd after ${options.timeoutMs} ms`);

  let lastState = '';
  const isSystemRunning = ['nsenter', '-t', String(pid1), '-a', '--', 'systemctl', 'is-system-running'];
  const ready = await pollUntil(
    async () => {
      if (!isAlive(nspawnPid)) {
        throw failure('HARNESS_START_FAILED', `exited while booting (last state "${lastState}")`);
      }
      const result = await runCommand(isSystemRunning, { timeoutMs: 5_000 });
      lastState = result.stdout.trim() || result.stderr.trim();
      return lastState === 'running' || lastState === 'degraded' ? true : undefined;
    },
    { timeoutMs: Math.max(0, deadline - Date.now()), intervalMs: 100 },
  );
  if (ready === undefined) {
    throw failure('TIMEOUT', `is not running after ${options.timeoutMs} ms (last state "${lastState}")`);
  }
  return pid1;
}

/** The last `lines` lines of a console log, or a note that there is none. */
export function consoleTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(no console log: ${(err as Error).message})`;
  }
}
