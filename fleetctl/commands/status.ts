import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { Context } from '../context.js';
import { printRecentEvents } from './events.js';
import { defineCommand, onRun } from '../define.js';
import { boolFlag, flagSet, intFlag, intValue } from '../flags.js';
import { runOnMachine } from '../ssh.js';
import { isGlobalUnit } from '../unit-data.js';

/**
 * `fleetctl status UNIT...`: `systemctl status` of the unit on its machine, through fleetd's API
 * (any fleetd relays it to the unit's machine, so no ssh is needed), or over ssh with `--ssh` as
 * fleet did. For a global unit it shows every machine that reports the unit, each output headed
 * by `Unit X on <machine>:`.
 */
export function registerStatus(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'status',
    summary: 'Output the status of one or more units in the cluster',
    usage: '[--ssh [--ssh-port=N]] UNIT...',
    description: [
      'Output the status of one or more units currently running in the cluster.',
      'Supports glob matching of units in the current working directory or matches',
      'previously started units.',
      '',
      'The status is "systemctl status" of the unit on its machine. fleetd on that',
      'machine runs it and any fleetd relays it, so this works wherever the API can be',
      'reached, without ssh. With --ssh, "systemctl status -l UNIT" runs over SSH instead',
      '(the system ssh client, as --ssh-username, --ssh-port, --tunnel etc. say), or',
      'directly when the machine is this host. For a global unit it shows every',
      'machine that reports the unit.',
      '',
      'The exit status is that of systemctl (3 for a unit that is not active), 255 when',
      'ssh fails, or 1 when a unit does not exist or is not loaded, or its machine does',
      'not answer.',
      '',
      'Show status of a single unit:',
      '\tfleetctl status foo.service',
      '',
      'Show status of an entire directory with glob matching:',
      '\tfleetctl status myservice/*',
    ].join('\n'),
  });
  boolFlag(cmd, '--ssh', 'Run systemctl over SSH (as fleet did) instead of through fleetd.');
  intFlag(cmd, '--ssh-port <port>', 'With --ssh: connect to remote hosts over SSH using this TCP port.', 22);
  onRun(cmd, ctx, async (args) => {
    if (args.length === 0) {
      ctx.err('No units given');
      return 1;
    }
    const client = ctx.client();
    const sshPort = intValue(cmd, 'sshPort', 22);
    const overSsh = flagSet(cmd, 'ssh');
    let exitCode = 0;
    let printed = false;
    const run = async (machineId: string, name: string, header?: string): Promise<void> => {
      if (printed) ctx.out('');
      printed = true;
      if (header !== undefined) ctx.out(header);
      try {
        const code = overSsh
          ? await runOnMachine(ctx, {
              machineId,
              command: ['systemctl', 'status', '-l', name],
              sshPort,
            })
          : await client.unitOutput(name, 'status', { machineID: machineId }, (text) => {
              ctx.write(text);
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
        await printRecentEvents(ctx, name);
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
      await printRecentEvents(ctx, name);
    }
    return exitCode;
  });
}
