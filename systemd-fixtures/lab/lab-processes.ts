import { readdirSync, readFileSync } from 'node:fs';

import { pollUntil } from './poll.js';

/** The `comm` of a machine's nspawn process and of its PID 1, as the host sees them. */
export const NSPAWN_COMM = 'systemd-nspawn';
export const INIT_COMM = 'systemd';

/** What /proc says about one process; `undefined` from the readers means it is gone. */
export interface ProcessInfo {
  readonly pid: number;
  readonly comm: string;
  readonly ppid: number;
  /** The one-letter state from /proc/PID/stat; `Z` is a zombie. */
  readonly state: string;
}

/** Reads /proc/PID/stat; `undefined` when the process does not exist. */
export function readProcess(pid: number): ProcessInfo | undefined {
  const stat = readProcFile(pid, 'stat');
  if (stat === undefined) return undefined;
  // The comm sits in parentheses and may itself contain spaces and parentheses.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const [state = '?', ppid = '0'] = stat.slice(close + 2).split(' ');
  return { pid, comm: stat.slice(open + 1, close), ppid: Number(ppid), state };
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const info = readProcess(pid);
  return info !== undefined && info.state !== 'Z';
}

/** The argument vector of `pid`, or `undefined` when it is gone. */
export function readCmdline(pid: number): string[] | undefined {
  const raw = readProcFile(pid, 'cmdline');
  if (raw === undefined) return undefined;
  return raw.split('\0').filter((arg, i, all) => arg !== '' || i < all.length - 1);
}

/** The pid of `pid` in each nested PID namespace, outermost first (the `NSpid:` line). */
export function readNamespacePids(pid: number): number[] | undefined {
  const status = readProcFile(pid, 'status');
  const line = status?.split('\n').find((l) => l.startsWith('NSpid:'));
  return line?.slice('NSpid:'.length).trim().split(/\s+/).map(Number);
}

/** Every process on the host. */
export function listProcesses(): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const info = readProcess(Number(entry));
    if (info !== undefined) processes.push(info);
  }
  return processes;
}

/**
 * The machine's init: the child of the nspawn process that is PID 1 in its own PID namespace and
 * has already become `systemd`. `undefined` until then.
 */
export function findMachineInit(nspawnPid: number): number | undefined {
  for (const info of listProcesses()) {
    if (info.ppid !== nspawnPid || info.comm !== INIT_COMM || info.state === 'Z') continue;
    const nsPids = readNamespacePids(info.pid);
    if (nsPids !== undefined && nsPids.length > 1 && nsPids.at(-1) === 1) return info.pid;
  }
  return undefined;
}

/** The machine name an nspawn command line boots (`-M NAME`, `-MNAME`, `--machine[=]NAME`). */
export function nspawnMachineName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '-M' || arg === '--machine') return argv[i + 1];
    if (arg.startsWith('--machine=')) return arg.slice('--machine='.length);
    if (arg.startsWith('-M')) return arg.slice(2);
  }
  return undefined;
}

/**
 * Sends `signal` to `pid` only if it still runs `comm`, so a recorded pid that the kernel has since
 * given to another process is left alone. Returns whether the signal was sent.
 */
export function signalIfComm(pid: number, comm: string, signal: NodeJS.Signals): boolean {
  const info = readProcess(pid);
  if (info?.comm !== comm || info.state === 'Z') return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Waits until none of `pids` is alive; returns false if some still are after `timeoutMs`. */
export async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const done = await pollUntil(() => (pids.some(isAlive) ? undefined : true), { timeoutMs, intervalMs: 50 });
  return done === true;
}

function readProcFile(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT/ESRCH: the process is gone (or went while we read).
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
}
