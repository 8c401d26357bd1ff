import type { Command } from 'commander';
import { describeError } from '../../lib/errors.js';
import { mangleUnitName } from '../../unit/unit-name.js';
import type { Context } from '../context.js';
import { defineCommand, onRun } from '../define.js';
import { boolFlag, flagSet, intFlag, intValue, stringFlag, stringValue } from '../flags.js';
import { runOnMachine } from '../ssh.js';
import { isGlobalUnit } from '../unit-data.js';

/** Splits streamed text into whole lines, each prefixed (for several machines followed at once). */
function prefixedLines(
  prefix: string,
  write: (text: string) => void,
): { push(text: string): void; end(): void } {
  let pending = '';
  return {
    push(text) {
      pending += text;
      const nl = pending.lastIndexOf('\n');
      if (nl === -1) return;
      const whole = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      write(
        whole
          .split('\n')
          .map((l) => `${prefix}${l}\n`)
          .join(''),
      );
    },
    end() {
      if (pending !== '') write(`${prefix}${pending}\n`);
      pending = '';
    },
  };
}

/**
 * `fleetctl journal UNIT`: the unit's journal on its machine, through fleetd's API (any fleetd
 * relays it to the unit's machine; `--follow` streams), or over ssh with `--ssh` as fleet did.
 * For a global unit, the journal on every machine that reports it.
 */
export function registerJournal(program: Command, ctx: Context): void {
  const cmd = defineCommand(program, {
    name: 'journal',
    summary: 'Print the journal of a unit in the cluster to stdout',
    usage: '[--lines=N] [-f|--follow] [--output=STRING] [--ssh [--ssh-port=N] [--sudo]] UNIT',
    description: [
      'Outputs the journal of a unit: "journalctl --unit UNIT --lines N" run on the',
      "unit's machine by fleetd there, relayed by any fleetd, so this works wherever",
      'the API can be reached, without ssh. --follow streams new entries until',
      'interrupted. With --ssh, journalctl runs over SSH instead (as fleet did), or',
      'directly when the machine is this host.',
      '',
      'For a global unit it prints the journal on every machine that reports the unit,',
      'each headed by "Unit X on <machine>:"; with --follow every line starts with its',
      'machine.',
      '',
      'Read the last 10 lines:',
      '\tfleetctl journal foo.service',
      '',
      'Read the last 100 lines:',
      '\tfleetctl journal --lines 100 foo.service',
      '',
      'Follow the journal:',
      '\tfleetctl journal -f foo.service',
    ].join('\n'),
  });
  intFlag(cmd, '--lines <N>', 'Number of recent log lines to return.', 10);
  boolFlag(cmd, '-f, --follow', 'Continuously print new entries as they are appended to the journal.', ['f']);
  boolFlag(cmd, '--ssh', 'Run journalctl over SSH (as fleet did) instead of through fleetd.');
  intFlag(cmd, '--ssh-port <port>', 'With --ssh: connect to remote hosts over SSH using this TCP port.', 22);
  boolFlag(cmd, '--sudo', 'With --ssh: execute the journal command with sudo.');
  stringFlag(
    cmd,
    '--output <mode>',
    'Output mode, passed to journalctl --output (short, verbose, json, cat, ...).',
    'short',
  );
  onRun(cmd, ctx, async (args) => {
    const [arg] = args;
    if (arg === undefined || args.length !== 1) {
      ctx.err('One unit file must be provided.');
      return 1;
    }
    const name = mangleUnitName(arg);
    const client = ctx.client();
    const unit = await client.getUnit(name);
    if (unit === undefined) {
      ctx.err(`Unit ${name} does not exist.`);
      return 1;
    }
    const overSsh = flagSet(cmd, 'ssh');
    const sudo = flagSet(cmd, 'sudo');
    if (sudo && !overSsh) {
      ctx.err('--sudo applies to --ssh only: through fleetd, journalctl runs as fleetd (root).');
      return 1;
    }
    const lines = intValue(cmd, 'lines', 10);
    const output = stringValue(cmd, 'output', 'short');
    const follow = flagSet(cmd, 'follow', ['f']);
    const read = async (machineId: string, write: (text: string) => void): Promise<number> => {
      if (!overSsh) {
        return client.unitOutput(
          name,
          'journal',
          { machineID: machineId, lines: String(lines), output, follow: String(follow) },
          write,
        );
      }
      const command = [
        ...(sudo ? ['sudo'] : []),
        'journalctl',
        '--unit',
        name,
        '--no-pager',
        '-n',
        String(lines),
        '--output',
        output,
        ...(follow ? ['-f'] : []),
      ];
      return runOnMachine(ctx, { machineId, command, sshPort: intValue(cmd, 'sshPort', 22) });
    };

    if (isGlobalUnit(unit.options)) {
      if (overSsh) {
        ctx.err(`Unable to retrieve journal of global unit ${name} over ssh: leave out --ssh.`);
        return 1;
      }
      const states = await client.listUnitStates({ unitName: name });
      const machines = states.map((s) => s.machineID).filter((m): m is string => m !== undefined);
      if (machines.length === 0) {
        ctx.err(`Global unit ${name} does not appear to be loaded on any machine.`);
        return 1;
      }
      let exitCode = 0;
      const one = async (machine: string, write: (text: string) => void): Promise<void> => {
        try {
          const code = await read(machine, write);
          if (exitCode === 0) exitCode = code;
        } catch (err) {
          ctx.err(`${await ctx.machines().legend(machine)}: ${describeError(err)}`);
          if (exitCode === 0) exitCode = 1;
        }
      };
      if (follow) {
        await Promise.all(
          machines.map(async (machine) => {
            const out = prefixedLines(`${await ctx.machines().legend(machine)}| `, (t) => {
              ctx.write(t);
            });
            await one(machine, (t) => {
              out.push(t);
            });
            out.end();
          }),
        );
        return exitCode;
      }
      let first = true;
      for (const machine of machines) {
        if (!first) ctx.out('');
        first = false;
        ctx.out(`Unit ${name} on ${await ctx.machines().legend(machine)}:`);
        await one(machine, (t) => {
          ctx.write(t);
        });
      }
      return exitCode;
    }
    if (unit.currentState === 'inactive' || unit.currentState === undefined || unit.machineID === undefined) {
      ctx.err(`Unit ${name} does not appear to be running.`);
      return 1;
    }
    try {
      return await read(unit.machineID, (t) => {
        ctx.write(t);
      });
    } catch (err) {
      ctx.err(describeError(err));
      return 1;
    }
  });
}
