import { spawn } from 'node:child_process';

import { FleetError } from '../../lib/errors.js';

/** What a finished command left behind. `code` is the exit status, or 128 + signal number. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for {@link runCommand}. */
export interface RunCommandOptions {
  /** Written to the command's stdin, which is then closed. Without it stdin is /dev/null. */
  readonly input?: string;
  /** Kills the command's whole process group and throws TIMEOUT after this long. Default 60 s. */
  readonly timeoutMs?: number;
  /** The complete environment; default: only a standard PATH. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The PATH every lab command runs with, on the host and inside machines. */
export const STANDARD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Runs `argv` without a shell and collects its output. A non-zero exit is a result, not an error;
 * only a missing binary (HARNESS_MISSING_BINARY), a failure to start (HARNESS_COMMAND_FAILED) and
 * a timeout (TIMEOUT) throw. The command gets its own process group so a timeout also kills what
 * it started (nsenter, for example, forks the real command).
 */
export function runCommand(argv: readonly string[], options: RunCommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new FleetError('INTERNAL', 'runCommand needs a command');
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ?? { PATH: STANDARD_PATH },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code === 'ENOENT' ? 'HARNESS_MISSING_BINARY' : 'HARNESS_COMMAND_FAILED';
      reject(new FleetError(code, `Cannot run ${file}: ${err.message}`, { cause: err }));
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      const result: CommandResult = {
        code: exitCode ?? 128 + (signal === null ? 0 : (SIGNAL_NUMBERS[signal] ?? 0)),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      };
      if (timedOut) {
        reject(
          new FleetError('TIMEOUT', `${describeArgv(argv)} did not finish within ${timeoutMs} ms`, {
            cause: result,
          }),
        );
      } else {
        resolve(result);
      }
    });
    if (options.input !== undefined && child.stdin !== null) {
      // A command that exits without reading its input closes the pipe under us: not our error.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input);
    }
  });
}

/** Runs `argv` like {@link runCommand} and throws HARNESS_COMMAND_FAILED unless it exits 0. */
export async function runChecked(argv: readonly string[], options: RunCommandOptions = {}): Promise<string> {
  const result = await runCommand(argv, options);
  if (result.code !== 0) {
    throw new FleetError(
      'HARNESS_COMMAND_FAILED',
      `${describeArgv(argv)} exited with ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

/** A command line as a human would type it, for error messages. */
export function describeArgv(argv: readonly string[]): string {
  return argv
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`))
    .join(' ');
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (err) {
    // ESRCH: the group is already gone, which is what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
