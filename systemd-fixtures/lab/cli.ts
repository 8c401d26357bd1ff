import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { describeError, FleetError } from '../../lib/errors.js';
import { isAlive } from './lab-processes.js';
import { Lab, type BindMount } from './lab.js';
import { defaultStateDir, DEFAULT_STATE_ROOT } from './lab-state.js';

/**
 * The lab from a shell: every invocation reads and writes the lab's state dir, so `up` in one
 * process and `kill`, `exec` or `down` in later ones cooperate. Runs without a terminal or stdin.
 */
const USAGE = `Usage: node dist/systemd-fixtures/lab/cli.js COMMAND ...

  up NAME N [--bind-ro HOST:MACHINE]... [--subnet-index X] [--boot-timeout MS]
                          boot N machines (removes what an earlier run of NAME left behind)
  down NAME [--keep-journals]
                          shut down and remove everything of NAME
  exec NAME MACHINE [--stdin] -- CMD [ARG]...
                          run CMD inside MACHINE as root; exits with its exit code
  kill NAME MACHINE       link down, then SIGKILL the machine's PID 1
  boot NAME MACHINE       boot a killed machine again (same root, same machine-id)
  cut NAME MACHINE        take the machine's link down
  heal NAME MACHINE       bring the machine's link up
  status NAME [--json]    show the lab's machines, or what is left of it

MACHINE is NAME-m1, m1 or 1. Every command takes --state-dir DIR
(default ${DEFAULT_STATE_ROOT}/NAME); state, machine roots, journals and console logs live there.
`;

const OPTIONS = {
  'state-dir': { type: 'string' },
  'bind-ro': { type: 'string', multiple: true },
  'subnet-index': { type: 'string' },
  'boot-timeout': { type: 'string' },
  'keep-journals': { type: 'boolean' },
  stdin: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function main(argv: readonly string[]): Promise<number> {
  const dashDash = argv.indexOf('--');
  const command = dashDash === -1 ? [] : argv.slice(dashDash + 1);
  const { values, positionals } = parseArgs({
    args: dashDash === -1 ? [...argv] : argv.slice(0, dashDash),
    options: OPTIONS,
    allowPositionals: true,
  });
  const [verb, name, third] = positionals;
  if (values.help === true || verb === undefined) {
    process.stdout.write(USAGE);
    return verb === undefined && values.help !== true ? 2 : 0;
  }
  if (name === undefined) return usageError(`${verb} needs a lab name`);
  const stateDir = values['state-dir'] ?? defaultStateDir(name);

  switch (verb) {
    case 'up': {
      const lab = new Lab({
        name,
        machines: Number(third),
        stateDir,
        bindRo: (values['bind-ro'] ?? []).map(parseBind),
        ...(values['subnet-index'] === undefined ? {} : { subnetIndex: Number(values['subnet-index']) }),
        ...(values['boot-timeout'] === undefined ? {} : { bootTimeoutMs: Number(values['boot-timeout']) }),
      });
      const started = Date.now();
      await lab.start();
      process.stdout.write(`lab ${name} up in ${Date.now() - started} ms\n`);
      printStatus(lab);
      return 0;
    }
    case 'down': {
      const keepJournals = values['keep-journals'] === true;
      let lab: Lab | undefined;
      try {
        lab = Lab.open(name, stateDir);
      } catch (err) {
        // No state file: nothing to shut down in order, but leftovers may still need removing.
        if (!(err instanceof FleetError)) throw err;
      }
      if (lab === undefined) await Lab.removeLeftovers(name, stateDir, { keepJournals });
      else await lab.destroy({ keepJournals });
      return 0;
    }
    case 'exec': {
      if (third === undefined || command.length === 0) return usageError('exec needs MACHINE -- CMD...');
      const input = values.stdin === true ? readFileSync(0, 'utf8') : undefined;
      const result = await Lab.open(name, stateDir).exec(
        third,
        command,
        input === undefined ? {} : { input },
      );
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      return result.code;
    }
    case 'kill':
    case 'boot':
    case 'cut':
    case 'heal': {
      if (third === undefined) return usageError(`${verb} needs a machine`);
      await Lab.open(name, stateDir)[verb](third);
      return 0;
    }
    case 'status':
      return status(name, stateDir, values.json === true);
    default:
      return usageError(`unknown command "${verb}"`);
  }
}

async function status(name: string, stateDir: string, json: boolean): Promise<number> {
  let lab: Lab;
  try {
    lab = Lab.open(name, stateDir);
  } catch (err) {
    if (!(err instanceof FleetError)) throw err;
    const leftovers = await Lab.findLeftovers(name, stateDir);
    process.stdout.write(
      json ? `${JSON.stringify({ name, up: false, leftovers })}\n` : `lab ${name} is not up\n`,
    );
    return 1;
  }
  if (json) {
    const machines = lab.machines.map((machine) => ({ ...machine, running: isRunning(machine.pid1) }));
    process.stdout.write(
      `${JSON.stringify({ name, up: true, hostIp: lab.hostIp, bridge: lab.bridge, machines })}\n`,
    );
  } else {
    printStatus(lab);
  }
  return 0;
}

function printStatus(lab: Lab): void {
  const lines = [`host ${lab.hostIp} on ${lab.bridge}, state in ${lab.stateDir}`];
  for (const machine of lab.machines) {
    const state = !isRunning(machine.pid1) ? 'killed' : machine.cut ? 'cut' : 'running';
    lines.push(
      [machine.name, machine.ip, machine.machineId, state, `pid1=${machine.pid1 ?? '-'}`].join('\t'),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function isRunning(pid1: number | undefined): boolean {
  return pid1 !== undefined && isAlive(pid1);
}

function parseBind(spec: string): BindMount {
  const colon = spec.indexOf(':');
  if (colon <= 0 || colon === spec.length - 1) {
    throw new FleetError('HARNESS_COMMAND_FAILED', `--bind-ro wants HOST:MACHINE, got "${spec}"`);
  }
  return { host: resolve(spec.slice(0, colon)), machine: spec.slice(colon + 1) };
}

function usageError(message: string): number {
  process.stderr.write(`fleet-lab: ${message}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fleet-lab: ${describeError(err)}\n`);
    process.exitCode = 1;
  },
);
