import { spawn } from 'node:child_process';
import { FleetError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { OutputHandler, OutputRequest } from '../registry/output-relay.js';
import { validateUnitName } from '../unit/unit-name.js';

/**
 * What a machine answers when asked through the output relay (registry/output-relay.ts) for a
 * unit's status or journal: `systemctl status` or `journalctl` for that unit, run here. The
 * request is data from etcd, so it chooses nothing but the unit and bounded numbers: the program
 * is fixed, its argv is built here (never a shell), the unit name must be one systemd accepts and
 * stands where it cannot be read as an option (after `--`, or inside `--unit=`).
 */

/** What runs a request's program; the real one spawns it. */
export type OutputProgramRunner = (
  program: string,
  args: readonly string[],
  write: (text: string) => void,
  signal: AbortSignal,
  timeoutMs: number | undefined,
) => Promise<number>;

/** How long a status or a journal read that does not follow may run. */
export const OUTPUT_PROGRAM_TIMEOUT_MS = 30_000;

/** The environment the programs get: no pager, no colours, UTF-8, a fixed PATH. */
const PROGRAM_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  SYSTEMD_PAGER: '',
  SYSTEMD_COLORS: '0',
  SYSTEMD_URLIFY: '0',
};

/** The program and argv for a request. Throws `UNIT_NAME_INVALID` for a name systemd refuses. */
export function outputCommand(request: OutputRequest): { program: string; args: string[] } {
  const problem = validateUnitName(request.unit);
  if (problem !== undefined)
    throw new FleetError(
      'UNIT_NAME_INVALID',
      `Invalid unit name ${JSON.stringify(request.unit)}: ${problem}`,
    );
  switch (request.kind) {
    case 'status':
      return { program: 'systemctl', args: ['status', '--full', '--no-pager', '--', request.unit] };
    case 'journal':
      return {
        program: 'journalctl',
        args: [
          `--unit=${request.unit}`,
          '--no-pager',
          `--lines=${request.lines}`,
          `--output=${request.output}`,
          ...(request.follow ? ['--follow'] : []),
        ],
      };
  }
}

/** Spawns the program (no shell), streams its stdout and stderr, resolves with its exit status. */
export const spawnOutputProgram: OutputProgramRunner = (program, args, write, signal, timeoutMs) =>
  new Promise<number>((resolve, reject) => {
    const child = spawn(program, [...args], { env: PROGRAM_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    const decoderOut = new TextDecoder();
    const decoderErr = new TextDecoder();
    child.stdout.on('data', (b: Buffer) => {
      write(decoderOut.decode(b, { stream: true }));
    });
    child.stderr.on('data', (b: Buffer) => {
      write(decoderErr.decode(b, { stream: true }));
    });
    const stop = (): void => {
      child.kill('SIGTERM');
    };
    signal.addEventListener('abort', stop, { once: true });
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            write(`\n[fleetd: ${program} did not finish within ${timeoutMs / 1000} s; stopped]\n`);
            stop();
          }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      reject(new FleetError('INTERNAL', `cannot run ${program}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      write(decoderOut.decode() + decoderErr.decode());
      resolve(code ?? (sig === null ? 1 : 128 + 15));
    });
  });

/** The handler fleetd serves the output relay with on this machine. */
export function unitOutputHandler(
  logger: Logger,
  runProgram: OutputProgramRunner = spawnOutputProgram,
): OutputHandler {
  const log = logger.child({ component: 'unit-output' });
  return async (request, write, signal) => {
    const { program, args } = outputCommand(request);
    log.debug('unit output requested', { kind: request.kind, unit: request.unit });
    const follow = request.kind === 'journal' && request.follow;
    return runProgram(program, args, write, signal, follow ? undefined : OUTPUT_PROGRAM_TIMEOUT_MS);
  };
}
