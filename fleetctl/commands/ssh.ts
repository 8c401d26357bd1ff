import type { Command } from 'commander';
import { FleetError, describeError } from '../../lib/errors.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { ApiMachine } from '../client.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { boolFlag, flagSet, intFlag, intValue, stringValue } from '../flags.js';
import { machineAddress, runProgram, sshArgs } from '../ssh.js';
import { isGlobalUnit } from '../unit-data.js';

/** A machine ID prefix that matches exactly one machine. */
function machineByPrefix(machines: readonly ApiMachine[], prefix: string): ApiMachine | undefined {
  const matches = machines.filter((m) => m.id.startsWith(prefix));
  return matches.length === 1 ? matches[0] : undefined;
}

/** The machine a unit runs on; throws fleet's message for a global unit. */
async function machineOfUnit(ctx: Context, arg: string): Promise<ApiMachine | undefined> {
  const unit = await ctx.client().getUnit(mangleUnitName(arg));
  if (unit === undefined) return undefined;
  if (isGlobalUnit(unit.options)) throw new FleetError('USAGE_INVALID', 'global units unsupported');
  return unit.machineID === undefined ? undefined : ctx.machines().get(unit.machineID);
}

/** `fleetctl ssh MACHINE|UNIT [-- COMMAND...]`: a shell, or one command, on a machine. */
export function registerSsh(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'ssh',
    summary: 'Open interactive shell on a machine in the cluster',
    usage: '[-A|--forward-agent] [--ssh-port=N] [-m|--machine|-u|--unit] {MACHINE|UNIT} [-- COMMAND...]',
    description: [
      'Open an interactive shell on a specific machine in the cluster or on the machine',
      'where the specified unit is located, with the system ssh client (your ssh config,',
      'agent and keys apply). The argument is matched as a machine ID prefix and as a',
      'unit name; use --machine or --unit when it could be both.',
      '',
      'fleetctl tries to detect whether your first argument is a machine or a unit.',
      'To skip this check use the --machine or --unit flags.',
      '',
      'Open a shell on a machine:',
      '\tfleetctl ssh 2444264c-eac2-4eff-a490-32d5e5e4af24',
      '',
      'Open a shell from your laptop, to the machine running a specific unit, using a',
      'cluster member as a bastion host:',
      '\tfleetctl --tunnel 10.10.10.10 ssh foo.service',
      '',
      'Open a shell on a machine and forward the authentication agent connection:',
      '\tfleetctl ssh -A 2444264c-eac2-4eff-a490-32d5e5e4af24',
      '',
      'Tip: Create an alias for --tunnel.',
      '\t- Add "alias fleetctl=fleetctl --tunnel 10.10.10.10" to your bash profile.',
      '\t- Now you can run all fleet commands locally.',
      '',
      'Run a command on a machine (everything after -- is the command):',
      '\tfleetctl ssh foo.service -- ls -l /run/fleet/units',
    ].join('\n'),
  });
  cmd.option('-m, --machine <machine>', 'Open SSH connection to a specific machine (ID prefix).');
  cmd.option('-u, --unit <unit>', 'Open SSH connection to machine running provided unit.');
  boolFlag(cmd, '-A, --forward-agent', 'Forward local ssh-agent to target machine.', ['A']);
  intFlag(cmd, '--ssh-port <port>', 'Connect to remote hosts over SSH using this TCP port.', 22);
  onRun(cmd, ctx, async (args) => {
    const machineFlag = stringValue(cmd, 'machine');
    const unitFlag = stringValue(cmd, 'unit');
    if (machineFlag !== '' && unitFlag !== '') {
      ctx.err('Both machine and unit flags provided, please specify only one.');
      return 1;
    }
    let remote = args;
    let target: ApiMachine | undefined;
    try {
      if (machineFlag !== '') target = machineByPrefix(await ctx.machines().all(), machineFlag);
      else if (unitFlag !== '') target = await machineOfUnit(ctx, unitFlag);
      else {
        const [first, ...rest] = args;
        if (first === undefined) {
          ctx.err('Provide one machine or unit.');
          return 1;
        }
        remote = rest;
        const machine = machineByPrefix(await ctx.machines().all(), first);
        const viaUnit = await machineOfUnit(ctx, first);
        if (machine !== undefined && viaUnit !== undefined) {
          ctx.err(`Unable to proceed: ambiguous argument, both machine and unit found for \`${first}\`.`);
          ctx.err('Please use flag `-m` or `-u` to refine the search');
          return 1;
        }
        target = machine ?? viaUnit;
      }
    } catch (err) {
      ctx.err(`Unable to proceed: ${describeError(err)}`);
      return 1;
    }
    if (target === undefined) {
      ctx.err('Unable to proceed: could not find matching unit or machine');
      return 1;
    }
    try {
      const { host, port } = machineAddress(target.id, target.primaryIP, intValue(cmd, 'sshPort', 22));
      // The remote command is the user's own, typed for the remote shell (as `ssh host CMD`).
      const argv = sshArgs(
        ctx.globals(),
        { host, port, forwardAgent: flagSet(cmd, 'forwardAgent', ['A']) },
        remote,
      );
      ctx.debug(`running ssh ${argv.join(' ')}`);
      return await runProgram(ctx, 'ssh', argv, 'Unable to SSH to remote host');
    } catch (err) {
      ctx.err(describeError(err));
      return 1;
    }
  });
}
