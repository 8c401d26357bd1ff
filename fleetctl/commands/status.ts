import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { intFlag, intValue } from '../flags.js';
import { runOnMachine } from '../ssh.js';
import { isGlobalUnit } from '../unit-data.js';

/**
 * `fleetctl status UNIT...`: `systemctl status -l <unit>` on the unit's machine, over ssh or
 * locally when that machine is this host. For a global unit (where fleet did nothing) it runs on
 * every machine that reports the unit, each output headed by `Unit X on <machine>:`.
 */
export function registerStatus(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'status',
    summary: 'Output the status of one or more units in the cluster',
    usage: '[--ssh-port=N] UNIT...',
    description: [
      'Output the status of one or more units currently running in the cluster.',
      'Supports glob matching of units in the current working directory or matches',
      'previously started units.',
      '',
      'The status is "systemctl status -l UNIT" run on the unit\'s machine over SSH (with',
      'the system ssh client, as --ssh-username, --ssh-port, --tunnel etc. say), or run',
      'directly when that machine is this host. For a global unit it runs on every',
      'machine that reports the unit.',
      '',
      'The exit status is that of systemctl (3 for a unit that is not active), 255 when',
      'ssh fails, or 1 when a unit does not exist or is not loaded.',
      '',
      'Show status of a single unit:',
      '\tfleetctl status foo.service',
      '',
      'Show status of an entire directory with glob matching:',
      '\tfleetctl status myservice/*',
    ].join('\n'),
  });
  intFlag(cmd, '--ssh-port <port>', 'Connect to remote hosts over SSH using this TCP port.', 22);
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    const client = ctx.client();
    const sshPort = intValue(cmd, 'sshPort', 22);
    let exitCode = 0;
    let printed = false;
    const run = async (machineId: string, name: string, header?: string): Promise<void> => {
      if (printed) ctx.out('');
      printed = true;
      if (header !== undefined) ctx.out(header);
      try {
        const code = await runOnMachine(ctx, {
          machineId,
          command: ['systemctl', 'status', '-l', name],
          sshPort,
        });
        if (exitCode === 0) exitCode = code;
      } catch (err) {
        ctx.err(describeError(err));
        if (exitCode === 0) exitCode = 1;
      }
    };
    for (const arg of args) {
      const name = mangleUnitName(arg);
      const unit = await client.getUnit(name);
      if (unit === undefined) {
        ctx.err(`Unit ${name} does not exist.`);
        exitCode ||= 1;
        continue;
      }
      if (isGlobalUnit(unit.options)) {
        const states = await client.listUnitStates({ unitName: name });
        const machines = states.map((s) => s.machineID).filter((m): m is string => m !== undefined);
        if (machines.length === 0) {
          ctx.err(`Global unit ${name} does not appear to be loaded on any machine.`);
          exitCode ||= 1;
          continue;
        }
        for (const machine of machines)
          await run(machine, name, `Unit ${name} on ${await ctx.machines().legend(machine)}:`);
        continue;
      }
      if (
        unit.currentState === 'inactive' ||
        unit.currentState === undefined ||
        unit.machineID === undefined
      ) {
        ctx.err(`Unit ${name} does not appear to be loaded.`);
        exitCode ||= 1;
        continue;
      }
      await run(unit.machineID, name);
    }
    return exitCode;
  });
}
